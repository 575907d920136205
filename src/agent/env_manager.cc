#include "agent/env_manager.h"

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "agent/builtin_plugins.h"
#include "model/runtime_env.h"
#include "util/clock.h"
#include "util/digest.h"
#include "util/log.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using util::Json;

constexpr std::string_view kCacheKinds[] = {"working_dir", "py_modules", "pip", "uv"};

std::string TimeoutHint(std::int64_t seconds) {
  return "Failed to install runtime_env within the timeout of " + std::to_string(seconds) +
         " seconds. Consider increasing the timeout in the runtime_env config. For example: \n"
         "    runtime_env={\"config\": {\"setup_timeout_seconds\": 1800}, ...}\n"
         "If not provided, the default timeout is 600 seconds. ";
}

bool Expired(const std::optional<Clock::time_point>& deadline) {
  return deadline && Clock::now() >= *deadline;
}

// The job's setup log and any config.log_files, appended line by line.
class SetupLog {
 public:
  SetupLog(const NodePaths& paths, const std::string& job_id,
           const std::vector<std::string>& extra_files) {
    std::error_code ec;
    fs::create_directories(paths.logs_dir(), ec);
    std::string job = job_id.empty() ? "local" : job_id;
    Open(paths.logs_dir() / ("runtime_env_setup-" + job + ".log"));
    for (const std::string& name : extra_files) Open(paths.logs_dir() / name);
  }
  void Write(std::string_view line) {
    std::lock_guard lock(mutex_);
    for (auto& file : files_) {
      file << line << '\n';
      file.flush();
    }
  }

 private:
  void Open(const fs::path& path) {
    std::ofstream file(path, std::ios::app);
    if (file) files_.push_back(std::move(file));
  }
  std::mutex mutex_;
  std::vector<std::ofstream> files_;
};

std::string DefaultPython() {
  const char* python = std::getenv("STRATA_PYTHON");
  return python != nullptr && *python != '\0' ? python : "python3";
}

}  // namespace

std::string_view EnvStateName(EnvState state) {
  switch (state) {
    case EnvState::kCreating:
      return "CREATING";
    case EnvState::kReady:
      return "READY";
    case EnvState::kFailed:
      return "FAILED";
    case EnvState::kReleased:
      return "RELEASED";
  }
  return "UNKNOWN";
}

NodePaths NodePaths::FromEnvironment() {
  NodePaths paths;
  const char* home = std::getenv("STRATA_HOME");
  if (home != nullptr && *home != '\0') {
    paths.home = home;
  } else {
    const char* user_home = std::getenv("HOME");
    paths.home = fs::path(user_home != nullptr ? user_home : "/tmp") / ".strata";
  }
  const char* session = std::getenv("STRATA_SESSION_DIR");
  paths.session_dir =
      session != nullptr && *session != '\0' ? session : "/tmp/strata/session_latest";
  return paths;
}

struct EnvManager::Impl {
  NodePaths paths;
  EnvManagerOptions options;
  std::vector<std::shared_ptr<RuntimeEnvPlugin>> plugins;
  std::map<std::string, std::unique_ptr<UriCache>, std::less<>> caches;

  struct Record {
    EnvState state = EnvState::kCreating;
    int refs = 0;
    std::int64_t created_ms = 0;
    std::int64_t last_used_ms = 0;
    std::optional<RuntimeEnvContext> context;
    std::string error;
    util::ErrorKind error_kind = util::ErrorKind::kInternal;
    Clock::time_point failed_at;
    std::vector<std::string> uris;
    std::vector<UriCache::Ref> uri_refs;
  };
  mutable std::mutex mutex;
  std::condition_variable done;
  std::map<std::string, Record> envs;
  CacheCounters counters;

  UriCache* CacheFor(std::string_view kind) {
    auto it = caches.find(kind);
    return it == caches.end() ? nullptr : it->second.get();
  }

