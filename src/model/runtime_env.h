// RuntimeEnv: the runtime environment of a job, task or actor, with the
// semantics of Ray's ray.runtime_env.RuntimeEnv (a dict subclass) and the
// methods of Ray's C++ API.
//
// The value is an insertion-ordered JSON object, as the Python dict is.
// Construction (Create) validates and normalises every known field through
// model/validation.h in Ray's order; unknown keys are kept as plugin fields.
// Set() validates one field like Python's __setitem__; Update() and
// SetDefault() do not validate, exactly as dict.update / dict.setdefault
// bypass __setitem__ on a Python dict subclass — which is why Serialize()
// re-validates the whole env before printing it.
//
// The canonical serialization is json.dumps(env, sort_keys=True), byte for
// byte, so an environment always has the same string and hash in C++ and
// Python. Strata adds no `_ray_commit` key.
//
// Thread-safety: a value type; concurrent const access is safe, mutation
// needs external synchronisation.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/runtime_env_config.h"
#include "util/pyjson.h"
#include "util/result.h"

namespace strata::model {

using util::Json;

enum class Validation { kValidate, kTrust };

class RuntimeEnv {
 public:
  RuntimeEnv() : env_(Json::object()) {}

  // RuntimeEnv(**fields): `fields` must be a JSON object. The keyword `nsight`
  // is stored under `_nsight`; named fields whose value is null are omitted.
  // With Validation::kTrust nothing is checked (Ray's _validate=False).
  static util::Result<RuntimeEnv> Create(const Json& fields,
                                         Validation validation = Validation::kValidate);

  // Ray's parse_runtime_env: a falsy value (null, {}, [], "", 0, false) means
  // "not specified" and yields an empty env; a non-object is a TypeError.
  static util::Result<RuntimeEnv> Parse(const Json& value);

  // RuntimeEnv.deserialize: parses the JSON text without validating it.
  static util::Result<RuntimeEnv> Deserialize(std::string_view serialized);

  // RuntimeEnv.serialize: re-validates the whole env, then prints the
  // canonical form.
  util::Result<std::string> Serialize() const;

  // RuntimeEnv.fromkeys(keys, value): every key set through Set().
  static util::Result<RuntimeEnv> FromKeys(const std::vector<std::string>& keys,
                                           const Json& value = nullptr);

  // --- dict behaviour ---------------------------------------------------
  bool Contains(std::string_view key) const { return env_.contains(key); }
  std::size_t Size() const { return env_.size(); }
  bool Empty() const { return env_.empty(); }
  std::vector<std::string> Keys() const;
  std::vector<std::pair<std::string, Json>> Items() const;

  // get(name) / get(name, default).
  std::optional<Json> Get(std::string_view key) const;
  Json Get(std::string_view key, const Json& default_value) const;

  // __setitem__ / set(): validates known fields; a value the validator turns
  // into None is silently not stored (an existing value stays), as in Ray.
  util::Status Set(std::string_view key, const Json& value);

  // pop(key): KeyError when absent; pop(key, default) never fails.
  util::Result<Json> Pop(std::string_view key);
  Json Pop(std::string_view key, const Json& default_value);
  // popitem(): the most recently inserted pair; KeyError when empty.
  util::Result<std::pair<std::string, Json>> PopItem();
  // setdefault(key, default): inserts without validation when absent.
  Json SetDefault(std::string_view key, const Json& default_value = nullptr);
  // update(other): inserts every pair of `other` without validation.
  void Update(const Json& other);
  void Clear() { env_ = Json::object(); }

  // Plugin fields: every key Ray does not know, with its value.
  std::vector<std::pair<std::string, Json>> Plugins() const;
  // Not implemented in Ray either: always empty.
  std::vector<std::string> PluginUris() const { return {}; }

  // --- Ray C++ API --------------------------------------------------------
  template <class T>
  util::Status Set(std::string_view key, const T& value) {
    return Set(key, Json(value));
  }
  template <class T>
  util::Result<T> Get(std::string_view key) const;
  util::Status SetJsonStr(std::string_view key, std::string_view json_text);
  util::Result<std::string> GetJsonStr(std::string_view key) const;
  bool Remove(std::string_view key);

  // --- typed accessors used by the node agent -----------------------------
  std::string WorkingDir() const;              // "" when absent
  std::vector<std::string> PyModules() const;  // [] when absent
  Json EnvVars() const;                        // {} when absent
  bool HasPip() const;
  bool HasUv() const;
  bool HasConda() const;
  // The `config` field, or the defaults when absent.
  util::Result<RuntimeEnvConfig> Config() const;

  const Json& AsJson() const { return env_; }

  friend bool operator==(const RuntimeEnv& a, const RuntimeEnv& b) {
    return util::PyEqual(a.env_, b.env_);
  }

 private:
  explicit RuntimeEnv(Json env) : env_(std::move(env)) {}
  util::Status ValidateAll(const Json& passed);

  Json env_;
};

// Canonical text of a JSON value that is already a normalised env (no
// validation): json.dumps(value, sort_keys=True).
inline std::string CanonicalString(const Json& env) {
  return util::DumpsSorted(env);
}

// True for field names Ray knows (the others are plugin fields).
bool IsKnownField(std::string_view key);

template <class T>
util::Result<T> RuntimeEnv::Get(std::string_view key) const {
  auto value = Get(key);
  if (!value) return util::KeyError(util::PyRepr(Json(std::string(key))));
  try {
    return value->get<T>();
  } catch (const Json::exception& e) {
    return util::TypeError("runtime_env field '" + std::string(key) +
                           "' has an unexpected type: " + e.what());
  }
}

}  // namespace strata::model
