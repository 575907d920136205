// Shared plumbing of the `strata` subcommands: how a command reports a
// failure and which exit code it uses.
//
// Exit codes: 0 success, 1 runtime failure, 2 invalid input or usage (the
// documented contract of `strata env validate` and `strata env merge`).
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "head/head_client.h"
#include "model/runtime_env.h"
#include "util/error.h"
#include "util/result.h"

namespace strata::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitInvalidInput = 2;

// Prints "<Kind>: <message>" on stderr and returns kExitInvalidInput.
int ReportInvalidInput(const util::Error& error);

// Errors that say the request was wrong (TypeError, ValueError, KeyError:
// bad input, or a head's HTTP 400) exit 2, the others (unreachable head,
// unknown job, I/O) print "<Kind>: <message>" and exit 1.
int ReportHeadError(const util::Error& error);

// --address URL (else $STRATA_ADDRESS, else http://127.0.0.1:8265).
void AddAddressOption(CLI::App& command, std::optional<std::string>& address);

// Runs `command` with a client of the head `address` resolves to; a bad
// address exits 2.
int WithHeadClient(const std::optional<std::string>& address,
                   const std::function<int(head::HeadClient&)>& command);

// A string field of a head's JSON reply; "" when absent, null or not a string.
std::string JsonText(const util::Json& object, std::string_view key);

// How often a command waiting for a job or build to finish asks the head.
inline constexpr std::chrono::milliseconds kStatusPollInterval{200};

// --runtime-env FILE (JSON or YAML) | --runtime-env-json TEXT, and
// --working-dir DIR, shared by `strata run` and `strata job submit`.
struct RuntimeEnvArgs {
  std::optional<std::string> file;
  std::optional<std::string> json;
  std::optional<std::string> working_dir;
};
void AddRuntimeEnvOptions(CLI::App& command, RuntimeEnvArgs& args);
// The validated env those options describe (empty when none is given);
// --working-dir overrides the env's working_dir.
util::Result<model::RuntimeEnv> LoadRuntimeEnvArgs(const RuntimeEnvArgs& args);

// Adds `strata env ...` to `app`; the command stores its exit code in
// *exit_code when it runs.
void AddEnvCommands(CLI::App& app, int* exit_code);

// Adds `strata package ...` to `app`.
void AddPackageCommands(CLI::App& app, int* exit_code);

// Adds `strata run` and `strata agent` to `app`.
void AddRunCommands(CLI::App& app, int* exit_code);

// Adds `strata env list|inspect|gc|retry`; needs AddEnvCommands first.
void AddEnvCacheCommands(CLI::App& app, int* exit_code);

// Adds `strata job submit|status|logs|stop|delete|list`.
void AddJobCommands(CLI::App& app, int* exit_code);

// Adds `strata start|stop|status` and the internal `strata head`.
void AddClusterCommands(CLI::App& app, int* exit_code);

// Adds `strata cluster-env build|list|get|builds|logs|archive|base`.
void AddClusterEnvCommands(CLI::App& app, int* exit_code);

}  // namespace strata::cli