  // Makes sure `uri` of `plugin`'s kind is built and published; returns its
  // directory and a reference on it.
  util::Result<std::pair<fs::path, UriCache::Ref>> EnsureResource(const RuntimeEnvPlugin& plugin,
                                                                  const std::string& uri,
                                                                  const model::RuntimeEnv& env,
                                                                  SetupContext setup) {
    UriCache* cache = CacheFor(plugin.name());
    if (cache == nullptr) {
      return util::Error{util::ErrorKind::kInternal, "no cache for " + std::string(plugin.name())};
    }
    // Single flight across threads and processes: either the resource
    // exists, or this request becomes its one creator.
    auto acquired = cache->AcquireOrBeginCreate(uri, setup.deadline);
    if (!acquired) return std::move(acquired).error();
    if (auto* ref = std::get_if<UriCache::Ref>(&*acquired)) {
      std::lock_guard lock(mutex);
      ++counters.resource_hits;
      fs::path dir = ref->dir();
      return std::pair{dir, std::move(*ref)};
    }
    UriCache::Builder builder = std::move(std::get<UriCache::Builder>(*acquired));
    setup.staging_dir = builder.staging_dir();
    setup.final_dir = builder.final_dir();
    setup.log("Creating " + std::string(plugin.name()) + " resource " + uri);
    // On failure the builder removes the staging directory when dropped.
    if (auto created = plugin.Create(uri, env, setup); !created) return std::move(created).error();
    auto ref = cache->Publish(std::move(builder));
    if (!ref) return std::move(ref).error();
    {
      std::lock_guard lock(mutex);
      ++counters.resource_creations;
    }
    setup.log("Created " + std::string(plugin.name()) + " resource " + uri + " in " +
              ref->dir().string());
    fs::path dir = ref->dir();
    return std::pair{dir, std::move(*ref)};
  }

  // One attempt at building the whole env.
  util::Status SetupOnce(const model::RuntimeEnv& env, SetupContext setup,
                         RuntimeEnvContext* context, std::vector<std::string>* uris,
                         std::vector<UriCache::Ref>* refs) {
    *context = RuntimeEnvContext();
    uris->clear();
    refs->clear();
    const Json vars = env.EnvVars();
    for (const auto& [name, value] : vars.items()) {
      if (value.is_string()) context->SetEnv(name, value.get<std::string>());
    }
    setup.installer_env = context->env_vars;
    for (const auto& [field, value] : env.Items()) {
      bool served = IsFieldWithoutPlugin(field);
      for (const auto& plugin : plugins) served = served || plugin->name() == field;
      if (!served) {
        std::string warning =
            "runtime_env field " + field + " is not recognized and will be ignored";
        util::LogWarning(warning);
        setup.log(warning);
      }
    }
    for (const auto& plugin : plugins) {
      if (!env.Contains(plugin->name()) || env.Get(plugin->name(), nullptr).is_null()) continue;
      if (Expired(setup.deadline)) {
        return util::Error{util::ErrorKind::kTimeout, "setup deadline passed"};
      }
      std::string field(plugin->name());
      auto with_field = [&](util::Error error) {
        error.message = "runtime_env field '" + field + "': " + error.message;
        return error;
      };
      if (auto ok = plugin->Validate(env); !ok) return with_field(std::move(ok).error());
      std::map<std::string, fs::path> dirs;
      for (const std::string& uri : plugin->Uris(env)) {
        auto resource = EnsureResource(*plugin, uri, env, setup);
        if (!resource) return with_field(std::move(resource).error());
        dirs[uri] = resource->first;
        uris->push_back(uri);
        refs->push_back(std::move(resource->second));
      }
      if (auto ok = plugin->ModifyContext(dirs, env, setup, *context); !ok) {
        return with_field(std::move(ok).error());
      }
      if (context->container && !setup.container) {
        // Installers after this plugin run inside the image, with its Python.
        setup.container = context->container;
        setup.python = "python3";
      }
      if (field == "working_dir" && !dirs.empty()) {
        setup.working_dir = dirs.begin()->second.string();
        setup.installer_env.emplace_back("STRATA_RUNTIME_ENV_CREATE_WORKING_DIR",
                                         setup.working_dir);
      }
    }
    return {};
  }

