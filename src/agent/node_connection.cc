#include "agent/node_connection.h"

namespace strata::agent {

using util::Json;

util::Result<NodeConnection> NodeConnection::Connect(const NodePaths& paths) {
  NodeConnection connection;
  connection.client_ = AgentClient::Discover(paths);
  if (connection.client_) return connection;
  auto manager = EnvManager::Open(paths);
  if (!manager) return std::move(manager).error();
  connection.local_ = std::move(manager).value();
  return connection;
}

util::Result<RuntimeEnvContext> NodeConnection::GetOrCreate(const CreateRequest& request) {
  return client_ ? client_->GetOrCreate(request) : local_->GetOrCreate(request);
}

util::Status NodeConnection::Delete(const std::string& serialized_env) {
  return client_ ? client_->Delete(serialized_env) : local_->Delete(serialized_env);
}

util::Result<Json> NodeConnection::Info() {
  if (client_) return client_->Info();
  return EnvsInfoJson(*local_, std::nullopt);
}

util::Status NodeConnection::Retry(const std::string& id) {
  return client_ ? client_->Retry(id) : local_->Retry(id);
}

util::Result<Json> NodeConnection::GarbageCollect(std::uint64_t max_bytes) {
  if (client_) return client_->GarbageCollect(max_bytes);
  return Json::object(
      {{"status", "AGENT_RPC_STATUS_OK"}, {"evicted", local_->GarbageCollect(max_bytes)}});
}

}  // namespace strata::agent
