#include "model/validation.h"

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model/runtime_env_config.h"
#include "model/uri.h"
#include "util/pypath.h"
#include "util/pystring.h"
#include "util/yaml.h"

namespace strata::model {
namespace {

using util::PyRepr;
using util::PyStr;
using util::PyTypeRepr;

FieldResult Keep(Json value) {
  return std::optional<Json>(std::move(value));
}
FieldResult Drop() {
  return std::optional<Json>();
}

bool IsListOfStrings(const Json& value) {
  if (!value.is_array()) return false;
  for (const Json& item : value) {
    if (!item.is_string()) return false;
  }
  return true;
}

util::Result<std::string> ReadTextFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::IOError("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Python's Path.read_text(): UTF-8 with universal newlines.
util::Result<std::string> ReadPythonText(const std::filesystem::path& path) {
  auto bytes = ReadTextFile(path);
  if (!bytes) return bytes;
  if (auto valid = util::CheckUtf8(*bytes); !valid) return std::move(valid).error();
  std::string text;
  text.reserve(bytes->size());
  for (size_t i = 0; i < bytes->size(); ++i) {
    char c = (*bytes)[i];
    if (c == '\r') {
      text += '\n';
      if (i + 1 < bytes->size() && (*bytes)[i + 1] == '\n') ++i;
    } else {
      text += c;
    }
  }
  return text;
}

// Ray's _handle_local_deps_requirement_file: the lines of a requirements
// file, after Python's str.strip(); comments and option lines are kept.
util::Result<Json> ReadRequirementsFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return util::ValueError(util::PyNormalizePath(path) + " is not a valid file");
  }
  auto text = ReadPythonText(path);
  if (!text) return std::move(text).error();
  std::string stripped = util::PyStrip(*text);
  Json lines = Json::array();
  size_t pos = 0;
  while (true) {
    size_t next = stripped.find('\n', pos);
    lines.push_back(stripped.substr(pos, next == std::string::npos ? next : next - pos));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return lines;
}

// list(OrderedDict.fromkeys(items)): first occurrences, Python equality
// (so 1, 1.0 and True are one key); lists and dicts are unhashable.
util::Result<Json> Deduplicate(const Json& items) {
  Json out = Json::array();
  for (const Json& item : items) {
    if (item.is_array() || item.is_object()) {
      return util::TypeError("unhashable type: '" + std::string(util::PyTypeName(item)) + "'");
    }
    bool seen = false;
    for (const Json& kept : out) seen = seen || util::PyEqual(kept, item);
    if (!seen) out.push_back(item);
  }
  return out;
}

// Python's len() for the value kinds that have one.
util::Result<size_t> PyLen(const Json& value) {
  if (value.is_string()) return util::Utf8Length(value.get_ref<const std::string&>());
  if (value.is_array() || value.is_object()) return value.size();
  return util::TypeError("object of type '" + std::string(util::PyTypeName(value)) +
                         "' has no len()");
}

// Ray's parse_path: a local path must resolve.
util::Status ValidateLocalPath(const std::string& path) {
  std::error_code ec;
  (void)std::filesystem::canonical(path.empty() ? "." : path, ec);
  if (ec) return util::ValueError(util::PyNormalizePath(path) + " is not a valid path.");
  return {};
}

// Ray's validate_uri.
util::Status ValidateUri(const std::string& uri) {
  auto parsed = ParseUri(uri);
  if (!parsed) {
    return util::ValueError(uri +
                            " is not a valid URI. Passing directories or modules to be dynamically "
                            "uploaded is only supported at the job level (i.e., passed to "
                            "`ray.init`).");
  }
  if (IsRemoteProtocol(parsed->protocol)) {
    bool allowed = false;
    for (std::string_view ext : kRemoteArchiveExtensions) {
      allowed = allowed || parsed->package_name.ends_with(ext);
    }
    if (!allowed) {
      return util::ValueError(
          "Only .zip, .whl, .tar.gz, and .tgz files supported for remote URIs.");
    }
  }
  return {};
}

util::Status ValidatePathOrUri(const std::string& value) {
  return IsPath(value) ? ValidateLocalPath(value) : ValidateUri(value);
}

util::Status CheckOptionList(const Json& options, const std::string& label) {
  if (!options.is_array()) {
    return util::TypeError(label + " must be of type list[str] got " + PyTypeRepr(options));
  }
  for (size_t i = 0; i < options.size(); ++i) {
    if (!options[i].is_string()) {
      return util::TypeError(label + " must be of type list[str] got " + PyTypeRepr(options[i]) +
                             " for " + std::to_string(i) + "-th item.");
    }
  }
  return {};
}

std::string KeysRepr(const Json& object) {
  Json keys = Json::array();
  for (const auto& [key, _] : object.items()) keys.push_back(key);
  return PyRepr(keys);
}

bool HasOnlyKeys(const Json& object, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, _] : object.items()) {
    bool ok = false;
    for (std::string_view name : allowed) ok = ok || key == name;
    if (!ok) return false;
  }
  return true;
}

