#include "agent/builtin_plugins.h"

#include <algorithm>
#include <filesystem>

#include "agent/pip_plugin.h"
#include "agent/process.h"
#include "model/uri.h"
#include "packaging/blob_store.h"
#include "packaging/fetch.h"
#include "packaging/unpack.h"
#include "util/pyjson.h"
#include "util/pystring.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using util::Json;

// The archive behind `uri` as a local file: the node's package store for
// gcs:// packages, a download into `scratch` for remote ones.
util::Result<fs::path> LocalArchive(const std::string& uri, const SetupContext& setup,
                                    const fs::path& scratch) {
  auto parsed = model::ParseUri(uri);
  if (!parsed) return std::move(parsed).error();
  if (parsed->protocol == model::Protocol::kGcs) {
    auto store = packaging::BlobStore::Open(setup.paths->store_dir());
    if (!store) return std::move(store).error();
    auto path = store->PackagePath(parsed->package_name);
    if (!path) {
      return util::NotFoundError(
          "Failed to find runtime_env package " + uri +
          " in this node's package store. The package may have been deleted before the job "
          "started; re-submitting the job uploads it again.");
    }
    return *path;
  }
  if (!model::IsRemoteProtocol(parsed->protocol)) {
    return util::ValueError("runtime_env package URI " + uri +
                            " cannot be downloaded: its protocol "
                            "names an environment, not a package");
  }
  fs::path dest = scratch / parsed->package_name;
  setup.log("Downloading " + uri);
  if (auto ok = packaging::FetchToFile(uri, dest); !ok) return std::move(ok).error();
  return dest;
}

fs::path ScratchDir(const SetupContext& setup) {
  return setup.staging_dir.parent_path() / (setup.staging_dir.filename().string() + ".download");
}

// Unpacks a package archive into setup.staging_dir. UnpackArchive publishes
// a directory of its own, so it unpacks inside the scratch directory (which
// the cache protects as part of this build) and the result is moved over
// the empty staging directory.
util::Status UnpackInto(const std::string& uri, const fs::path& archive,
                        const SetupContext& setup) {
  auto parsed = model::ParseUri(uri);
  if (!parsed) return std::move(parsed).error();
  packaging::UnpackOptions options;
  // Ray strips a lone top-level directory from remote archives only.
  options.strip_top_level = model::IsRemoteProtocol(parsed->protocol)
                                ? packaging::StripTopLevel::kYes
                                : packaging::StripTopLevel::kNo;
  auto unpacked = packaging::UnpackArchive(archive, ScratchDir(setup) / "unpacked", options);
  if (!unpacked) return std::move(unpacked).error();
  std::error_code ec;
  fs::remove(setup.staging_dir, ec);
  fs::rename(*unpacked, setup.staging_dir, ec);
  if (ec) return util::IOError("cannot move unpacked " + uri + " into place: " + ec.message());
  return {};
}

class WorkingDirPlugin : public RuntimeEnvPlugin {
 public:
  std::string_view name() const override { return "working_dir"; }
  int priority() const override { return 5; }

  util::Status Validate(const model::RuntimeEnv& env) const override {
    std::string dir = env.WorkingDir();
    if (model::IsPath(dir)) {
      return util::ValueError("working_dir " + dir +
                              " is a local path; the node agent needs a package URI (local "
                              "directories are packaged by `strata run` or at job submission)");
    }
    return {};
  }
  std::vector<std::string> Uris(const model::RuntimeEnv& env) const override {
    return {env.WorkingDir()};
  }
  util::Status Create(const std::string& uri, const model::RuntimeEnv&,
                      const SetupContext& setup) const override {
    fs::path scratch = ScratchDir(setup);
    std::error_code ec;
    fs::create_directories(scratch, ec);
    auto archive = LocalArchive(uri, setup, scratch);
    util::Status status = archive ? UnpackInto(uri, *archive, setup) : archive.error();
    fs::remove_all(scratch, ec);
    return status;
  }
  util::Status ModifyContext(const std::map<std::string, fs::path>& dirs,
                             const model::RuntimeEnv& env, const SetupContext&,
                             RuntimeEnvContext& context) const override {
    const fs::path& dir = dirs.at(env.WorkingDir());
    context.cwd = dir.string();
    context.pythonpath.insert(context.pythonpath.begin(), dir.string());
    return {};
  }
};

