// Process-wide logging, on stderr so that stdout stays free for command
// output (the CLI prints canonical JSON there). Backed by spdlog.
//
// Thread-safety: all functions may be called from any thread.
#pragma once

#include <string_view>

namespace strata::util {

enum class LogLevel { kDebug, kInfo, kWarning, kError, kOff };

void SetLogLevel(LogLevel level);
void LogDebug(std::string_view message);
void LogInfo(std::string_view message);
void LogWarning(std::string_view message);
void LogError(std::string_view message);

}  // namespace strata::util
