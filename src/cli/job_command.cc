// `strata job ...`: Ray's `ray job` commands against a head
// (head/head_client.h).
//
//   strata job submit [--address URL] [--working-dir DIR] [--runtime-env FILE]
//                     [--runtime-env-json TEXT] [--submission-id ID] [--metadata-json TEXT]
//                     [--entrypoint-num-cpus N] [--entrypoint-num-gpus N]
//                     [--entrypoint-memory BYTES] [--entrypoint-resources JSON]
//                     [--cluster-env NAME:VERSION] [--no-wait]
//                     -- ENTRYPOINT...
//   strata job status ID | logs ID [-f] | stop ID [--no-wait] | delete ID | list [--json]
//
// Every subcommand takes --address (else STRATA_ADDRESS, else
// http://127.0.0.1:8265). Exit codes: 0 done (for a waited-for submit: the
// job SUCCEEDED); 1 the head is unreachable or answered with an error, or
// the job did not succeed; 2 invalid input, found here or refused by the
// head (HTTP 400).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/process.h"
#include "cli/command.h"
#include "head/head_client.h"
#include "head/head_db.h"
#include "model/uri.h"
#include "packaging/upload.h"

namespace strata::cli {
namespace {

using util::Json;

struct SubmitArgs {
  std::optional<std::string> address;
  RuntimeEnvArgs env;
  std::optional<std::string> submission_id;
  std::optional<std::string> metadata_json;
  std::optional<double> num_cpus;
  std::optional<double> num_gpus;
  std::optional<std::int64_t> memory;
  std::optional<std::string> resources_json;
  std::optional<std::string> cluster_env;
  bool no_wait = false;
  std::vector<std::string> entrypoint;
};

// The arguments of the other subcommands (each uses what it declares).
struct JobArgs {
  std::optional<std::string> address;
  std::string id;
  bool no_wait = false;
  bool follow = false;
  bool json = false;
};

util::Result<head::JobStatus> StatusOf(const Json& details) {
  std::string name = JsonText(details, "status");
  if (auto status = head::ParseJobStatus(name)) return *status;
  return util::IOError("the head reported an unknown job status '" + name + "'");
}

// Polls the job until it reaches a terminal status; its JobDetails then.
util::Result<Json> WaitForTerminal(head::HeadClient& client, const std::string& id) {
  while (true) {
    auto details = client.GetJob(id);
    if (!details) return details;
    auto status = StatusOf(*details);
    if (!status) return std::move(status).error();
    if (head::IsTerminal(*status)) return details;
    std::this_thread::sleep_for(kStatusPollInterval);
  }
}

void PrintStatus(const std::string& id, const Json& details) {
  std::cout << "Status for job '" << id << "': " << JsonText(details, "status") << "\n";
  std::string message = JsonText(details, "message");
  if (!message.empty()) std::cout << "Status message: " << message << "\n";
}

// The last line of a waited-for submit; kExitOk only for SUCCEEDED.
int ReportOutcome(const std::string& id, const Json& details) {
  auto status = StatusOf(details);
  if (!status) return ReportHeadError(status.error());
  switch (*status) {
    case head::JobStatus::kSucceeded:
      std::cout << "Job '" << id << "' succeeded\n";
      return kExitOk;
    case head::JobStatus::kStopped:
      std::cout << "Job '" << id << "' was stopped\n";
      return kExitFailure;
    default: {
      std::cerr << "Job '" << id << "' failed\n";
      std::string message = JsonText(details, "message");
      if (!message.empty()) std::cerr << "Status message: " << message << "\n";
      return kExitFailure;
    }
  }
}

util::Status TailToStdout(head::HeadClient& client, const std::string& id) {
  return client.TailJobLogs(id, [](std::string_view chunk) {
    std::cout.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    std::cout.flush();
  });
}

// --metadata-json / --entrypoint-resources: a JSON object, or null when absent.
util::Result<Json> JsonObjectFlag(const std::optional<std::string>& text, std::string_view flag) {
  if (!text) return Json(nullptr);
  auto json = util::ParseJson(*text);
  if (!json) {
    return util::ValueError(std::string(flag) + " is not valid JSON: " + json.error().message);
  }
  if (!json->is_object()) {
    return util::ValueError(std::string(flag) + " must be a JSON object, got " +
                            std::string(util::PyTypeName(*json)));
  }
  return json;
}

// "Uploading working_dir: 12 files sent (3.40MiB), 40 unchanged", rewritten
// in place on a terminal; nothing when stderr is not one.
class UploadProgressLine {
 public:
  // The fields whose local paths will be uploaded, in UploadLocalPaths' order.
  explicit UploadProgressLine(const model::RuntimeEnv& env) {
    if (!::isatty(STDERR_FILENO)) return;
    std::string working_dir = env.WorkingDir();
    if (!working_dir.empty() && model::IsPath(working_dir)) labels_.push_back("working_dir");
    for (const std::string& module : env.PyModules()) {
      if (model::IsPath(module)) labels_.push_back("py_modules");
    }
  }
  ~UploadProgressLine() {
    if (shown_) std::cerr << "\n";
  }

