// RuntimeEnvConfig: the `config` field of a runtime env (Ray's
// ray.runtime_env.RuntimeEnvConfig): setup_timeout_seconds (default 600, -1
// for no timeout), eager_install (default true) and log_files (default []).
//
// The normalised form is a JSON object holding all three keys in that order,
// which is what Ray serialises inside an env.
//
// Thread-safety: plain value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/pyjson.h"
#include "util/result.h"

namespace strata::model {

inline constexpr std::int64_t kDefaultSetupTimeoutSeconds = 600;

struct RuntimeEnvConfig {
  // Seconds one creation attempt may take; -1 means no limit.
  std::int64_t setup_timeout_seconds = kDefaultSetupTimeoutSeconds;
  bool eager_install = true;
  std::vector<std::string> log_files;

  // Ray's parse_and_validate_runtime_env_config: unknown keys are dropped with
  // a warning; wrong types and values fail with Ray's messages.
  static util::Result<RuntimeEnvConfig> FromJson(const util::Json& value);

  // {"setup_timeout_seconds": ..., "eager_install": ..., "log_files": [...]}
  util::Json ToJson() const;

  // Seconds to wait, or nullopt for no limit.
  std::optional<std::int64_t> Timeout() const {
    if (setup_timeout_seconds == -1) return std::nullopt;
    return setup_timeout_seconds;
  }
};

// The `config` field validator: the normalised object of the config.
util::Result<std::optional<util::Json>> ValidateConfig(const util::Json& value);

}  // namespace strata::model