// Shared tail of pip and uv: de-duplicate packages; no packages drops the field.
FieldResult FinishPackages(Json result) {
  auto packages = Deduplicate(result["packages"]);
  if (!packages) return std::move(packages).error();
  if (packages->empty()) return Drop();
  result["packages"] = std::move(packages).value();
  return Keep(std::move(result));
}

Json PackagesWithCheck(Json packages, const char* check_key) {
  Json result = Json::object();
  result["packages"] = std::move(packages);
  result[check_key] = false;
  return result;
}

}  // namespace

FieldResult ValidatePyModules(const Json& value) {
  if (!value.is_array()) {
    return util::TypeError("`py_modules` must be a list of strings, got " + PyTypeRepr(value) +
                           ".");
  }
  for (const Json& module : value) {
    if (!module.is_string()) {
      return util::TypeError("`py_module` must be a string, got " + PyTypeRepr(module) + ".");
    }
    if (auto ok = ValidatePathOrUri(module.get<std::string>()); !ok) return std::move(ok).error();
  }
  return Keep(value);
}

FieldResult ValidateWorkingDir(const Json& value) {
  if (!value.is_string()) {
    return util::TypeError("`working_dir` must be a string, got " + PyTypeRepr(value) + ".");
  }
  if (auto ok = ValidatePathOrUri(value.get<std::string>()); !ok) return std::move(ok).error();
  return Keep(value);
}

FieldResult ValidateExcludes(const Json& value) {
  if (value.is_array() && value.empty()) return Drop();
  if (IsListOfStrings(value)) return Keep(value);
  return util::TypeError("runtime_env['excludes'] must be of type List[str], got " +
                         PyTypeRepr(value));
}

FieldResult ValidateConda(const Json& value) {
  if (value.is_object()) return Keep(value);
  if (!value.is_string()) {
    return util::TypeError("runtime_env['conda'] must be of type str or dict, got " +
                           PyTypeRepr(value) + ".");
  }
  const std::string& conda = value.get_ref<const std::string&>();
  std::string shown = util::PyNormalizePath(conda);
  std::string suffix = util::PyPathSuffix(conda);
  std::error_code ec;
  if (suffix == ".yaml" || suffix == ".yml") {
    if (!std::filesystem::is_regular_file(conda, ec)) {
      return util::ValueError("Can't find conda YAML file " + shown + ".");
    }
    auto text = ReadPythonText(conda);
    if (!text)
      return util::ValueError("Failed to read conda file " + shown + ": " + text.error().message +
                              ".");
    auto parsed = util::LoadYaml(*text);
    if (!parsed)
      return util::ValueError("Failed to read conda file " + shown + ": " + parsed.error().message +
                              ".");
    if (parsed->is_null()) return Drop();
    return Keep(std::move(parsed).value());
  }
  if (util::PyPathIsAbsolute(conda)) {
    if (!std::filesystem::is_directory(conda, ec)) {
      return util::ValueError("Can't find conda env directory " + shown + ".");
    }
    return Keep(Json(shown));
  }
  return Keep(value);
}

