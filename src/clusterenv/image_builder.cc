#include "clusterenv/image_builder.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/types.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stop_token>
#include <thread>
#include <unordered_map>

#include "agent/container.h"
#include "agent/process.h"
#include "clusterenv/containerfile.h"

namespace strata::clusterenv {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using LogFn = std::function<void(std::string_view line)>;

void Log(const LogFn& log, std::string_view line) {
  if (log) log(line);
}

struct ProcessInfo {
  pid_t pid = 0;
  pid_t group = 0;
};

// Every process by its parent's pid, from /proc/<pid>/stat.
std::unordered_multimap<pid_t, ProcessInfo> ChildrenByParent() {
  std::unordered_multimap<pid_t, ProcessInfo> children;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    pid_t pid = 0;
    if (std::from_chars(name.data(), name.data() + name.size(), pid).ptr !=
        name.data() + name.size()) {
      continue;
    }
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 1));
    std::string state;
    pid_t ppid = 0;
    pid_t group = 0;
    if (rest >> state >> ppid >> group) children.emplace(ppid, ProcessInfo{pid, group});
  }
  return children;
}

// SIGKILL to the descendants of `root` outside its process group, which a
// kill of the group would miss: the processes of a RUN step run in a
// session of their own (runc's container init). Returns how many there were.
size_t KillDescendantsOutsideGroup(pid_t root) {
  auto children = ChildrenByParent();
  size_t killed = 0;
  std::deque<pid_t> queue{root};
  while (!queue.empty()) {
    pid_t parent = queue.front();
    queue.pop_front();
    auto [begin, end] = children.equal_range(parent);
    for (auto it = begin; it != end; ++it) {
      if (it->second.group != root && ::kill(it->second.pid, SIGKILL) == 0) ++killed;
      queue.push_back(it->second.pid);
    }
  }
  return killed;
}

// How long podman gets to fail the killed step and remove its containers
// before its process group is killed.
constexpr auto kCleanupGrace = 5s;

enum class Stop { kNone, kDeadline, kCancel };

struct Limits {
  std::optional<Clock::time_point> deadline;
  const std::atomic<bool>* cancel = nullptr;
};

struct Outcome {
  agent::CommandResult result;
  Stop stop = Stop::kNone;
};

// RunCommand with the deadline and cancel flag enforced by a watcher. It
// kills the processes outside the command's process group first (see
// KillDescendantsOutsideGroup), so that podman sees the step fail and cleans
// up its build container; RunCommand then kills whatever is left of the
// group.
util::Result<Outcome> Run(const agent::CommandSpec& spec, const Limits& limits, const LogFn& log,
                          const std::function<void(std::string_view)>& on_line = {}) {
  Log(log, "$ " + agent::ShellJoin(spec.argv));
  std::atomic<pid_t> pid{0};
  std::atomic<bool> stop{false};
  std::atomic<Stop> reason{Stop::kNone};
  std::jthread watcher([&](std::stop_token token) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    while (!token.stop_requested()) {
      Stop why = Stop::kNone;
      if (limits.cancel != nullptr && limits.cancel->load()) {
        why = Stop::kCancel;
      } else if (limits.deadline && Clock::now() >= *limits.deadline) {
        why = Stop::kDeadline;
      }
      if (why != Stop::kNone) {
        reason = why;
        if (pid.load() != 0 && KillDescendantsOutsideGroup(pid.load()) > 0) {
          const auto until = Clock::now() + kCleanupGrace;
          while (Clock::now() < until) {
            cv.wait_for(lock, token, 100ms, [] { return false; });
            if (token.stop_requested()) return;
            KillDescendantsOutsideGroup(pid.load());
          }
        }
        stop = true;
        return;
      }
      cv.wait_for(lock, token, 20ms, [] { return false; });
    }
  });
  agent::RunOptions options;
  options.cancel = &stop;
  options.on_start = [&](int started) { pid = started; };
  options.on_line = [&](std::string_view line) {
    if (on_line) on_line(line);
    Log(log, line);
  };
  options.tail_lines = 30;
  auto result = agent::RunCommand(spec, options);
  watcher.request_stop();
  watcher.join();
  if (!result) return std::move(result).error();
  return Outcome{std::move(*result), reason.load()};
}

