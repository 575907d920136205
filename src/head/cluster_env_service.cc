#include "head/cluster_env_service.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "agent/launcher.h"
#include "clusterenv/containerfile.h"
#include "util/clock.h"
#include "util/file_tail.h"
#include "util/log.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;

constexpr char kHeadStoppedMessage[] = "the head stopped before the build finished";
constexpr char kTimeoutVariable[] = "STRATA_CLUSTER_ENV_BUILD_TIMEOUT_S";
constexpr std::size_t kLogReadChunk = 64 * 1024;

std::string BuildRef(std::string_view name, int version) {
  return std::string(name) + ":" + std::to_string(version);
}

// "<name>-<N>", the stem of a build's files.
std::string BuildStem(std::string_view name, int version) {
  return std::string(name) + "-" + std::to_string(version);
}

std::string ImageRef(std::string_view name, int version) {
  return "localhost/strata/" + BuildRef(name, version);
}

// "1, 3".
std::string JoinVersions(const std::vector<int>& versions) {
  std::string text;
  for (int version : versions) {
    if (!text.empty()) text += ", ";
    text += std::to_string(version);
  }
  return text;
}

// The builds of one name, run one at a time, in version order, by one thread.
struct QueuedBuild {
  int version = 0;
  model::ClusterEnvSpec spec;
};

struct NameQueue {
  std::deque<QueuedBuild> queued;
  std::shared_ptr<std::atomic<bool>> running_cancel;  // of the build being run, if any
  bool active = false;                                // `thread` is draining `queued`
  std::thread thread;
};

}  // namespace

util::Result<ClusterEnvServiceOptions> ClusterEnvServiceOptions::FromEnvironment(
    const fs::path& home) {
  ClusterEnvServiceOptions options;
  options.home = home;
  if (const char* registry = std::getenv("STRATA_IMAGE_REGISTRY")) options.registry = registry;
  if (const char* verify = std::getenv("STRATA_IMAGE_REGISTRY_TLS_VERIFY")) {
    std::string value = verify;
    std::transform(value.begin(), value.end(), value.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    options.registry_tls_verify = !(value == "0" || value == "false");
  }
  if (const char* timeout = std::getenv(kTimeoutVariable); timeout != nullptr && *timeout != '\0') {
    std::string_view text = timeout;
    long long seconds = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size() || seconds <= 0) {
      return util::ValueError(std::string(kTimeoutVariable) +
                              " must be a positive integer (seconds), got '" + std::string(text) +
                              "'");
    }
    options.build_timeout = std::chrono::seconds(seconds);
  }
  options.environment = agent::CurrentEnvironment();
  return options;
}

struct ClusterEnvService::Impl {
  HeadDb* db = nullptr;
  std::unique_ptr<clusterenv::ImageBuilder> builder;
  ClusterEnvServiceOptions options;

  // Guards the queues and shut_down. StartBuild holds it from the version's
  // assignment to the queueing, so each name's queue is in version order.
  mutable std::mutex mu;
  std::map<std::string, NameQueue, std::less<>> queues;  // entries are never erased
  bool shut_down = false;

  // OCI archives still to write, oldest first; one exporter thread writes
  // them, so a build is SUCCEEDED (and runnable) without waiting for one.
  struct Export {
    std::string image_ref;
    fs::path archive;
  };
  std::deque<Export> exports;  // guarded by mu
  std::condition_variable export_cv;
  std::atomic<bool> export_cancel{false};
  std::thread exporter;

  std::atomic<std::uint64_t> builds_started{0};
  std::atomic<std::uint64_t> builds_succeeded{0};
  std::atomic<std::uint64_t> builds_failed{0};
  double build_seconds_sum = 0;  // guarded by mu

  fs::path LogPath(std::string_view name, int version) const {
    return options.home / "cluster_envs" / "logs" / (BuildStem(name, version) + ".log");
  }
  fs::path WorkDir(std::string_view name, int version) const {
    return options.home / "cluster_envs" / "work" / BuildStem(name, version);
  }
  fs::path OciArchive(std::string_view name, int version) const {
    return options.home / "images" / (BuildStem(name, version) + ".oci.tar");
  }

  void Save(const ClusterEnvBuildRecord& build, const std::optional<std::string>& log = {}) {
    if (auto ok = db->UpdateClusterEnvBuild(build, log); !ok) {
      util::LogError("cannot record cluster env build " + BuildRef(build.name, build.version) +
                     ": " + ok.error().message);
    }
  }

  void Finish(ClusterEnvBuildRecord& build, BuildStatus status, std::string error_message,
              std::string log) {
    build.status = status;
    build.error_message = std::move(error_message);
    build.finished_ms = util::WallClockMs();
    Save(build, log);
    ++(status == BuildStatus::kSucceeded ? builds_succeeded : builds_failed);
  }

