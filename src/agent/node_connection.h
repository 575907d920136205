// NodeConnection: the node agent as the CLI sees it — the daemon of this
// STRATA_HOME when one runs (so caches and single flight are shared with
// everything else on the node), else an EnvManager inside this process.
//
// Thread-safety: safe for concurrent use (both backends are).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "agent/agent_http.h"
#include "agent/env_manager.h"

namespace strata::agent {

// This node's identity: 28 random bytes as 56 lowercase hex (the width of a
// Ray NodeID), created on first use in $STRATA_HOME/node_id and kept there.
util::Result<std::string> NodeId(const NodePaths& paths);

class NodeConnection {
 public:
  static util::Result<NodeConnection> Connect(const NodePaths& paths);

  util::Result<RuntimeEnvContext> GetOrCreate(const CreateRequest& request);
  util::Status Delete(const std::string& serialized_env);
  util::Result<util::Json> Info();
  util::Status Retry(const std::string& id);
  util::Result<util::Json> GarbageCollect(std::uint64_t max_bytes);
  bool via_daemon() const { return client_.has_value(); }

 private:
  std::optional<AgentClient> client_;
  std::shared_ptr<EnvManager> local_;
};

}  // namespace strata::agent