// The error for a command that did not succeed; `what` says what was being
// done ("Building image X at STEP 2/3: RUN ...").
util::Error Failure(const std::string& what, const Outcome& outcome) {
  switch (outcome.stop) {
    case Stop::kCancel:
      return {util::ErrorKind::kUnavailable,
              what + " was cancelled. " + agent::FormatFailure(outcome.result)};
    case Stop::kDeadline:
      return {util::ErrorKind::kTimeout, what + " did not finish before its deadline. " +
                                             agent::FormatFailure(outcome.result)};
    case Stop::kNone:
      break;
  }
  return util::IOError(what + " failed. " + agent::FormatFailure(outcome.result));
}

bool Succeeded(const Outcome& outcome) {
  return outcome.stop == Stop::kNone && !outcome.result.timed_out && outcome.result.exit_code == 0;
}

util::Error StartFailure(const std::string& what, const util::Error& error) {
  return util::IOError(what + " failed: " + error.message);
}

bool IsHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

// A 64-digit image ID (podman's, without "sha256:").
bool IsImageId(std::string_view line) {
  return line.size() == 64 && IsHex(line);
}

util::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return util::IOError("cannot write " + path.string());
  return {};
}

class PodmanImageBuilder : public ImageBuilder {
 public:
  util::Result<ImageBuildResult> Build(const ImageBuildRequest& request) override {
    const Limits limits{request.deadline, request.cancel};
    const std::string& image = request.image_ref;
    if (image.empty()) return util::ValueError("image build: no image reference given");
    if (request.work_dir.empty()) {
      return util::ValueError("Building image " + image + ": no work directory given");
    }
    std::error_code ec;
    fs::create_directories(request.work_dir, ec);
    if (ec) {
      return util::IOError("Building image " + image + ": cannot create " +
                           request.work_dir.string() + ": " + ec.message());
    }

    std::vector<std::string> arg_names;
    for (const auto& [name, value] : request.build_args) arg_names.push_back(name);
    const fs::path containerfile = request.work_dir / "Containerfile";
    if (auto written = WriteText(containerfile, RenderContainerfile(request.spec, arg_names));
        !written) {
      return util::IOError("Building image " + image + ": " + written.error().message);
    }

    // Build arguments travel in podman's environment (`--build-arg NAME`
    // takes the value from there), so index URLs with credentials stay out
    // of the logged command line and error messages.
    std::vector<std::string> args = {"build",    "--layers",       "--network",
                                     "host",     "--ulimit",       "nofile=1024:1024",
                                     "--ulimit", "nproc=1024:1024"};
    agent::CommandSpec build;
    for (const auto& [name, value] : request.build_args) {
      args.insert(args.end(), {"--build-arg", name});
      build.env.emplace_back(name, value);
    }
    // A base image from a plain-HTTP registry (STRATA_INSECURE_REGISTRIES).
    if (agent::IsInsecureRegistry(request.spec.base_image)) args.push_back("--tls-verify=false");
    args.insert(args.end(), {"-t", image, "-f", containerfile.string(), request.work_dir.string()});
    build.argv = agent::PodmanCommand(args);
    std::string step;
    auto built = Run(build, limits, request.log, [&](std::string_view line) {
      if (line.starts_with("STEP ")) step = std::string(line);
    });
    const std::string building = "Building image " + image + (step.empty() ? "" : " at " + step);
    if (!built) return StartFailure(building, built.error());
    if (!Succeeded(*built)) return Failure(building, *built);

    ImageBuildResult result;
    const std::string inspecting = "Inspecting the built image " + image;
    std::string inspect_line;
    auto inspected =
        Run({agent::PodmanCommand({"image", "inspect", "--format", "{{.Id}} {{.Digest}}", image})},
            limits, request.log, [&](std::string_view line) {
              const size_t space = line.find(' ');
              if (space != std::string_view::npos && IsImageId(line.substr(0, space))) {
                inspect_line = std::string(line);
              }
            });
    if (!inspected) return StartFailure(inspecting, inspected.error());
    if (!Succeeded(*inspected)) return Failure(inspecting, *inspected);
    if (inspect_line.empty()) {
      return util::IOError(inspecting + ": podman printed no image ID. " +
                           agent::FormatFailure(inspected->result));
    }
    result.image_id = inspect_line.substr(0, inspect_line.find(' '));
    result.digest = inspect_line.substr(inspect_line.find(' ') + 1);

    if (!request.oci_archive.empty()) {
      if (auto saved = Save(image, request.oci_archive, limits, request.log); !saved) {
        return saved.error();
      }
    }

    if (!request.registry.empty()) {
      const std::string target = RegistryReference(request.registry, image);
      std::vector<std::string> push = {"push"};
      if (!request.registry_tls_verify) push.push_back("--tls-verify=false");
      push.insert(push.end(), {image, "docker://" + target});
      const std::string pushing = "Pushing image " + image + " to " + target;
      auto pushed = Run({agent::PodmanCommand(push)}, limits, request.log);
      if (!pushed) return StartFailure(pushing, pushed.error());
      if (!Succeeded(*pushed)) return Failure(pushing, *pushed);
      result.registry_ref = target;
    }
    return result;
  }

