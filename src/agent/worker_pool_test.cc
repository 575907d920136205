#include "agent/worker_pool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include "agent/agent_http.h"
#include "model/runtime_env.h"
#include "util/clock.h"
#include "util/pystring.h"
#include "util/scoped_env_testing.h"
#include "util/temp_dir_testing.h"

extern char** environ;

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using util::Json;

// A stand-in for the SDK's worker: same arguments, listens on the socket
// (bound under another name and renamed, so it is ready once the path
// exists) and answers "ping" and "env NAME" lines. TEST_WORKER_FAIL makes it
// exit at start.
constexpr char kWorkerScript[] = R"PY(
import argparse, os, socket, sys, threading

parser = argparse.ArgumentParser()
parser.add_argument("--socket", required=True)
parser.add_argument("--worker-id", required=True)
parser.add_argument("--node-id", required=True)
args = parser.parse_args()
if os.environ.get("TEST_WORKER_FAIL"):
    print("worker failing on purpose", file=sys.stderr)
    sys.exit(3)
temp = os.path.join(os.path.dirname(args.socket), "t-" + args.worker_id + ".sock")
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(temp)
server.listen(16)
os.rename(temp, args.socket)


def serve(conn):
    with conn, conn.makefile("rw") as f:
        for line in f:
            words = line.split()
            if words == ["ping"]:
                f.write("pong %s %d %s\n" % (os.environ["STRATA_WORKER_ID"], os.getpid(), sys.prefix))
            elif len(words) == 2 and words[0] == "env":
                f.write(os.environ.get(words[1], "") + "\n")
            elif words == ["node"]:
                f.write(args.node_id + "\n")
            f.flush()


while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
)PY";

// Sends one line to a worker's socket; its one-line answer (or what failed).
std::string Ask(const fs::path& socket_path, const std::string& line) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket failed";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string error = "connect failed: " + std::string(::strerror(errno));
    ::close(fd);
    return error;
  }
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string message = line + "\n";
  if (::write(fd, message.data(), message.size()) != static_cast<ssize_t>(message.size())) {
    ::close(fd);
    return "write failed";
  }
  std::string reply;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') reply += c;
  ::close(fd);
  return reply;
}

bool Alive(int pid) {
  return ::kill(pid, 0) == 0;
}

// Polls `done` every 10 ms for up to `limit`.
bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

std::string Serialized(const Json& env) {
  auto created = model::RuntimeEnv::Create(env);
  EXPECT_TRUE(created) << (created ? "" : created.error().message);
  return created ? *created->Serialize() : "";
}

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    paths_.home = temp_.path() / "home";
    paths_.session_dir = temp_.path() / "s";
    util::testing::WriteFile(sdk_ / "strata" / "__init__.py", "");
    util::testing::WriteFile(sdk_ / "strata" / "_worker.py", kWorkerScript);
    auto envs = EnvManager::Open(paths_);
    ASSERT_TRUE(envs) << envs.error().message;
    envs_ = std::move(envs).value();
    options_.sdk_path = sdk_;
    options_.node_id = "node-1";
    options_.reap_interval = 20ms;
  }

  std::unique_ptr<WorkerPool> NewPool() {
    return std::make_unique<WorkerPool>(*envs_, paths_, options_);
  }

  static LeaseRequest Request(const std::string& job_id, const std::string& env = "{}") {
    LeaseRequest request;
    request.job_id = job_id;
    request.serialized_env = env;
    return request;
  }

  // The lease of `request`, failing the test when there is none.
  static WorkerLease MustLease(WorkerPool& pool, const LeaseRequest& request) {
    auto lease = pool.Lease(request);
    EXPECT_TRUE(lease) << lease.error().message;
    return lease ? *lease : WorkerLease{};
  }

  int EnvRefs(const std::string& serialized_env) const {
    for (const EnvInfo& info : envs_->Info()) {
      if (info.serialized_env == serialized_env) return info.ref_count;
    }
    return -1;
  }

  util::testing::TempDir temp_;
  fs::path sdk_ = temp_.path() / "sdk";
  NodePaths paths_;
  std::unique_ptr<EnvManager> envs_;
  WorkerPoolOptions options_;
};

