#include "agent/agent_http.h"

#include <httplib.h>
#include <unistd.h>

#include <filesystem>

#include "util/listen_backlog.h"
#include "util/log.h"
#include "util/pid_record.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using util::Json;

constexpr char kOk[] = "AGENT_RPC_STATUS_OK";
constexpr char kFailed[] = "AGENT_RPC_STATUS_FAILED";

fs::path AgentFile(const NodePaths& paths) {
  return paths.home / "agent" / "agent.json";
}

Json StatusReply(const util::Status& status) {
  return Json::object({{"status", status.ok() ? kOk : kFailed},
                       {"error_message", status.ok() ? "" : status.error().message}});
}

util::Result<model::RuntimeEnvConfig> ConfigFrom(const Json& body) {
  if (!body.contains("runtime_env_config") || body["runtime_env_config"].is_null()) {
    return model::RuntimeEnvConfig();
  }
  Json config = body["runtime_env_config"];
  // A non-Python client leaves the timeout 0 for "unset", as in Ray.
  if (config.is_object() && config.value("setup_timeout_seconds", Json(0)) == Json(0)) {
    config["setup_timeout_seconds"] = model::kDefaultSetupTimeoutSeconds;
  }
  return model::RuntimeEnvConfig::FromJson(config);
}

// The fields /get_or_create_runtime_env and /lease_worker share.
util::Result<CreateRequest> CreateRequestFrom(const Json& body) {
  CreateRequest request;
  request.serialized_env = body.value("serialized_runtime_env", "{}");
  request.job_id = body.value("job_id", "");
  request.source_process = body.value("source_process", "");
  auto config = ConfigFrom(body);
  if (!config) return std::move(config).error();
  request.config = *config;
  return request;
}

Json HandleGetOrCreate(EnvManager& manager, const Json& body) {
  auto request = CreateRequestFrom(body);
  if (!request) return StatusReply(request.error());
  auto context = manager.GetOrCreate(*request);
  Json reply = StatusReply(context ? util::Status() : util::Status(context.error()));
  reply["serialized_runtime_env_context"] = context ? util::DumpsSorted(context->ToJson()) : "";
  return reply;
}

util::Error NoPool() {
  return util::ValueError("this node agent serves no worker pool");
}

Json HandleLease(WorkerPool* pool, const Json& body) {
  auto lease = [&]() -> util::Result<WorkerLease> {
    if (pool == nullptr) return NoPool();
    auto create = CreateRequestFrom(body);
    if (!create) return std::move(create).error();
    LeaseRequest request;
    request.job_id = create->job_id;
    request.serialized_env = create->serialized_env;
    request.config = create->config;
    if (body.contains("dedicated") && !body["dedicated"].is_boolean()) {
      return util::TypeError("'dedicated' must be a boolean");
    }
    request.dedicated = body.value("dedicated", false);
    if (body.contains("driver_pid") && !body["driver_pid"].is_number_integer()) {
      return util::TypeError("'driver_pid' must be an integer");
    }
    request.driver_pid = body.value("driver_pid", 0);
    return pool->Lease(request);
  }();
  Json reply = StatusReply(lease ? util::Status() : util::Status(lease.error()));
  reply["worker_id"] = lease ? lease->worker_id : "";
  reply["socket_path"] = lease ? lease->socket_path.string() : "";
  reply["pid"] = lease ? lease->pid : 0;
  reply["node_id"] = lease ? lease->node_id : "";
  return reply;
}

Json HandleReturn(WorkerPool* pool, const Json& body) {
  if (pool == nullptr) return StatusReply(NoPool());
  if (body.contains("kill") && !body["kill"].is_boolean()) {
    return StatusReply(util::TypeError("'kill' must be a boolean"));
  }
  ReturnDisposition disposition =
      body.value("kill", false) ? ReturnDisposition::kKill : ReturnDisposition::kIdle;
  return StatusReply(pool->Return(body.value("worker_id", ""), disposition));
}

Json WorkersJson(const WorkerPool* pool) {
  Json workers = Json::array();
  if (pool == nullptr) return Json::object({{"workers", workers}});
  for (const WorkerInfo& w : pool->Workers()) {
    workers.push_back(Json::object({{"worker_id", w.worker_id},
                                    {"pid", w.pid},
                                    {"job_id", w.job_id},
                                    {"env_id", w.env_id},
                                    {"dedicated", w.dedicated},
                                    {"leased", w.leased},
                                    {"started_ms", w.started_ms},
                                    {"last_used_ms", w.last_used_ms},
                                    {"leases", w.leases}}));
  }
  return Json::object({{"workers", workers}});
}

}  // namespace