  // Caller holds `mu`.
  void QueueExport(const ClusterEnvBuildRecord& build) {
    exports.push_back({build.image_ref, build.oci_archive});
    export_cv.notify_all();
  }

  void ExportUntilShutDown() {
    while (true) {
      Export next;
      {
        std::unique_lock lock(mu);
        export_cv.wait(lock, [this] { return shut_down || !exports.empty(); });
        if (shut_down) return;
        next = std::move(exports.front());
        exports.pop_front();
      }
      auto exported = builder->ExportArchive(next.image_ref, next.archive, &export_cancel,
                                             [](std::string_view) {});
      if (!exported && !export_cancel) {
        util::LogWarning("cannot export " + next.image_ref +
                         " as an OCI archive: " + exported.error().message);
      }
    }
  }

  // Runs the queued builds of `name` until none is left.
  void Drain(const std::string& name) {
    while (true) {
      QueuedBuild next;
      std::shared_ptr<std::atomic<bool>> cancel;
      {
        std::lock_guard lock(mu);
        NameQueue& queue = queues.find(name)->second;
        queue.running_cancel.reset();
        if (queue.queued.empty()) {
          queue.active = false;
          return;
        }
        next = std::move(queue.queued.front());
        queue.queued.pop_front();
        // Builds still queued when Shutdown came are failed without running.
        cancel = std::make_shared<std::atomic<bool>>(shut_down);
        queue.running_cancel = cancel;
      }
      RunBuild(name, next, *cancel);
    }
  }

  void RunBuild(const std::string& name, const QueuedBuild& queued,
                const std::atomic<bool>& cancel) {
    auto stored = db->GetClusterEnvBuild(name, queued.version);
    if (!stored) {
      util::LogError("cannot run cluster env build " + BuildRef(name, queued.version) + ": " +
                     stored.error().message);
      return;
    }
    ClusterEnvBuildRecord build = std::move(*stored);
    if (cancel) {
      Finish(build, BuildStatus::kFailed, kHeadStoppedMessage, "");
      return;
    }
    build.status = BuildStatus::kInProgress;
    build.started_ms = util::WallClockMs();
    Save(build);
    auto started = std::chrono::steady_clock::now();

    fs::path log_path = LogPath(name, queued.version);
    std::error_code ec;
    fs::create_directories(log_path.parent_path(), ec);
    std::ofstream log_file(log_path, std::ios::binary | std::ios::trunc);
    if (!log_file) util::LogWarning("cannot write the build log " + log_path.string());
    // The builder may call `log` from more than one thread.
    std::mutex log_mu;
    std::string log_text;
    auto log = [&](std::string_view line) {
      std::lock_guard lock(log_mu);
      log_text.append(line).push_back('\n');
      if (log_file) {
        log_file << line << '\n';
        log_file.flush();  // ReadBuildLog reads the file while the build runs
      }
    };

    fs::path work_dir = WorkDir(name, queued.version);
    fs::path oci_archive = OciArchive(name, queued.version);
    fs::remove_all(work_dir, ec);
    for (const fs::path& dir : {work_dir, oci_archive.parent_path()}) {
      if (fs::create_directories(dir, ec); ec) {
        Finish(build, BuildStatus::kFailed,
               "cannot create the directory " + dir.string() + ": " + ec.message(), log_text);
        return;
      }
    }

    clusterenv::ImageBuildRequest request;
    request.spec = queued.spec;
    request.image_ref = build.image_ref;
    request.work_dir = work_dir;
    // Only the pip step declares them; podman warns about unused ones.
    if (!queued.spec.pip_packages.empty()) {
      request.build_args = clusterenv::PipBuildArgs(options.environment);
    }
    request.registry = options.registry;
    request.registry_tls_verify = options.registry_tls_verify;
    auto deadline = started + options.build_timeout;
    request.deadline = deadline;
    request.cancel = &cancel;
    request.log = log;
    auto result = builder->Build(request);
    auto ended = std::chrono::steady_clock::now();
    fs::remove_all(work_dir, ec);
    {
      std::lock_guard lock(mu);
      build_seconds_sum += std::chrono::duration<double>(ended - started).count();
    }

    std::string full_log;
    {
      std::lock_guard lock(log_mu);
      full_log = log_text;
    }
    if (result) {
      build.image_id = result->image_id;
      build.digest = result->digest;
      build.registry_ref = result->registry_ref;
      build.oci_archive = oci_archive.string();
      Finish(build, BuildStatus::kSucceeded, "", std::move(full_log));
      std::lock_guard lock(mu);
      QueueExport(build);
    } else if (cancel) {
      Finish(build, BuildStatus::kFailed, kHeadStoppedMessage, std::move(full_log));
    } else if (ended >= deadline) {
      Finish(build, BuildStatus::kFailed,
             "build timed out after " + std::to_string(options.build_timeout.count()) +
                 " s: " + result.error().message,
             std::move(full_log));
    } else {
      Finish(build, BuildStatus::kFailed, result.error().message, std::move(full_log));
    }
  }
};

