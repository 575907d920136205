// How runtime envs combine (Ray's rules, reference §4):
//
//  * job vs driver: the env given at job submission (parent) and the env the
//    job's driver passes to init() (child) may not share a top-level key or an
//    env var name unless override is requested; merged, the child wins.
//  * parent vs child task/actor: an empty child inherits the parent whole;
//    otherwise each top-level key of the child replaces the parent's, except
//    env_vars, merged per variable with the child winning.
//  * `.options(runtime_env=...)` replaces the decorator's env wholesale.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>

#include "model/runtime_env.h"
#include "util/result.h"

namespace strata::model {

enum class MergeOverride { kNo, kYes };

// Ray's _merge_runtime_env: nullopt on a conflict (only possible with
// MergeOverride::kNo). Inputs are env dicts; nothing is validated here.
std::optional<Json> MergeRuntimeEnvDicts(const Json& parent, const Json& child,
                                         MergeOverride override_mode);

// Job submission env + the driver's init() env, validated, as a RuntimeEnv.
// A conflict is a ValueError that starts "Failed to merge the Job's runtime env".
util::Result<RuntimeEnv> MergeJobRuntimeEnv(const RuntimeEnv& job_env, const RuntimeEnv& driver_env,
                                            MergeOverride override_mode);

// The env a task or actor runs in, given its parent's env and its own.
// Not re-validated, as Ray's core worker does not re-validate the merge.
RuntimeEnv InheritRuntimeEnv(const RuntimeEnv& parent, const RuntimeEnv& child);

// The env `.options(runtime_env=options_env)` selects over the decorator's.
inline const RuntimeEnv& SelectOptionsRuntimeEnv(const RuntimeEnv& decorator_env,
                                                 const std::optional<RuntimeEnv>& options_env) {
  return options_env && !options_env->Empty() ? *options_env : decorator_env;
}

}  // namespace strata::model