class PyModulesPlugin : public RuntimeEnvPlugin {
 public:
  std::string_view name() const override { return "py_modules"; }

  util::Status Validate(const model::RuntimeEnv& env) const override {
    for (const std::string& module : env.PyModules()) {
      if (model::IsPath(module)) {
        return util::ValueError("py_modules entry " + module +
                                " is a local path; the node agent needs package URIs");
      }
    }
    return {};
  }
  std::vector<std::string> Uris(const model::RuntimeEnv& env) const override {
    return env.PyModules();
  }
  util::Status Create(const std::string& uri, const model::RuntimeEnv&,
                      const SetupContext& setup) const override {
    fs::path scratch = ScratchDir(setup);
    std::error_code ec;
    fs::create_directories(scratch, ec);
    util::Status status;
    auto archive = LocalArchive(uri, setup, scratch);
    if (!archive) {
      status = archive.error();
    } else if (uri.ends_with(".whl")) {
      // Wheel files keep their name: pip reads the project and tags from it.
      fs::path wheel = scratch / model::ParseUri(uri)->package_name;
      if (*archive != wheel)
        fs::copy_file(*archive, wheel, fs::copy_options::overwrite_existing, ec);
      status = ec ? util::IOError("cannot stage wheel " + uri + ": " + ec.message())
                  : InstallWheelToTarget(wheel, setup.staging_dir, setup);
    } else {
      status = UnpackInto(uri, *archive, setup);
    }
    fs::remove_all(scratch, ec);
    return status;
  }
  util::Status ModifyContext(const std::map<std::string, fs::path>& dirs,
                             const model::RuntimeEnv& env, const SetupContext&,
                             RuntimeEnvContext& context) const override {
    for (const std::string& module : env.PyModules()) {
      context.pythonpath.push_back(dirs.at(module).string());
    }
    return {};
  }
};

class PyExecutablePlugin : public RuntimeEnvPlugin {
 public:
  std::string_view name() const override { return "py_executable"; }
  util::Status ModifyContext(const std::map<std::string, fs::path>&, const model::RuntimeEnv& env,
                             const SetupContext&, RuntimeEnvContext& context) const override {
    context.py_executable = env.Get("py_executable", "").get<std::string>();
    return {};
  }
};

class ContainerPlugin : public RuntimeEnvPlugin {
 public:
  explicit ContainerPlugin(std::string field) : field_(std::move(field)) {}
  std::string_view name() const override { return field_; }
  int priority() const override { return 0; }

  util::Status Validate(const model::RuntimeEnv& env) const override {
    for (std::string_view other :
         {std::string_view("container"), std::string_view("image_uri"), kBaseImageField}) {
      if (other != field_ && env.Contains(std::string(other)) &&
          !env.Get(std::string(other), nullptr).is_null()) {
        return util::ValueError("cannot be combined with '" + std::string(other) +
                                "': a process runs in one container image");
      }
    }
    return {};
  }

  util::Status ModifyContext(const std::map<std::string, fs::path>&, const model::RuntimeEnv& env,
                             const SetupContext& setup, RuntimeEnvContext& context) const override {
    auto image = Image(env.Get(field_, nullptr));
    if (!image) return std::move(image).error();
    setup.log("Resolving container image " + image->reference);
    auto layer = ResolveImage(image->resolve, image->run_options, setup.deadline, setup.cancel);
    if (!layer) {
      util::Error error = std::move(layer).error();
      if (image->reference != image->resolve) {
        error.message = "image " + image->reference + ": " + error.message;
      }
      return error;
    }
    layer->reference = image->reference;
    if (setup.paths != nullptr) {
      layer->mounts = {setup.paths->home.string(), setup.paths->session_dir.string()};
    }
    setup.log("Running in container image " + layer->reference + " (" + layer->image + ")");
    context.container = std::move(*layer);
    return {};
  }

 private:
  struct ImageChoice {
    std::string resolve;    // what podman looks up
    std::string reference;  // what messages show
    std::vector<std::string> run_options;
  };