ClusterEnvService::ClusterEnvService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ClusterEnvService::~ClusterEnvService() {
  Shutdown();
}

util::Result<std::unique_ptr<ClusterEnvService>> ClusterEnvService::Open(
    HeadDb& db, std::unique_ptr<clusterenv::ImageBuilder> builder,
    ClusterEnvServiceOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->db = &db;
  impl->builder = std::move(builder);
  impl->options = std::move(options);
  for (ClusterEnvBuildRecord& build :
       db.ListClusterEnvBuildsWithStatus({BuildStatus::kPending, BuildStatus::kInProgress})) {
    std::error_code ec;
    fs::remove_all(impl->WorkDir(build.name, build.version), ec);
    fs::path partial = impl->OciArchive(build.name, build.version);
    fs::remove(partial.string() + ".tmp", ec);
    build.status = BuildStatus::kFailed;
    build.error_message = kHeadStoppedMessage;
    build.finished_ms = util::WallClockMs();
    // What the build printed before the head died is all the log it has.
    if (auto ok = db.UpdateClusterEnvBuild(
            build, util::FileText(impl->LogPath(build.name, build.version)));
        !ok) {
      return std::move(ok).error();
    }
  }
  // Archives a previous head did not get to write (the images are still in
  // the local store).
  for (const ClusterEnvBuildRecord& build :
       db.ListClusterEnvBuildsWithStatus({BuildStatus::kSucceeded})) {
    std::error_code ec;
    if (build.oci_archive.empty() || fs::exists(build.oci_archive, ec)) continue;
    fs::remove(build.oci_archive + ".tmp", ec);
    impl->QueueExport(build);
  }
  impl->exporter = std::thread([impl = impl.get()] { impl->ExportUntilShutDown(); });
  return std::unique_ptr<ClusterEnvService>(new ClusterEnvService(std::move(impl)));
}

util::Result<ClusterEnvBuildRecord> ClusterEnvService::StartBuild(
    std::string_view name, const model::ClusterEnvSpec& spec) {
  if (auto ok = model::ValidateClusterEnvName(name); !ok) return std::move(ok).error();
  // A spec made in code has not been through the parser's checks.
  util::Json frozen = spec.ToJson();
  auto checked = model::ClusterEnvSpec::FromJson(frozen);
  if (!checked) return std::move(checked).error();

  std::lock_guard lock(impl_->mu);
  if (impl_->shut_down) {
    return util::Error{util::ErrorKind::kUnavailable, "The head is stopping"};
  }
  ClusterEnvBuildRecord build;
  build.name = std::string(name);
  build.spec = std::move(frozen);
  build.status = BuildStatus::kPending;
  build.created_ms = util::WallClockMs();
  // The version is assigned by the insert; this service is the only writer of
  // builds and holds `mu`, so the next version is known beforehand and the
  // image reference can go in with the row.
  auto env = impl_->db->GetClusterEnv(name);
  int expected = env ? env->latest_version + 1 : 1;
  build.image_ref = ImageRef(name, expected);
  auto inserted = impl_->db->InsertClusterEnvBuild(std::move(build));
  if (!inserted) return std::move(inserted).error();
  if (inserted->version != expected) {
    inserted->image_ref = ImageRef(name, inserted->version);
    if (auto ok = impl_->db->UpdateClusterEnvBuild(*inserted); !ok) return std::move(ok).error();
  }
  ++impl_->builds_started;

  NameQueue& queue = impl_->queues[std::string(name)];
  queue.queued.push_back({inserted->version, *checked});
  if (!queue.active) {
    // A previous drainer has left its loop (it cleared `active` under `mu`).
    if (queue.thread.joinable()) queue.thread.join();
    queue.active = true;
    queue.thread =
        std::thread([impl = impl_.get(), drained = std::string(name)] { impl->Drain(drained); });
  }
  return inserted;
}

