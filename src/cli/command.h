// Shared plumbing of the `strata` subcommands: how a command reports a
// failure and which exit code it uses.
//
// Exit codes: 0 success, 1 runtime failure, 2 invalid input or usage (the
// documented contract of `strata env validate` and `strata env merge`).
#pragma once

#include <CLI/CLI.hpp>

#include "util/error.h"

namespace strata::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitInvalidInput = 2;

// Prints "<Kind>: <message>" on stderr and returns kExitInvalidInput.
int ReportInvalidInput(const util::Error& error);

// Adds `strata env ...` to `app`; the command stores its exit code in
// *exit_code when it runs.
void AddEnvCommands(CLI::App& app, int* exit_code);

// Adds `strata package ...` to `app`.
void AddPackageCommands(CLI::App& app, int* exit_code);

// Adds `strata run` and `strata agent` to `app`.
void AddRunCommands(CLI::App& app, int* exit_code);

// Adds `strata env list|inspect|gc|retry`; needs AddEnvCommands first.
void AddEnvCacheCommands(CLI::App& app, int* exit_code);

}  // namespace strata::cli
