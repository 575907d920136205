// The runtime env options shared by the commands that run something in an
// env (`strata run`, `strata job submit`).
#include <fstream>
#include <iterator>

#include "cli/command.h"
#include "util/yaml.h"

namespace strata::cli {

void AddRuntimeEnvOptions(CLI::App& command, RuntimeEnvArgs& args) {
  auto* file = command.add_option("--runtime-env", args.file, "runtime_env as a JSON or YAML file");
  auto* json = command.add_option("--runtime-env-json", args.json, "runtime_env as JSON text");
  file->excludes(json);
  command.add_option("--working-dir", args.working_dir, "working_dir (local directory or URI)");
}

util::Result<model::RuntimeEnv> LoadRuntimeEnvArgs(const RuntimeEnvArgs& args) {
  util::Json fields = util::Json::object();
  if (args.json || args.file) {
    std::string text;
    if (args.json) {
      text = *args.json;
    } else {
      std::ifstream in(*args.file, std::ios::binary);
      if (!in) return util::NotFoundError("cannot read --runtime-env " + *args.file);
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto json = util::ParseJson(text);
    if (!json && args.file) json = util::LoadYaml(text);
    if (!json) return std::move(json).error();
    fields = *json;
  }
  if (args.working_dir) {
    if (!fields.is_object()) fields = util::Json::object();
    fields["working_dir"] = *args.working_dir;
  }
  return model::RuntimeEnv::Parse(fields);
}

}  // namespace strata::cli
