// `strata start|stop|status` and `strata head`: the local cluster's daemons.
//
//   strata start --head [--host 127.0.0.1] [--port 8265] [--block]
//   strata stop
//   strata status [--address URL]
//   strata head [--host H] [--port P]      (the head in the foreground; what
//                                            `start` runs as a daemon)
//
// Daemons run in their own session (setsid), stdin from /dev/null, output
// appended to <session>/logs/head.out and agent.out. They record themselves
// (pid and address) in <session>/head.json and $STRATA_HOME/agent/agent.json.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_http.h"
#include "cli/command.h"
#include "head/head_client.h"
#include "head/head_server.h"
#include "packaging/package.h"
#include "util/file_tail.h"
#include "util/pid_record.h"

extern char** environ;

namespace strata::cli {
namespace {

namespace fs = std::filesystem;
using util::Json;

constexpr auto kStartTimeout = std::chrono::seconds(20);
constexpr auto kStopTimeout = std::chrono::seconds(20);

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.starts_with("127.");
}

// Starts `strata <args>` in its own session with output appended to `log`.
util::Result<pid_t> SpawnDaemon(const std::vector<std::string>& args, const fs::path& log) {
  std::error_code ec;
  fs::create_directories(log.parent_path(), ec);
  std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec) return util::IOError("cannot find the strata binary: " + ec.message());
  std::vector<std::string> argv_storage = {self};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, self.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return util::IOError("cannot start `strata " + args[0] + "`: " + strerror(rc));
  return pid;
}

