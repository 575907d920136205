#include "model/cluster_env_spec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>

#include "util/yaml.h"

namespace strata::model {
namespace {

using util::Json;

constexpr std::string_view kPrefix = "cluster env spec: ";
constexpr std::array<std::string_view, 5> kTopKeys = {"base_image", "env_vars", "debian_packages",
                                                      "python", "post_build_cmds"};
constexpr std::array<std::string_view, 2> kPythonKeys = {"pip_packages", "conda_packages"};

util::Error SpecError(const std::string& path, const std::string& what) {
  return util::ValueError(std::string(kPrefix) + path + ": " + what);
}

util::Error WrongType(const std::string& path, std::string_view expected, const Json& value) {
  return SpecError(path, "expected " + std::string(expected) + ", got " +
                             std::string(util::PyTypeName(value)) + " " + util::PyRepr(value));
}

// An absent key reads as null, which means empty for every optional key.
const Json& Field(const Json& object, std::string_view key) {
  static const Json kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

template <size_t N>
std::string JoinKeys(const std::array<std::string_view, N>& keys) {
  std::string out;
  for (std::string_view key : keys) {
    if (!out.empty()) out += ", ";
    out += key;
  }
  return out;
}

// Unknown keys are errors so that a misspelt key is not silently ignored.
template <size_t N>
util::Status CheckKeys(const Json& object, const std::array<std::string_view, N>& known,
                       std::string_view path_prefix) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return util::ValueError(std::string(kPrefix) + "unknown key '" + std::string(path_prefix) +
                              key + "'; expected one of " + JoinKeys(known));
    }
  }
  return {};
}

enum class Lines { kSingle, kMulti };
enum class Empty { kRejected, kAllowed };

// A string that ends up inside a Containerfile line or a shell command: a
// line break would start a new instruction, a NUL cannot be passed at all.
util::Result<std::string> CheckedString(const std::string& path, const Json& value,
                                        Lines lines = Lines::kSingle,
                                        Empty empty = Empty::kRejected) {
  if (!value.is_string()) return WrongType(path, "a string", value);
  const std::string& text = value.get_ref<const std::string&>();
  if (text.empty() && empty == Empty::kRejected) return SpecError(path, "must not be empty");
  std::string_view forbidden =
      lines == Lines::kMulti ? std::string_view("\0", 1) : std::string_view("\0\n\r", 3);
  if (text.find_first_of(forbidden) != std::string::npos) {
    return SpecError(
        path, lines == Lines::kMulti
                  ? "must not contain a NUL character, got " + util::PyRepr(value)
                  : "must not contain a line break or NUL character, got " + util::PyRepr(value));
  }
  return text;
}

util::Result<std::vector<std::string>> StringList(const std::string& path, const Json& value,
                                                  Lines lines = Lines::kSingle) {
  std::vector<std::string> out;
  if (value.is_null()) return out;
  if (!value.is_array()) return WrongType(path, "a list", value);
  for (size_t i = 0; i < value.size(); ++i) {
    auto item = CheckedString(path + "[" + std::to_string(i) + "]", value[i], lines);
    if (!item) return std::move(item).error();
    out.push_back(std::move(item).value());
  }
  return out;
}

bool IsLower(char c) {
  return c >= 'a' && c <= 'z';
}
bool IsUpper(char c) {
  return c >= 'A' && c <= 'Z';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool AllOf(std::string_view text, bool (*allowed)(char)) {
  return !text.empty() && std::all_of(text.begin(), text.end(), allowed);
}

bool IsEnvVarName(std::string_view name) {
  if (name.empty() || IsDigit(name[0])) return false;
  return AllOf(name, [](char c) { return IsLower(c) || IsUpper(c) || IsDigit(c) || c == '_'; });
}

// Debian policy 5.6.1 for the name, what apt-get install accepts after it.
bool IsDebianPackage(std::string_view text) {
  size_t suffix = text.find_first_of("=/");
  std::string_view name = text.substr(0, suffix);
  if (name.size() < 2 || !(IsLower(name[0]) || IsDigit(name[0]))) return false;
  if (!AllOf(name,
             [](char c) { return IsLower(c) || IsDigit(c) || c == '+' || c == '.' || c == '-'; })) {
    return false;
  }
  if (suffix == std::string_view::npos) return true;
  std::string_view rest = text.substr(suffix + 1);
  if (text[suffix] == '=') {
    return AllOf(rest, [](char c) {
      return IsLower(c) || IsUpper(c) || IsDigit(c) || c == '.' || c == '+' || c == '~' ||
             c == ':' || c == '-';
    });
  }
  return AllOf(rest, [](char c) {
    return IsLower(c) || IsUpper(c) || IsDigit(c) || c == '.' || c == '+' || c == '_' || c == '-';
  });
}

util::Result<std::vector<std::pair<std::string, std::string>>> EnvVars(const Json& value) {
  std::vector<std::pair<std::string, std::string>> out;
  if (value.is_null()) return out;
  if (!value.is_object()) return WrongType("env_vars", "a mapping", value);
  for (const auto& [key, item] : value.items()) {
    if (!IsEnvVarName(key)) {
      return SpecError("env_vars", util::PyRepr(Json(key)) +
                                       " is not a valid variable name; expected "
                                       "[A-Za-z_][A-Za-z0-9_]*");
    }
    // An empty value is a meaningful setting (X=), unlike an empty package.
    auto checked = CheckedString("env_vars." + key, item, Lines::kSingle, Empty::kAllowed);
    if (!checked) return std::move(checked).error();
    out.emplace_back(key, std::move(checked).value());
  }
  return out;
}

}  // namespace