  util::Result<ImageChoice> Image(const Json& value) const {
    ImageChoice choice;
    if (field_ == "image_uri") {
      if (!value.is_string()) return util::TypeError("image_uri must be a string");
      choice.resolve = choice.reference = value.get<std::string>();
    } else if (field_ == "container") {
      if (!value.is_object() || !value.contains("image") || !value["image"].is_string()) {
        return util::TypeError("container must be a dict with a string 'image'");
      }
      choice.resolve = choice.reference = value["image"].get<std::string>();
      if (value.contains("run_options") && !value["run_options"].is_null()) {
        if (!value["run_options"].is_array()) {
          return util::TypeError("container.run_options must be a list of strings");
        }
        for (const Json& option : value["run_options"]) {
          if (!option.is_string()) {
            return util::TypeError("container.run_options must be a list of strings");
          }
          choice.run_options.push_back(option.get<std::string>());
        }
      }
    } else {
      if (!value.is_object() || !value.contains("image_id") || !value["image_id"].is_string()) {
        return util::TypeError(std::string(kBaseImageField) +
                               " must be a dict with a string 'image_id'");
      }
      choice.resolve = value["image_id"].get<std::string>();
      choice.reference = value.value("reference", choice.resolve);
    }
    if (choice.resolve.empty()) return util::ValueError("the image reference is empty");
    return choice;
  }

  std::string field_;
};

// Checks that `argv` runs; the error says `what` is not installed.
util::Status RequireTool(std::vector<std::string> argv, const std::string& missing_message,
                         const SetupContext& setup) {
  CommandSpec spec;
  spec.argv = std::move(argv);
  RunOptions options;
  options.deadline = setup.deadline;
  options.cancel = setup.cancel;
  options.on_line = setup.log;
  auto result = RunCommand(spec, options);
  if (!result) return util::ValueError(missing_message + " (" + result.error().message + ")");
  if (result->exit_code != 0)
    return util::ValueError(missing_message + "\n" + FormatFailure(*result));
  return {};
}

class MpiPlugin : public RuntimeEnvPlugin {
 public:
  std::string_view name() const override { return "mpi"; }
  int priority() const override { return 90; }

  util::Status Validate(const model::RuntimeEnv& env) const override {
    Json mpi = env.Get("mpi", Json::object());
    if (!mpi.is_object())
      return util::TypeError("runtime_env['mpi'] must be a dict, got " + util::PyTypeRepr(mpi));
    if (mpi.contains("args") &&
        !(mpi["args"].is_array() && std::all_of(mpi["args"].begin(), mpi["args"].end(),
                                                [](const Json& a) { return a.is_string(); }))) {
      return util::TypeError("runtime_env['mpi']['args'] must be a list of strings");
    }
    return {};
  }
  util::Status ModifyContext(const std::map<std::string, fs::path>&, const model::RuntimeEnv& env,
                             const SetupContext& setup, RuntimeEnvContext& context) const override {
    if (auto ok =
            RequireTool({"mpirun", "--version"},
                        "mpi: mpirun is not installed on this node (install Open MPI)", setup);
        !ok) {
      return ok;
    }
    Json mpi = env.Get("mpi", Json::object());
    std::vector<std::string> args;
    for (const Json& arg : mpi.value("args", Json::array())) args.push_back(arg.get<std::string>());
    std::string python = context.py_executable.empty() ? setup.python : context.py_executable;
    context.py_executable = "mpirun " + ShellJoin(args) + (args.empty() ? "" : " ") + python;
    return {};
  }
};

class NsightPlugin : public RuntimeEnvPlugin {
 public:
  std::string_view name() const override { return "_nsight"; }

