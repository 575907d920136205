#include "agent/context.h"

namespace strata::agent {
namespace {

using util::Json;

util::Result<std::vector<std::string>> StringList(const Json& json, const char* key) {
  std::vector<std::string> out;
  if (!json.contains(key)) return out;
  const Json& list = json[key];
  if (!list.is_array())
    return util::ValueError(std::string("context field ") + key + " must be a list");
  for (const Json& item : list) {
    if (!item.is_string()) {
      return util::ValueError(std::string("context field ") + key + " must hold strings");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

void RuntimeEnvContext::SetEnv(const std::string& name, const std::string& value) {
  for (auto& [key, current] : env_vars) {
    if (key == name) {
      current = value;
      return;
    }
  }
  env_vars.emplace_back(name, value);
}

std::optional<std::string> RuntimeEnvContext::GetEnv(const std::string& name) const {
  for (const auto& [key, value] : env_vars) {
    if (key == name) return value;
  }
  return std::nullopt;
}

Json RuntimeEnvContext::ToJson() const {
  Json vars = Json::object();
  for (const auto& [key, value] : env_vars) vars[key] = value;
  Json out = Json::object();
  out["command_prefix"] = command_prefix;
  out["env_vars"] = std::move(vars);
  out["py_executable"] = py_executable;
  out["override_worker_entrypoint"] =
      override_worker_entrypoint ? Json(*override_worker_entrypoint) : Json(nullptr);
  out["java_jars"] = java_jars;
  out["cwd"] = cwd;
  out["pythonpath"] = pythonpath;
  out["path_prepend"] = path_prepend;
  out["container"] = container ? container->ToJson() : Json(nullptr);
  return out;
}

util::Result<RuntimeEnvContext> RuntimeEnvContext::FromJson(const Json& json) {
  if (!json.is_object()) return util::ValueError("runtime env context must be a JSON object");
  RuntimeEnvContext context;
  for (auto [key, target] :
       {std::pair{"command_prefix", &context.command_prefix},
        std::pair{"java_jars", &context.java_jars}, std::pair{"pythonpath", &context.pythonpath},
        std::pair{"path_prepend", &context.path_prepend}}) {
    auto list = StringList(json, key);
    if (!list) return std::move(list).error();
    *target = std::move(list).value();
  }
  if (json.contains("env_vars")) {
    if (!json["env_vars"].is_object())
      return util::ValueError("context env_vars must be an object");
    for (const auto& [key, value] : json["env_vars"].items()) {
      if (!value.is_string()) return util::ValueError("context env_vars values must be strings");
      context.env_vars.emplace_back(key, value.get<std::string>());
    }
  }
  context.py_executable = json.value("py_executable", "");
  context.cwd = json.value("cwd", "");
  if (json.contains("override_worker_entrypoint") &&
      json["override_worker_entrypoint"].is_string()) {
    context.override_worker_entrypoint = json["override_worker_entrypoint"].get<std::string>();
  }
  if (json.contains("container") && !json["container"].is_null()) {
    auto layer = ContainerLayer::FromJson(json["container"]);
    if (!layer) return std::move(layer).error();
    context.container = std::move(*layer);
  }
  return context;
}

}  // namespace strata::agent