  util::Status ExportArchive(const std::string& image_ref, const fs::path& archive,
                             const std::atomic<bool>* cancel, const LogFn& log) override {
    Limits limits;
    limits.cancel = cancel;
    return Save(image_ref, archive, limits, log);
  }

 private:
  // `podman save` into <archive>.tmp, renamed when complete.
  static util::Status Save(const std::string& image_ref, const fs::path& archive,
                           const Limits& limits, const LogFn& log) {
    const std::string saving = "Exporting image " + image_ref + " to " + archive.string();
    fs::path tmp = archive;
    tmp += ".tmp";
    std::error_code ec;
    if (archive.has_parent_path()) fs::create_directories(archive.parent_path(), ec);
    auto saved = Run(
        {agent::PodmanCommand({"save", "--format", "oci-archive", "-o", tmp.string(), image_ref})},
        limits, log);
    if (!saved || !Succeeded(*saved)) {
      fs::remove(tmp, ec);
      if (!saved) return StartFailure(saving, saved.error());
      return Failure(saving, *saved);
    }
    fs::rename(tmp, archive, ec);
    if (ec) {
      fs::remove(tmp, ec);
      return util::IOError(saving + ": cannot rename " + tmp.string() + ": " + ec.message());
    }
    return {};
  }
};

// Mount points at or below `dir` (from /proc/self/mountinfo), deepest last.
std::vector<std::string> MountsBelow(const fs::path& dir) {
  std::vector<std::string> mounts;
  const std::string prefix = dir.string();
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    if (!(fields >> id >> parent >> device >> root >> mount_point)) continue;
    // The kernel writes space, tab, newline and backslash as \ooo.
    std::string decoded;
    for (size_t i = 0; i < mount_point.size(); ++i) {
      int code = 0;
      if (mount_point[i] == '\\' && i + 3 < mount_point.size() &&
          std::from_chars(mount_point.data() + i + 1, mount_point.data() + i + 4, code, 8).ptr ==
              mount_point.data() + i + 4) {
        decoded += static_cast<char>(code);
        i += 3;
      } else {
        decoded += mount_point[i];
      }
    }
    if (decoded == prefix || decoded.starts_with(prefix + "/")) mounts.push_back(decoded);
  }
  return mounts;
}

// Removes debootstrap's root file system. A debootstrap that was killed can
// leave /proc and /sys mounted inside it; those are detached first so the
// removal never walks into them.
void RemoveRootfs(const fs::path& rootfs) {
  std::error_code ec;
  if (!fs::exists(rootfs, ec)) return;
  auto mounts = MountsBelow(fs::weakly_canonical(rootfs, ec));
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
  fs::remove_all(rootfs, ec);
}

// The last `count` lines of a text file, '\n'-joined ("" when unreadable).
std::string TailOfFile(const fs::path& path, size_t count) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > count) lines.pop_front();
  }
  std::string tail;
  for (const auto& l : lines) tail += (tail.empty() ? "" : "\n") + l;
  return tail;
}

}  // namespace

std::unique_ptr<ImageBuilder> MakePodmanImageBuilder() {
  return std::make_unique<PodmanImageBuilder>();
}