Json EnvsInfoJson(const EnvManager& manager, std::optional<std::size_t> limit) {
  std::vector<EnvInfo> all = manager.Info();
  Json states = Json::array();
  for (const EnvInfo& info : all) {
    if (limit && states.size() >= *limit) break;
    states.push_back(Json::object({{"runtime_env", info.serialized_env},
                                   {"ref_cnt", info.ref_count},
                                   {"success", info.state != EnvState::kFailed},
                                   {"error", info.error},
                                   {"creation_time_ms", info.created_ms},
                                   {"id", info.id},
                                   {"state", std::string(EnvStateName(info.state))},
                                   {"last_used_ms", info.last_used_ms},
                                   {"size_bytes", info.size_bytes},
                                   {"uris", info.uris}}));
  }
  Json resources = Json::array();
  for (const auto& [kind, entry] : manager.CacheEntries()) {
    resources.push_back(Json::object({{"kind", kind},
                                      {"uri", entry.uri},
                                      {"dir", entry.dir.string()},
                                      {"size_bytes", entry.size},
                                      {"local_refs", entry.local_refs},
                                      {"in_use_elsewhere", entry.in_use_elsewhere},
                                      {"created_ms", entry.created_ms},
                                      {"last_used_ms", entry.last_used_ms}}));
  }
  CacheCounters c = manager.Counters();
  Json counters = Json::object({{"env_hits", c.env_hits},
                                {"env_creations", c.env_creations},
                                {"resource_hits", c.resource_hits},
                                {"resource_creations", c.resource_creations},
                                {"failures", c.failures}});
  return Json::object({{"runtime_env_states", states},
                       {"total", all.size()},
                       {"cached_resources", resources},
                       {"counters", counters}});
}

struct AgentServer::Impl {
  EnvManager* manager = nullptr;
  httplib::Server server;
  int port = 0;
};

AgentServer::AgentServer(EnvManager& manager, WorkerPool* workers)
    : impl_(std::make_unique<Impl>()) {
  impl_->manager = &manager;
  // Clients often send headers and body in two writes; without NODELAY the
  // reply waits for a delayed ACK (~40 ms per request).
  impl_->server.set_tcp_nodelay(true);
  auto json_route = [this](const char* path, std::function<Json(const Json&)> handler) {
    impl_->server.Post(path, [handler](const httplib::Request& req, httplib::Response& res) {
      auto body = util::ParseJson(req.body.empty() ? "{}" : req.body);
      if (!body || !body->is_object()) {
        res.status = 400;
        res.set_content("request body must be a JSON object", "text/plain");
        return;
      }
      res.set_content(util::DumpsSorted(handler(*body)), "application/json");
    });
  };
  EnvManager& m = manager;
  json_route("/get_or_create_runtime_env",
             [&m](const Json& body) { return HandleGetOrCreate(m, body); });
  json_route("/delete_runtime_env_if_possible", [&m](const Json& body) {
    return StatusReply(
        m.Delete(body.value("serialized_runtime_env", "{}"), body.value("source_process", "")));
  });
  json_route("/get_runtime_envs_info", [&m](const Json& body) {
    std::optional<std::size_t> limit;
    if (body.contains("limit") && body["limit"].is_number_integer() &&
        body["limit"].get<long>() >= 0) {
      limit = body["limit"].get<std::size_t>();
    }
    return EnvsInfoJson(m, limit);
  });
  json_route("/retry_runtime_env",
             [&m](const Json& body) { return StatusReply(m.Retry(body.value("id", ""))); });
  json_route("/gc", [&m](const Json& body) {
    std::uint64_t max_bytes = body.value("max_bytes", std::uint64_t{0});
    Json reply = StatusReply({});
    reply["evicted"] = m.GarbageCollect(max_bytes);
    return reply;
  });
  json_route("/lease_worker", [workers](const Json& body) { return HandleLease(workers, body); });
  json_route("/return_worker", [workers](const Json& body) { return HandleReturn(workers, body); });
  json_route("/list_workers", [workers](const Json&) { return WorkersJson(workers); });
  impl_->server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(util::DumpsSorted(Json::object({{"pid", ::getpid()}})), "application/json");
  });
}

AgentServer::~AgentServer() = default;

util::Result<int> AgentServer::Bind(int port) {
  int bound = port == 0 ? impl_->server.bind_to_any_port("127.0.0.1")
                        : (impl_->server.bind_to_port("127.0.0.1", port) ? port : -1);
  if (bound < 0) return util::IOError("cannot listen on 127.0.0.1:" + std::to_string(port));
  impl_->port = bound;
  if (auto ok = util::RaiseListenBacklog(bound); !ok) util::LogWarning(ok.error().message);
  return bound;
}

util::Status AgentServer::Run() {
  const NodePaths& paths = impl_->manager->paths();
  fs::path file = AgentFile(paths);
  if (auto ok = util::WritePidRecord(file, Json::object({{"port", impl_->port}})); !ok) return ok;
  bool served = impl_->server.listen_after_bind();
  std::error_code ec;
  fs::remove(file, ec);
  if (!served) return util::IOError("the agent's HTTP server stopped unexpectedly");
  return {};
}

