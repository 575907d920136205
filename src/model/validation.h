// Per-field validation and normalisation of runtime_env values, mirroring
// Ray's OPTION_TO_VALIDATION_FN (python/ray/_private/runtime_env/validation.py)
// field for field: the same accepted forms, the same normalised output, and
// the same exception kind (TypeError / ValueError) and message text.
//
// A validator either returns the value to store, returns std::nullopt when
// Ray's validator returns None (the key is then dropped: empty pip lists,
// empty env_vars, empty excludes), or fails.
//
// Files named in a value (pip/uv requirements files, conda YAML files) are
// read relative to the process's current directory, as Ray reads them
// relative to the driver's.
//
// Thread-safety: pure functions apart from reading those files.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "util/pyjson.h"
#include "util/result.h"

namespace strata::model {

using util::Json;
using FieldResult = util::Result<std::optional<Json>>;
using FieldValidator = FieldResult (*)(const Json& value);

FieldResult ValidatePyModules(const Json& value);
FieldResult ValidateWorkingDir(const Json& value);
FieldResult ValidateExcludes(const Json& value);
FieldResult ValidateConda(const Json& value);
FieldResult ValidatePip(const Json& value);
FieldResult ValidateUv(const Json& value);
FieldResult ValidateEnvVars(const Json& value);
FieldResult ValidateContainer(const Json& value);
FieldResult ValidatePyExecutable(const Json& value);

struct FieldRule {
  std::string_view field;
  FieldValidator validate;
};

// Every validated field, in Ray's fixed order (which is also the order the
// normalised keys are re-inserted in): py_modules, working_dir, excludes,
// conda, pip, uv, env_vars, container, py_executable, config.
std::span<const FieldRule> FieldRules();

// The rule for `field`, or nullptr when the field has no validator.
const FieldRule* FindFieldRule(std::string_view field);

// Task- and actor-level rule: `working_dir` and `py_modules` must be URIs,
// because only the job level uploads local directories.
util::Status ValidateNoLocalPaths(const Json& env);

}  // namespace strata::model
