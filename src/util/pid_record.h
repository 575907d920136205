// Records of running daemons: a small JSON object with the daemon's "pid"
// and whatever its clients need to reach it (a port, a URL), written to a
// temporary file and renamed into place so a reader never sees half of one.
//
// Thread-safety: free functions, safe from any thread.
#pragma once

#include <filesystem>
#include <optional>

#include "util/pyjson.h"
#include "util/result.h"

namespace strata::util {

// Writes `record` plus {"pid": getpid()} to `file` (parents created).
Status WritePidRecord(const std::filesystem::path& file, Json record);

// The record in `file` when it parses and its "pid" names a live process;
// nullopt otherwise (a stale record of a crashed daemon included).
std::optional<Json> ReadLivePidRecord(const std::filesystem::path& file);

}  // namespace strata::util