  packaging::UploadProgress Callback() {
    if (labels_.empty()) return {};
    return [this](const packaging::UploadStats& stats) {
      // `packages` counts the finished ones, so it indexes the current one.
      const std::string& label = labels_[std::min(stats.packages, labels_.size() - 1)];
      std::cerr << "\r\x1b[KUploading " << label << ": " << stats.files_sent << " files sent ("
                << packaging::MibString(stats.bytes_sent) << "), " << stats.files_skipped
                << " unchanged" << std::flush;
      shown_ = true;
    };
  }

 private:
  std::vector<std::string> labels_;
  bool shown_ = false;
};

int RunSubmit(const SubmitArgs& args) {
  auto env = LoadRuntimeEnvArgs(args.env);
  if (!env) return ReportInvalidInput(env.error());
  auto metadata = JsonObjectFlag(args.metadata_json, "--metadata-json");
  if (!metadata) return ReportInvalidInput(metadata.error());
  auto resources = JsonObjectFlag(args.resources_json, "--entrypoint-resources");
  if (!resources) return ReportInvalidInput(resources.error());
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    {
      UploadProgressLine progress(*env);
      if (auto ok = packaging::UploadLocalPaths(*env, client, nullptr, progress.Callback()); !ok)
        return ReportHeadError(ok.error());
    }
    Json request = Json::object({{"entrypoint", agent::ShellJoin(args.entrypoint)}});
    if (args.submission_id) request["submission_id"] = *args.submission_id;
    if (!env->Empty()) request["runtime_env"] = env->AsJson();
    if (!metadata->is_null()) request["metadata"] = *metadata;
    if (args.num_cpus) request["entrypoint_num_cpus"] = *args.num_cpus;
    if (args.num_gpus) request["entrypoint_num_gpus"] = *args.num_gpus;
    if (args.memory) request["entrypoint_memory"] = *args.memory;
    if (!resources->is_null()) request["entrypoint_resources"] = *resources;
    auto cluster_env =
        args.cluster_env ? args.cluster_env : head::ClusterEnvFromAddress(args.address);
    if (cluster_env) request["cluster_env"] = *cluster_env;
    auto id = client.SubmitJob(request);
    if (!id) return ReportHeadError(id.error());
    std::cout << "Job '" << *id << "' submitted successfully" << std::endl;
    if (args.no_wait) return kExitOk;
    if (auto ok = TailToStdout(client, *id); !ok) return ReportHeadError(ok.error());
    // The tail ends when the job finishes; the status may trail it briefly.
    auto details = WaitForTerminal(client, *id);
    if (!details) return ReportHeadError(details.error());
    return ReportOutcome(*id, *details);
  });
}

int RunStatus(const JobArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    auto details = client.GetJob(args.id);
    if (!details) return ReportHeadError(details.error());
    PrintStatus(args.id, *details);
    return kExitOk;
  });
}

int RunLogs(const JobArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    if (args.follow) {
      if (auto ok = TailToStdout(client, args.id); !ok) return ReportHeadError(ok.error());
      return kExitOk;
    }
    auto logs = client.GetJobLogs(args.id);
    if (!logs) return ReportHeadError(logs.error());
    std::cout << *logs << std::flush;
    return kExitOk;
  });
}

