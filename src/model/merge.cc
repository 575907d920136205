#include "model/merge.h"

namespace strata::model {
namespace {

Json PopEnvVars(Json& env) {
  Json vars = Json::object();
  if (auto it = env.find("env_vars"); it != env.end()) {
    if (it->is_object()) vars = *it;
    env.erase(it);
  }
  return vars;
}

}  // namespace

std::optional<Json> MergeRuntimeEnvDicts(const Json& parent, const Json& child,
                                         MergeOverride override_mode) {
  Json merged = parent.is_object() ? parent : Json::object();
  Json overlay = child.is_object() ? child : Json::object();
  Json merged_vars = PopEnvVars(merged);
  Json child_vars = PopEnvVars(overlay);
  if (override_mode == MergeOverride::kNo) {
    // Values are not compared: the same key twice is a conflict even when
    // both sides agree, as in Ray.
    for (const auto& [key, _] : overlay.items()) {
      if (merged.contains(key)) return std::nullopt;
    }
    for (const auto& [name, _] : child_vars.items()) {
      if (merged_vars.contains(name)) return std::nullopt;
    }
  }
  for (const auto& [key, value] : overlay.items()) merged[key] = value;
  for (const auto& [name, value] : child_vars.items()) merged_vars[name] = value;
  if (!merged_vars.empty()) merged["env_vars"] = std::move(merged_vars);
  return merged;
}

util::Result<RuntimeEnv> MergeJobRuntimeEnv(const RuntimeEnv& job_env, const RuntimeEnv& driver_env,
                                            MergeOverride override_mode) {
  auto merged = MergeRuntimeEnvDicts(job_env.AsJson(), driver_env.AsJson(), override_mode);
  if (!merged) {
    return util::ValueError(
        "Failed to merge the Job's runtime env " + util::PyRepr(job_env.AsJson()) +
        " with a strata.init's runtime env " + util::PyRepr(driver_env.AsJson()) +
        " because of a conflict. Specifying the same runtime_env fields or the same "
        "environment variable keys is not allowed. Use STRATA_OVERRIDE_JOB_RUNTIME_ENV=1 to "
        "instruct Strata to combine Job and Driver's runtime environment in the event of a "
        "conflict.");
  }
  return RuntimeEnv::Create(*merged);
}

RuntimeEnv InheritRuntimeEnv(const RuntimeEnv& parent, const RuntimeEnv& child) {
  if (child.Empty()) return parent;
  RuntimeEnv merged = parent;
  const Json parent_vars = parent.Get("env_vars", nullptr);
  for (const auto& [key, value] : child.Items()) {
    if (key == "env_vars" && parent_vars.is_object() && value.is_object()) {
      Json vars = parent_vars;
      for (const auto& [name, var_value] : value.items()) vars[name] = var_value;
      merged.Update(Json::object({{key, vars}}));
    } else {
      merged.Update(Json::object({{key, value}}));
    }
  }
  return merged;
}

}  // namespace strata::model