TEST_F(WorkerPoolTest, LeaseStartsAWorkerThatAnswersOnItsSocket) {
  auto pool = NewPool();
  WorkerLease lease = MustLease(*pool, Request("job1"));
  EXPECT_EQ(lease.worker_id.size(), 16u);
  EXPECT_EQ(lease.worker_id.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(lease.socket_path, paths_.session_dir / "sockets" / ("w-" + lease.worker_id + ".sock"));
  EXPECT_EQ(lease.node_id, "node-1");

  std::vector<std::string> pong = util::PySplit(Ask(lease.socket_path, "ping"));
  ASSERT_EQ(pong.size(), 4u);
  EXPECT_EQ(pong[0], "pong");
  EXPECT_EQ(pong[1], lease.worker_id);
  EXPECT_EQ(pong[2], std::to_string(lease.pid));
  EXPECT_FALSE(pong[3].empty());
  EXPECT_EQ(Ask(lease.socket_path, "env STRATA_JOB_ID"), "job1");
  EXPECT_EQ(Ask(lease.socket_path, "node"), "node-1");
  std::string pythonpath = Ask(lease.socket_path, "env PYTHONPATH");
  EXPECT_TRUE(pythonpath.ends_with(sdk_.string())) << pythonpath;
  EXPECT_TRUE(fs::exists(paths_.logs_dir() / ("worker-" + lease.worker_id + ".log")));
  // Its own process group.
  EXPECT_EQ(::getpgid(lease.pid), lease.pid);
  EXPECT_EQ(EnvRefs("{}"), 1);
}

TEST_F(WorkerPoolTest, IdleWorkerIsReusedForTheSameJobAndEnv) {
  auto pool = NewPool();
  WorkerLease first = MustLease(*pool, Request("job1"));
  ASSERT_TRUE(pool->Return(first.worker_id, ReturnDisposition::kIdle).ok());
  WorkerLease second = MustLease(*pool, Request("job1"));
  EXPECT_EQ(second.worker_id, first.worker_id);
  EXPECT_EQ(second.pid, first.pid);
  EXPECT_EQ(util::PySplit(Ask(second.socket_path, "ping"))[2], std::to_string(first.pid));
  std::vector<WorkerInfo> workers = pool->Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].leases, 2u);
  EXPECT_EQ(EnvRefs("{}"), 1);
}

TEST_F(WorkerPoolTest, DifferentEnvOrJobGetsAnotherWorker) {
  auto pool = NewPool();
  WorkerLease first = MustLease(*pool, Request("job1"));
  ASSERT_TRUE(pool->Return(first.worker_id, ReturnDisposition::kIdle).ok());

  WorkerLease other_job = MustLease(*pool, Request("job2"));
  EXPECT_NE(other_job.worker_id, first.worker_id);
  EXPECT_EQ(Ask(other_job.socket_path, "env STRATA_JOB_ID"), "job2");

  std::string env = Serialized(Json::object({{"env_vars", {{"COLOR", "blue"}}}}));
  WorkerLease other_env = MustLease(*pool, Request("job1", env));
  EXPECT_NE(other_env.worker_id, first.worker_id);
  EXPECT_NE(other_env.worker_id, other_job.worker_id);
  EXPECT_EQ(Ask(other_env.socket_path, "env COLOR"), "blue");
  EXPECT_EQ(Ask(first.socket_path, "env COLOR"), "");
  EXPECT_EQ(pool->Workers().size(), 3u);
}

