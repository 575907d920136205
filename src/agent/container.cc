#include "agent/container.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "agent/process.h"
#include "util/pystring.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using util::Json;

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

util::Result<std::vector<std::string>> Strings(const Json& json, const char* key) {
  std::vector<std::string> out;
  if (!json.contains(key) || json[key].is_null()) return out;
  if (!json[key].is_array()) {
    return util::ValueError(std::string("container layer field ") + key + " must be a list");
  }
  for (const Json& item : json[key]) {
    if (!item.is_string()) {
      return util::ValueError(std::string("container layer field ") + key + " must hold strings");
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

// Runs podman with `args`; the error quotes its last lines.
util::Result<CommandResult> RunPodman(const std::vector<std::string>& args,
                                      std::optional<std::chrono::steady_clock::time_point> deadline,
                                      const std::atomic<bool>* cancel) {
  CommandSpec spec;
  spec.argv = PodmanCommand(args);
  RunOptions options;
  options.deadline = deadline;
  options.cancel = cancel;
  options.tail_lines = 20;
  return RunCommand(spec, options);
}

bool IsImageId(const std::string& text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

}  // namespace

Json ContainerLayer::ToJson() const {
  Json env = Json::array();
  for (const auto& [key, value] : image_env) env.push_back(key + "=" + value);
  Json out = Json::object();
  out["image"] = image;
  out["reference"] = reference;
  out["run_options"] = run_options;
  out["image_env"] = std::move(env);
  out["mounts"] = mounts;
  out["name"] = name;
  return out;
}

util::Result<ContainerLayer> ContainerLayer::FromJson(const Json& json) {
  if (!json.is_object()) return util::ValueError("container layer must be a JSON object");
  ContainerLayer layer;
  if (!json.contains("image") || !json["image"].is_string() ||
      json["image"].get<std::string>().empty()) {
    return util::ValueError("container layer needs a non-empty string 'image'");
  }
  layer.image = json["image"].get<std::string>();
  layer.reference = json.value("reference", "");
  layer.name = json.value("name", "");
  auto run_options = Strings(json, "run_options");
  if (!run_options) return std::move(run_options).error();
  layer.run_options = std::move(*run_options);
  auto mounts = Strings(json, "mounts");
  if (!mounts) return std::move(mounts).error();
  layer.mounts = std::move(*mounts);
  auto env = Strings(json, "image_env");
  if (!env) return std::move(env).error();
  for (const std::string& entry : *env) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    layer.image_env.emplace_back(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return layer;
}

bool IsInsecureRegistry(const std::string& reference) {
  const std::string registries = EnvOr("STRATA_INSECURE_REGISTRIES", "");
  size_t start = 0;
  while (start <= registries.size()) {
    size_t comma = registries.find(',', start);
    if (comma == std::string::npos) comma = registries.size();
    std::string host = util::PyStrip(std::string_view(registries).substr(start, comma - start));
    if (!host.empty() && reference.starts_with(host + "/")) return true;
    start = comma + 1;
  }
  return false;
}

std::vector<std::string> PodmanCommand(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {EnvOr("STRATA_PODMAN", "podman")};
  const std::string runtime = EnvOr("STRATA_CONTAINER_RUNTIME", "runc");
  if (!runtime.empty()) argv.insert(argv.end(), {"--runtime", runtime});
  argv.insert(argv.end(), {"--cgroup-manager", "cgroupfs", "--events-backend", "file"});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

bool PassesIntoContainer(std::string_view name) {
  if (name.starts_with("STRATA_") || name.starts_with("RAY_")) return true;
  for (std::string_view kept : {"PYTHONUNBUFFERED", "TERM", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
                                "PIP_FIND_LINKS", "PIP_TRUSTED_HOST"}) {
    if (name == kept) return true;
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> ContainerBaseEnv(
    const ContainerLayer& layer, const std::vector<std::pair<std::string, std::string>>& host_env) {
  std::vector<std::pair<std::string, std::string>> env = layer.image_env;
  for (const auto& [key, value] : host_env) {
    if (!PassesIntoContainer(key)) continue;
    auto it = std::find_if(env.begin(), env.end(), [&](const auto& e) { return e.first == key; });
    if (it != env.end()) {
      it->second = value;
    } else {
      env.emplace_back(key, value);
    }
  }
  return env;
}

std::vector<std::string> ContainerRunArgv(
    const ContainerLayer& layer, const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& env, const std::string& cwd,
    const std::vector<std::string>& extra_mounts) {
  std::vector<std::string> args = {
      "run",  "--rm",     "--init",           "--network", "host",           "--ipc",
      "host", "--ulimit", "nofile=1024:1024", "--ulimit",  "nproc=1024:1024"};
  if (!layer.name.empty()) args.insert(args.end(), {"--name", layer.name});
  std::set<std::string> mounted;
  auto mount = [&](const std::string& path) {
    std::error_code ec;
    if (path.empty() || !fs::exists(path, ec) || !mounted.insert(path).second) return;
    args.insert(args.end(), {"-v", path + ":" + path});
  };
  for (const std::string& path : layer.mounts) mount(path);
  for (const std::string& path : extra_mounts) mount(path);
  for (const auto& [key, value] : env) args.insert(args.end(), {"--env", key + "=" + value});
  if (!cwd.empty()) args.insert(args.end(), {"-w", cwd});
  args.insert(args.end(), layer.run_options.begin(), layer.run_options.end());
  args.push_back(layer.image);
  args.insert(args.end(), argv.begin(), argv.end());
  return PodmanCommand(args);
}

std::vector<std::string> SymlinkTargetDirs(const std::string& dir, int max_depth,
                                           std::size_t max_entries) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(dir, ec);
  if (ec || !fs::is_directory(root, ec)) return out;
  auto inside = [&root](const fs::path& path) {
    auto rel = path.lexically_relative(root);
    return !rel.empty() && *rel.begin() != "..";
  };
  std::size_t seen = 0;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator() && seen < max_entries; it.increment(ec)) {
    ++seen;
    if (it.depth() >= max_depth) it.disable_recursion_pending();
    if (!it->is_symlink(ec)) continue;
    fs::path target = fs::canonical(it->path(), ec);
    if (ec) {
      ec.clear();
      continue;
    }
    if (inside(target)) continue;
    fs::path mount = fs::is_directory(target, ec) ? target : target.parent_path();
    if (std::find(out.begin(), out.end(), mount.string()) == out.end()) out.push_back(mount);
  }
  return out;
}

util::Result<ContainerLayer> ResolveImage(
    const std::string& reference, const std::vector<std::string>& run_options,
    std::optional<std::chrono::steady_clock::time_point> deadline,
    const std::atomic<bool>* cancel) {
  const std::vector<std::string> inspect = {"image", "inspect", "--format",
                                            "{{.Id}}\t{{json .Config.Env}}", reference};
  auto inspected = RunPodman(inspect, deadline, cancel);
  if (!inspected) return std::move(inspected).error();
  if (inspected->exit_code != 0 && IsImageId(reference)) {
    // An ID names one local image; there is nothing to pull.
    return util::NotFoundError("container image " + reference +
                               " is not in the local image store (removed with `podman rmi`?)");
  }
  if (inspected->exit_code != 0) {
    std::vector<std::string> pull = {"pull"};
    if (IsInsecureRegistry(reference)) pull.push_back("--tls-verify=false");
    pull.push_back(reference);
    auto pulled = RunPodman(pull, deadline, cancel);
    if (!pulled) return std::move(pulled).error();
    if (pulled->exit_code != 0) {
      return util::NotFoundError(
          "container image '" + reference +
          "' is not in the local image store and cannot be pulled: " + FormatFailure(*pulled));
    }
    inspected = RunPodman(inspect, deadline, cancel);
    if (!inspected) return std::move(inspected).error();
    if (inspected->exit_code != 0) {
      return util::IOError("cannot inspect container image '" + reference +
                           "': " + FormatFailure(*inspected));
    }
  }
  // The output line "<id>\t<json list>" is the tail's last: podman's warnings
  // (stderr, merged into the tail) come before it.
  const std::string line = inspected->tail.substr(inspected->tail.rfind('\n') + 1);
  size_t tab = line.find('\t');
  Json env = Json::array();
  if (tab != std::string::npos) {
    try {
      env = Json::parse(line.substr(tab + 1));
    } catch (const Json::exception&) {
      env = Json::array();
    }
  }
  ContainerLayer layer;
  layer.image = util::PyStrip(line.substr(0, tab));
  layer.reference = reference;
  layer.run_options = run_options;
  if (env.is_array()) {
    for (const Json& entry : env) {
      if (!entry.is_string()) continue;
      const std::string text = entry.get<std::string>();
      size_t eq = text.find('=');
      if (eq != std::string::npos)
        layer.image_env.emplace_back(text.substr(0, eq), text.substr(eq + 1));
    }
  }
  if (layer.image.empty()) {
    return util::IOError("podman printed no image ID for '" + reference + "'");
  }
  return layer;
}

void RemoveContainer(const std::string& name) {
  if (name.empty()) return;
  (void)RunPodman({"rm", "-f", "--time", "0", name},
                  std::chrono::steady_clock::now() + std::chrono::seconds(30), nullptr);
}

}  // namespace strata::agent
