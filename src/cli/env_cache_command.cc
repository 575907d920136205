// `strata env list|inspect|gc|retry`: the runtime envs and cached resources
// of this node, through the daemon when one runs, else from the caches on
// disk.
#include <ctime>
#include <iostream>
#include <memory>
#include <string>

#include "agent/node_connection.h"
#include "cli/command.h"
#include "packaging/package.h"

namespace strata::cli {
namespace {

using util::Json;

std::string FormatTime(std::int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", std::localtime(&seconds));
  return buffer;
}

util::Result<Json> FetchInfo() {
  auto node = agent::NodeConnection::Connect(agent::NodePaths::FromEnvironment());
  if (!node) return std::move(node).error();
  return node->Info();
}

int RunList() {
  auto info = FetchInfo();
  if (!info) return ReportInvalidInput(info.error());
  std::cout << "RUNTIME ENVS\n";
  for (const Json& env : (*info)["runtime_env_states"]) {
    std::cout << "  " << env.value("id", "") << "  " << env.value("state", "")
              << "  refs=" << env.value("ref_cnt", 0)
              << "  created=" << FormatTime(env.value("creation_time_ms", 0L))
              << "  last_used=" << FormatTime(env.value("last_used_ms", 0L))
              << "  size=" << packaging::MibString(env.value("size_bytes", std::uint64_t{0}))
              << "  " << env.value("runtime_env", "") << "\n";
    if (!env.value("error", "").empty())
      std::cout << "      error: " << env.value("error", "") << "\n";
  }
  std::cout << "CACHED RESOURCES\n";
  for (const Json& r : info->value("cached_resources", Json::array())) {
    std::cout << "  " << r.value("kind", "") << "  " << r.value("uri", "")
              << "  size=" << packaging::MibString(r.value("size_bytes", std::uint64_t{0}))
              << "  refs=" << r.value("local_refs", 0)
              << (r.value("in_use_elsewhere", false) ? " (in use by another process)" : "")
              << "  last_used=" << FormatTime(r.value("last_used_ms", 0L)) << "\n";
  }
  return kExitOk;
}

int RunInspect(const std::string& id) {
  auto info = FetchInfo();
  if (!info) return ReportInvalidInput(info.error());
  for (const Json& env : (*info)["runtime_env_states"]) {
    if (env.value("id", "") == id || env.value("runtime_env", "") == id) {
      std::cout << env.dump(2) << "\n";
      return kExitOk;
    }
  }
  for (const Json& r : info->value("cached_resources", Json::array())) {
    if (r.value("uri", "") == id) {
      std::cout << r.dump(2) << "\n";
      return kExitOk;
    }
  }
  return ReportInvalidInput(util::NotFoundError("no runtime env or cached resource " + id));
}

int RunGc(std::uint64_t max_bytes) {
  auto node = agent::NodeConnection::Connect(agent::NodePaths::FromEnvironment());
  if (!node) return ReportInvalidInput(node.error());
  auto reply = node->GarbageCollect(max_bytes);
  if (!reply) return ReportInvalidInput(reply.error());
  for (const Json& uri : reply->value("evicted", Json::array())) {
    std::cout << "evicted " << uri.get<std::string>() << "\n";
  }
  return kExitOk;
}

int RunRetry(const std::string& id) {
  auto node = agent::NodeConnection::Connect(agent::NodePaths::FromEnvironment());
  if (!node) return ReportInvalidInput(node.error());
  if (auto ok = node->Retry(id); !ok) return ReportInvalidInput(ok.error());
  std::cout << "cleared the cached failure of " << id << "\n";
  return kExitOk;
}

}  // namespace

void AddEnvCacheCommands(CLI::App& app, int* exit_code) {
  CLI::App* env = app.get_subcommand("env");
  CLI::App* list =
      env->add_subcommand("list", "List runtime envs and cached resources of this node");
  list->callback([exit_code] { *exit_code = RunList(); });

  auto id = std::make_shared<std::string>();
  CLI::App* inspect =
      env->add_subcommand("inspect", "Show one runtime env (by id) or cached resource (by URI)");
  inspect->add_option("ID", *id, "env id from `strata env list`, or a resource URI")->required();
  inspect->callback([id, exit_code] { *exit_code = RunInspect(*id); });

  auto max_bytes = std::make_shared<std::uint64_t>(0);
  CLI::App* gc =
      env->add_subcommand("gc", "Evict unreferenced cached resources, least recently used first");
  gc->add_option("--max-size", *max_bytes,
                 "bytes each kind may keep (default 0: evict all unused)");
  gc->callback([max_bytes, exit_code] { *exit_code = RunGc(*max_bytes); });

  auto retry_id = std::make_shared<std::string>();
  CLI::App* retry = env->add_subcommand("retry", "Forget the cached failure of a runtime env");
  retry->add_option("ID", *retry_id, "env id from `strata env list`")->required();
  retry->callback([retry_id, exit_code] { *exit_code = RunRetry(*retry_id); });
}

}  // namespace strata::cli
