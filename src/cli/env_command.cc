// `strata env validate` and `strata env merge`: the runtime env model on the
// command line. Tests outside the project rely on their exact output:
// canonical JSON and a newline on stdout, or exit 2 with
// "TypeError: ..." / "ValueError: ..." as the first line of stderr.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>

#include "cli/command.h"
#include "model/merge.h"
#include "model/runtime_env.h"
#include "model/validation.h"
#include "util/yaml.h"

namespace strata::cli {
namespace {

using model::RuntimeEnv;
using util::Json;

enum class Level { kJob, kTask };

// JSON first; YAML for files and stdin when the text is not JSON.
util::Result<Json> ParseEnvText(const std::string& text, const std::string& origin,
                                bool allow_yaml) {
  auto json = util::ParseJson(text);
  if (json || !allow_yaml) {
    if (!json) return util::ValueError("invalid JSON in " + origin + ": " + json.error().message);
    return json;
  }
  auto yaml = util::LoadYaml(text);
  if (!yaml) {
    return util::ValueError(origin + " is neither JSON nor YAML: " + yaml.error().message);
  }
  return yaml;
}

util::Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::NotFoundError("cannot read --file " + path + ": no such readable file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Text → validated RuntimeEnv, with the task-level rule when asked.
util::Result<RuntimeEnv> LoadEnv(const std::string& text, const std::string& origin,
                                 bool allow_yaml, Level level) {
  auto json = ParseEnvText(text, origin, allow_yaml);
  if (!json) return std::move(json).error();
  auto env = RuntimeEnv::Parse(*json);
  if (!env) return env;
  if (level == Level::kTask) {
    if (auto ok = model::ValidateNoLocalPaths(env->AsJson()); !ok) return std::move(ok).error();
  }
  return env;
}

int PrintSerialized(const util::Result<std::string>& serialized) {
  if (!serialized) return ReportInvalidInput(serialized.error());
  std::cout << *serialized << "\n";
  return kExitOk;
}

struct ValidateArgs {
  std::optional<std::string> json;
  std::optional<std::string> file;
  std::string stdin_marker;
  std::string level = "job";
};

int RunValidate(const ValidateArgs& args) {
  std::string text;
  std::string origin;
  bool allow_yaml = true;
  if (args.json) {
    text = *args.json, origin = "--json", allow_yaml = false;
  } else if (args.file) {
    auto content = ReadFile(*args.file);
    if (!content) return ReportInvalidInput(content.error());
    text = *content, origin = *args.file;
  } else {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    origin = "stdin";
  }
  auto env = LoadEnv(text, origin, allow_yaml, args.level == "task" ? Level::kTask : Level::kJob);
  if (!env) return ReportInvalidInput(env.error());
  return PrintSerialized(env->Serialize());
}

struct MergeArgs {
  std::string parent;
  std::string child;
  std::string mode;
  bool override_conflicts = false;
};

int RunMerge(const MergeArgs& args) {
  Level child_level = args.mode == "task" ? Level::kTask : Level::kJob;
  auto parent = LoadEnv(args.parent, "--parent", false, Level::kJob);
  if (!parent) return ReportInvalidInput(parent.error());
  auto child = LoadEnv(args.child, "--child", false, child_level);
  if (!child) return ReportInvalidInput(child.error());
  if (args.mode == "task") {
    return PrintSerialized(model::CanonicalString(InheritRuntimeEnv(*parent, *child).AsJson()));
  }
  const char* env_override = std::getenv("STRATA_OVERRIDE_JOB_RUNTIME_ENV");
  bool override_conflicts =
      args.override_conflicts || (env_override != nullptr && std::string(env_override) == "1");
  auto merged = model::MergeJobRuntimeEnv(
      *parent, *child, override_conflicts ? model::MergeOverride::kYes : model::MergeOverride::kNo);
  if (!merged) return ReportInvalidInput(merged.error());
  return PrintSerialized(merged->Serialize());
}

}  // namespace

int ReportInvalidInput(const util::Error& error) {
  std::cerr << error.ToString() << "\n";
  return kExitInvalidInput;
}

void AddEnvCommands(CLI::App& app, int* exit_code) {
  CLI::App* env = app.add_subcommand("env", "Validate and combine runtime environments");
  env->require_subcommand(1);

  auto validate_args = std::make_shared<ValidateArgs>();
  CLI::App* validate = env->add_subcommand(
      "validate", "Validate a runtime_env and print its canonical serialization");
  auto* json_opt = validate->add_option("--json", validate_args->json, "runtime_env as JSON text");
  auto* file_opt =
      validate->add_option("--file", validate_args->file, "runtime_env in a JSON or YAML file");
  auto* stdin_opt = validate
                        ->add_option("source", validate_args->stdin_marker,
                                     "'-' to read the runtime_env from stdin")
                        ->check(CLI::IsMember({"-"}));
  json_opt->excludes(file_opt)->excludes(stdin_opt);
  file_opt->excludes(stdin_opt);
  validate
      ->add_option("--level", validate_args->level, "job (local paths allowed) or task (URIs only)")
      ->check(CLI::IsMember({"job", "task"}));
  validate->callback([validate_args, json_opt, file_opt, stdin_opt, exit_code] {
    if (json_opt->count() + file_opt->count() + stdin_opt->count() == 0) {
      throw CLI::RequiredError("one of --json, --file or -");
    }
    *exit_code = RunValidate(*validate_args);
  });

  auto merge_args = std::make_shared<MergeArgs>();
  CLI::App* merge =
      env->add_subcommand("merge", "Combine a parent and a child runtime_env by Ray's rules");
  merge->add_option("--parent", merge_args->parent, "parent runtime_env as JSON")->required();
  merge->add_option("--child", merge_args->child, "child runtime_env as JSON")->required();
  merge
      ->add_option("--mode", merge_args->mode,
                   "task: child task/actor inherits; job: driver env merged into job env")
      ->required()
      ->check(CLI::IsMember({"task", "job"}));
  merge->add_flag("--override", merge_args->override_conflicts,
                  "job mode: on a conflict the child wins instead of failing");
  merge->callback([merge_args, exit_code] { *exit_code = RunMerge(*merge_args); });
}

}  // namespace strata::cli
