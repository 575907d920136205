#include "agent/worker_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

#include "agent/launcher.h"
#include "agent/process.h"
#include "util/clock.h"
#include "util/digest.h"
#include "util/file_tail.h"
#include "util/log.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using EnvList = std::vector<std::pair<std::string, std::string>>;

// sizeof(sockaddr_un::sun_path) minus the terminating NUL.
constexpr std::size_t kMaxSocketPathBytes = 107;
constexpr auto kReadyPollInterval = std::chrono::milliseconds(5);
constexpr std::size_t kLogTailLines = 20;
constexpr std::int64_t kMaxIdleTimeoutSeconds = std::int64_t{100} * 365 * 24 * 3600;

util::Result<std::string> NewWorkerId() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return util::Error{util::ErrorKind::kInternal, "cannot draw random bytes for a worker id"};
  }
  return util::ToHex(bytes, sizeof bytes);
}

// True once `pid` (our child) has exited. The zombie is left in place
// (WNOWAIT) so its pid, and so its process group id, cannot be reused
// before KillAndReap signals the group.
bool HasExited(pid_t pid) {
  siginfo_t info{};
  while (::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno != EINTR) return true;  // ECHILD: not ours any more
  }
  return info.si_pid == pid;
}

// SIGKILL to the worker's whole process group (its leftovers included), then
// reaps the worker. Returns "exited with code N" / "was killed by signal N".
std::string KillAndReap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  int status = 0;
  pid_t waited;
  while ((waited = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (waited != pid) return "is gone";
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

bool DriverGone(int driver_pid) {
  return driver_pid > 0 && ::kill(driver_pid, 0) != 0 && errno == ESRCH;
}

void SetVar(EnvList& env, const std::string& name, const std::string& value) {
  std::erase_if(env, [&](const auto& entry) { return entry.first == name; });
  env.emplace_back(name, value);
}

struct Worker {
  std::string id;
  pid_t pid = 0;
  std::string job_id;
  std::string serialized_env;
  std::string env_id;
  fs::path socket_path;
  bool dedicated = false;
  bool leased = false;
  int driver_pid = 0;
  std::int64_t started_ms = 0;
  std::int64_t last_used_ms = 0;
  Clock::time_point last_used;
  std::uint64_t leases = 0;
};

}  // namespace

util::Result<WorkerPoolOptions> WorkerPoolOptions::FromEnvironment(std::string node_id) {
  WorkerPoolOptions options;
  options.node_id = std::move(node_id);
  std::error_code ec;
  if (const char* sdk = ::getenv("STRATA_PYTHON_SDK"); sdk != nullptr && *sdk != '\0') {
    // Absolute: workers start in their env's working directory.
    options.sdk_path = fs::absolute(sdk, ec);
    if (ec) options.sdk_path = sdk;
  } else {
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return util::IOError("cannot find the strata binary: " + ec.message());
    options.sdk_path = exe.parent_path() / "python";
  }
  if (const char* idle = ::getenv("STRATA_WORKER_IDLE_TIMEOUT_S"); idle != nullptr && *idle) {
    std::string_view text(idle);
    std::int64_t seconds = -1;
    auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (err != std::errc() || end != text.data() + text.size() || seconds < 0 ||
        seconds > kMaxIdleTimeoutSeconds) {
      return util::ValueError(
          "STRATA_WORKER_IDLE_TIMEOUT_S must be a whole number of seconds >= 0 "
          "(at most " +
          std::to_string(kMaxIdleTimeoutSeconds) + "), not '" + std::string(text) + "'");
    }
    options.idle_timeout = std::chrono::seconds(seconds);
  }
  return options;
}

struct WorkerPool::Impl {
  EnvManager& envs;
  NodePaths paths;
  WorkerPoolOptions options;

  mutable std::mutex mu;
  std::condition_variable stop_cv;
  bool stopping = false;                  // guarded by mu
  std::map<std::string, Worker> workers;  // guarded by mu; started workers only
  std::thread reaper;

  Impl(EnvManager& e, const NodePaths& p, WorkerPoolOptions o)
      : envs(e), paths(p), options(std::move(o)) {}

  util::Result<Worker> Start(const LeaseRequest& request, const std::string& id,
                             const fs::path& socket_path, const RuntimeEnvContext& context);
  // Kills and reaps a worker already removed from `workers`, and releases its
  // env. Drops nobody asked for (`notable`) are logged at info level.
  void Drop(const Worker& worker, std::string_view why, bool notable);
  void ReapLoop();
};

util::Result<Worker> WorkerPool::Impl::Start(const LeaseRequest& request, const std::string& id,
                                             const fs::path& socket_path,
                                             const RuntimeEnvContext& context) {
  std::error_code ec;
  fs::create_directories(socket_path.parent_path(), ec);
  if (ec) {
    return util::IOError("cannot create " + socket_path.parent_path().string() + ": " +
                         ec.message());
  }
  fs::create_directories(paths.logs_dir(), ec);
  fs::path log = paths.logs_dir() / ("worker-" + id + ".log");
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return util::IOError("cannot open " + log.string() + ": " + ::strerror(errno));

  EnvList base = CurrentEnvironment();
  SetVar(base, "STRATA_WORKER_ID", id);
  SetVar(base, "STRATA_JOB_ID", request.job_id);
  LaunchPlan plan = PlanLaunch(context,
                               {"python3", "-m", "strata._worker", "--socket", socket_path.string(),
                                "--worker-id", id, "--node-id", options.node_id},
                               base);
  // The SDK goes last so the env's own packages win over anything it holds.
  auto pythonpath = std::find_if(plan.env.begin(), plan.env.end(),
                                 [](const auto& entry) { return entry.first == "PYTHONPATH"; });
  std::string sdk = options.sdk_path.string();
  if (pythonpath == plan.env.end()) {
    plan.env.emplace_back("PYTHONPATH", sdk);
  } else if (pythonpath->second.empty()) {
    pythonpath->second = sdk;
  } else {
    pythonpath->second += ":" + sdk;
  }
  plan = HostPlan(plan, base);
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : plan.env) env_strings.push_back(key + "=" + value);

  auto spawned = SpawnInNewGroup(plan.argv, env_strings, plan.cwd, log_fd);
  ::close(log_fd);
  if (!spawned) return std::move(spawned).error();
  pid_t pid = *spawned;
  std::int64_t started_ms = util::WallClockMs();

  auto failure = [&](util::ErrorKind kind, const std::string& what) {
    std::string tail = util::FileTail(log, kLogTailLines);
    return util::Error{kind, "worker " + id + " (`" + ShellJoin(plan.argv) + "`) " + what +
                                 (tail.empty() ? ". Its log " + log.string() + " is empty."
                                               : ". Last lines of " + log.string() + ":\n" + tail)};
  };
  Clock::time_point deadline = Clock::now() + options.start_timeout;
  for (;;) {
    struct stat st {};
    if (::lstat(socket_path.c_str(), &st) == 0) break;
    if (HasExited(pid)) {
      std::string how = KillAndReap(pid);
      return failure(util::ErrorKind::kIOError, how + " before it was ready");
    }
    if (Clock::now() >= deadline) {
      KillAndReap(pid);
      fs::remove(socket_path, ec);
      return failure(util::ErrorKind::kTimeout, "did not create its socket within " +
                                                    std::to_string(options.start_timeout.count()) +
                                                    " ms and was killed");
    }
    std::this_thread::sleep_for(kReadyPollInterval);
  }

  Worker worker;
  worker.id = id;
  worker.pid = pid;
  worker.job_id = request.job_id;
  worker.serialized_env = request.serialized_env;
  worker.env_id = EnvManager::EnvId(request.serialized_env);
  worker.socket_path = socket_path;
  worker.dedicated = request.dedicated;
  worker.started_ms = started_ms;
  return worker;
}

