#include "head/job_manager.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "agent/container.h"
#include "agent/launcher.h"
#include "agent/node_connection.h"
#include "agent/process.h"
#include "model/cluster_env_spec.h"
#include "model/runtime_env.h"
#include "model/validation.h"
#include "util/clock.h"
#include "util/file_tail.h"
#include "util/log.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;
using util::Json;

constexpr char kPendingMessage[] =
    "Job has not started yet. It may be waiting for the runtime environment to be set up.";
constexpr char kRunningMessage[] = "Job is currently running.";
constexpr char kSucceededMessage[] = "Job finished successfully.";
constexpr char kStoppedMessage[] = "Job was intentionally stopped.";
constexpr char kHeadStoppedMessage[] =
    "The head stopped while the job was running, and the job's driver process went with it.";
// Ray's cap on the log excerpt in a failed job's message.
constexpr std::size_t kMaxMessageLogChars = 20000;
constexpr std::size_t kLogReadChunk = 64 * 1024;

std::string TypeMessage(std::string_view field, std::string_view expected, const Json& value) {
  return std::string(field) + " must be " + std::string(expected) + ", got " +
         util::PyTypeRepr(value);
}

util::Status CheckStringMap(std::string_view field, const Json& value, bool values_are_numbers) {
  if (!value.is_object()) return util::TypeError(TypeMessage(field, "a dict", value));
  for (const auto& [key, item] : value.items()) {
    (void)key;
    bool ok = values_are_numbers ? (item.is_number() && !item.is_boolean()) : item.is_string();
    if (!ok) {
      return util::TypeError(TypeMessage(std::string(field) + " values",
                                         values_are_numbers ? "numbers" : "strings", item));
    }
  }
  return {};
}

util::Result<std::optional<double>> OptionalNumber(const Json& body, const char* field) {
  if (!body.contains(field)) return std::optional<double>();
  const Json& value = body[field];
  if (!value.is_number() || value.is_boolean()) {
    return util::TypeError(TypeMessage(field, "a number", value));
  }
  return std::optional<double>(value.get<double>());
}

// The gcs:// packages an env names (working_dir, py_modules).
std::vector<std::string> PackageUris(const model::RuntimeEnv& env) {
  std::vector<std::string> uris;
  std::string working_dir = env.WorkingDir();
  if (working_dir.starts_with("gcs://")) uris.push_back(working_dir);
  for (const std::string& module : env.PyModules()) {
    if (module.starts_with("gcs://")) uris.push_back(module);
  }
  return uris;
}

// Kills what is left of a driver's process group after a head died: every
// process of group `pgid` whose environment names the job (the pid may have
// been reused since).
void KillOrphanedDriver(int pgid, const std::string& job_id) {
  const std::string marker = "STRATA_JOB_ID=" + job_id;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the command name (which may hold spaces) start at ") ".
    std::size_t close = line.rfind(") ");
    if (close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 2));
    std::string state;
    int ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp != pgid) continue;
    std::ifstream environ_file(entry.path() / "environ", std::ios::binary);
    std::string environ_text(std::istreambuf_iterator<char>(environ_file), {});
    // Variables are NUL-terminated; a leading NUL lets the first one match too.
    std::string needle = std::string(1, '\0') + marker + '\0';
    if ((std::string(1, '\0') + environ_text).find(needle) == std::string::npos) continue;
    ::kill(std::stoi(name), SIGKILL);
  }
}

std::string LastChars(const std::string& text, std::size_t n) {
  return text.size() <= n ? text : text.substr(text.size() - n);
}

}  // namespace