TEST_F(WorkerPoolTest, DedicatedLeasesAreAlwaysNewAndKilledOnReturn) {
  auto pool = NewPool();
  WorkerLease pooled = MustLease(*pool, Request("job1"));
  ASSERT_TRUE(pool->Return(pooled.worker_id, ReturnDisposition::kIdle).ok());

  LeaseRequest actor = Request("job1");
  actor.dedicated = true;
  WorkerLease a = MustLease(*pool, actor);
  WorkerLease b = MustLease(*pool, actor);
  EXPECT_NE(a.worker_id, pooled.worker_id);
  EXPECT_NE(b.worker_id, a.worker_id);

  ASSERT_TRUE(pool->Return(a.worker_id, ReturnDisposition::kIdle).ok());
  EXPECT_FALSE(Alive(a.pid));
  EXPECT_FALSE(fs::exists(a.socket_path));
  ASSERT_TRUE(pool->Return(b.worker_id, ReturnDisposition::kKill).ok());
  EXPECT_FALSE(Alive(b.pid));

  // A dedicated worker is never handed out again: the pooled one is.
  EXPECT_EQ(MustLease(*pool, Request("job1")).worker_id, pooled.worker_id);
  EXPECT_EQ(pool->Workers().size(), 1u);
  EXPECT_EQ(EnvRefs("{}"), 1);
}

TEST_F(WorkerPoolTest, KillReturnStopsAPooledWorker) {
  auto pool = NewPool();
  WorkerLease lease = MustLease(*pool, Request("job1"));
  ASSERT_TRUE(pool->Return(lease.worker_id, ReturnDisposition::kKill).ok());
  EXPECT_FALSE(Alive(lease.pid));
  EXPECT_TRUE(pool->Workers().empty());
  EXPECT_EQ(EnvRefs("{}"), 0);
}

TEST_F(WorkerPoolTest, ReturnErrors) {
  auto pool = NewPool();
  auto unknown = pool->Return("0123456789abcdef", ReturnDisposition::kIdle);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind, util::ErrorKind::kNotFound);

  WorkerLease lease = MustLease(*pool, Request("job1"));
  ASSERT_TRUE(pool->Return(lease.worker_id, ReturnDisposition::kIdle).ok());
  auto twice = pool->Return(lease.worker_id, ReturnDisposition::kIdle);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().kind, util::ErrorKind::kValueError);
}

TEST_F(WorkerPoolTest, ConcurrentLeasesGetDistinctWorkers) {
  auto pool = NewPool();
  constexpr int kThreads = 8;
  std::vector<util::Result<WorkerLease>> leases(kThreads, util::Error{});
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { leases[i] = pool->Lease(Request("job1")); });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::string> ids;
  std::set<int> pids;
  for (const auto& lease : leases) {
    ASSERT_TRUE(lease) << lease.error().message;
    ids.insert(lease->worker_id);
    pids.insert(lease->pid);
    EXPECT_EQ(util::PySplit(Ask(lease->socket_path, "ping"))[1], lease->worker_id);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads));
  EXPECT_EQ(pids.size(), static_cast<std::size_t>(kThreads));
  EXPECT_EQ(EnvRefs("{}"), kThreads);
}

TEST_F(WorkerPoolTest, WorkerThatExitsAtStartFailsTheLeaseWithItsLog) {
  auto pool = NewPool();
  std::string env = Serialized(Json::object({{"env_vars", {{"TEST_WORKER_FAIL", "1"}}}}));
  auto lease = pool->Lease(Request("job1", env));
  ASSERT_FALSE(lease);
  EXPECT_NE(lease.error().message.find("exited with code 3 before it was ready"), std::string::npos)
      << lease.error().message;
  EXPECT_NE(lease.error().message.find("worker failing on purpose"), std::string::npos)
      << lease.error().message;
  EXPECT_TRUE(pool->Workers().empty());
  EXPECT_EQ(EnvRefs(env), 0);
}

TEST_F(WorkerPoolTest, EnvSetupFailureFailsTheLease) {
  auto pool = NewPool();
  auto lease = pool->Lease(Request("job1", R"({"conda": "x"})"));
  ASSERT_FALSE(lease);
  EXPECT_NE(lease.error().message.find("not supported yet"), std::string::npos)
      << lease.error().message;
  EXPECT_TRUE(pool->Workers().empty());
}

TEST_F(WorkerPoolTest, SocketPathTooLongFailsClearly) {
  paths_.session_dir = temp_.path() / std::string(100, 'x');
  auto pool = NewPool();
  auto lease = pool->Lease(Request("job1"));
  ASSERT_FALSE(lease);
  EXPECT_EQ(lease.error().kind, util::ErrorKind::kValueError);
  EXPECT_NE(lease.error().message.find("at most 107"), std::string::npos) << lease.error().message;
  EXPECT_EQ(EnvRefs("{}"), -1);  // never built
}