void WorkerPool::Impl::Drop(const Worker& worker, std::string_view why, bool notable) {
  std::string how = KillAndReap(worker.pid);
  std::string message = "worker " + worker.id + " (pid " + std::to_string(worker.pid) + ", job " +
                        worker.job_id + ", env " + worker.env_id + ") " + std::string(why) +
                        "; it " + how;
  notable ? util::LogInfo(message) : util::LogDebug(message);
  std::error_code ec;
  fs::remove(worker.socket_path, ec);
  if (auto ok = envs.Delete(worker.serialized_env); !ok) util::LogWarning(ok.error().message);
}

void WorkerPool::Impl::ReapLoop() {
  std::unique_lock<std::mutex> lock(mu);
  for (;;) {
    stop_cv.wait_for(lock, options.reap_interval, [this] { return stopping; });
    if (stopping) return;
    Clock::time_point now = Clock::now();
    std::vector<std::pair<Worker, std::string>> gone;
    for (auto it = workers.begin(); it != workers.end();) {
      Worker& w = it->second;
      std::string why;
      if (HasExited(w.pid)) {
        why = "exited on its own";
      } else if (!w.leased && now - w.last_used > options.idle_timeout) {
        why = "was idle too long";
      } else if (w.leased && DriverGone(w.driver_pid)) {
        why = "was reclaimed: its driver (pid " + std::to_string(w.driver_pid) + ") is gone";
      }
      if (why.empty()) {
        ++it;
        continue;
      }
      gone.emplace_back(std::move(w), std::move(why));
      it = workers.erase(it);
    }
    if (gone.empty()) continue;
    lock.unlock();
    for (const auto& [worker, why] : gone) Drop(worker, why, true);
    lock.lock();
  }
}

