// Wall-clock time as the integers Strata stores and shows.
//
// Thread-safety: safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>

namespace strata::util {

// Milliseconds since the Unix epoch.
inline std::int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace strata::util
