// `strata cluster-env ...`: cluster environments on a head
// (head/cluster_env_service.h), and Debian base images built locally.
//
//   strata cluster-env build FILE --name NAME [--no-wait]   prints NAME:VERSION on stdout;
//                                                           the build log goes to stderr
//   strata cluster-env list [--all] [--json]
//   strata cluster-env get NAME[:VERSION] [--json]
//   strata cluster-env builds NAME [--json]
//   strata cluster-env logs NAME:VERSION [--follow]
//   strata cluster-env archive NAME
//   strata cluster-env base --name NAME [--suite SUITE] [--mirror URL]
//
// Head commands take --address like `strata job`. Exit codes: 0 done (for a
// followed build: it SUCCEEDED); 1 the head is unreachable or answered with
// an error, or the build failed; 2 invalid input (a bad spec file is
// reported here, before anything is sent).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "cli/command.h"
#include "clusterenv/image_builder.h"
#include "head/head_client.h"
#include "model/cluster_env_spec.h"
#include "util/clock.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;
using util::Json;

struct ClusterEnvArgs {
  std::optional<std::string> address;
  std::string file;
  std::string name;
  bool no_wait = false;
  bool all = false;
  bool json = false;
  bool follow = false;
  std::string suite = "bookworm";
  std::string mirror;
};

std::string Number(const Json& object, std::string_view key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? std::to_string(it->get<std::int64_t>())
                                                       : "";
}

// "2026-11-22 04:12:54" (UTC) from epoch milliseconds; "-" for null.
std::string TimeText(const Json& object, std::string_view key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number()) return "-";
  std::time_t seconds = static_cast<std::time_t>(object[key].get<std::int64_t>() / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &tm);
  return buffer;
}

util::Result<model::ClusterEnvSpec> ReadSpecFile(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return util::ValueError("cannot read cluster env spec file '" + file + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return model::ClusterEnvSpec::FromText(text.str(), file);
}

util::Status TailToStderr(head::HeadClient& client, const std::string& name, int version) {
  return client.TailClusterEnvBuildLogs(name, version, [](std::string_view chunk) {
    std::cerr.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    std::cerr.flush();
  });
}

// Polls the build until it has finished; its JSON then.
util::Result<Json> WaitForBuild(head::HeadClient& client, const std::string& name, int version) {
  while (true) {
    auto build = client.GetClusterEnvBuild(name, version);
    if (!build) return build;
    std::string status = JsonText(*build, "status");
    if (status == "SUCCEEDED" || status == "FAILED") return build;
    std::this_thread::sleep_for(kStatusPollInterval);
  }
}

int RunBuild(const ClusterEnvArgs& args) {
  auto spec = ReadSpecFile(args.file);
  if (!spec) return ReportInvalidInput(spec.error());
  if (auto ok = model::ValidateClusterEnvName(args.name); !ok) {
    return ReportInvalidInput(ok.error());
  }
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    auto build = client.StartClusterEnvBuild(args.name, spec->ToJson());
    if (!build) return ReportHeadError(build.error());
    const int version = build->value("version", 0);
    std::cout << args.name << ":" << version << std::endl;
    if (args.no_wait) return kExitOk;
    if (auto ok = TailToStderr(client, args.name, version); !ok) return ReportHeadError(ok.error());
    auto done = WaitForBuild(client, args.name, version);
    if (!done) return ReportHeadError(done.error());
    if (JsonText(*done, "status") == "SUCCEEDED") {
      std::cerr << "Build " << args.name << ":" << version
                << " succeeded: " << JsonText(*done, "image_ref") << " ("
                << JsonText(*done, "digest") << ")\n";
      return kExitOk;
    }
    std::cerr << "Build " << args.name << ":" << version
              << " failed: " << JsonText(*done, "error_message") << "\n";
    return kExitFailure;
  });
}