util::Result<JobSubmitRequest> JobSubmitRequest::FromJson(const Json& raw) {
  if (!raw.is_object()) return util::TypeError(TypeMessage("The request body", "a dict", raw));
  Json body = Json::object();
  for (const auto& [key, value] : raw.items()) {
    if (!value.is_null()) body[key] = value;
  }
  static const std::vector<std::string> kKnown = {
      "entrypoint",          "submission_id",     "job_id",
      "runtime_env",         "metadata",          "entrypoint_num_cpus",
      "entrypoint_num_gpus", "entrypoint_memory", "entrypoint_resources",
      "cluster_env"};
  for (const auto& [key, value] : body.items()) {
    (void)value;
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
      return util::TypeError("JobSubmitRequest.__init__() got an unexpected keyword argument '" +
                             key + "'");
    }
  }
  JobSubmitRequest request;
  if (!body.contains("entrypoint")) {
    return util::TypeError(
        "JobSubmitRequest.__init__() missing 1 required positional argument: 'entrypoint'");
  }
  if (!body["entrypoint"].is_string()) {
    return util::TypeError(TypeMessage("entrypoint", "a string", body["entrypoint"]));
  }
  request.entrypoint = body["entrypoint"].get<std::string>();
  for (const char* key : {"submission_id", "job_id"}) {
    if (!body.contains(key)) continue;
    if (!body[key].is_string()) {
      return util::TypeError(TypeMessage(key, "a string if provided", body[key]));
    }
    if (!request.submission_id) request.submission_id = body[key].get<std::string>();
  }
  if (body.contains("runtime_env")) {
    if (!body["runtime_env"].is_object()) {
      return util::TypeError(TypeMessage("runtime_env", "a dict", body["runtime_env"]));
    }
    request.runtime_env = body["runtime_env"];
  }
  if (body.contains("cluster_env")) {
    if (!body["cluster_env"].is_string()) {
      return util::TypeError(
          TypeMessage("cluster_env", "a string if provided", body["cluster_env"]));
    }
    request.cluster_env = body["cluster_env"].get<std::string>();
  }
  if (body.contains("metadata")) {
    if (auto ok = CheckStringMap("metadata", body["metadata"], false); !ok) return ok.error();
    request.metadata = body["metadata"];
  }
  auto cpus = OptionalNumber(body, "entrypoint_num_cpus");
  if (!cpus) return std::move(cpus).error();
  request.entrypoint_num_cpus = *cpus;
  auto gpus = OptionalNumber(body, "entrypoint_num_gpus");
  if (!gpus) return std::move(gpus).error();
  request.entrypoint_num_gpus = *gpus;
  if (body.contains("entrypoint_memory")) {
    const Json& memory = body["entrypoint_memory"];
    if (!memory.is_number_integer() || memory.get<std::int64_t>() < 0) {
      return util::TypeError(TypeMessage("entrypoint_memory", "a non-negative int", memory));
    }
    request.entrypoint_memory = memory.get<std::int64_t>();
  }
  if (body.contains("entrypoint_resources")) {
    if (auto ok = CheckStringMap("entrypoint_resources", body["entrypoint_resources"], true); !ok)
      return ok.error();
    request.entrypoint_resources = body["entrypoint_resources"];
  }
  return request;
}

std::string NewSubmissionId() {
  // Ray's alphabet: no characters that read alike (I l o O 0).
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string id = "strata_";
  for (int i = 0; i < 16; ++i) id += kAlphabet[pick(rng)];
  return id;
}

namespace {

struct RunningJob {
  std::atomic<bool> cancel{false};
  std::atomic<bool> head_stopping{false};
  std::atomic<bool> done{false};
  std::thread thread;
};

}  // namespace

struct JobManager::Impl {
  HeadDb* db = nullptr;
  PackageService* packages = nullptr;
  JobManagerOptions options;

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<RunningJob>, std::less<>> running;
  bool shut_down = false;

  std::atomic<std::uint64_t> submitted{0};
  std::atomic<std::uint64_t> setup_count{0};
  std::atomic<std::uint64_t> setup_failures{0};
  double setup_seconds_sum = 0;  // guarded by mu

  fs::path LogPath(std::string_view id) const {
    return options.paths.logs_dir() / ("job-driver-" + std::string(id) + ".log");
  }

