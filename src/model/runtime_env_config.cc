#include "model/runtime_env_config.h"

#include <array>
#include <string_view>

#include "util/log.h"

namespace strata::model {
namespace {

using util::Json;
using util::PyStr;
using util::PyTypeRepr;

constexpr std::array<std::string_view, 3> kKnownFields = {"setup_timeout_seconds", "eager_install",
                                                          "log_files"};

bool IsPyInt(const Json& v) {
  return v.is_number_integer() || v.is_boolean();
}

// Python's `x <= 0 and x != -1` for an int (bool counts as 0 or 1).
bool IsInvalidTimeout(const Json& v) {
  if (v.is_boolean()) return !v.get<bool>();
  if (v.is_number_unsigned()) return v.get<std::uint64_t>() == 0;
  std::int64_t n = v.get<std::int64_t>();
  return n <= 0 && n != -1;
}

// Checks the known fields and returns them as Ray stores them, keeping the
// caller's JSON values (a bool timeout stays a bool, as in Python).
util::Result<Json> NormaliseConfig(const Json& value) {
  if (!value.is_object()) {
    return util::TypeError("runtime_env['config'] must be of type dict or RuntimeEnvConfig, got: " +
                           PyTypeRepr(value));
  }
  std::string unknown;
  for (const auto& [key, _] : value.items()) {
    bool known = false;
    for (std::string_view field : kKnownFields) known = known || key == field;
    if (!known) unknown += (unknown.empty() ? "'" : ", '") + key + "'";
  }
  if (!unknown.empty()) {
    util::LogWarning(
        "The following unknown entries in the runtime_env_config dictionary will be ignored: {" +
        unknown + "}.");
  }

  Json timeout = value.contains("setup_timeout_seconds") ? value["setup_timeout_seconds"]
                                                         : Json(kDefaultSetupTimeoutSeconds);
  if (!IsPyInt(timeout)) {
    return util::TypeError("setup_timeout_seconds must be of type int, got: " +
                           PyTypeRepr(timeout));
  }
  if (IsInvalidTimeout(timeout)) {
    return util::ValueError(
        "setup_timeout_seconds must be greater than zero or equals to -1, got: " + PyStr(timeout));
  }
  Json eager = value.contains("eager_install") ? value["eager_install"] : Json(true);
  if (!eager.is_boolean()) {
    return util::TypeError("eager_install must be a boolean. got " + PyTypeRepr(eager));
  }
  Json log_files = value.contains("log_files") ? value["log_files"] : Json(nullptr);
  if (log_files.is_null()) {
    log_files = Json::array();
  } else if (!log_files.is_array()) {
    return util::TypeError("log_files must be a list of strings or None, got " + PyStr(log_files) +
                           " with type " + PyTypeRepr(log_files) + ".");
  } else {
    for (const Json& item : log_files) {
      if (!item.is_string()) return util::TypeError("Each item in log_files must be a string.");
    }
  }
  Json out = Json::object();
  out["setup_timeout_seconds"] = timeout;
  out["eager_install"] = eager;
  out["log_files"] = log_files;
  return out;
}

}  // namespace

util::Result<RuntimeEnvConfig> RuntimeEnvConfig::FromJson(const Json& value) {
  auto normalised = NormaliseConfig(value);
  if (!normalised) return std::move(normalised).error();
  const Json& json = *normalised;
  RuntimeEnvConfig config;
  const Json& timeout = json["setup_timeout_seconds"];
  config.setup_timeout_seconds =
      timeout.is_boolean()           ? static_cast<std::int64_t>(timeout.get<bool>())
      : timeout.is_number_unsigned() ? static_cast<std::int64_t>(std::min<std::uint64_t>(
                                           timeout.get<std::uint64_t>(), INT64_MAX))
                                     : timeout.get<std::int64_t>();
  config.eager_install = json["eager_install"].get<bool>();
  for (const Json& file : json["log_files"]) config.log_files.push_back(file.get<std::string>());
  return config;
}

Json RuntimeEnvConfig::ToJson() const {
  Json out = Json::object();
  out["setup_timeout_seconds"] = setup_timeout_seconds;
  out["eager_install"] = eager_install;
  out["log_files"] = log_files;
  return out;
}

util::Result<std::optional<Json>> ValidateConfig(const Json& value) {
  auto normalised = NormaliseConfig(value);
  if (!normalised) return std::move(normalised).error();
  return std::optional<Json>(std::move(normalised).value());
}

}  // namespace strata::model