TEST_F(WorkerPoolTest, IdleWorkersAreReaped) {
  options_.idle_timeout = 200ms;
  auto pool = NewPool();
  WorkerLease idle = MustLease(*pool, Request("job1"));
  WorkerLease busy = MustLease(*pool, Request("job1"));
  ASSERT_TRUE(pool->Return(idle.worker_id, ReturnDisposition::kIdle).ok());
  auto returned = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return pool->Workers().size() == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - returned, 200ms);
  // The reaper kills outside the pool's lock, just after unlisting the worker.
  EXPECT_TRUE(Eventually([&] { return !Alive(idle.pid) && !fs::exists(idle.socket_path); }));
  // A leased worker is never idle, however long it is held.
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(pool->Workers().size(), 1u);
  EXPECT_EQ(pool->Workers()[0].worker_id, busy.worker_id);
  EXPECT_TRUE(Alive(busy.pid));
  EXPECT_EQ(EnvRefs("{}"), 1);
}

TEST_F(WorkerPoolTest, WorkerThatExitsIsDropped) {
  auto pool = NewPool();
  WorkerLease lease = MustLease(*pool, Request("job1"));
  ASSERT_EQ(::kill(lease.pid, SIGTERM), 0);
  ASSERT_TRUE(Eventually([&] { return pool->Workers().empty(); }));
  EXPECT_TRUE(Eventually([&] { return !Alive(lease.pid) && EnvRefs("{}") == 0; }));
  EXPECT_EQ(pool->Return(lease.worker_id, ReturnDisposition::kIdle).error().kind,
            util::ErrorKind::kNotFound);
}

TEST_F(WorkerPoolTest, LeaseOfADeadDriverIsReclaimed) {
  pid_t driver = 0;
  char sleep_name[] = "sleep";
  char zero[] = "0";
  char* argv[] = {sleep_name, zero, nullptr};
  ASSERT_EQ(::posix_spawnp(&driver, "sleep", nullptr, nullptr, argv, environ), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(driver, &status, 0), driver);

  auto pool = NewPool();
  LeaseRequest live = Request("job1");
  live.driver_pid = ::getpid();
  WorkerLease kept = MustLease(*pool, live);
  LeaseRequest orphan = Request("job1");
  orphan.driver_pid = driver;
  WorkerLease reclaimed = MustLease(*pool, orphan);
  ASSERT_TRUE(Eventually([&] { return pool->Workers().size() == 1; }));
  EXPECT_TRUE(Eventually([&] { return !Alive(reclaimed.pid); }));
  EXPECT_TRUE(Alive(kept.pid));
  EXPECT_EQ(pool->Workers()[0].worker_id, kept.worker_id);
}

TEST_F(WorkerPoolTest, WorkersReportsStates) {
  auto pool = NewPool();
  std::int64_t before = util::WallClockMs();
  WorkerLease pooled = MustLease(*pool, Request("job1"));
  LeaseRequest actor = Request("job2");
  actor.dedicated = true;
  WorkerLease dedicated = MustLease(*pool, actor);
  ASSERT_TRUE(pool->Return(pooled.worker_id, ReturnDisposition::kIdle).ok());

  std::vector<WorkerInfo> workers = pool->Workers();
  ASSERT_EQ(workers.size(), 2u);
  for (const WorkerInfo& w : workers) {
    bool is_pooled = w.worker_id == pooled.worker_id;
    EXPECT_EQ(w.pid, is_pooled ? pooled.pid : dedicated.pid);
    EXPECT_EQ(w.job_id, is_pooled ? "job1" : "job2");
    EXPECT_EQ(w.env_id, EnvManager::EnvId("{}"));
    EXPECT_EQ(w.dedicated, !is_pooled);
    EXPECT_EQ(w.leased, !is_pooled);
    EXPECT_GE(w.started_ms, before);
    EXPECT_GE(w.last_used_ms, w.started_ms);
    EXPECT_EQ(w.leases, 1u);
  }
}

