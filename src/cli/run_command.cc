// `strata run` and `strata agent`: running a command inside a runtime env on
// this node, and serving the node agent.
//
//   strata run [--runtime-env FILE | --runtime-env-json TEXT] [--working-dir DIR]
//              [--job-id ID] -- CMD [ARGS...]
//   strata agent [--port N]
#include <signal.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_http.h"
#include "agent/launcher.h"
#include "agent/node_connection.h"
#include "agent/worker_pool.h"
#include "cli/command.h"
#include "model/runtime_env.h"
#include "packaging/upload.h"
#include "util/log.h"

namespace strata::cli {
namespace {

struct RunArgs {
  RuntimeEnvArgs env;
  std::string job_id = "local";
  std::vector<std::string> command;
};

int RunRun(const RunArgs& args) {
  auto env = LoadRuntimeEnvArgs(args.env);
  if (!env) return ReportInvalidInput(env.error());
  agent::NodePaths paths = agent::NodePaths::FromEnvironment();
  auto store = packaging::BlobStore::Open(paths.store_dir());
  if (!store) return ReportInvalidInput(store.error());
  packaging::BlobStoreSink sink(*store);
  if (auto ok = packaging::UploadLocalPaths(*env, sink); !ok) return ReportInvalidInput(ok.error());
  auto serialized = env->Serialize();
  if (!serialized) return ReportInvalidInput(serialized.error());
  auto node = agent::NodeConnection::Connect(paths);
  if (!node) return ReportInvalidInput(node.error());
  agent::CreateRequest request;
  request.serialized_env = *serialized;
  request.job_id = args.job_id;
  auto config = env->Config();
  if (!config) return ReportInvalidInput(config.error());
  request.config = *config;
  auto context = node->GetOrCreate(request);
  if (!context) {
    std::cerr << "RuntimeEnvSetupError: " << context.error().message << "\n";
    return kExitFailure;
  }
  const auto host_env = agent::CurrentEnvironment();
  agent::LaunchPlan inner = agent::PlanLaunch(*context, args.command, host_env);
  // In a container, the command still starts where the user is (mounted).
  std::error_code ec;
  if (inner.container && inner.cwd.empty()) inner.cwd = std::filesystem::current_path(ec).string();
  agent::LaunchPlan plan = agent::HostPlan(inner, host_env);
  auto code = agent::RunInContext(plan);
  if (auto ok = node->Delete(*serialized); !ok) util::LogDebug(ok.error().message);
  if (!code) {
    std::cerr << code.error().ToString() << "\n";
    return 127;
  }
  return *code;
}

agent::AgentServer* g_server = nullptr;

void StopServer(int) {
  if (g_server != nullptr) g_server->Stop();
}

int RunAgent(int port) {
  agent::NodePaths paths = agent::NodePaths::FromEnvironment();
  if (auto running = agent::AgentClient::Discover(paths)) {
    std::cerr << "a node agent already serves " << paths.home.string()
              << " on 127.0.0.1:" << running->port() << "\n";
    return kExitFailure;
  }
  auto manager = agent::EnvManager::Open(paths);
  if (!manager) return ReportInvalidInput(manager.error());
  auto node_id = agent::NodeId(paths);
  if (!node_id) return ReportInvalidInput(node_id.error());
  auto pool_options = agent::WorkerPoolOptions::FromEnvironment(*node_id);
  if (!pool_options) return ReportInvalidInput(pool_options.error());
  // Declared after the manager and before the server: the pool releases its
  // workers' envs when it goes, and the server must stop using it first.
  agent::WorkerPool pool(**manager, paths, std::move(*pool_options));
  agent::AgentServer server(**manager, &pool);
  auto bound = server.Bind(port);
  if (!bound) {
    std::cerr << bound.error().ToString() << "\n";
    return kExitFailure;
  }
  std::cout << "strata agent listening on 127.0.0.1:" << *bound << " (STRATA_HOME "
            << paths.home.string() << ")" << std::endl;
  g_server = &server;
  std::signal(SIGINT, StopServer);
  std::signal(SIGTERM, StopServer);
  util::Status status = server.Run();
  g_server = nullptr;
  if (!status.ok()) {
    std::cerr << status.error().ToString() << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void AddRunCommands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run =
      app.add_subcommand("run", "Run a command inside a runtime environment on this node");
  AddRuntimeEnvOptions(*run, args->env);
  run->add_option("--job-id", args->job_id, "job id for the setup log name");
  run->add_option("command", args->command, "the command (after --)")->required();
  run->callback([args, exit_code] { *exit_code = RunRun(*args); });

  auto port = std::make_shared<int>(0);
  CLI::App* agent_cmd =
      app.add_subcommand("agent", "Serve this node's runtime env agent on 127.0.0.1");
  agent_cmd->add_option("--port", *port, "port (0: any free port)");
  agent_cmd->callback([port, exit_code] { *exit_code = RunAgent(*port); });
}

}  // namespace strata::cli