WorkerPool::WorkerPool(EnvManager& envs, const NodePaths& paths, WorkerPoolOptions options)
    : impl_(std::make_unique<Impl>(envs, paths, std::move(options))) {
  impl_->reaper = std::thread([impl = impl_.get()] { impl->ReapLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  impl_->reaper.join();
  std::map<std::string, Worker> workers;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    workers.swap(impl_->workers);
  }
  for (const auto& [id, worker] : workers) impl_->Drop(worker, "was stopped with the pool", false);
}

util::Result<WorkerLease> WorkerPool::Lease(const LeaseRequest& request) {
  Impl& s = *impl_;
  std::vector<Worker> exited;
  std::optional<WorkerLease> reused;
  if (!request.dedicated) {
    std::lock_guard<std::mutex> lock(s.mu);
    // The most recently used idle worker, so that surplus ones age out.
    auto best = s.workers.end();
    for (auto it = s.workers.begin(); it != s.workers.end();) {
      Worker& w = it->second;
      if (w.leased || w.dedicated || w.job_id != request.job_id ||
          w.serialized_env != request.serialized_env) {
        ++it;
      } else if (HasExited(w.pid)) {
        exited.push_back(std::move(w));
        it = s.workers.erase(it);
      } else {
        if (best == s.workers.end() || w.last_used > best->second.last_used) best = it;
        ++it;
      }
    }
    if (best != s.workers.end()) {
      Worker& w = best->second;
      w.leased = true;
      w.driver_pid = request.driver_pid;
      w.last_used = Clock::now();
      w.last_used_ms = util::WallClockMs();
      ++w.leases;
      reused = WorkerLease{w.id, w.socket_path, w.pid, s.options.node_id};
    }
  }
  for (const Worker& w : exited) s.Drop(w, "exited on its own", true);
  if (reused) return *reused;

  auto id = NewWorkerId();
  if (!id) return std::move(id).error();
  // Checked before building the env: a path too long fails every lease alike.
  fs::path socket_path = s.paths.session_dir / "sockets" / ("w-" + *id + ".sock");
  if (socket_path.string().size() > kMaxSocketPathBytes) {
    return util::ValueError("the worker socket path " + socket_path.string() + " is " +
                            std::to_string(socket_path.string().size()) +
                            " bytes long; Unix socket paths may have at most " +
                            std::to_string(kMaxSocketPathBytes) +
                            ": use a shorter STRATA_SESSION_DIR");
  }

  CreateRequest create;
  create.serialized_env = request.serialized_env;
  create.job_id = request.job_id;
  create.config = request.config;
  auto context = s.envs.GetOrCreate(create);
  if (!context) return std::move(context).error();

  auto worker = s.Start(request, *id, socket_path, *context);
  if (!worker) {
    if (auto ok = s.envs.Delete(request.serialized_env); !ok) {
      util::LogWarning(ok.error().message);
    }
    return std::move(worker).error();
  }
  worker->leased = true;
  worker->driver_pid = request.driver_pid;
  worker->last_used = Clock::now();
  worker->last_used_ms = util::WallClockMs();
  worker->leases = 1;
  WorkerLease lease{worker->id, worker->socket_path, worker->pid, s.options.node_id};
  std::lock_guard<std::mutex> lock(s.mu);
  s.workers.emplace(worker->id, std::move(*worker));
  return lease;
}

util::Status WorkerPool::Return(const std::string& worker_id, ReturnDisposition disposition) {
  Impl& s = *impl_;
  Worker worker;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.workers.find(worker_id);
    if (it == s.workers.end()) {
      return util::NotFoundError("no worker '" + worker_id +
                                 "' on this node (it may have exited or been reclaimed)");
    }
    Worker& w = it->second;
    if (disposition == ReturnDisposition::kIdle && !w.dedicated) {
      if (!w.leased) return util::ValueError("worker '" + worker_id + "' is not leased");
      w.leased = false;
      w.driver_pid = 0;
      w.last_used = Clock::now();
      w.last_used_ms = util::WallClockMs();
      return {};
    }
    worker = std::move(w);
    s.workers.erase(it);
  }
  s.Drop(worker, "was returned to be killed", false);
  return {};
}

std::vector<WorkerInfo> WorkerPool::Workers() const {
  std::vector<WorkerInfo> infos;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [id, w] : impl_->workers) {
    infos.push_back(WorkerInfo{w.id, w.pid, w.job_id, w.env_id, w.dedicated, w.leased, w.started_ms,
                               w.last_used_ms, w.leases});
  }
  std::sort(infos.begin(), infos.end(), [](const WorkerInfo& a, const WorkerInfo& b) {
    return std::tie(a.started_ms, a.worker_id) < std::tie(b.started_ms, b.worker_id);
  });
  return infos;
}

}  // namespace strata::agent
