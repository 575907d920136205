// ClusterEnvSpec: the definition of a cluster environment, Anyscale's YAML
// shape:
//
//   base_image: localhost/debian-py:bookworm      # required
//   env_vars: {MY_VAR: '123'}                     # map of string → string
//   debian_packages: [hello, curl]
//   python:
//     pip_packages: [requests==2.31.0]
//     conda_packages: [numpy]
//   post_build_cmds: ['echo done > /built']
//
// Parsing is strict: unknown keys and wrong types are ValueErrors that name
// the key path ("python.pip_packages[1]"), the value and the expected type:
//   "cluster env spec: python.pip_packages[1]: expected a string, got int 3"
//   "cluster env spec: unknown key 'base'; expected one of base_image, ..."
// Values that would let a spec escape its build step are rejected too:
// env var names must match [A-Za-z_][A-Za-z0-9_]*, values and list items
// hold no NUL or newline (post_build_cmds may span lines), Debian package
// names follow Debian policy ([a-z0-9][a-z0-9+.-]+, optionally "=version" or
// "/release"), and no string is empty.
//
// ToJson is canonical (fixed key order, every key present, env_vars in file
// order), so two specs are equal exactly when their ToJson dumps are equal;
// it is the frozen copy a build stores.
//
// Thread-safety: a value type; the functions are pure.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/pyjson.h"
#include "util/result.h"

namespace strata::model {

struct ClusterEnvSpec {
  std::string base_image;
  std::vector<std::pair<std::string, std::string>> env_vars;  // file order
  std::vector<std::string> debian_packages;
  std::vector<std::string> pip_packages;
  std::vector<std::string> conda_packages;
  std::vector<std::string> post_build_cmds;

  // {"base_image", "env_vars", "debian_packages", "python": {"pip_packages",
  // "conda_packages"}, "post_build_cmds"}; empty lists and maps included.
  util::Json ToJson() const;

  // A parsed YAML or JSON document (null/absent optional keys are empty).
  static util::Result<ClusterEnvSpec> FromJson(const util::Json& json);
  // YAML text (JSON is YAML); `source` names the file in errors ("spec.yaml:
  // error at line 2, column 5: ...").
  static util::Result<ClusterEnvSpec> FromText(std::string_view text, std::string_view source);
};

bool operator==(const ClusterEnvSpec& a, const ClusterEnvSpec& b);

// "NAME:VERSION" references. Names: 1–100 characters of [a-z0-9_.-],
// starting with a letter or digit (they become image names). Versions: a
// positive decimal integer.
util::Status ValidateClusterEnvName(std::string_view name);

struct ClusterEnvRef {
  std::string name;
  int version = 0;
  std::string ToString() const;  // "NAME:VERSION"
};

// "NAME:VERSION" → ref; ValueError naming the text and the expected form.
util::Result<ClusterEnvRef> ParseClusterEnvRef(std::string_view text);

}  // namespace strata::model