// True once the child exited (and reaps it).
bool Exited(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

// Waits until `ready` holds or the daemon exits; an error quoting its log then.
util::Status WaitForDaemon(pid_t pid, const std::string& name, const fs::path& log,
                           const std::function<bool()>& ready) {
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return {};
    if (Exited(pid)) {
      return util::IOError("the " + name + " exited during start-up. Last lines of " +
                           log.string() + ":\n" + util::FileTail(log, 15));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGTERM);
  return util::Error{util::ErrorKind::kTimeout, "the " + name + " did not become ready within " +
                                                    std::to_string(kStartTimeout.count()) +
                                                    " s. Last lines of " + log.string() + ":\n" +
                                                    util::FileTail(log, 15)};
}

// The agent daemon of this STRATA_HOME: the running one, or a new one.
util::Result<int> EnsureAgent(const agent::NodePaths& paths, bool* started) {
  *started = false;
  if (auto running = agent::AgentClient::Discover(paths)) return running->port();
  fs::path log = paths.logs_dir() / "agent.out";
  auto pid = SpawnDaemon({"agent", "--port", "0"}, log);
  if (!pid) return std::move(pid).error();
  std::optional<agent::AgentClient> client;
  auto ok = WaitForDaemon(*pid, "node agent", log, [&] {
    client = agent::AgentClient::Discover(paths);
    return client.has_value();
  });
  if (!ok) return ok.error();
  *started = true;
  return client->port();
}

struct StartArgs {
  bool head = false;
  std::string host = "127.0.0.1";
  int port = 8265;
  bool block = false;
};

util::Status CheckHostIsSafe(const std::string& host) {
  const char* token = std::getenv("STRATA_AUTH_TOKEN");
  if (!IsLoopback(host) && (token == nullptr || *token == '\0')) {
    return util::ValueError("--host " + host +
                            " would let anyone who reaches this machine run commands on it; "
                            "set STRATA_AUTH_TOKEN to a secret first (clients send it as a "
                            "bearer token), or listen on 127.0.0.1");
  }
  return {};
}

util::Result<head::HeadOptions> HeadOptionsFor(const std::string& host, int port) {
  head::HeadOptions options;
  options.paths = agent::NodePaths::FromEnvironment();
  options.host = host;
  options.port = port;
  if (const char* token = std::getenv("STRATA_AUTH_TOKEN")) options.auth_token = token;
  auto seconds = [](const char* name, long fallback) -> util::Result<long> {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (*end != '\0' || value < 0) {
      return util::ValueError(std::string(name) + "='" + text +
                              "' is not valid: expected a whole number of seconds >= 0");
    }
    return value;
  };
  auto gc = seconds("STRATA_PACKAGE_GC_INTERVAL_S", 60);
  if (!gc) return std::move(gc).error();
  options.gc_interval = std::chrono::seconds(std::max(1L, *gc));
  auto grace = seconds("STRATA_JOB_STOP_GRACE_S", 3);
  if (!grace) return std::move(grace).error();
  options.stop_grace = std::chrono::seconds(*grace);
  return options;
}

head::Head* g_head = nullptr;

void StopHead(int) {
  if (g_head != nullptr) g_head->Stop();
}

// Serves the head in this process until SIGINT/SIGTERM.
int RunHeadForeground(const std::string& host, int port, bool announce) {
  if (auto ok = CheckHostIsSafe(host); !ok) return ReportInvalidInput(ok.error());
  auto options = HeadOptionsFor(host, port);
  if (!options) return ReportInvalidInput(options.error());
  auto head = head::Head::Open(*options);
  if (!head) {
    std::cerr << head.error().ToString() << "\n";
    return kExitFailure;
  }
  auto bound = (*head)->Bind();
  if (!bound) {
    std::cerr << bound.error().ToString() << "\n";
    return kExitFailure;
  }
  if (announce) {
    std::cout << "Strata head listening on http://" << host << ":" << *bound << " (STRATA_HOME "
              << options->paths.home.string() << ")" << std::endl;
  }
  g_head = head->get();
  std::signal(SIGINT, StopHead);
  std::signal(SIGTERM, StopHead);
  std::signal(SIGPIPE, SIG_IGN);
  util::Status status = (*head)->Run();
  g_head = nullptr;
  if (!status.ok()) {
    std::cerr << status.error().ToString() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

int RunStart(const StartArgs& args) {
  if (!args.head) {
    std::cerr << "ValueError: only `strata start --head` is supported: this release runs "
                 "single-node clusters\n";
    return kExitInvalidInput;
  }
  if (auto ok = CheckHostIsSafe(args.host); !ok) return ReportInvalidInput(ok.error());
  agent::NodePaths paths = agent::NodePaths::FromEnvironment();
  std::string wanted = "http://" + args.host + ":" + std::to_string(args.port);
  if (std::string running = head::RecordedHeadUrl(paths); !running.empty()) {
    std::cout << "A Strata head is already running at " << running << " (session "
              << paths.session_dir.string() << "). Stop it with `strata stop`.\n";
    return running == wanted ? kExitOk : kExitFailure;
  }
  bool agent_started = false;
  auto agent_port = EnsureAgent(paths, &agent_started);
  if (!agent_port) {
    std::cerr << "cannot start the node agent: " << agent_port.error().message << "\n";
    return kExitFailure;
  }
  if (args.block) return RunHeadForeground(args.host, args.port, /*announce=*/true);

  fs::path log = paths.logs_dir() / "head.out";
  auto pid = SpawnDaemon({"head", "--host", args.host, "--port", std::to_string(args.port)}, log);
  if (!pid) {
    std::cerr << pid.error().ToString() << "\n";
    return kExitFailure;
  }
  std::string url;
  auto ok = WaitForDaemon(*pid, "head", log, [&] {
    url = head::RecordedHeadUrl(paths);
    return !url.empty();
  });
  if (!ok) {
    std::cerr << "cannot start the head: " << ok.error().message;
    return kExitFailure;
  }
  std::cout << "Strata head started at " << url << " (pid " << *pid << ")\n"
            << "Node agent " << (agent_started ? "started" : "already running")
            << " on 127.0.0.1:" << *agent_port << "\n"
            << "Logs: " << paths.logs_dir().string() << "\n"
            << "Submit a job: strata job submit --working-dir DIR -- python main.py\n"
            << "Stop: strata stop\n";
  return kExitOk;
}

// Sends SIGTERM to the daemon recorded in `record`, then SIGKILL after the timeout.
std::optional<long> StopDaemon(const fs::path& record) {
  auto json = util::ReadLivePidRecord(record);
  if (!json) return std::nullopt;
  long pid = (*json)["pid"].get<long>();
  ::kill(static_cast<pid_t>(pid), SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + kStopTimeout;
  while (util::ReadLivePidRecord(record) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (util::ReadLivePidRecord(record)) {
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    std::error_code ec;
    fs::remove(record, ec);
  }
  return pid;
}

int RunStop() {
  agent::NodePaths paths = agent::NodePaths::FromEnvironment();
  auto head_pid = StopDaemon(paths.session_dir / "head.json");
  auto agent_pid = StopDaemon(paths.home / "agent" / "agent.json");
  if (!head_pid && !agent_pid) {
    std::cout << "No Strata head or node agent is running (STRATA_HOME " << paths.home.string()
              << ", session " << paths.session_dir.string() << ").\n";
    return kExitOk;
  }
  if (head_pid) std::cout << "Stopped the head (pid " << *head_pid << ").\n";
  if (agent_pid) std::cout << "Stopped the node agent (pid " << *agent_pid << ").\n";
  return kExitOk;
}

int RunStatus(const std::optional<std::string>& address) {
  std::optional<std::string> flag = address;
  agent::NodePaths paths = agent::NodePaths::FromEnvironment();
  if (!flag && std::getenv("STRATA_ADDRESS") == nullptr) {
    std::string recorded = head::RecordedHeadUrl(paths);
    if (!recorded.empty()) flag = recorded;
  }
  auto url = head::ResolveHeadAddress(flag);
  if (!url) return ReportInvalidInput(url.error());
  head::HeadClient client(*url);
  auto nodes = client.Nodes();
  if (!nodes) {
    std::cerr << nodes.error().ToString() << "\n";
    return kExitFailure;
  }
  auto jobs = client.ListJobs();
  if (!jobs) {
    std::cerr << jobs.error().ToString() << "\n";
    return kExitFailure;
  }
  std::cout << "Head: " << *url << "\nNodes:\n";
  for (const Json& node : nodes->value("nodes", Json::array())) {
    std::cout << "  " << node.value("node_id", "") << "  " << node.value("state", "") << "  "
              << node.value("node_ip_address", "")
              << (node.value("is_head_node", false) ? "  head" : "") << "  agent port "
              << (node["agent_port"].is_number() ? std::to_string(node["agent_port"].get<int>())
                                                 : std::string("(not running)"))
              << "\n";
    const Json caches = node.value("runtime_env_cache", Json::object());
    for (const auto& [kind, cache] : caches.items()) {
      std::cout << "    runtime env cache " << kind << ": " << cache.value("entries", 0)
                << " entries, " << packaging::MibString(cache.value("size_bytes", 0ull)) << "\n";
    }
  }
  std::map<std::string, int> by_status;
  std::vector<std::string> running;
  for (const Json& job : *jobs) {
    std::string status = job.value("status", "");
    ++by_status[status];
    if (status == "RUNNING" || status == "PENDING") {
      running.push_back(job.value("submission_id", "") + "  " + status + "  " +
                        job.value("entrypoint", ""));
    }
  }
  std::cout << "Jobs: " << jobs->size() << " total";
  for (const auto& [status, count] : by_status) std::cout << ", " << count << " " << status;
  std::cout << "\n";
  for (const std::string& line : running) std::cout << "  " << line << "\n";
  return kExitOk;
}

}  // namespace

void AddClusterCommands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<StartArgs>();
  CLI::App* start = app.add_subcommand("start", "Start the local cluster's head and node agent");
  start->add_flag("--head", args->head, "start a head node (required)");
  start->add_option("--host", args->host, "address the head listens on");
  start->add_option("--port", args->port, "port of the head's HTTP API");
  start->add_flag("--block", args->block, "run the head in the foreground");
  start->callback([args, exit_code] { *exit_code = RunStart(*args); });

  CLI::App* stop = app.add_subcommand("stop", "Stop the local head and node agent");
  stop->callback([exit_code] { *exit_code = RunStop(); });

  auto address = std::make_shared<std::optional<std::string>>();
  CLI::App* status = app.add_subcommand("status", "Show nodes, running jobs and env caches");
  status->add_option("--address", *address, "head URL (default: STRATA_ADDRESS, the local head)");
  status->callback([address, exit_code] { *exit_code = RunStatus(*address); });

  auto head_args = std::make_shared<StartArgs>();
  CLI::App* head_cmd = app.add_subcommand("head", "Serve the head in the foreground");
  head_cmd->group("");  // internal: `strata start --head` runs it
  head_cmd->add_option("--host", head_args->host, "address to listen on");
  head_cmd->add_option("--port", head_args->port, "port (0: any free port)");
  head_cmd->callback([head_args, exit_code] {
    *exit_code = RunHeadForeground(head_args->host, head_args->port, /*announce=*/true);
  });
}

}  // namespace strata::cli