util::Result<ClusterEnvBuildRecord> ClusterEnvService::GetBuild(std::string_view name,
                                                                int version) const {
  auto build = impl_->db->GetClusterEnvBuild(name, version);
  if (build || build.error().kind != util::ErrorKind::kNotFound) return build;
  auto env = impl_->db->GetClusterEnv(name);
  if (!env) return std::move(env).error();
  std::string builds;
  for (const ClusterEnvBuildRecord& other : impl_->db->ListClusterEnvBuilds(name)) {
    if (!builds.empty()) builds += ", ";
    builds +=
        std::to_string(other.version) + " (" + std::string(BuildStatusName(other.status)) + ")";
  }
  return util::NotFoundError("cluster environment '" + std::string(name) + "' has no build " +
                             std::to_string(version) +
                             "; its builds: " + (builds.empty() ? "none" : builds));
}

util::Result<std::vector<ClusterEnvBuildRecord>> ClusterEnvService::ListBuilds(
    std::string_view name) const {
  auto env = impl_->db->GetClusterEnv(name);
  if (!env) return std::move(env).error();
  return impl_->db->ListClusterEnvBuilds(name);
}

util::Result<ClusterEnvRecord> ClusterEnvService::GetEnv(std::string_view name) const {
  return impl_->db->GetClusterEnv(name);
}

std::vector<ClusterEnvRecord> ClusterEnvService::ListEnvs(bool include_archived) const {
  return impl_->db->ListClusterEnvs(include_archived);
}

util::Status ClusterEnvService::Archive(std::string_view name) {
  return impl_->db->ArchiveClusterEnv(name, util::WallClockMs());
}

util::Result<ClusterEnvBuildRecord> ClusterEnvService::ResolveRunnable(
    const model::ClusterEnvRef& ref) const {
  auto env = impl_->db->GetClusterEnv(ref.name);
  if (!env) return std::move(env).error();
  std::vector<ClusterEnvBuildRecord> builds = impl_->db->ListClusterEnvBuilds(ref.name);
  std::vector<int> runnable;
  const ClusterEnvBuildRecord* found = nullptr;
  for (const ClusterEnvBuildRecord& build : builds) {
    if (build.status == BuildStatus::kSucceeded) runnable.push_back(build.version);
    if (build.version == ref.version) found = &build;
  }
  std::string available =
      runnable.empty() ? "available versions: none (no build of '" + ref.name + "' succeeded)"
                       : "available versions: " + JoinVersions(runnable);
  if (found == nullptr) {
    return util::NotFoundError("cluster environment '" + ref.name + "' has no build " +
                               std::to_string(ref.version) + "; " + available);
  }
  if (found->status != BuildStatus::kSucceeded) {
    return util::ValueError("cluster environment build " + ref.ToString() + " is " +
                            std::string(BuildStatusName(found->status)) + ", not SUCCEEDED; " +
                            available);
  }
  return *found;
}

util::Result<BuildLogChunk> ClusterEnvService::ReadBuildLog(std::string_view name, int version,
                                                            std::uint64_t offset,
                                                            std::chrono::milliseconds wait) const {
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    auto build = GetBuild(name, version);
    if (!build) return std::move(build).error();
    BuildLogChunk chunk;
    if (IsTerminal(build->status)) {
      // The stored log holds the same bytes as the file, so offsets carry over.
      auto log = impl_->db->ClusterEnvBuildLog(name, version);
      if (!log) return std::move(log).error();
      if (offset < log->size()) chunk.data = log->substr(offset, kLogReadChunk);
      chunk.next_offset = offset + chunk.data.size();
      chunk.finished = chunk.next_offset >= log->size();
      return chunk;
    }
    chunk.data = util::FileChunk(impl_->LogPath(name, version), offset, kLogReadChunk);
    chunk.next_offset = offset + chunk.data.size();
    if (!chunk.data.empty() || std::chrono::steady_clock::now() >= deadline) return chunk;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

ClusterEnvCounters ClusterEnvService::Counters() const {
  ClusterEnvCounters counters;
  counters.builds_started = impl_->builds_started;
  counters.builds_succeeded = impl_->builds_succeeded;
  counters.builds_failed = impl_->builds_failed;
  std::lock_guard lock(impl_->mu);
  counters.build_seconds_sum = impl_->build_seconds_sum;
  return counters;
}

void ClusterEnvService::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(impl_->mu);
    impl_->shut_down = true;
    impl_->export_cancel = true;
    impl_->export_cv.notify_all();
    for (auto& [name, queue] : impl_->queues) {
      (void)name;
      if (queue.running_cancel) *queue.running_cancel = true;
      if (queue.thread.joinable()) threads.push_back(std::move(queue.thread));
    }
    if (impl_->exporter.joinable()) threads.push_back(std::move(impl_->exporter));
  }
  for (std::thread& thread : threads) thread.join();
}

}  // namespace strata::head
