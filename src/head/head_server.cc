#include "head/head_server.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/agent_http.h"
#include "agent/node_connection.h"
#include "clusterenv/image_builder.h"
#include "head/cluster_env_service.h"
#include "head/head_db.h"
#include "head/job_manager.h"
#include "head/package_service.h"
#include "model/cluster_env_spec.h"
#include "packaging/blob_store.h"
#include "util/clock.h"
#include "util/listen_backlog.h"
#include "util/log.h"
#include "util/pid_record.h"
#include "util/version.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;
using util::Json;

// The Job Submission API level Ray clients check before using a feature
// (entrypoint_memory needs 2.8, DELETE needs version 4).
constexpr char kRayApiVersion[] = "2.40.0";
constexpr std::size_t kHttpThreads = 64;

fs::path HeadRecordFile(const agent::NodePaths& paths) {
  return paths.session_dir / "head.json";
}

int HttpStatusFor(const util::Error& error) {
  switch (error.kind) {
    case util::ErrorKind::kTypeError:
    case util::ErrorKind::kValueError:
    case util::ErrorKind::kKeyError:
      return 400;
    case util::ErrorKind::kNotFound:
      return 404;
    case util::ErrorKind::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

void SendError(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(message, "text/plain; charset=utf-8");
}

void SendError(httplib::Response& res, const util::Error& error) {
  SendError(res, HttpStatusFor(error), error.message);
}

void SendJson(httplib::Response& res, const Json& body) {
  res.set_content(util::DumpsSorted(body), "application/json");
}

// The host part of an Origin ("https://a.example:8080" → "a.example:8080").
std::string OriginHost(const std::string& origin) {
  std::size_t scheme = origin.find("://");
  return scheme == std::string::npos ? origin : origin.substr(scheme + 3);
}

bool IsCrossSite(const httplib::Request& req) {
  if (req.get_header_value("Sec-Fetch-Site") == "cross-site") return true;
  if (!req.has_header("Origin")) return false;
  std::string origin = req.get_header_value("Origin");
  return origin == "null" || OriginHost(origin) != req.get_header_value("Host");
}

bool TokenMatches(const std::string& header, const std::string& token) {
  const std::string expected = "Bearer " + token;
  return header.size() == expected.size() &&
         CRYPTO_memcmp(header.data(), expected.data(), expected.size()) == 0;
}

util::Result<Json> ParseBody(const httplib::Request& req) {
  auto json = util::ParseJson(req.body);
  if (!json) return util::ValueError("The request body is not valid JSON: " + json.error().message);
  return json;
}

util::Result<packaging::Manifest> ManifestFromBody(const httplib::Request& req) {
  auto body = ParseBody(req);
  if (!body) return std::move(body).error();
  if (!body->is_object() || !body->contains("manifest")) {
    return util::ValueError("The request body must be an object with a \"manifest\" field");
  }
  return packaging::Manifest::FromJson((*body)["manifest"]);
}

// One Prometheus sample line.
void Metric(std::ostringstream& out, const std::string& name, const std::string& labels,
            double value) {
  out << name;
  if (!labels.empty()) out << '{' << labels << '}';
  out << ' ' << value << '\n';
}

void MetricHeader(std::ostringstream& out, const std::string& name, const char* type,
                  const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

}  // namespace

struct Head::Impl {
  HeadOptions options;
  std::unique_ptr<HeadDb> db;
  std::optional<packaging::BlobStore> store;
  std::unique_ptr<PackageService> packages;
  std::unique_ptr<JobManager> jobs;
  std::unique_ptr<ClusterEnvService> cluster_envs;
  std::string node_id;
  std::string url;
  std::int64_t start_time_ms = util::WallClockMs();
  int port = 0;
  httplib::Server server;

  std::mutex gc_mu;
  std::condition_variable gc_cv;
  bool stopping = false;

  std::optional<agent::AgentClient> Agent() const {
    return agent::AgentClient::Discover(options.paths);
  }

  void RegisterRoutes();
  void RegisterPackageRoutes();
  void RegisterJobRoutes();
  void RegisterClusterEnvRoutes();
  void RegisterClusterRoutes();
  httplib::Server::HandlerResponse Guard(const httplib::Request& req, httplib::Response& res);
  std::string MetricsText();
  void CollectGarbageUntilStopped();
};

httplib::Server::HandlerResponse Head::Impl::Guard(const httplib::Request& req,
                                                   httplib::Response& res) {
  using Handled = httplib::Server::HandlerResponse;
  if (req.path == "/api/healthz") return Handled::Unhandled;
  if (!options.auth_token.empty() &&
      !TokenMatches(req.get_header_value("Authorization"), options.auth_token)) {
    SendError(res, 401,
              "Unauthorized: this head requires 'Authorization: Bearer <token>' "
              "(set STRATA_AUTH_TOKEN to the head's token)");
    return Handled::Handled;
  }
  bool changes_state = req.method == "POST" || req.method == "PUT" || req.method == "DELETE";
  if (changes_state && IsCrossSite(req)) {
    SendError(res, 403, "Cross-site requests may not change the cluster's state");
    return Handled::Handled;
  }
  return Handled::Unhandled;
}

void Head::Impl::RegisterPackageRoutes() {
  static const char kPackagePath[] = R"(/api/packages/([^/]+)/([^/]+))";
  server.Get(kPackagePath, [this](const httplib::Request& req, httplib::Response& res) {
    std::string uri = req.matches[1].str() + "://" + req.matches[2].str();
    auto exists = packages->Exists(uri);
    if (!exists) return SendError(res, exists.error());
    if (!*exists) return SendError(res, 404, "Package " + uri + " does not exist");
    res.status = 200;
  });
  server.Put(kPackagePath, [this](const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& reader) {
    std::string uri = req.matches[1].str() + "://" + req.matches[2].str();
    if (auto name = PackageService::PackageNameOf(uri); !name) return SendError(res, name.error());
    // Streamed to a file: archives may be as large as the package limit.
    fs::path temp = store->root() / "tmp" /
                    ("upload-" + std::to_string(::getpid()) + "-" +
                     std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id())));
    std::uint64_t received = 0;
    bool too_large = false;
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      reader([&](const char* data, std::size_t length) {
        received += length;
        if (received > packages->options().max_upload_bytes) {
          too_large = true;
          return false;
        }
        out.write(data, static_cast<std::streamsize>(length));
        return static_cast<bool>(out);
      });
    }
    util::Status stored;
    if (too_large) {
      stored = util::ValueError("Package " + uri + " is larger than the limit of " +
                                std::to_string(packages->options().max_upload_bytes) +
                                " bytes (STRATA_MAX_PACKAGE_SIZE)");
    } else {
      stored = packages->PutArchive(uri, temp);
    }
    std::error_code ec;
    fs::remove(temp, ec);
    if (!stored)
      return SendError(res, too_large ? 413 : HttpStatusFor(stored.error()),
                       stored.error().message);
    res.status = 200;
  });
  server.Post("/api/packages/manifest",
              [this](const httplib::Request& req, httplib::Response& res) {
                auto manifest = ManifestFromBody(req);
                if (!manifest) return SendError(res, manifest.error());
                auto missing = packages->MissingBlobs(*manifest);
                if (!missing) return SendError(res, missing.error());
                SendJson(res, Json::object({{"uri", manifest->Uri()}, {"missing", *missing}}));
              });
  server.Put(R"(/api/blobs/([0-9a-f]{64}))",
             [this](const httplib::Request& req, httplib::Response& res) {
               if (auto ok = packages->PutBlob(req.matches[1].str(), req.body); !ok)
                 return SendError(res, ok.error());
               res.status = 200;
             });
  server.Post("/api/packages/commit", [this](const httplib::Request& req, httplib::Response& res) {
    auto manifest = ManifestFromBody(req);
    if (!manifest) return SendError(res, manifest.error());
    auto uri = packages->Commit(*manifest);
    if (!uri) return SendError(res, uri.error());
    SendJson(res, Json::object({{"uri", *uri}}));
  });
}