  // Joins the threads of jobs that have finished.
  void ReapFinished() {
    std::vector<std::shared_ptr<RunningJob>> finished;
    {
      std::lock_guard lock(mu);
      for (auto it = running.begin(); it != running.end();) {
        if (it->second->done) {
          finished.push_back(it->second);
          it = running.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& job : finished) job->thread.join();
  }

  void Save(JobRecord& job, JobStatus status, std::string message,
            std::string_view error_type = "") {
    job.status = status;
    job.message = std::move(message);
    job.error_type = std::string(error_type);
    if (IsTerminal(status)) job.end_time_ms = util::WallClockMs();
    if (auto ok = db->UpdateJob(job); !ok) {
      util::LogError("cannot record job " + job.submission_id + ": " + ok.error().message);
    }
  }

  // `env` with the private field that runs it on the image of cluster env
  // `ref` ("NAME:VERSION"); ValueError when the build cannot run or the env
  // already names an image of its own.
  util::Result<model::RuntimeEnv> BaseImageEnv(const model::RuntimeEnv& env,
                                               const std::string& ref) const {
    auto parsed = model::ParseClusterEnvRef(ref);
    if (!parsed) return std::move(parsed).error();
    if (options.cluster_envs == nullptr) {
      return util::ValueError("cluster_env '" + ref +
                              "': this head does not serve cluster environments");
    }
    for (const char* field : {"container", "image_uri"}) {
      if (env.Contains(field)) {
        return util::ValueError("cluster_env '" + ref + "' cannot be combined with runtime_env '" +
                                field + "': a job runs in one image");
      }
    }
    auto build = options.cluster_envs->ResolveRunnable(*parsed);
    if (!build) return util::ValueError(build.error().message);
    Json pinned = env.AsJson();
    pinned[std::string(agent::kBaseImageField)] =
        Json::object({{"image_id", build->image_id}, {"reference", build->image_ref}});
    return model::RuntimeEnv::Parse(pinned);
  }

  // The terminal status of a job whose run was cut short by Stop or Shutdown.
  void SaveInterrupted(JobRecord& job, const RunningJob& run) {
    if (run.head_stopping) {
      Save(job, JobStatus::kFailed, kHeadStoppedMessage, kSupervisorDied);
    } else {
      Save(job, JobStatus::kStopped, kStoppedMessage);
    }
  }

  std::vector<std::pair<std::string, std::string>> DriverEnvironment(const JobRecord& job) const {
    auto env = agent::CurrentEnvironment();
    Json metadata = job.metadata.is_object() ? job.metadata : Json::object();
    metadata["job_submission_id"] = job.submission_id;
    metadata["job_name"] = job.submission_id;
    Json config =
        Json::object({{"runtime_env", job.runtime_env.is_null() ? Json::object() : job.runtime_env},
                      {"metadata", metadata}});
    auto set = [&env](const std::string& name, const std::string& value) {
      std::erase_if(env, [&](const auto& kv) { return kv.first == name; });
      env.emplace_back(name, value);
    };
    // A driver's own strata.init() then runs its workers in the job's image too.
    set("STRATA_ADDRESS", job.cluster_env.empty()
                              ? options.head_url
                              : options.head_url + "?cluster_env=" + job.cluster_env);
    set("STRATA_JOB_CONFIG_JSON", util::DumpsSorted(config));
    set("STRATA_JOB_ID", job.submission_id);
    set("PYTHONUNBUFFERED", "1");
    return env;
  }

  void Run(const std::shared_ptr<RunningJob>& run, JobRecord job, std::string serialized_env,
           model::RuntimeEnvConfig config) {
    RunJob(*run, job, serialized_env, config);
    if (auto ok = packages->ReleaseJob(job.submission_id); !ok) {
      util::LogWarning("cannot release packages of job " + job.submission_id + ": " +
                       ok.error().message);
    }
    run->done = true;
  }

  void RunJob(RunningJob& run, JobRecord& job, const std::string& serialized_env,
              const model::RuntimeEnvConfig& config) {
    auto node = agent::NodeConnection::Connect(options.paths);
    if (!node) {
      Save(job, JobStatus::kFailed, "Failed to set up runtime environment: " + node.error().message,
           kRuntimeEnvSetupFailure);
      return;
    }
    agent::CreateRequest request;
    request.serialized_env = serialized_env;
    request.job_id = job.submission_id;
    request.config = config;
    auto started = std::chrono::steady_clock::now();
    auto context = node->GetOrCreate(request);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ++setup_count;
    {
      std::lock_guard lock(mu);
      setup_seconds_sum += seconds;
    }
    if (!context) {
      ++setup_failures;
      Save(job, JobStatus::kFailed,
           "Failed to set up runtime environment: " + context.error().message,
           kRuntimeEnvSetupFailure);
      return;
    }
    RunEntrypoint(run, job, *context);
    if (auto ok = node->Delete(serialized_env); !ok) util::LogDebug(ok.error().message);
  }

  void RunEntrypoint(RunningJob& run, JobRecord& job, const agent::RuntimeEnvContext& context) {
    if (run.cancel) {
      SaveInterrupted(job, run);
      return;
    }
    agent::RuntimeEnvContext named = context;
    if (named.container) named.container->name = "strata-job-" + job.submission_id;
    const auto driver_env = DriverEnvironment(job);
    agent::LaunchPlan plan = agent::HostPlan(
        agent::PlanLaunch(named, {"/bin/sh", "-c", job.entrypoint}, driver_env), driver_env);
    std::error_code ec;
    fs::create_directories(options.paths.logs_dir(), ec);
    std::ofstream log(LogPath(job.submission_id), std::ios::binary | std::ios::app);
    if (!log) {
      Save(job, JobStatus::kFailed,
           "Cannot open the driver log " + LogPath(job.submission_id).string(),
           kEntrypointStartError);
      return;
    }
    agent::CommandSpec spec;
    spec.argv = plan.argv;
    spec.cwd = plan.cwd;
    spec.env_mode = agent::EnvMode::kReplace;
    spec.env = plan.env;
    agent::RunOptions run_options;
    run_options.cancel = &run.cancel;
    run_options.kill_grace = options.stop_grace;
    run_options.tail_lines = 200;
    run_options.on_line = [&log](std::string_view line) {
      log << line << '\n';
      log.flush();
    };
    job.driver_node_id = options.node_id;
    run_options.on_start = [this, &job](int pid) {
      job.driver_pid = pid;
      Save(job, JobStatus::kRunning, kRunningMessage);
    };
    auto result = agent::RunCommand(spec, run_options);
    // A SIGKILLed `podman run` leaves its container behind.
    if (named.container) agent::RemoveContainer(named.container->name);
    if (!result) {
      Save(job, JobStatus::kFailed, "Failed to start the entrypoint: " + result.error().message,
           kEntrypointStartError);
      return;
    }
    job.driver_exit_code = result->exit_code;
    if (run.cancel) {
      SaveInterrupted(job, run);
    } else if (result->exit_code == 0) {
      Save(job, JobStatus::kSucceeded, kSucceededMessage);
    } else {
      Save(job, JobStatus::kFailed,
           "Job entrypoint command failed with exit code " + std::to_string(result->exit_code) +
               ", last available logs (truncated to 20,000 chars):\n" +
               LastChars(result->tail, kMaxMessageLogChars),
           kEntrypointCommandError);
    }
  }
};

JobManager::JobManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

JobManager::~JobManager() {
  Shutdown();
}

util::Result<std::unique_ptr<JobManager>> JobManager::Open(HeadDb& db, PackageService& packages,
                                                           JobManagerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->db = &db;
  impl->packages = &packages;
  impl->options = std::move(options);
  for (JobRecord& job : db.ListJobs()) {
    if (IsTerminal(job.status)) continue;
    if (job.driver_pid) KillOrphanedDriver(*job.driver_pid, job.submission_id);
    impl->Save(job, JobStatus::kFailed,
               std::string("Job was ") + std::string(JobStatusName(job.status)) +
                   " when the previous head stopped; its driver process is gone.",
               kSupervisorDied);
    if (auto ok = packages.ReleaseJob(job.submission_id); !ok) return std::move(ok).error();
  }
  return std::unique_ptr<JobManager>(new JobManager(std::move(impl)));
}

util::Result<std::string> JobManager::Submit(const JobSubmitRequest& request) {
  impl_->ReapFinished();
  std::string id = request.submission_id.value_or(NewSubmissionId());
  if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..") {
    return util::ValueError("submission_id '" + id +
                            "' is not valid: expected a non-empty name without '/'");
  }
  auto env = model::RuntimeEnv::Parse(request.runtime_env);
  if (!env) return std::move(env).error();
  if (auto ok = model::ValidateNoLocalPaths(env->AsJson()); !ok) return ok.error();
  // The job shows the user's env; the agent gets the pinned one.
  Json user_env = env->Empty() ? Json() : env->AsJson();
  std::string cluster_env;
  if (request.cluster_env) {
    auto pinned = impl_->BaseImageEnv(*env, *request.cluster_env);
    if (!pinned) return std::move(pinned).error();
    cluster_env = *request.cluster_env;
    env = std::move(pinned);
  }
  auto serialized = env->Serialize();
  if (!serialized) return std::move(serialized).error();
  auto config = env->Config();
  if (!config) return std::move(config).error();
  std::vector<std::string> uris = PackageUris(*env);
  for (const std::string& uri : uris) {
    auto exists = impl_->packages->Exists(uri);
    if (!exists) return std::move(exists).error();
    if (!*exists) {
      return util::ValueError("Package " + uri +
                              " of the runtime_env does not exist in the head's package store; "
                              "upload it first (strata job submit uploads local directories)");
    }
  }

  JobRecord job;
  job.submission_id = id;
  job.entrypoint = request.entrypoint;
  job.message = kPendingMessage;
  job.start_time_ms = util::WallClockMs();
  job.metadata = request.metadata.is_object() ? request.metadata : Json::object();
  job.runtime_env = std::move(user_env);
  job.cluster_env = cluster_env;
  job.entrypoint_num_cpus = request.entrypoint_num_cpus.value_or(0);
  job.entrypoint_num_gpus = request.entrypoint_num_gpus.value_or(0);
  job.entrypoint_memory = request.entrypoint_memory.value_or(0);
  job.entrypoint_resources = request.entrypoint_resources;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->shut_down) return util::Error{util::ErrorKind::kUnavailable, "The head is stopping"};
  }
  if (auto ok = impl_->db->InsertJob(job); !ok) return ok.error();
  if (auto ok = impl_->packages->HoldForJob(id, uris); !ok) return ok.error();
  ++impl_->submitted;

  auto run = std::make_shared<RunningJob>();
  std::lock_guard lock(impl_->mu);
  impl_->running[id] = run;
  run->thread = std::thread(
      [impl = impl_.get(), run, job, serialized = *serialized, config = *config]() mutable {
        impl->Run(run, std::move(job), std::move(serialized), std::move(config));
      });
  return id;
}

