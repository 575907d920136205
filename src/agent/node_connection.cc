#include "agent/node_connection.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "util/digest.h"

namespace strata::agent {

namespace fs = std::filesystem;
using util::Json;

util::Result<std::string> NodeId(const NodePaths& paths) {
  fs::path file = paths.home / "node_id";
  auto read = [&file]() -> std::string {
    std::ifstream in(file);
    std::string id;
    in >> id;
    return id.size() == 56 ? id : "";
  };
  if (std::string id = read(); !id.empty()) return id;
  unsigned char bytes[28];
  if (RAND_bytes(bytes, sizeof bytes) != 1)
    return util::Error{util::ErrorKind::kInternal, "cannot draw random bytes"};
  std::string id = util::ToHex(bytes, sizeof bytes);
  std::error_code ec;
  fs::create_directories(paths.home, ec);
  fs::path temp = file.string() + ".tmp-" + id;
  std::ofstream(temp) << id << "\n";
  // link() fails when another process created the file first; its id wins.
  if (::link(temp.c_str(), file.c_str()) != 0 && errno != EEXIST) {
    fs::remove(temp, ec);
    return util::IOError("cannot write " + file.string() + ": " + std::strerror(errno));
  }
  fs::remove(temp, ec);
  if (std::string winner = read(); !winner.empty()) return winner;
  return util::Error{util::ErrorKind::kCorruption, file.string() + " does not hold a node id"};
}

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