void AgentServer::Stop() {
  impl_->server.stop();
}

AgentClient::AgentClient(int port) : port_(port) {}

std::optional<AgentClient> AgentClient::Discover(const NodePaths& paths) {
  auto json = util::ReadLivePidRecord(AgentFile(paths));
  if (!json || !(*json)["port"].is_number_integer()) return std::nullopt;
  int port = (*json)["port"].get<int>();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  auto res = client.Get("/healthz");
  if (!res || res->status != 200) return std::nullopt;
  return AgentClient(port);
}

util::Result<Json> AgentClient::Post(const std::string& path, const Json& body) {
  httplib::Client client("127.0.0.1", port_);
  client.set_connection_timeout(5);
  client.set_tcp_nodelay(true);
  // Creating an env may take as long as its setup timeout allows.
  client.set_read_timeout(24 * 3600);
  auto res = client.Post(path.c_str(), util::DumpsSorted(body), "application/json");
  if (!res) {
    return util::Error{util::ErrorKind::kUnavailable,
                       "cannot reach the node agent on 127.0.0.1:" + std::to_string(port_) + ": " +
                           httplib::to_string(res.error())};
  }
  if (res->status != 200) {
    return util::IOError("node agent answered HTTP " + std::to_string(res->status) + ": " +
                         res->body);
  }
  return util::ParseJson(res->body);
}

namespace {

util::Status ReplyStatus(const Json& reply, util::ErrorKind kind = util::ErrorKind::kValueError) {
  if (reply.value("status", "") == kOk) return {};
  return util::Error{kind, reply.value("error_message", "node agent request failed")};
}

}  // namespace

util::Result<RuntimeEnvContext> AgentClient::GetOrCreate(const CreateRequest& request) {
  Json body = Json::object({{"serialized_runtime_env", request.serialized_env},
                            {"job_id", request.job_id},
                            {"source_process", request.source_process}});
  if (request.config) body["runtime_env_config"] = request.config->ToJson();
  auto reply = Post("/get_or_create_runtime_env", body);
  if (!reply) return std::move(reply).error();
  if (auto ok = ReplyStatus(*reply); !ok) return std::move(ok).error();
  auto context = util::ParseJson(reply->value("serialized_runtime_env_context", "{}"));
  if (!context) return std::move(context).error();
  return RuntimeEnvContext::FromJson(*context);
}

util::Status AgentClient::Delete(const std::string& serialized_env,
                                 const std::string& source_process) {
  auto reply = Post("/delete_runtime_env_if_possible",
                    Json::object({{"serialized_runtime_env", serialized_env},
                                  {"source_process", source_process}}));
  if (!reply) return std::move(reply).error();
  return ReplyStatus(*reply);
}

util::Result<Json> AgentClient::Info() {
  return Post("/get_runtime_envs_info", Json::object());
}

util::Status AgentClient::Retry(const std::string& id) {
  auto reply = Post("/retry_runtime_env", Json::object({{"id", id}}));
  if (!reply) return std::move(reply).error();
  return ReplyStatus(*reply, util::ErrorKind::kNotFound);
}

util::Result<Json> AgentClient::GarbageCollect(std::uint64_t max_bytes) {
  return Post("/gc", Json::object({{"max_bytes", max_bytes}}));
}

util::Result<WorkerLease> AgentClient::Lease(const LeaseRequest& request) {
  Json body = Json::object({{"job_id", request.job_id},
                            {"serialized_runtime_env", request.serialized_env},
                            {"dedicated", request.dedicated},
                            {"driver_pid", request.driver_pid}});
  if (request.config) body["runtime_env_config"] = request.config->ToJson();
  auto reply = Post("/lease_worker", body);
  if (!reply) return std::move(reply).error();
  if (auto ok = ReplyStatus(*reply); !ok) return std::move(ok).error();
  WorkerLease lease;
  lease.worker_id = reply->value("worker_id", "");
  lease.socket_path = reply->value("socket_path", "");
  lease.pid = reply->value("pid", 0);
  lease.node_id = reply->value("node_id", "");
  return lease;
}

util::Status AgentClient::ReturnWorker(const std::string& worker_id,
                                       ReturnDisposition disposition) {
  auto reply = Post(
      "/return_worker",
      Json::object({{"worker_id", worker_id}, {"kill", disposition == ReturnDisposition::kKill}}));
  if (!reply) return std::move(reply).error();
  return ReplyStatus(*reply, util::ErrorKind::kNotFound);
}

util::Result<Json> AgentClient::Workers() {
  return Post("/list_workers", Json::object());
}

}  // namespace strata::agent