  // Builds the env with retries inside the request's deadline.
  util::Status Create(const model::RuntimeEnv& env, const CreateRequest& request,
                      const model::RuntimeEnvConfig& config, RuntimeEnvContext* context,
                      std::vector<std::string>* uris, std::vector<UriCache::Ref>* refs) {
    std::optional<Clock::time_point> deadline;
    if (auto timeout = config.Timeout()) deadline = Clock::now() + std::chrono::seconds(*timeout);
    SetupLog log(paths, request.job_id, config.log_files);
    SetupContext setup;
    setup.paths = &paths;
    setup.job_id = request.job_id;
    setup.deadline = deadline;
    setup.python = options.python;
    setup.log = [&log](std::string_view line) { log.Write(line); };
    setup.log("Setting up runtime env " + request.serialized_env);
    util::Status status;
    for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
      status = SetupOnce(env, setup, context, uris, refs);
      if (status.ok()) break;
      setup.log("Attempt " + std::to_string(attempt) + " failed: " + status.error().message);
      bool timed_out = Expired(deadline) || status.error().kind == util::ErrorKind::kTimeout;
      if (timed_out) {
        util::Error error = std::move(status).error();
        error.kind = util::ErrorKind::kTimeout;
        error.message = TimeoutHint(config.setup_timeout_seconds) + error.message;
        return error;
      }
      // Errors that a retry cannot fix are not retried.
      util::ErrorKind kind = status.error().kind;
      if (kind == util::ErrorKind::kValueError || kind == util::ErrorKind::kTypeError) break;
      if (attempt < options.max_attempts) {
        auto wake = Clock::now() + options.retry_interval;
        if (deadline && wake > *deadline) wake = *deadline;
        std::this_thread::sleep_until(wake);
      }
    }
    if (status.ok()) setup.log("Runtime env ready: " + util::DumpsSorted(context->ToJson()));
    return status;
  }
};

EnvManager::EnvManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EnvManager::~EnvManager() = default;

const NodePaths& EnvManager::paths() const {
  return impl_->paths;
}

std::string EnvManager::EnvId(const std::string& serialized_env) {
  return util::Sha256Hex(serialized_env).substr(0, 12);
}

util::Result<std::unique_ptr<EnvManager>> EnvManager::Open(const NodePaths& paths,
                                                           EnvManagerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->paths = paths;
  if (options.python.empty()) options.python = DefaultPython();
  impl->options = options;
  for (auto& plugin : DefaultPlugins()) impl->plugins.push_back(std::move(plugin));
  std::vector<std::string> kinds(std::begin(kCacheKinds), std::end(kCacheKinds));
  for (const auto& plugin : options.extra_plugins) {
    impl->plugins.push_back(plugin);
    kinds.emplace_back(plugin->name());
  }
  for (const std::string& kind : kinds) {
    auto cache = std::make_unique<UriCache>(kind, paths.resources_dir() / kind,
                                            UriCache::MaxBytesFromEnvironment(kind));
    if (auto ok = cache->Open(); !ok) return std::move(ok).error();
    impl->caches.emplace(kind, std::move(cache));
  }
  return std::unique_ptr<EnvManager>(new EnvManager(std::move(impl)));
}

util::Result<RuntimeEnvContext> EnvManager::GetOrCreate(const CreateRequest& request) {
  Impl& m = *impl_;
  auto env = model::RuntimeEnv::Deserialize(request.serialized_env);
  if (!env) return std::move(env).error();
  auto config =
      request.config ? util::Result<model::RuntimeEnvConfig>(*request.config) : env->Config();
  if (!config) return std::move(config).error();
  bool take_ref = request.source_process != "client_server";
  std::optional<Clock::time_point> deadline;
  if (auto timeout = config->Timeout()) deadline = Clock::now() + std::chrono::seconds(*timeout);

  std::unique_lock lock(m.mutex);
  while (true) {
    auto it = m.envs.find(request.serialized_env);
    if (it == m.envs.end() || it->second.state == EnvState::kReleased) break;
    Impl::Record& record = it->second;
    if (record.state == EnvState::kReady) {
      record.refs += take_ref;
      record.last_used_ms = util::WallClockMs();
      ++m.counters.env_hits;
      return *record.context;
    }
    if (record.state == EnvState::kFailed) {
      if (Clock::now() - record.failed_at < m.options.failure_ttl) {
        ++m.counters.failures;
        return util::Error{record.error_kind, record.error};
      }
      break;
    }
    // Someone else is creating this env: wait for the outcome.
    if (deadline) {
      if (m.done.wait_until(lock, *deadline) == std::cv_status::timeout &&
          m.envs[request.serialized_env].state == EnvState::kCreating) {
        return util::Error{util::ErrorKind::kTimeout,
                           TimeoutHint(config->setup_timeout_seconds) +
                               "Another request was still creating this runtime env."};
      }
    } else {
      m.done.wait(lock);
    }
  }
  Impl::Record& record = m.envs[request.serialized_env];
  record = Impl::Record();
  record.state = EnvState::kCreating;
  record.created_ms = record.last_used_ms = util::WallClockMs();
  lock.unlock();

  RuntimeEnvContext context;
  std::vector<std::string> uris;
  std::vector<UriCache::Ref> refs;
  util::Status status = m.Create(*env, request, *config, &context, &uris, &refs);

  lock.lock();
  Impl::Record& done = m.envs[request.serialized_env];
  done.uris = uris;
  if (status.ok()) {
    done.state = EnvState::kReady;
    done.context = context;
    done.refs = take_ref ? 1 : 0;
    done.uri_refs = std::move(refs);
    ++m.counters.env_creations;
  } else {
    done.state = EnvState::kFailed;
    done.error = status.error().message;
    done.error_kind = status.error().kind;
    done.failed_at = Clock::now();
    ++m.counters.failures;
  }
  m.done.notify_all();
  if (!status.ok()) return std::move(status).error();
  return context;
}