TEST_F(WorkerPoolTest, DestructorLeavesNoWorker) {
  auto pool = NewPool();
  WorkerLease idle = MustLease(*pool, Request("job1"));
  WorkerLease leased = MustLease(*pool, Request("job1"));
  ASSERT_TRUE(pool->Return(idle.worker_id, ReturnDisposition::kIdle).ok());
  pool.reset();
  EXPECT_FALSE(Alive(idle.pid));
  EXPECT_FALSE(Alive(leased.pid));
  EXPECT_EQ(EnvRefs("{}"), 0);
}

TEST_F(WorkerPoolTest, LeaseOverHttp) {
  auto pool = NewPool();
  AgentServer server(*envs_, pool.get());
  auto port = server.Bind(0);
  ASSERT_TRUE(port) << port.error().message;
  std::thread serving([&] { EXPECT_TRUE(server.Run().ok()); });
  AgentClient client(*port);

  LeaseRequest request = Request("job1", Serialized(Json::object({{"env_vars", {{"A", "1"}}}})));
  request.config = model::RuntimeEnvConfig();
  request.driver_pid = ::getpid();
  auto lease = client.Lease(request);
  ASSERT_TRUE(lease) << lease.error().message;
  EXPECT_EQ(lease->node_id, "node-1");
  EXPECT_EQ(util::PySplit(Ask(lease->socket_path, "ping"))[2], std::to_string(lease->pid));
  EXPECT_EQ(Ask(lease->socket_path, "env A"), "1");

  auto listed = client.Workers();
  ASSERT_TRUE(listed);
  ASSERT_EQ((*listed)["workers"].size(), 1u);
  EXPECT_EQ((*listed)["workers"][0]["worker_id"], lease->worker_id);
  EXPECT_EQ((*listed)["workers"][0]["leased"], true);

  ASSERT_TRUE(client.ReturnWorker(lease->worker_id, ReturnDisposition::kKill).ok());
  EXPECT_FALSE(Alive(lease->pid));
  auto again = client.ReturnWorker(lease->worker_id, ReturnDisposition::kIdle);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().kind, util::ErrorKind::kNotFound);

  auto failed = client.Lease(Request("job1", R"({"conda": "x"})"));
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("not supported yet"), std::string::npos);

  server.Stop();
  serving.join();
}

TEST(WorkerPoolOptionsTest, FromEnvironment) {
  {
    util::testing::ScopedEnv env(
        {{"STRATA_PYTHON_SDK", "/opt/sdk"}, {"STRATA_WORKER_IDLE_TIMEOUT_S", "7"}});
    auto options = WorkerPoolOptions::FromEnvironment("n");
    ASSERT_TRUE(options) << options.error().message;
    EXPECT_EQ(options->sdk_path, "/opt/sdk");
    EXPECT_EQ(options->idle_timeout, 7s);
    EXPECT_EQ(options->node_id, "n");
  }
  {
    util::testing::ScopedEnv env(
        {{"STRATA_PYTHON_SDK", std::nullopt}, {"STRATA_WORKER_IDLE_TIMEOUT_S", std::nullopt}});
    auto options = WorkerPoolOptions::FromEnvironment("n");
    ASSERT_TRUE(options) << options.error().message;
    EXPECT_EQ(options->sdk_path, fs::read_symlink("/proc/self/exe").parent_path() / "python");
    EXPECT_EQ(options->idle_timeout, 5min);
  }
  for (const char* bad : {"-1", "1.5", "abc", "10s"}) {
    util::testing::ScopedEnv env("STRATA_WORKER_IDLE_TIMEOUT_S", bad);
    auto options = WorkerPoolOptions::FromEnvironment("n");
    ASSERT_FALSE(options) << bad;
    EXPECT_EQ(options.error().kind, util::ErrorKind::kValueError);
    EXPECT_NE(options.error().message.find("STRATA_WORKER_IDLE_TIMEOUT_S"), std::string::npos);
  }
}

}  // namespace
}  // namespace strata::agent
