#include "clusterenv/containerfile.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "agent/process.h"
#include "util/pyjson.h"

namespace strata::clusterenv {
namespace {

constexpr std::array<std::string_view, 4> kPipSettings = {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
                                                          "PIP_FIND_LINKS", "PIP_TRUSTED_HOST"};

// A JSON string literal. Invalid UTF-8 is replaced rather than thrown on; a
// parsed spec never holds any.
std::string JsonString(const std::string& text) {
  return util::Json(text).dump(-1, ' ', false, util::Json::error_handler_t::replace);
}

// Exec form: podman runs /bin/sh with the command as one argument, so the
// Containerfile parser never sees the command's quotes, newlines or '$'.
std::string Run(const std::string& command) {
  return "RUN [" + JsonString("/bin/sh") + ", " + JsonString("-c") + ", " + JsonString(command) +
         "]\n";
}

// Inside ENV's double quotes a backslash escapes the next character and '$'
// starts a substitution; escaping both (and '"') keeps the value literal.
std::string EnvQuote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\\' || c == '"' || c == '$') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Fail(std::string_view message) {
  return "echo " + agent::ShellQuote(message) + " >&2; exit 1";
}

}  // namespace

EnvList PipBuildArgs(const EnvList& env) {
  EnvList out;
  for (std::string_view name : kPipSettings) {
    // The first entry wins, as getenv reads an environment block.
    auto it = std::find_if(env.begin(), env.end(),
                           [&](const auto& entry) { return entry.first == name; });
    if (it != env.end() && !it->second.empty()) out.push_back(*it);
  }
  return out;
}

std::string RenderContainerfile(const model::ClusterEnvSpec& spec,
                                const std::vector<std::string>& build_arg_names) {
  std::string out = "FROM " + spec.base_image + "\n";
  if (!spec.env_vars.empty()) {
    out += "ENV";
    for (const auto& [key, value] : spec.env_vars)
      out += " " + EnvQuote(key) + "=" + EnvQuote(value);
    out += "\n";
  }
  if (!spec.debian_packages.empty()) {
    out +=
        Run("export DEBIAN_FRONTEND=noninteractive && apt-get update && apt-get install -y "
            "--no-install-recommends " +
            agent::ShellJoin(spec.debian_packages) + " && rm -rf /var/lib/apt/lists/*");
  }
  if (!spec.pip_packages.empty()) {
    for (const std::string& name : build_arg_names) out += "ARG " + name + "\n";
    out += Run("if ! python3 -m pip --version >/dev/null 2>&1; then " +
               Fail("strata: pip_packages need python3 with pip in the base image") +
               "; fi; PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir "
               "--disable-pip-version-check " +
               agent::ShellJoin(spec.pip_packages));
  }
  if (!spec.conda_packages.empty()) {
    out += Run("if ! command -v conda >/dev/null 2>&1; then " +
               Fail("strata: conda_packages need conda in the base image; no conda on PATH") +
               "; fi; conda install -y " + agent::ShellJoin(spec.conda_packages));
  }
  for (const std::string& command : spec.post_build_cmds) out += Run(command);
  return out;
}

}  // namespace strata::clusterenv