util::Status EnvManager::Delete(const std::string& serialized_env,
                                const std::string& source_process) {
  if (source_process == "client_server") return {};
  Impl& m = *impl_;
  std::vector<UriCache::Ref> released;
  {
    std::lock_guard lock(m.mutex);
    auto it = m.envs.find(serialized_env);
    if (it == m.envs.end() || it->second.refs == 0) {
      return util::ValueError(serialized_env +
                              " cannot decrement reference since the reference count is 0");
    }
    if (--it->second.refs == 0 && it->second.state == EnvState::kReady) {
      // Unreferenced: its resources become evictable; a later request
      // re-acquires them (cheaply, if they are still cached).
      released = std::move(it->second.uri_refs);
      it->second.context.reset();
      it->second.state = EnvState::kReleased;
    }
  }
  return {};  // `released` goes out of scope here, outside the lock
}

std::vector<EnvInfo> EnvManager::Info(std::optional<std::size_t> limit) const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  std::vector<EnvInfo> out;
  for (const auto& [serialized, record] : m.envs) {
    if (limit && out.size() >= *limit) break;
    EnvInfo info;
    info.id = EnvId(serialized);
    info.serialized_env = serialized;
    info.state = record.state;
    info.ref_count = record.refs;
    info.created_ms = record.created_ms;
    info.last_used_ms = record.last_used_ms;
    info.uris = record.uris;
    info.error = record.error;
    if (record.context) info.serialized_context = util::DumpsSorted(record.context->ToJson());
    for (const auto& [kind, cache] : m.caches) {
      for (const UriCache::EntryInfo& entry : cache->Entries()) {
        if (std::find(record.uris.begin(), record.uris.end(), entry.uri) != record.uris.end()) {
          info.size_bytes += entry.size;
        }
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

util::Status EnvManager::Retry(const std::string& id_or_env) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mutex);
  for (auto it = m.envs.begin(); it != m.envs.end(); ++it) {
    if (it->first == id_or_env || EnvId(it->first) == id_or_env) {
      if (it->second.state != EnvState::kFailed) {
        return util::ValueError("runtime env " + EnvId(it->first) + " has not failed (state " +
                                std::string(EnvStateName(it->second.state)) + ")");
      }
      m.envs.erase(it);
      return {};
    }
  }
  return util::NotFoundError("no runtime env with id " + id_or_env);
}

std::vector<std::string> EnvManager::GarbageCollect(std::uint64_t max_bytes) {
  std::vector<std::string> evicted;
  for (const auto& [kind, cache] : impl_->caches) {
    for (std::string& uri : cache->GarbageCollect(max_bytes)) evicted.push_back(std::move(uri));
  }
  return evicted;
}

std::vector<std::pair<std::string, UriCache::EntryInfo>> EnvManager::CacheEntries() const {
  std::vector<std::pair<std::string, UriCache::EntryInfo>> out;
  for (const auto& [kind, cache] : impl_->caches) {
    for (UriCache::EntryInfo& entry : cache->Entries()) out.emplace_back(kind, std::move(entry));
  }
  return out;
}

CacheCounters EnvManager::Counters() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->counters;
}

}  // namespace strata::agent