void Head::Impl::RegisterJobRoutes() {
  auto submit = [this](const httplib::Request& req, httplib::Response& res) {
    auto body = ParseBody(req);
    if (!body) return SendError(res, body.error());
    auto request = JobSubmitRequest::FromJson(*body);
    if (!request) return SendError(res, request.error());
    auto id = jobs->Submit(*request);
    if (!id) return SendError(res, id.error());
    SendJson(res, Json::object({{"job_id", *id}, {"submission_id", *id}}));
  };
  auto list = [this](const httplib::Request&, httplib::Response& res) {
    Json all = Json::array();
    for (const JobRecord& job : jobs->List()) all.push_back(job.ToDetailsJson());
    SendJson(res, all);
  };
  server.Post("/api/jobs/", submit);
  server.Post("/api/jobs", submit);
  server.Get("/api/jobs/", list);
  server.Get("/api/jobs", list);
  server.Get(R"(/api/jobs/([^/]+)/?)", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = jobs->Get(req.matches[1].str());
    if (!job) return SendError(res, job.error());
    SendJson(res, job->ToDetailsJson());
  });
  // Stop and delete take no body; the ContentReader form keeps httplib 0.11
  // from waiting for one when a client sends neither Content-Length nor a body.
  server.Post(
      R"(/api/jobs/([^/]+)/stop/?)",
      [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader&) {
        auto stopped = jobs->Stop(req.matches[1].str());
        if (!stopped) return SendError(res, stopped.error());
        SendJson(res, Json::object({{"stopped", *stopped}}));
      });
  server.Delete(
      R"(/api/jobs/([^/]+)/?)",
      [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader&) {
        if (auto ok = jobs->Delete(req.matches[1].str()); !ok) return SendError(res, ok.error());
        SendJson(res, Json::object({{"deleted", true}}));
      });
  server.Get(R"(/api/jobs/([^/]+)/logs/?)",
             [this](const httplib::Request& req, httplib::Response& res) {
               auto logs = jobs->Logs(req.matches[1].str());
               if (!logs) return SendError(res, logs.error());
               SendJson(res, Json::object({{"logs", *logs}}));
             });
  server.Get(R"(/api/jobs/([^/]+)/logs/tail/?)", [this](const httplib::Request& req,
                                                        httplib::Response& res) {
    std::string id = req.matches[1].str();
    if (auto job = jobs->Get(id); !job) return SendError(res, job.error());
    res.set_chunked_content_provider(
        "text/plain; charset=utf-8",
        [this, id, offset = std::uint64_t{0}](std::size_t, httplib::DataSink& sink) mutable {
          while (sink.is_writable()) {
            auto chunk = jobs->ReadLog(id, offset, std::chrono::milliseconds(500));
            if (!chunk || chunk->finished) break;
            offset = chunk->next_offset;
            if (!chunk->data.empty() && !sink.write(chunk->data.data(), chunk->data.size())) {
              return false;
            }
          }
          sink.done();
          return true;
        });
  });
}