FieldResult ValidatePip(const Json& value) {
  Json result;
  if (value.is_string()) {
    auto lines = ReadRequirementsFile(value.get<std::string>());
    if (!lines) return std::move(lines).error();
    result = PackagesWithCheck(std::move(lines).value(), "pip_check");
  } else if (IsListOfStrings(value)) {
    result = PackagesWithCheck(value, "pip_check");
  } else if (value.is_object()) {
    if (!HasOnlyKeys(value, {"packages", "pip_check", "pip_install_options", "pip_version"})) {
      return util::ValueError(
          "runtime_env['pip'] can only have these fields: packages, pip_check, "
          "pip_install_options and pip_version, but got: " +
          KeysRepr(value));
    }
    if (value.contains("pip_check") && !value["pip_check"].is_boolean()) {
      return util::TypeError("runtime_env['pip']['pip_check'] must be of type bool, got " +
                             PyTypeRepr(value["pip_check"]));
    }
    if (value.contains("pip_version") && !value["pip_version"].is_string()) {
      return util::TypeError("runtime_env['pip']['pip_version'] must be of type str, got " +
                             PyTypeRepr(value["pip_version"]));
    }
    if (value.contains("pip_install_options")) {
      auto ok = CheckOptionList(value["pip_install_options"],
                                "runtime_env['pip']['pip_install_options']");
      if (!ok) return std::move(ok).error();
    }
    result = value;
    // Unlike pip_check, pip_install_options gets no default here (Ray keeps
    // envs serialised by Ray 2.0.1 unchanged).
    result["pip_check"] = value.value("pip_check", false);
    if (!value.contains("packages")) {
      return util::ValueError("runtime_env['pip'] must include field 'packages', but got " +
                              PyRepr(value));
    }
    const Json& packages = value["packages"];
    if (packages.is_string()) {
      auto lines = ReadRequirementsFile(packages.get<std::string>());
      if (!lines) return std::move(lines).error();
      result["packages"] = std::move(lines).value();
    } else if (!packages.is_array()) {
      return util::ValueError("runtime_env['pip']['packages'] must be of type str of list, got: " +
                              PyTypeRepr(packages));
    }
  } else {
    return util::TypeError("runtime_env['pip'] must be of type str or List[str], got " +
                           PyTypeRepr(value));
  }
  return FinishPackages(std::move(result));
}

FieldResult ValidateUv(const Json& value) {
  Json result;
  if (value.is_string()) {
    auto lines = ReadRequirementsFile(value.get<std::string>());
    if (!lines) return std::move(lines).error();
    result = PackagesWithCheck(std::move(lines).value(), "uv_check");
  } else if (IsListOfStrings(value)) {
    result = PackagesWithCheck(value, "uv_check");
  } else if (value.is_object()) {
    if (!HasOnlyKeys(value, {"packages", "uv_check", "uv_version", "uv_pip_install_options"})) {
      return util::ValueError(
          "runtime_env['uv'] can only have these fields: packages, uv_check, uv_version and "
          "uv_pip_install_options, but got: " +
          KeysRepr(value));
    }
    if (!value.contains("packages")) {
      return util::ValueError("runtime_env['uv'] must include field 'packages', but got " +
                              PyRepr(value));
    }
    if (value.contains("uv_check") && !value["uv_check"].is_boolean()) {
      return util::TypeError("runtime_env['uv']['uv_check'] must be of type bool, got " +
                             PyTypeRepr(value["uv_check"]));
    }
    if (value.contains("uv_version") && !value["uv_version"].is_string()) {
      return util::TypeError("runtime_env['uv']['uv_version'] must be of type str, got " +
                             PyTypeRepr(value["uv_version"]));
    }
    if (value.contains("uv_pip_install_options")) {
      auto ok = CheckOptionList(value["uv_pip_install_options"],
                                "runtime_env['uv']['uv_pip_install_options']");
      if (!ok) return std::move(ok).error();
    }
    result = value;
    result["uv_check"] = value.value("uv_check", false);
    if (!value.contains("uv_pip_install_options")) {
      result["uv_pip_install_options"] = Json::array({"--no-cache"});
    }
    if (!value["packages"].is_array()) {
      return util::ValueError("runtime_env['uv']['packages'] must be of type list, got: " +
                              PyTypeRepr(value["packages"]));
    }
  } else {
    return util::TypeError("runtime_env['uv'] must be of type List[str], or dict, got " +
                           PyTypeRepr(value));
  }
  return FinishPackages(std::move(result));
}