util::Result<bool> JobManager::Stop(std::string_view id) {
  auto job = impl_->db->GetJob(id);
  if (!job) return std::move(job).error();
  std::lock_guard lock(impl_->mu);
  auto it = impl_->running.find(id);
  if (it == impl_->running.end() || it->second->done || IsTerminal(job->status)) return false;
  it->second->cancel = true;
  return true;
}

util::Status JobManager::Delete(std::string_view id) {
  auto job = impl_->db->GetJob(id);
  if (!job) return std::move(job).error();
  if (!IsTerminal(job->status)) {
    return util::ValueError("Attempted to delete job '" + std::string(id) +
                            "', but it is in a non-terminal state " +
                            std::string(JobStatusName(job->status)) + ".");
  }
  return impl_->db->DeleteJob(id);
}

util::Result<JobRecord> JobManager::Get(std::string_view id) const {
  return impl_->db->GetJob(id);
}

std::vector<JobRecord> JobManager::List() const {
  return impl_->db->ListJobs();
}

util::Result<std::string> JobManager::Logs(std::string_view id) const {
  auto job = impl_->db->GetJob(id);
  if (!job) return std::move(job).error();
  return util::FileText(impl_->LogPath(id));
}

util::Result<LogChunk> JobManager::ReadLog(std::string_view id, std::uint64_t offset,
                                           std::chrono::milliseconds wait) const {
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    auto job = impl_->db->GetJob(id);
    if (!job) return std::move(job).error();
    // Read the status first: a job is terminal only after its last line was
    // written, so a read after a terminal status sees the whole log.
    bool terminal = IsTerminal(job->status);
    LogChunk chunk;
    chunk.data = util::FileChunk(impl_->LogPath(id), offset, kLogReadChunk);
    chunk.next_offset = offset + chunk.data.size();
    if (!chunk.data.empty()) return chunk;
    chunk.finished = terminal;
    if (terminal || std::chrono::steady_clock::now() >= deadline) return chunk;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

JobCounters JobManager::Counters() const {
  JobCounters counters;
  counters.submitted = impl_->submitted;
  counters.setup_count = impl_->setup_count;
  counters.setup_failures = impl_->setup_failures;
  std::lock_guard lock(impl_->mu);
  counters.setup_seconds_sum = impl_->setup_seconds_sum;
  return counters;
}

void JobManager::Shutdown() {
  std::map<std::string, std::shared_ptr<RunningJob>, std::less<>> running;
  {
    std::lock_guard lock(impl_->mu);
    impl_->shut_down = true;
    running.swap(impl_->running);
  }
  for (auto& [id, run] : running) {
    (void)id;
    run->head_stopping = true;
    run->cancel = true;
  }
  for (auto& [id, run] : running) {
    (void)id;
    run->thread.join();
  }
}

}  // namespace strata::head