namespace {

util::Result<int> ParseVersion(const std::string& text) {
  auto ref = model::ParseClusterEnvRef("x:" + text);
  if (!ref) return util::ValueError("build version '" + text + "' must be a positive integer");
  return ref->version;
}

}  // namespace

void Head::Impl::RegisterClusterEnvRoutes() {
  static const std::string kBase = "/api/cluster_environments";
  auto list = [this](const httplib::Request& req, httplib::Response& res) {
    const std::string archived = req.get_param_value("include_archived");
    Json all = Json::array();
    for (const ClusterEnvRecord& env :
         cluster_envs->ListEnvs(archived == "1" || archived == "true")) {
      all.push_back(env.ToJson());
    }
    SendJson(res, Json::object({{"cluster_environments", all}}));
  };
  server.Get(kBase, list);
  server.Get(kBase + "/", list);
  // Body: {"spec": <spec object> | "<YAML text>"}.
  server.Post(kBase + R"(/([^/]+)/builds/?)", [this](const httplib::Request& req,
                                                     httplib::Response& res) {
    auto body = ParseBody(req);
    if (!body) return SendError(res, body.error());
    if (!body->is_object() || !body->contains("spec")) {
      return SendError(res,
                       util::ValueError("The request body must be an object with a \"spec\" "
                                        "field (the cluster env spec, an object or YAML text)"));
    }
    const Json& raw = (*body)["spec"];
    auto spec = raw.is_string() ? model::ClusterEnvSpec::FromText(raw.get<std::string>(), "spec")
                                : model::ClusterEnvSpec::FromJson(raw);
    if (!spec) return SendError(res, spec.error());
    auto build = cluster_envs->StartBuild(req.matches[1].str(), *spec);
    if (!build) return SendError(res, build.error());
    SendJson(res, build->ToJson());
  });
  server.Get(kBase + R"(/([^/]+)/?)", [this](const httplib::Request& req, httplib::Response& res) {
    auto env = cluster_envs->GetEnv(req.matches[1].str());
    if (!env) return SendError(res, env.error());
    auto builds = cluster_envs->ListBuilds(req.matches[1].str());
    if (!builds) return SendError(res, builds.error());
    Json out = env->ToJson();
    out["builds"] = Json::array();
    for (const ClusterEnvBuildRecord& build : *builds) out["builds"].push_back(build.ToJson());
    SendJson(res, out);
  });
  server.Get(kBase + R"(/([^/]+)/builds/?)",
             [this](const httplib::Request& req, httplib::Response& res) {
               auto builds = cluster_envs->ListBuilds(req.matches[1].str());
               if (!builds) return SendError(res, builds.error());
               Json all = Json::array();
               for (const ClusterEnvBuildRecord& build : *builds) all.push_back(build.ToJson());
               SendJson(res, Json::object({{"builds", all}}));
             });
  server.Get(kBase + R"(/([^/]+)/builds/([^/]+)/?)",
             [this](const httplib::Request& req, httplib::Response& res) {
               auto version = ParseVersion(req.matches[2].str());
               if (!version) return SendError(res, version.error());
               auto build = cluster_envs->GetBuild(req.matches[1].str(), *version);
               if (!build) return SendError(res, build.error());
               SendJson(res, build->ToJson());
             });
  server.Get(kBase + R"(/([^/]+)/builds/([^/]+)/logs/?)",
             [this](const httplib::Request& req, httplib::Response& res) {
               auto version = ParseVersion(req.matches[2].str());
               if (!version) return SendError(res, version.error());
               auto chunk = cluster_envs->ReadBuildLog(req.matches[1].str(), *version, 0,
                                                       std::chrono::milliseconds(0));
               if (!chunk) return SendError(res, chunk.error());
               SendJson(res, Json::object({{"logs", chunk->data}}));
             });
  server.Get(kBase + R"(/([^/]+)/builds/([^/]+)/logs/tail/?)", [this](const httplib::Request& req,
                                                                      httplib::Response& res) {
    std::string name = req.matches[1].str();
    auto version = ParseVersion(req.matches[2].str());
    if (!version) return SendError(res, version.error());
    if (auto build = cluster_envs->GetBuild(name, *version); !build) {
      return SendError(res, build.error());
    }
    res.set_chunked_content_provider(
        "text/plain; charset=utf-8", [this, name, version = *version, offset = std::uint64_t{0}](
                                         std::size_t, httplib::DataSink& sink) mutable {
          while (sink.is_writable()) {
            auto chunk =
                cluster_envs->ReadBuildLog(name, version, offset, std::chrono::milliseconds(500));
            if (!chunk) break;
            offset = chunk->next_offset;
            if (!chunk->data.empty() && !sink.write(chunk->data.data(), chunk->data.size())) {
              return false;
            }
            if (chunk->finished) break;
          }
          sink.done();
          return true;
        });
  });
  server.Post(
      kBase + R"(/([^/]+)/archive/?)",
      [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader&) {
        if (auto ok = cluster_envs->Archive(req.matches[1].str()); !ok) {
          return SendError(res, ok.error());
        }
        SendJson(res, Json::object({{"archived", true}}));
      });
}

