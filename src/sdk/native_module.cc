// strata._native: the C++ runtime env model and the package upload, as a
// CPython extension module for the Python SDK (python/strata/).
//
// Every function takes and returns JSON text; python/strata/runtime_env.py
// does the json.dumps / json.loads. Objects come back in insertion order (a
// Python dict keeps it), numbers spelled as Python's json module spells
// them. Failures are raised as the Python exception the util::Error kind
// names, carrying the error's message:
//
//   kTypeError → TypeError       kValueError → ValueError   kKeyError → KeyError
//   kNotFound → FileNotFoundError                           kUnavailable → ConnectionError
//   kIOError, kTimeout → OSError                            others → RuntimeError
//
// Functions:
//   runtime_env_create(fields_json, validate=True) -> str   RuntimeEnv(**fields)
//   runtime_env_set(env_json, key, value_json) -> str       env[key] = value (validating)
//   runtime_env_serialize(env_json) -> str                  RuntimeEnv.serialize()
//   runtime_env_config_create(fields_json) -> str           RuntimeEnvConfig(**fields)
//   merge_task(parent_json, child_json) -> str              a task's env under its parent's
//   merge_job(parent_json, child_json, override) -> str     job env + the driver's init env
//   validate_no_local_paths(env_json) -> None               the task/actor-level rule
//   upload_local_paths(env_json, head_url, token) -> str    local paths → gcs:// URIs
//   resolve_head_address(address) -> str                    as `strata job --address`
//   is_known_field(key) -> bool                             False for plugin fields
//   validated_fields() -> str                               fields with a validator, in order
//   version() -> str
//
// Thread-safety: every function but upload_local_paths holds the GIL
// throughout; upload_local_paths releases it while packaging and sending.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "head/head_client.h"
#include "model/merge.h"
#include "model/runtime_env.h"
#include "model/runtime_env_config.h"
#include "model/validation.h"
#include "packaging/upload.h"
#include "util/pyjson.h"
#include "util/version.h"

namespace py = pybind11;

namespace strata::sdk {
namespace {

using model::RuntimeEnv;
using util::Json;

PyObject* ExceptionFor(util::ErrorKind kind) {
  switch (kind) {
    case util::ErrorKind::kTypeError:
      return PyExc_TypeError;
    case util::ErrorKind::kValueError:
      return PyExc_ValueError;
    case util::ErrorKind::kKeyError:
      return PyExc_KeyError;
    case util::ErrorKind::kNotFound:
      return PyExc_FileNotFoundError;
    case util::ErrorKind::kUnavailable:
      return PyExc_ConnectionError;
    case util::ErrorKind::kIOError:
    case util::ErrorKind::kTimeout:
      return PyExc_OSError;
    default:
      return PyExc_RuntimeError;
  }
}

[[noreturn]] void Raise(const util::Error& error) {
  PyErr_SetString(ExceptionFor(error.kind), error.message.c_str());
  throw py::error_already_set();
}

template <class T>
T Unwrap(util::Result<T> result) {
  if (!result) Raise(result.error());
  return std::move(result).value();
}

void Check(const util::Status& status) {
  if (!status) Raise(status.error());
}

Json Parse(std::string_view text) {
  return Unwrap(util::ParseJson(text));
}

// json.dumps(value) without sort_keys: objects in insertion order, scalars
// spelled by DumpsSorted (Python's float repr, NaN/Infinity, ensure_ascii),
// so that json.loads reads back exactly the values the model holds.
void DumpOrdered(const Json& value, std::string& out) {
  if (value.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, item] : value.items()) {
      if (!first) out += ", ";
      first = false;
      out += util::DumpsSorted(Json(key));
      out += ": ";
      DumpOrdered(item, out);
    }
    out += '}';
  } else if (value.is_array()) {
    out += '[';
    bool first = true;
    for (const Json& item : value) {
      if (!first) out += ", ";
      first = false;
      DumpOrdered(item, out);
    }
    out += ']';
  } else {
    out += util::DumpsSorted(value);
  }
}

std::string Dump(const Json& value) {
  std::string out;
  DumpOrdered(value, out);
  return out;
}

// An env the Python side already normalised: taken as it is, as
// RuntimeEnv.deserialize does.
RuntimeEnv Trusted(std::string_view env_json) {
  return Unwrap(RuntimeEnv::Create(Parse(env_json), model::Validation::kTrust));
}

std::string RuntimeEnvCreate(std::string_view fields_json, bool validate) {
  Json fields = Parse(fields_json);
  auto validation = validate ? model::Validation::kValidate : model::Validation::kTrust;
  return Dump(Unwrap(RuntimeEnv::Create(fields, validation)).AsJson());
}