int RunStop(const JobArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    auto stopped = client.StopJob(args.id);
    if (!stopped) return ReportHeadError(stopped.error());
    if (args.no_wait) {
      std::cout << (*stopped ? "Stop requested for job '" + args.id + "'"
                             : "Job '" + args.id + "' is not running")
                << "\n";
      return kExitOk;
    }
    auto details = WaitForTerminal(client, args.id);
    if (!details) return ReportHeadError(details.error());
    PrintStatus(args.id, *details);
    return kExitOk;
  });
}

int RunDelete(const JobArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    if (auto ok = client.DeleteJob(args.id); !ok) return ReportHeadError(ok.error());
    std::cout << "Job '" << args.id << "' deleted successfully\n";
    return kExitOk;
  });
}

int RunList(const JobArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    auto jobs = client.ListJobs();
    if (!jobs) return ReportHeadError(jobs.error());
    if (args.json) {
      std::cout << util::DumpsSorted(*jobs) << "\n";
      return kExitOk;
    }
    if (!jobs->is_array())
      return ReportHeadError(util::IOError("the head's job list is not an array"));
    for (const Json& job : *jobs) {
      std::cout << JsonText(job, "submission_id") << "  " << JsonText(job, "status") << "  "
                << JsonText(job, "entrypoint") << "\n";
    }
    return kExitOk;
  });
}

// A subcommand taking --address and a job id.
CLI::App* AddIdCommand(CLI::App& job, const char* name, const char* description, JobArgs& args) {
  CLI::App* command = job.add_subcommand(name, description);
  AddAddressOption(*command, args.address);
  command->add_option("ID", args.id, "submission id")->required();
  return command;
}

}  // namespace

void AddJobCommands(CLI::App& app, int* exit_code) {
  CLI::App* job = app.add_subcommand("job", "Submit and manage jobs on a Strata head");
  job->require_subcommand(1);

  auto submit_args = std::make_shared<SubmitArgs>();
  CLI::App* submit = job->add_subcommand("submit", "Submit a job and follow its logs");
  AddAddressOption(*submit, submit_args->address);
  AddRuntimeEnvOptions(*submit, submit_args->env);
  submit->add_option("--submission-id", submit_args->submission_id,
                     "id of the job (default: generated)");
  submit->add_option("--metadata-json", submit_args->metadata_json,
                     "metadata as a JSON object of strings");
  submit->add_option("--entrypoint-num-cpus", submit_args->num_cpus,
                     "CPUs reserved for the entrypoint");
  submit->add_option("--entrypoint-num-gpus", submit_args->num_gpus,
                     "GPUs reserved for the entrypoint");
  submit->add_option("--entrypoint-memory", submit_args->memory,
                     "memory in bytes reserved for the entrypoint");
  submit->add_option("--entrypoint-resources", submit_args->resources_json,
                     "custom resources as a JSON object");
  submit->add_option("--cluster-env", submit_args->cluster_env,
                     "run in this cluster environment build, NAME:VERSION (default: the "
                     "address's ?cluster_env=)");
  submit->add_flag("--no-wait", submit_args->no_wait, "do not follow the logs");
  submit->add_option("entrypoint", submit_args->entrypoint, "the shell command (after --)")
      ->required();
  submit->callback([submit_args, exit_code] { *exit_code = RunSubmit(*submit_args); });

  auto args = std::make_shared<JobArgs>();
  AddIdCommand(*job, "status", "Print a job's status", *args)->callback([args, exit_code] {
    *exit_code = RunStatus(*args);
  });
  CLI::App* logs = AddIdCommand(*job, "logs", "Print a job's logs", *args);
  logs->add_flag("-f,--follow", args->follow, "follow the logs until the job finishes");
  logs->callback([args, exit_code] { *exit_code = RunLogs(*args); });
  CLI::App* stop = AddIdCommand(*job, "stop", "Stop a job", *args);
  stop->add_flag("--no-wait", args->no_wait, "do not wait for the job to stop");
  stop->callback([args, exit_code] { *exit_code = RunStop(*args); });
  AddIdCommand(*job, "delete", "Delete a finished job", *args)->callback([args, exit_code] {
    *exit_code = RunDelete(*args);
  });
  CLI::App* list = job->add_subcommand("list", "List the jobs of the head");
  AddAddressOption(*list, args->address);
  list->add_flag("--json", args->json, "print the JobDetails array as JSON");
  list->callback([args, exit_code] { *exit_code = RunList(*args); });
}

}  // namespace strata::cli