void Head::Impl::RegisterClusterRoutes() {
  server.Get("/api/version", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, Json::object({{"version", "4"},
                                {"ray_version", kRayApiVersion},
                                {"ray_commit", ""},
                                {"strata_version", std::string(util::kStrataVersion)},
                                {"session_name", options.paths.session_dir.filename().string()}}));
  });
  server.Get("/api/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("success", "text/plain");
  });
  server.Get("/api/nodes", [this](const httplib::Request&, httplib::Response& res) {
    auto agent = Agent();
    Json node = Json::object({{"node_id", node_id},
                              {"node_ip_address", "127.0.0.1"},
                              {"hostname", ""},
                              {"is_head_node", true},
                              {"state", "ALIVE"},
                              {"agent_port", agent ? Json(agent->port()) : Json()},
                              {"start_time_ms", start_time_ms}});
    char hostname[256] = {};
    if (::gethostname(hostname, sizeof hostname - 1) == 0) node["hostname"] = hostname;
    Json cache = Json::object();
    if (agent) {
      if (auto info = agent->Info(); info) {
        for (const Json& resource : info->value("cached_resources", Json::array())) {
          std::string kind = resource.value("kind", "");
          Json& entry = cache[kind];
          if (entry.is_null()) entry = Json::object({{"entries", 0}, {"size_bytes", 0}});
          entry["entries"] = entry["entries"].get<std::uint64_t>() + 1;
          entry["size_bytes"] =
              entry["size_bytes"].get<std::uint64_t>() + resource.value("size_bytes", 0ull);
        }
        node["runtime_envs"] = info->value("total", 0);
      }
    }
    node["runtime_env_cache"] = cache;
    SendJson(res, Json::object({{"nodes", Json::array({node})}}));
  });
  auto runtime_envs = [this](const httplib::Request&, httplib::Response& res) {
    Json rows = Json::array();
    std::string warning;
    auto agent = Agent();
    util::Result<Json> info =
        agent ? agent->Info()
              : util::Result<Json>(util::Error{util::ErrorKind::kUnavailable,
                                               "the node agent of this head is not running"});
    if (!info) {
      warning = "Node " + node_id + ": " + info.error().message;
    } else {
      for (const Json& state : info->value("runtime_env_states", Json::array())) {
        auto env = util::ParseJson(state.value("runtime_env", "{}"));
        rows.push_back(Json::object({{"runtime_env", env ? *env : Json::object()},
                                     {"success", state.value("success", false)},
                                     {"creation_time_ms", state.value("creation_time_ms", Json())},
                                     {"node_id", node_id},
                                     {"ref_cnt", state.value("ref_cnt", 0)},
                                     {"error", state.value("error", "")}}));
      }
    }
    // Ray's order: newest first.
    std::stable_sort(rows.begin(), rows.end(), [](const Json& a, const Json& b) {
      return a["creation_time_ms"].get<std::int64_t>() > b["creation_time_ms"].get<std::int64_t>();
    });
    Json result = Json::object({{"result", rows},
                                {"total", rows.size()},
                                {"num_after_truncation", rows.size()},
                                {"num_filtered", rows.size()},
                                {"partial_failure_warning", warning}});
    SendJson(res,
             Json::object(
                 {{"result", true}, {"msg", ""}, {"data", Json::object({{"result", result}})}}));
  };
  server.Get("/api/runtime_envs", runtime_envs);
  server.Get("/api/v0/runtime_envs", runtime_envs);
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsText(), "text/plain; version=0.0.4");
  });
}