std::string RuntimeEnvSet(std::string_view env_json, std::string_view key,
                          std::string_view value_json) {
  RuntimeEnv env = Trusted(env_json);
  Json value = Parse(value_json);
  Check(env.Set(key, value));
  return Dump(env.AsJson());
}

std::string RuntimeEnvSerialize(std::string_view env_json) {
  return Unwrap(Trusted(env_json).Serialize());
}

std::string RuntimeEnvConfigCreate(std::string_view fields_json) {
  auto config = Unwrap(model::ValidateConfig(Parse(fields_json)));
  return Dump(config.value_or(model::RuntimeEnvConfig().ToJson()));
}

std::string MergeTask(std::string_view parent_json, std::string_view child_json) {
  return Dump(model::InheritRuntimeEnv(Trusted(parent_json), Trusted(child_json)).AsJson());
}

std::string MergeJob(std::string_view parent_json, std::string_view child_json, bool override) {
  auto mode = override ? model::MergeOverride::kYes : model::MergeOverride::kNo;
  return Dump(
      Unwrap(model::MergeJobRuntimeEnv(Trusted(parent_json), Trusted(child_json), mode)).AsJson());
}

void ValidateNoLocalPaths(std::string_view env_json) {
  Check(model::ValidateNoLocalPaths(Parse(env_json)));
}

std::string UploadLocalPaths(std::string_view env_json, std::string_view head_url,
                             std::optional<std::string> token) {
  RuntimeEnv env = Unwrap(RuntimeEnv::Create(Parse(env_json)));
  std::string url = Unwrap(head::ResolveHeadAddress(std::string(head_url)));
  util::Status uploaded;
  {
    py::gil_scoped_release release;
    head::HeadClient client(std::move(url), std::move(token));
    uploaded = packaging::UploadLocalPaths(env, client);
  }
  Check(uploaded);
  return Dump(env.AsJson());
}

std::string ResolveHeadAddress(std::optional<std::string> address) {
  return Unwrap(head::ResolveHeadAddress(address));
}

std::string ValidatedFields() {
  Json fields = Json::array();
  for (const model::FieldRule& rule : model::FieldRules())
    fields.push_back(std::string(rule.field));
  return Dump(fields);
}

}  // namespace
}  // namespace strata::sdk

PYBIND11_MODULE(_native, m) {
  using namespace strata::sdk;
  m.doc() = "Strata's C++ runtime env model and package upload (JSON text in and out).";
  m.def("runtime_env_create", &RuntimeEnvCreate, py::arg("fields_json"), py::arg("validate") = true,
        "RuntimeEnv(**fields): the env as JSON in insertion order. validate=False is Ray's "
        "_validate=False.");
  m.def("runtime_env_set", &RuntimeEnvSet, py::arg("env_json"), py::arg("key"),
        py::arg("value_json"),
        "env[key] = value with RuntimeEnv.__setitem__'s validation; the env as JSON. A value "
        "the validator drops leaves the env unchanged.");
  m.def("runtime_env_serialize", &RuntimeEnvSerialize, py::arg("env_json"),
        "RuntimeEnv.serialize(): re-validates, returns json.dumps(env, sort_keys=True).");
  m.def("runtime_env_config_create", &RuntimeEnvConfigCreate, py::arg("fields_json"),
        "RuntimeEnvConfig(**fields): the normalised config as JSON.");
  m.def("merge_task", &MergeTask, py::arg("parent_json"), py::arg("child_json"),
        "The env of a task or actor under its parent's env (Ray's inheritance rule).");
  m.def("merge_job", &MergeJob, py::arg("parent_json"), py::arg("child_json"), py::arg("override"),
        "The job's env merged with the driver's init env; ValueError on a conflict unless "
        "override.");
  m.def("validate_no_local_paths", &ValidateNoLocalPaths, py::arg("env_json"),
        "ValueError unless working_dir and py_modules are URIs (task and actor level).");
  m.def("upload_local_paths", &UploadLocalPaths, py::arg("env_json"), py::arg("head_url"),
        py::arg("token") = py::none(),
        "Uploads local working_dir / py_modules to the head; the env with gcs:// URIs. "
        "token None: $STRATA_AUTH_TOKEN.");
  m.def("resolve_head_address", &ResolveHeadAddress, py::arg("address") = py::none(),
        "The head URL: address, else $STRATA_ADDRESS, else http://127.0.0.1:8265.");
  m.def("is_known_field", &strata::model::IsKnownField, py::arg("key"),
        "True for the fields Ray knows; the others are plugin fields.");
  m.def("validated_fields", &ValidatedFields,
        "The fields that have a validator, in the order they are validated (JSON list).");
  m.def("version", [] { return std::string(strata::util::kStrataVersion); });
}