  util::Status ModifyContext(const std::map<std::string, fs::path>&, const model::RuntimeEnv& env,
                             const SetupContext& setup, RuntimeEnvContext& context) const override {
    Json config = env.Get("_nsight", nullptr);
    if (config.is_string() && config.get<std::string>() == "default") {
      config = Json::object({{"t", "cuda,cudnn,cublas,nvtx"},
                             {"o", "'worker_process_%p'"},
                             {"cudabacktrace", "all"},
                             {"stop-on-exit", "true"}});
    } else if (!config.is_object()) {
      return util::ValueError(
          "Unsupported nsight config: " + util::PyStr(config) +
          ". The supported config is 'default' or Dictionary of nsight options");
    }
    if (auto ok = RequireTool({"nsys", "--version"}, "nsight is not installed", setup); !ok)
      return ok;
    fs::path reports = setup.paths->logs_dir() / "nsight";
    std::error_code ec;
    fs::create_directories(reports, ec);
    std::vector<std::string> words = {"nsys", "profile"};
    for (const auto& [option, value] : config.items()) {
      std::string text = util::PyStr(value);
      if (option == "o") text = (reports / text).string();
      if (option.size() > 1) {
        words.push_back("--" + option + "=" + text);
      } else {
        words.push_back("-" + option);
        words.push_back(text);
      }
    }
    std::string python = context.py_executable.empty() ? setup.python : context.py_executable;
    context.py_executable = ShellJoin(words) + " " + python;
    return {};
  }
};

class UnsupportedPlugin : public RuntimeEnvPlugin {
 public:
  explicit UnsupportedPlugin(std::string field) : field_(std::move(field)) {}
  std::string_view name() const override { return field_; }
  util::Status Validate(const model::RuntimeEnv&) const override {
    return util::ValueError("runtime_env field '" + field_ +
                            "' is not supported yet by Strata's node agent");
  }
  util::Status ModifyContext(const std::map<std::string, fs::path>&, const model::RuntimeEnv&,
                             const SetupContext&, RuntimeEnvContext&) const override {
    return {};
  }

 private:
  std::string field_;
};

}  // namespace

std::unique_ptr<RuntimeEnvPlugin> MakeWorkingDirPlugin() {
  return std::make_unique<WorkingDirPlugin>();
}
std::unique_ptr<RuntimeEnvPlugin> MakePyModulesPlugin() {
  return std::make_unique<PyModulesPlugin>();
}
std::unique_ptr<RuntimeEnvPlugin> MakePyExecutablePlugin() {
  return std::make_unique<PyExecutablePlugin>();
}
std::unique_ptr<RuntimeEnvPlugin> MakeMpiPlugin() {
  return std::make_unique<MpiPlugin>();
}
std::unique_ptr<RuntimeEnvPlugin> MakeNsightPlugin() {
  return std::make_unique<NsightPlugin>();
}
std::unique_ptr<RuntimeEnvPlugin> MakeContainerPlugin(std::string field) {
  return std::make_unique<ContainerPlugin>(std::move(field));
}

std::unique_ptr<RuntimeEnvPlugin> MakeUnsupportedPlugin(std::string field) {
  return std::make_unique<UnsupportedPlugin>(std::move(field));
}

std::vector<std::unique_ptr<RuntimeEnvPlugin>> DefaultPlugins() {
  std::vector<std::unique_ptr<RuntimeEnvPlugin>> plugins;
  plugins.push_back(MakeWorkingDirPlugin());
  plugins.push_back(MakeUvPlugin());
  plugins.push_back(MakePipPlugin());
  plugins.push_back(MakeUnsupportedPlugin("conda"));
  plugins.push_back(MakePyModulesPlugin());
  plugins.push_back(MakePyExecutablePlugin());
  plugins.push_back(MakeContainerPlugin("container"));
  plugins.push_back(MakeContainerPlugin(std::string(kBaseImageField)));
  plugins.push_back(MakeNsightPlugin());
  plugins.push_back(MakeContainerPlugin("image_uri"));
  plugins.push_back(MakeMpiPlugin());
  std::stable_sort(plugins.begin() + 1, plugins.end(),
                   [](const auto& a, const auto& b) { return a->priority() < b->priority(); });
  return plugins;
}

bool IsFieldWithoutPlugin(std::string_view field) {
  for (std::string_view known :
       {"env_vars", "config", "excludes", "worker_process_setup_hook", "java_jars", "_ray_release",
        "_ray_commit", "_inject_current_ray", "docker"}) {
    if (field == known) return true;
  }
  return false;
}

}  // namespace strata::agent