std::string Head::Impl::MetricsText() {
  std::ostringstream out;
  std::map<std::string, int> by_status;
  for (JobStatus s : {JobStatus::kPending, JobStatus::kRunning, JobStatus::kStopped,
                      JobStatus::kSucceeded, JobStatus::kFailed}) {
    by_status[std::string(JobStatusName(s))] = 0;
  }
  for (const JobRecord& job : jobs->List()) ++by_status[std::string(JobStatusName(job.status))];
  MetricHeader(out, "strata_jobs", "gauge", "Jobs known to the head, by status.");
  for (const auto& [status, count] : by_status) {
    Metric(out, "strata_jobs", "status=\"" + status + "\"", count);
  }
  JobCounters counters = jobs->Counters();
  MetricHeader(out, "strata_jobs_submitted_total", "counter", "Jobs submitted since start.");
  Metric(out, "strata_jobs_submitted_total", "", static_cast<double>(counters.submitted));
  MetricHeader(out, "strata_job_runtime_env_setup_seconds", "summary",
               "Time jobs waited for their runtime environment.");
  Metric(out, "strata_job_runtime_env_setup_seconds_sum", "", counters.setup_seconds_sum);
  Metric(out, "strata_job_runtime_env_setup_seconds_count", "",
         static_cast<double>(counters.setup_count));
  MetricHeader(out, "strata_job_runtime_env_setup_failures_total", "counter",
               "Jobs whose runtime environment could not be set up.");
  Metric(out, "strata_job_runtime_env_setup_failures_total", "",
         static_cast<double>(counters.setup_failures));

  if (auto agent = Agent()) {
    if (auto info = agent->Info(); info) {
      const Json counters_json = info->value("counters", Json::object());
      auto counter = [&](const char* name, const char* key, const char* help) {
        MetricHeader(out, name, "counter", help);
        Metric(out, name, "", counters_json.value(key, 0.0));
      };
      counter("strata_runtime_env_creations_total", "env_creations",
              "Runtime environments created by the node agent.");
      counter("strata_runtime_env_cache_hits_total", "env_hits",
              "Requests served from an environment already built.");
      counter("strata_runtime_env_cache_misses_total", "env_creations",
              "Requests that had to build their environment.");
      counter("strata_runtime_env_resource_cache_hits_total", "resource_hits",
              "Cached resources (packages, virtualenvs) reused.");
      counter("strata_runtime_env_resource_creations_total", "resource_creations",
              "Cached resources built.");
      counter("strata_runtime_env_failures_total", "failures",
              "Runtime environment creations that failed.");
      std::map<std::string, double> bytes;
      for (const Json& resource : info->value("cached_resources", Json::array())) {
        bytes[resource.value("kind", "")] += resource.value("size_bytes", 0.0);
      }
      MetricHeader(out, "strata_runtime_env_cache_bytes", "gauge",
                   "Bytes held by the node's runtime env caches, by kind.");
      for (const auto& [kind, size] : bytes) {
        Metric(out, "strata_runtime_env_cache_bytes", "kind=\"" + kind + "\"", size);
      }
    }
  }
  ClusterEnvCounters builds = cluster_envs->Counters();
  MetricHeader(out, "strata_cluster_env_builds_total", "counter",
               "Cluster environment builds since start, by outcome.");
  Metric(out, "strata_cluster_env_builds_total", "outcome=\"started\"",
         static_cast<double>(builds.builds_started));
  Metric(out, "strata_cluster_env_builds_total", "outcome=\"succeeded\"",
         static_cast<double>(builds.builds_succeeded));
  Metric(out, "strata_cluster_env_builds_total", "outcome=\"failed\"",
         static_cast<double>(builds.builds_failed));
  MetricHeader(out, "strata_cluster_env_build_seconds_sum", "counter",
               "Seconds spent in finished cluster environment builds.");
  Metric(out, "strata_cluster_env_build_seconds_sum", "", builds.build_seconds_sum);
  PackageCounters pc = packages->Counters();
  MetricHeader(out, "strata_package_upload_bytes_total", "counter",
               "Bytes received by the package store.");
  Metric(out, "strata_package_upload_bytes_total", "", static_cast<double>(pc.bytes_uploaded));
  MetricHeader(out, "strata_package_blobs_uploaded_total", "counter",
               "File contents received by incremental uploads.");
  Metric(out, "strata_package_blobs_uploaded_total", "", static_cast<double>(pc.blobs_uploaded));
  MetricHeader(out, "strata_packages_deleted_total", "counter",
               "Packages removed by garbage collection.");
  Metric(out, "strata_packages_deleted_total", "", static_cast<double>(pc.packages_deleted));
  double stored_bytes = 0;
  auto stored = store->ListPackages();
  for (const auto& package : stored) stored_bytes += static_cast<double>(package.size);
  MetricHeader(out, "strata_packages", "gauge", "Packages in the store.");
  Metric(out, "strata_packages", "", static_cast<double>(stored.size()));
  MetricHeader(out, "strata_package_store_bytes", "gauge", "Bytes of stored package archives.");
  Metric(out, "strata_package_store_bytes", "", stored_bytes);
  return out.str();
}