Json ClusterEnvSpec::ToJson() const {
  Json env = Json::object();
  for (const auto& [key, value] : env_vars) env[key] = value;
  Json json = Json::object();
  json["base_image"] = base_image;
  json["env_vars"] = std::move(env);
  json["debian_packages"] = debian_packages;
  json["python"] = Json::object();
  json["python"]["pip_packages"] = pip_packages;
  json["python"]["conda_packages"] = conda_packages;
  json["post_build_cmds"] = post_build_cmds;
  return json;
}

util::Result<ClusterEnvSpec> ClusterEnvSpec::FromJson(const Json& json) {
  if (!json.is_object()) {
    return util::ValueError(std::string(kPrefix) + "expected a mapping at the top level, got " +
                            std::string(util::PyTypeName(json)) + " " + util::PyRepr(json));
  }
  if (auto keys = CheckKeys(json, kTopKeys, ""); !keys) return std::move(keys).error();
  auto field = [&](std::string_view key) -> const Json& { return Field(json, key); };

  ClusterEnvSpec spec;
  const Json& base_image = field("base_image");
  if (base_image.is_null())
    return util::ValueError(std::string(kPrefix) + "base_image is required");
  auto image = CheckedString("base_image", base_image);
  if (!image) return std::move(image).error();
  // FROM is not exec form: a space would turn the rest into FROM's arguments.
  if (image->find_first_of(" \t\v\f") != std::string::npos) {
    return SpecError("base_image", "must not contain whitespace, got " + util::PyRepr(base_image));
  }
  spec.base_image = std::move(image).value();

  auto env = EnvVars(field("env_vars"));
  if (!env) return std::move(env).error();
  spec.env_vars = std::move(env).value();

  auto debian = StringList("debian_packages", field("debian_packages"));
  if (!debian) return std::move(debian).error();
  for (size_t i = 0; i < debian->size(); ++i) {
    if (!IsDebianPackage((*debian)[i])) {
      return SpecError("debian_packages[" + std::to_string(i) + "]",
                       util::PyRepr(Json((*debian)[i])) +
                           " is not a valid Debian package name; expected NAME, NAME=VERSION or "
                           "NAME/RELEASE with NAME of [a-z0-9][a-z0-9+.-]+");
    }
  }
  spec.debian_packages = std::move(debian).value();

  const Json& python = field("python");
  if (!python.is_null()) {
    if (!python.is_object()) return WrongType("python", "a mapping", python);
    if (auto keys = CheckKeys(python, kPythonKeys, "python."); !keys) {
      return std::move(keys).error();
    }
    auto pip = StringList("python.pip_packages", Field(python, "pip_packages"));
    if (!pip) return std::move(pip).error();
    spec.pip_packages = std::move(pip).value();
    auto conda = StringList("python.conda_packages", Field(python, "conda_packages"));
    if (!conda) return std::move(conda).error();
    spec.conda_packages = std::move(conda).value();
  }

  auto post_build = StringList("post_build_cmds", field("post_build_cmds"), Lines::kMulti);
  if (!post_build) return std::move(post_build).error();
  spec.post_build_cmds = std::move(post_build).value();
  return spec;
}

util::Result<ClusterEnvSpec> ClusterEnvSpec::FromText(std::string_view text,
                                                      std::string_view source) {
  auto json = util::LoadYaml(text);
  if (!json) return util::ValueError(std::string(source) + ": " + json.error().message);
  return FromJson(*json);
}

bool operator==(const ClusterEnvSpec& a, const ClusterEnvSpec& b) {
  return a.base_image == b.base_image && a.env_vars == b.env_vars &&
         a.debian_packages == b.debian_packages && a.pip_packages == b.pip_packages &&
         a.conda_packages == b.conda_packages && a.post_build_cmds == b.post_build_cmds;
}

util::Status ValidateClusterEnvName(std::string_view name) {
  bool valid = !name.empty() && name.size() <= 100 && (IsLower(name[0]) || IsDigit(name[0])) &&
               AllOf(name, [](char c) {
                 return IsLower(c) || IsDigit(c) || c == '_' || c == '.' || c == '-';
               });
  if (valid) return {};
  return util::ValueError("cluster env name " + util::PyRepr(Json(std::string(name))) +
                          " is invalid; expected 1 to 100 characters of [a-z0-9_.-] starting "
                          "with a letter or digit");
}

std::string ClusterEnvRef::ToString() const {
  return name + ":" + std::to_string(version);
}

util::Result<ClusterEnvRef> ParseClusterEnvRef(std::string_view text) {
  std::string shown = util::PyRepr(Json(std::string(text)));
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    std::string example = ValidateClusterEnvName(text).ok() ? std::string(text) : "ml";
    return util::ValueError("cluster env reference " + shown +
                            " must look like NAME:VERSION, e.g. " + example + ":1");
  }
  std::string_view name = text.substr(0, colon);
  if (auto valid = ValidateClusterEnvName(name); !valid) return std::move(valid).error();
  std::string_view digits = text.substr(colon + 1);
  int version = 0;
  // Only the canonical spelling, so that ToString gives the text back.
  bool canonical = !digits.empty() && digits[0] != '0' && AllOf(digits, IsDigit);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (!canonical || ec != std::errc() || end != digits.data() + digits.size()) {
    return util::ValueError("cluster env reference " + shown +
                            ": version must be a positive integer, e.g. " + std::string(name) +
                            ":1");
  }
  return ClusterEnvRef{std::string(name), version};
}

}  // namespace strata::model