std::string RegistryReference(std::string_view registry, std::string_view image_ref) {
  while (registry.ends_with('/')) registry.remove_suffix(1);
  if (image_ref.starts_with("localhost/"))
    image_ref.remove_prefix(std::string_view("localhost/").size());
  return std::string(registry) + "/" + std::string(image_ref);
}

std::string DefaultDebianMirror(const fs::path& sources_file) {
  std::ifstream in(sources_file);
  std::string line;
  while (std::getline(in, line)) {
    // deb822: fields start in the first column; '#' lines are comments and
    // indented lines continue the previous field.
    if (line.empty() || line[0] == '#' || std::isspace(static_cast<unsigned char>(line[0]))) {
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (key != "uris") continue;
    std::istringstream values(line.substr(colon + 1));
    std::string uri;
    if (values >> uri) return uri;
  }
  return "http://deb.debian.org/debian";
}

util::Result<std::string> BuildDebianBaseImage(const BaseImageRequest& request) {
  const std::string& image = request.image_ref;
  const std::string what = "Building base image " + image;
  if (image.empty()) return util::ValueError("base image build: no image reference given");
  if (request.work_dir.empty()) return util::ValueError(what + ": no work directory given");
  std::error_code ec;
  fs::create_directories(request.work_dir, ec);
  if (ec) {
    return util::IOError(what + ": cannot create " + request.work_dir.string() + ": " +
                         ec.message());
  }
  const fs::path rootfs = request.work_dir / "rootfs";
  const fs::path tarball = request.work_dir / "rootfs.tar";
  RemoveRootfs(rootfs);
  struct Cleanup {
    fs::path rootfs, tarball;
    ~Cleanup() {
      RemoveRootfs(rootfs);
      std::error_code ignored;
      fs::remove(tarball, ignored);
    }
  } cleanup{rootfs, tarball};
  const Limits limits{request.deadline, nullptr};
  const std::string mirror = request.mirror.empty() ? DefaultDebianMirror() : request.mirror;

  agent::CommandSpec debootstrap;
  debootstrap.argv = {"debootstrap", "--variant=minbase"};
  if (!request.packages.empty()) {
    std::string include = "--include=";
    for (size_t i = 0; i < request.packages.size(); ++i) {
      include += (i == 0 ? "" : ",") + request.packages[i];
    }
    debootstrap.argv.push_back(include);
  }
  debootstrap.argv.insert(debootstrap.argv.end(), {request.suite, rootfs.string(), mirror});
  auto bootstrapped = Run(debootstrap, limits, request.log);
  if (!bootstrapped) return StartFailure(what, bootstrapped.error());
  if (!Succeeded(*bootstrapped)) {
    util::Error error = Failure(what, *bootstrapped);
    const fs::path debootstrap_log = rootfs / "debootstrap" / "debootstrap.log";
    std::string log_tail = TailOfFile(debootstrap_log, 20);
    if (!log_tail.empty()) {
      error.message += "\nLast lines of " + debootstrap_log.string() + ":\n" + log_tail;
    }
    return error;
  }

  // The root file system goes through a tar file rather than a pipe into
  // `podman import -`: a shell pipeline would hide a failing tar (dash has
  // no pipefail) and import a truncated tree.
  agent::CommandSpec tar{{"tar", "-C", rootfs.string(), "-cf", tarball.string(), "."}};
  auto archived = Run(tar, limits, request.log);
  if (!archived) return StartFailure(what, archived.error());
  if (!Succeeded(*archived)) return Failure(what, *archived);
  RemoveRootfs(rootfs);

  // PATH as Debian's official images set it: a process started with the
  // image's environment must find python3.
  std::string image_id;
  auto imported = Run({agent::PodmanCommand(
                          {"import", "--change",
                           "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           tarball.string(), image})},
                      limits, request.log, [&](std::string_view line) {
                        // `podman import` ends with "sha256:<ID>".
                        if (line.starts_with("sha256:")) line.remove_prefix(7);
                        if (IsImageId(line)) image_id = std::string(line);
                      });
  if (!imported) return StartFailure(what, imported.error());
  if (!Succeeded(*imported)) return Failure(what, *imported);
  if (image_id.empty()) {
    return util::IOError(what + ": `podman import` printed no image ID. " +
                         agent::FormatFailure(imported->result));
  }
  return image_id;
}

}  // namespace strata::clusterenv