void Head::Impl::CollectGarbageUntilStopped() {
  std::unique_lock lock(gc_mu);
  while (!gc_cv.wait_for(lock, options.gc_interval, [this] { return stopping; })) {
    lock.unlock();
    auto report = packages->CollectGarbage();
    if (!report) {
      util::LogWarning("package garbage collection failed: " + report.error().message);
    } else if (!report->deleted_packages.empty()) {
      util::LogInfo("package garbage collection removed " +
                    std::to_string(report->deleted_packages.size()) + " packages and " +
                    std::to_string(report->deleted_blobs) + " blobs");
    }
    lock.lock();
  }
}

void Head::Impl::RegisterRoutes() {
  server.set_tcp_nodelay(true);
  server.new_task_queue = [] { return new httplib::ThreadPool(kHttpThreads); };
  server.set_payload_max_length(packages->options().max_upload_bytes + 1024 * 1024);
  server.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return Guard(req, res); });
  RegisterPackageRoutes();
  RegisterJobRoutes();
  RegisterClusterEnvRoutes();
  RegisterClusterRoutes();
}

Head::Head(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Head::~Head() {
  if (impl_->jobs) impl_->jobs->Shutdown();
  if (impl_->cluster_envs) impl_->cluster_envs->Shutdown();
}

util::Result<std::unique_ptr<Head>> Head::Open(HeadOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const agent::NodePaths& paths = impl->options.paths;
  auto db = HeadDb::Open(paths.home / "head" / "head.db");
  if (!db) return std::move(db).error();
  impl->db = std::move(db).value();
  auto store = packaging::BlobStore::Open(paths.store_dir());
  if (!store) return std::move(store).error();
  impl->store.emplace(std::move(store).value());
  auto package_options = PackageServiceOptions::FromEnvironment();
  if (!package_options) return std::move(package_options).error();
  impl->packages = std::make_unique<PackageService>(*impl->store, *impl->db, *package_options);
  auto node_id = agent::NodeId(paths);
  if (!node_id) return std::move(node_id).error();
  impl->node_id = *node_id;
  auto cluster_env_options = ClusterEnvServiceOptions::FromEnvironment(paths.home);
  if (!cluster_env_options) return std::move(cluster_env_options).error();
  auto cluster_envs = ClusterEnvService::Open(*impl->db, clusterenv::MakePodmanImageBuilder(),
                                              *cluster_env_options);
  if (!cluster_envs) return std::move(cluster_envs).error();
  impl->cluster_envs = std::move(cluster_envs).value();
  return std::unique_ptr<Head>(new Head(std::move(impl)));
}

util::Result<int> Head::Bind() {
  Impl& impl = *impl_;
  const std::string& host = impl.options.host;
  int port = impl.options.port;
  int bound = port == 0 ? impl.server.bind_to_any_port(host)
                        : (impl.server.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    return util::IOError("cannot listen on " + host + ":" + std::to_string(port) +
                         " (is another process using the port?)");
  }
  impl.port = bound;
  if (auto ok = util::RaiseListenBacklog(bound); !ok) util::LogWarning(ok.error().message);
  // Drivers on this node reach the head through loopback when it listens everywhere.
  std::string reachable = (host == "0.0.0.0" || host == "::") ? "127.0.0.1" : host;
  impl.url = "http://" + reachable + ":" + std::to_string(bound);
  JobManagerOptions job_options;
  job_options.paths = impl.options.paths;
  job_options.head_url = impl.url;
  job_options.node_id = impl.node_id;
  job_options.stop_grace = impl.options.stop_grace;
  job_options.cluster_envs = impl.cluster_envs.get();
  auto jobs = JobManager::Open(*impl.db, *impl.packages, job_options);
  if (!jobs) return std::move(jobs).error();
  impl.jobs = std::move(jobs).value();
  impl.RegisterRoutes();
  return bound;
}

util::Status Head::Run() {
  Impl& impl = *impl_;
  if (!impl.jobs) return util::Error{util::ErrorKind::kInternal, "Head::Run before Bind"};
  fs::path record = HeadRecordFile(impl.options.paths);
  if (auto ok = util::WritePidRecord(
          record,
          Json::object({{"url", impl.url}, {"host", impl.options.host}, {"port", impl.port}}));
      !ok) {
    return ok;
  }
  std::thread gc([&impl] { impl.CollectGarbageUntilStopped(); });
  bool served = impl.server.listen_after_bind();
  {
    std::lock_guard lock(impl.gc_mu);
    impl.stopping = true;
  }
  impl.gc_cv.notify_all();
  gc.join();
  impl.jobs->Shutdown();
  impl.cluster_envs->Shutdown();
  std::error_code ec;
  fs::remove(record, ec);
  if (!served) return util::IOError("the head's HTTP server stopped unexpectedly");
  return {};
}

void Head::Stop() {
  impl_->server.stop();
}

std::string RecordedHeadUrl(const agent::NodePaths& paths) {
  auto record = util::ReadLivePidRecord(HeadRecordFile(paths));
  if (!record) return "";
  return record->value("url", "");
}

}  // namespace strata::head
