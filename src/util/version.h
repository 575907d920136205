// Strata's release version, reported by the CLI and the head's /api/version.
#pragma once

#include <string_view>

namespace strata::util {

inline constexpr std::string_view kStrataVersion = "0.1.0";

}  // namespace strata::util