int RunList(const ClusterEnvArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    auto envs = client.ListClusterEnvs(args.all);
    if (!envs) return ReportHeadError(envs.error());
    if (args.json) {
      std::cout << util::DumpsSorted(*envs) << "\n";
      return kExitOk;
    }
    std::cout << "NAME  LATEST  LATEST_SUCCEEDED  BUILDS\n";
    for (const Json& env : *envs) {
      std::string succeeded = Number(env, "latest_succeeded_version");
      std::cout << JsonText(env, "name") << "  " << Number(env, "latest_version") << "  "
                << (succeeded.empty() ? "-" : succeeded) << "  " << Number(env, "build_count")
                << (env.value("archived", false) ? "  (archived)" : "") << "\n";
    }
    return kExitOk;
  });
}

void PrintBuild(const Json& build) {
  std::cout << "build: " << JsonText(build, "ref") << "\n"
            << "status: " << JsonText(build, "status") << "\n"
            << "image: " << JsonText(build, "image_ref") << "\n"
            << "image_id: " << JsonText(build, "image_id") << "\n"
            << "digest: " << JsonText(build, "digest") << "\n";
  if (!JsonText(build, "registry_ref").empty()) {
    std::cout << "registry: " << JsonText(build, "registry_ref") << "\n";
  }
  if (!JsonText(build, "oci_archive").empty()) {
    std::cout << "oci_archive: " << JsonText(build, "oci_archive") << "\n";
  }
  std::cout << "created: " << TimeText(build, "created_ms") << "\n"
            << "started: " << TimeText(build, "started_ms") << "\n"
            << "finished: " << TimeText(build, "finished_ms") << "\n";
  if (!JsonText(build, "error_message").empty()) {
    std::cout << "error: " << JsonText(build, "error_message") << "\n";
  }
  std::cout << "spec: " << build.value("spec", Json::object()).dump(2) << "\n";
}

void PrintBuildRows(const Json& builds) {
  std::cout << "VERSION  STATUS  CREATED  IMAGE\n";
  for (const Json& build : builds) {
    std::cout << Number(build, "version") << "  " << JsonText(build, "status") << "  "
              << TimeText(build, "created_ms") << "  " << JsonText(build, "image_ref") << "\n";
  }
}

int RunGet(const ClusterEnvArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    if (args.name.find(':') != std::string::npos) {
      auto ref = model::ParseClusterEnvRef(args.name);
      if (!ref) return ReportInvalidInput(ref.error());
      auto build = client.GetClusterEnvBuild(ref->name, ref->version);
      if (!build) return ReportHeadError(build.error());
      if (args.json) {
        std::cout << util::DumpsSorted(*build) << "\n";
      } else {
        PrintBuild(*build);
      }
      return kExitOk;
    }
    auto env = client.GetClusterEnv(args.name);
    if (!env) return ReportHeadError(env.error());
    if (args.json) {
      std::cout << util::DumpsSorted(*env) << "\n";
      return kExitOk;
    }
    std::cout << "name: " << JsonText(*env, "name") << "\n"
              << "created: " << TimeText(*env, "created_ms") << "\n"
              << "archived: " << (env->value("archived", false) ? "yes" : "no") << "\n";
    PrintBuildRows(env->value("builds", Json::array()));
    return kExitOk;
  });
}

int RunBuilds(const ClusterEnvArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    auto env = client.GetClusterEnv(args.name);
    if (!env) return ReportHeadError(env.error());
    Json builds = env->value("builds", Json::array());
    if (args.json) {
      std::cout << util::DumpsSorted(builds) << "\n";
    } else {
      PrintBuildRows(builds);
    }
    return kExitOk;
  });
}

int RunLogs(const ClusterEnvArgs& args) {
  auto ref = model::ParseClusterEnvRef(args.name);
  if (!ref) return ReportInvalidInput(ref.error());
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    if (args.follow) {
      auto ok = client.TailClusterEnvBuildLogs(ref->name, ref->version, [](std::string_view chunk) {
        std::cout.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        std::cout.flush();
      });
      return ok ? kExitOk : ReportHeadError(ok.error());
    }
    auto logs = client.GetClusterEnvBuildLogs(ref->name, ref->version);
    if (!logs) return ReportHeadError(logs.error());
    std::cout << *logs << std::flush;
    return kExitOk;
  });
}