FieldResult ValidateEnvVars(const Json& value) {
  auto length = PyLen(value);
  if (!length) return std::move(length).error();
  if (*length == 0) return Drop();
  if (!value.is_object()) {
    return util::TypeError("runtime_env['env_vars'] must be of type Dict[str, str], got " +
                           PyTypeRepr(value));
  }
  for (const auto& [key, val] : value.items()) {
    if (!val.is_string()) {
      return util::TypeError(
          "runtime_env['env_vars'] must be of type Dict[str, str], but the value " + PyStr(val) +
          " is of type " + PyTypeRepr(val));
    }
  }
  return Keep(value);
}

FieldResult ValidateContainer(const Json& value) {
  return Keep(value);
}

FieldResult ValidatePyExecutable(const Json& value) {
  if (!value.is_string()) {
    return util::TypeError("runtime_env['py_executable'] must be of type str, got " +
                           PyTypeRepr(value));
  }
  const std::string& command = value.get_ref<const std::string&>();
  std::vector<std::string> parts = util::PySplit(command);
  if (parts.empty()) {
    return util::ValueError("runtime_env['py_executable'] must be a non-empty string, got " +
                            PyRepr(value));
  }
  if (parts.size() == 2) {
    const std::string& first = parts[0];
    bool is_uv =
        first == "uv" || first.ends_with("/uv") || first.ends_with("\\uv") || first == "uv.exe";
    if (is_uv && parts[1] == "run") {
      return util::ValueError(
          "runtime_env['py_executable']='uv run' is deprecated and no longer required since "
          "Ray 2.47. Ray's uv integration is now automatic when the driver is launched with "
          "'uv run'; please remove 'py_executable' from your runtime_env. Jobs with uv succeed "
          "without py_executable (see "
          "https://docs.ray.io/en/latest/ray-core/handling-dependencies.html"
          "#using-uv-for-package-management). Got: " +
          PyRepr(value) +
          ". If you need a custom worker command, provide the full executable (e.g., the hook "
          "uses 'uv run --python X.Y.Z python').");
    }
  }
  return Keep(value);
}

std::span<const FieldRule> FieldRules() {
  static constexpr std::array<FieldRule, 10> kRules = {{
      {"py_modules", ValidatePyModules},
      {"working_dir", ValidateWorkingDir},
      {"excludes", ValidateExcludes},
      {"conda", ValidateConda},
      {"pip", ValidatePip},
      {"uv", ValidateUv},
      {"env_vars", ValidateEnvVars},
      {"container", ValidateContainer},
      {"py_executable", ValidatePyExecutable},
      {"config", ValidateConfig},
  }};
  return kRules;
}

const FieldRule* FindFieldRule(std::string_view field) {
  for (const FieldRule& rule : FieldRules()) {
    if (rule.field == field) return &rule;
  }
  return nullptr;
}

util::Status ValidateNoLocalPaths(const Json& env) {
  if (env.contains("working_dir")) {
    const Json& working_dir = env["working_dir"];
    if (!working_dir.is_string()) {
      return util::TypeError("`working_dir` must be a string, got " + PyTypeRepr(working_dir) +
                             ".");
    }
    if (auto ok = ValidateUri(working_dir.get<std::string>()); !ok) return ok;
  }
  if (env.contains("py_modules")) {
    const Json& modules = env["py_modules"];
    if (!modules.is_array()) {
      return util::TypeError("`py_modules` must be a list of strings, got " + PyTypeRepr(modules) +
                             ".");
    }
    for (const Json& module : modules) {
      if (!module.is_string()) {
        return util::TypeError("`py_module` must be a string, got " + PyTypeRepr(module) + ".");
      }
      if (auto ok = ValidateUri(module.get<std::string>()); !ok) return ok;
    }
  }
  return {};
}

}  // namespace strata::model
