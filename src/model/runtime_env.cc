#include "model/runtime_env.h"

#include <algorithm>
#include <array>
#include <set>

#include "model/validation.h"

namespace strata::model {
namespace {

// Ray's RuntimeEnv.known_fields, plus py_executable which newer Ray
// validates; every other key is a plugin field.
constexpr std::array<std::string_view, 19> kKnownFields = {
    "py_modules",   "java_jars",   "working_dir",
    "conda",        "pip",         "uv",
    "container",    "excludes",    "env_vars",
    "_ray_release", "_ray_commit", "_inject_current_ray",
    "config",       "docker",      "worker_process_setup_hook",
    "_nsight",      "mpi",         "image_uri",
    "py_executable"};

// Keyword parameters of RuntimeEnv.__init__ in the order it stores them,
// each with the key it is stored under. A null value means "not passed".
struct NamedParameter {
  std::string_view keyword;
  std::string_view key;
};
constexpr std::array<NamedParameter, 12> kNamedParameters = {{
    {"py_modules", "py_modules"},
    {"working_dir", "working_dir"},
    {"pip", "pip"},
    {"uv", "uv"},
    {"conda", "conda"},
    {"nsight", "_nsight"},
    {"container", "container"},
    {"env_vars", "env_vars"},
    {"config", "config"},
    {"worker_process_setup_hook", "worker_process_setup_hook"},
    {"mpi", "mpi"},
    {"image_uri", "image_uri"},
}};

bool IsNamedParameter(std::string_view keyword) {
  return std::any_of(kNamedParameters.begin(), kNamedParameters.end(),
                     [&](const NamedParameter& p) { return p.keyword == keyword; });
}

std::string KeyRepr(std::string_view key) {
  return util::PyRepr(Json(std::string(key)));
}

// Python's repr of a set of strings. Python's own order depends on string
// hashing and varies between runs; sorted is the stable choice.
std::string SetRepr(const std::set<std::string>& keys) {
  std::string out = "{";
  for (const std::string& key : keys) {
    if (out.size() > 1) out += ", ";
    out += KeyRepr(key);
  }
  return out + "}";
}

Json GetOrNone(const Json& env, std::string_view key) {
  auto it = env.find(key);
  return it == env.end() ? Json(nullptr) : *it;
}

bool HasNonNull(const Json& env, std::string_view key) {
  auto it = env.find(key);
  return it != env.end() && !it->is_null();
}

// "container" and "image_uri" can only be combined with config and env_vars.
util::Status CheckExclusiveField(const Json& env, const Json& passed, std::string_view field) {
  if (!util::PyTruthy(GetOrNone(env, field))) return {};
  std::set<std::string> invalid;
  for (const auto& [key, _] : passed.items()) {
    if (key != field && key != "config" && key != "env_vars") invalid.insert(key);
  }
  if (invalid.empty()) return {};
  return util::ValueError("The '" + std::string(field) +
                          "' field currently cannot be used together with other fields of "
                          "runtime_env. Specified fields: " +
                          SetRepr(invalid));
}

}  // namespace

bool IsKnownField(std::string_view key) {
  return std::find(kKnownFields.begin(), kKnownFields.end(), key) != kKnownFields.end();
}

util::Result<RuntimeEnv> RuntimeEnv::Create(const Json& fields, Validation validation) {
  if (!fields.is_object()) {
    return util::TypeError("RuntimeEnv() argument after ** must be a mapping, not " +
                           std::string(util::PyTypeName(fields)));
  }
  // Python collects **kwargs first, then the non-None keyword parameters.
  Json passed = Json::object();
  for (const auto& [key, value] : fields.items()) {
    if (!IsNamedParameter(key)) passed[key] = value;
  }
  for (const NamedParameter& param : kNamedParameters) {
    auto it = fields.find(param.keyword);
    if (it != fields.end() && !it->is_null()) passed[std::string(param.key)] = *it;
  }
  RuntimeEnv env(passed);
  if (validation == Validation::kTrust) return env;
  if (auto ok = env.ValidateAll(passed); !ok) return std::move(ok).error();
  return env;
}

util::Status RuntimeEnv::ValidateAll(const Json& passed) {
  int managers = HasNonNull(env_, "conda") + HasNonNull(env_, "pip") + HasNonNull(env_, "uv");
  if (managers > 1) {
    return util::ValueError(
        "The 'pip' field, 'uv' field, and 'conda' field of runtime_env cannot be specified at "
        "the same time.\nspecified pip field: " +
        util::PyStr(GetOrNone(env_, "pip")) +
        "\nspecified conda field: " + util::PyStr(GetOrNone(env_, "conda")) +
        "\nspecified uv field: " + util::PyStr(GetOrNone(env_, "uv")) +
        "\nTo use pip with conda, please only set the 'conda'field, and specify your pip "
        "dependencies within the conda YAML config dict: see "
        "https://conda.io/projects/conda/en/latest/user-guide/tasks/"
        "manage-environments.html#create-env-file-manually");
  }
  if (auto ok = CheckExclusiveField(env_, passed, "container"); !ok) return ok;
  if (auto ok = CheckExclusiveField(env_, passed, "image_uri"); !ok) return ok;

  // Each validated field is removed and re-inserted through Set(), so the
  // normalised fields end up after the plugin fields, in rule order.
  for (const FieldRule& rule : FieldRules()) {
    if (!HasNonNull(env_, rule.field)) continue;
    Json value = env_[std::string(rule.field)];
    env_.erase(std::string(rule.field));
    if (auto ok = Set(rule.field, value); !ok) return ok;
  }
  bool all_none = std::all_of(env_.begin(), env_.end(), [](const Json& v) { return v.is_null(); });
  if (all_none) Clear();
  return {};
}

util::Result<RuntimeEnv> RuntimeEnv::Parse(const Json& value) {
  if (!util::PyTruthy(value)) return RuntimeEnv();
  if (!value.is_object()) {
    return util::TypeError("runtime_env must be dict or RuntimeEnv, but got: " +
                           util::PyTypeRepr(value));
  }
  return Create(value);
}

util::Result<RuntimeEnv> RuntimeEnv::Deserialize(std::string_view serialized) {
  auto parsed = util::ParseJson(serialized);
  if (!parsed) return std::move(parsed).error();
  return Create(*parsed, Validation::kTrust);
}

util::Result<std::string> RuntimeEnv::Serialize() const {
  auto validated = Create(env_);
  if (!validated) return std::move(validated).error();
  return util::DumpsSorted(validated->env_);
}

util::Result<RuntimeEnv> RuntimeEnv::FromKeys(const std::vector<std::string>& keys,
                                              const Json& value) {
  RuntimeEnv env;
  for (const std::string& key : keys) {
    if (auto ok = env.Set(key, value); !ok) return std::move(ok).error();
  }
  return env;
}

std::vector<std::string> RuntimeEnv::Keys() const {
  std::vector<std::string> keys;
  for (const auto& [key, _] : env_.items()) keys.push_back(key);
  return keys;
}

std::vector<std::pair<std::string, Json>> RuntimeEnv::Items() const {
  std::vector<std::pair<std::string, Json>> items;
  for (const auto& [key, value] : env_.items()) items.emplace_back(key, value);
  return items;
}

std::optional<Json> RuntimeEnv::Get(std::string_view key) const {
  auto it = env_.find(key);
  if (it == env_.end()) return std::nullopt;
  return *it;
}

Json RuntimeEnv::Get(std::string_view key, const Json& default_value) const {
  auto it = env_.find(key);
  return it == env_.end() ? default_value : *it;
}

util::Status RuntimeEnv::Set(std::string_view key, const Json& value) {
  const FieldRule* rule = IsKnownField(key) ? FindFieldRule(key) : nullptr;
  if (rule == nullptr) {
    env_[std::string(key)] = value;
    return {};
  }
  auto validated = rule->validate(value);
  if (!validated) return std::move(validated).error();
  if (validated->has_value()) env_[std::string(key)] = std::move(**validated);
  return {};
}

util::Result<Json> RuntimeEnv::Pop(std::string_view key) {
  auto it = env_.find(key);
  if (it == env_.end()) return util::KeyError(KeyRepr(key));
  Json value = *it;
  env_.erase(it);
  return value;
}

Json RuntimeEnv::Pop(std::string_view key, const Json& default_value) {
  auto popped = Pop(key);
  return popped ? std::move(popped).value() : default_value;
}

util::Result<std::pair<std::string, Json>> RuntimeEnv::PopItem() {
  if (env_.empty()) return util::KeyError("'popitem(): dictionary is empty'");
  auto last = std::prev(env_.end());
  std::pair<std::string, Json> item(last.key(), last.value());
  env_.erase(last);
  return item;
}

Json RuntimeEnv::SetDefault(std::string_view key, const Json& default_value) {
  auto it = env_.find(key);
  if (it != env_.end()) return *it;
  env_[std::string(key)] = default_value;
  return default_value;
}

void RuntimeEnv::Update(const Json& other) {
  if (!other.is_object()) return;
  for (const auto& [key, value] : other.items()) env_[key] = value;
}

std::vector<std::pair<std::string, Json>> RuntimeEnv::Plugins() const {
  std::vector<std::pair<std::string, Json>> plugins;
  for (const auto& [key, value] : env_.items()) {
    if (!IsKnownField(key)) plugins.emplace_back(key, value);
  }
  return plugins;
}

util::Status RuntimeEnv::SetJsonStr(std::string_view key, std::string_view json_text) {
  auto parsed = util::ParseJson(json_text);
  if (!parsed) return std::move(parsed).error();
  return Set(key, *parsed);
}

util::Result<std::string> RuntimeEnv::GetJsonStr(std::string_view key) const {
  auto value = Get(key);
  if (!value) return util::KeyError(KeyRepr(key));
  return util::DumpsSorted(*value);
}

bool RuntimeEnv::Remove(std::string_view key) {
  auto it = env_.find(key);
  if (it == env_.end()) return false;
  env_.erase(it);
  return true;
}

std::string RuntimeEnv::WorkingDir() const {
  auto it = env_.find("working_dir");
  return it != env_.end() && it->is_string() ? it->get<std::string>() : "";
}

std::vector<std::string> RuntimeEnv::PyModules() const {
  std::vector<std::string> modules;
  auto it = env_.find("py_modules");
  if (it == env_.end() || !it->is_array()) return modules;
  for (const Json& module : *it) {
    if (module.is_string()) modules.push_back(module.get<std::string>());
  }
  return modules;
}

Json RuntimeEnv::EnvVars() const {
  return Get("env_vars", Json::object());
}

bool RuntimeEnv::HasPip() const {
  return util::PyTruthy(Get("pip", nullptr));
}
bool RuntimeEnv::HasUv() const {
  return util::PyTruthy(Get("uv", nullptr));
}
bool RuntimeEnv::HasConda() const {
  return util::PyTruthy(Get("conda", nullptr));
}

util::Result<RuntimeEnvConfig> RuntimeEnv::Config() const {
  auto it = env_.find("config");
  if (it == env_.end() || it->is_null()) return RuntimeEnvConfig();
  return RuntimeEnvConfig::FromJson(*it);
}

}  // namespace strata::model