int RunArchive(const ClusterEnvArgs& args) {
  return WithHeadClient(args.address, [&](head::HeadClient& client) {
    if (auto ok = client.ArchiveClusterEnv(args.name); !ok) return ReportHeadError(ok.error());
    std::cout << "Cluster environment '" << args.name << "' archived\n";
    return kExitOk;
  });
}

int RunBase(const ClusterEnvArgs& args) {
  if (auto ok = model::ValidateClusterEnvName(args.name); !ok) {
    return ReportInvalidInput(ok.error());
  }
  clusterenv::BaseImageRequest request;
  request.image_ref = "localhost/" + args.name + ":latest";
  request.suite = args.suite;
  request.mirror = args.mirror;
  std::error_code ec;
  fs::path scratch = fs::temp_directory_path(ec) / ("strata-base-" + std::to_string(::getpid()) +
                                                    "-" + std::to_string(util::WallClockMs()));
  request.work_dir = scratch;
  // debootstrap prints a line per package: the progress on a terminal.
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  request.log = [terminal](std::string_view line) {
    if (terminal) std::cerr << line << "\n";
  };
  auto id = clusterenv::BuildDebianBaseImage(request);
  fs::remove_all(scratch, ec);
  if (!id) return ReportHeadError(id.error());
  std::cout << request.image_ref << "\n";
  return kExitOk;
}

}  // namespace

void AddClusterEnvCommands(CLI::App& app, int* exit_code) {
  CLI::App* group =
      app.add_subcommand("cluster-env", "Build and inspect cluster environments (images)");
  group->require_subcommand(1);
  auto args = std::make_shared<ClusterEnvArgs>();
  auto add = [&](const char* name, const char* description, int (*run)(const ClusterEnvArgs&)) {
    CLI::App* command = group->add_subcommand(name, description);
    command->callback([args, exit_code, run] { *exit_code = run(*args); });
    return command;
  };

  CLI::App* build =
      add("build", "Build a new version from a spec file; prints NAME:VERSION", RunBuild);
  AddAddressOption(*build, args->address);
  build->add_option("FILE", args->file, "the spec (YAML or JSON)")->required();
  build->add_option("--name", args->name, "cluster environment name")->required();
  build->add_flag("--no-wait", args->no_wait, "do not follow the build log");

  CLI::App* list = add("list", "List cluster environments", RunList);
  AddAddressOption(*list, args->address);
  list->add_flag("--all", args->all, "include archived ones");
  list->add_flag("--json", args->json, "print JSON");

  CLI::App* get = add("get", "Show a cluster environment, or one build with NAME:VERSION", RunGet);
  AddAddressOption(*get, args->address);
  get->add_option("NAME", args->name, "NAME or NAME:VERSION")->required();
  get->add_flag("--json", args->json, "print JSON");

  CLI::App* builds = add("builds", "List the builds of a cluster environment", RunBuilds);
  AddAddressOption(*builds, args->address);
  builds->add_option("NAME", args->name, "cluster environment name")->required();
  builds->add_flag("--json", args->json, "print JSON");

  CLI::App* logs = add("logs", "Print a build's log", RunLogs);
  AddAddressOption(*logs, args->address);
  logs->add_option("REF", args->name, "NAME:VERSION")->required();
  logs->add_flag("-f,--follow", args->follow, "follow the log until the build ends");

  CLI::App* archive =
      add("archive", "Hide a cluster environment from lists (builds stay)", RunArchive);
  AddAddressOption(*archive, args->address);
  archive->add_option("NAME", args->name, "cluster environment name")->required();

  CLI::App* base = add("base",
                       "Build a Debian base image with Python (debootstrap), "
                       "localhost/NAME:latest",
                       RunBase);
  base->add_option("--name", args->name, "image name")->required();
  base->add_option("--suite", args->suite, "Debian suite (default bookworm)");
  base->add_option("--mirror", args->mirror,
                   "Debian mirror (default: the one in /etc/apt/sources.list.d/debian.sources)");
}

}  // namespace strata::cli
