// `strata package list|uri|create|unpack`: packaging on the command line.
// Errors exit 2 with one line on stderr naming the path and the reason.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "model/uri.h"
#include "packaging/fetch.h"
#include "packaging/package.h"
#include "packaging/unpack.h"
#include "util/log.h"

namespace strata::cli {
namespace {

namespace fs = std::filesystem;

struct PackageArgs {
  std::string dir;
  std::vector<std::string> excludes;
  std::string output;
  std::string source;
  std::string dest;
};

// Errors of this command group are one line: the path and the reason.
int Fail(const util::Error& error) {
  std::string message = error.message;
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::cerr << "error: " << message << "\n";
  return kExitInvalidInput;
}

util::Result<packaging::PackageOptions> Options(const PackageArgs& args) {
  auto max_bytes = packaging::MaxPackageBytesFromEnvironment();
  if (!max_bytes) return std::move(max_bytes).error();
  packaging::PackageOptions options;
  options.excludes = args.excludes;
  options.max_bytes = *max_bytes;
  return options;
}

util::Result<packaging::LocalPackage> Prepare(const PackageArgs& args) {
  auto options = Options(args);
  if (!options) return std::move(options).error();
  auto package = packaging::PrepareLocalPackage(args.dir, *options);
  if (package) {
    for (const std::string& warning : package->warnings) util::LogWarning(warning);
  }
  return package;
}

int RunList(const PackageArgs& args) {
  auto walked =
      packaging::WalkPackageTree(args.dir, args.excludes, packaging::WalkOptionsFromEnvironment());
  if (!walked) return Fail(walked.error());
  for (const packaging::PackageEntry& e : *walked) {
    if (e.type == packaging::EntryType::kFile) std::cout << e.path << "\n";
  }
  return kExitOk;
}

int RunUri(const PackageArgs& args) {
  auto package = Prepare(args);
  if (!package) return Fail(package.error());
  std::cout << package->manifest.Uri() << "\n";
  return kExitOk;
}

int RunCreate(const PackageArgs& args) {
  auto options = Options(args);
  if (!options) return Fail(options.error());
  auto package = packaging::CreatePackageArchive(args.dir, *options, args.output);
  if (!package) return Fail(package.error());
  for (const std::string& warning : package->warnings) util::LogWarning(warning);
  std::cout << package->manifest.Uri() << "\n";
  return kExitOk;
}

// A terminal gets a progress line; pipes stay quiet.
packaging::FetchOptions FetchOptionsForTerminal(const std::string& uri) {
  packaging::FetchOptions options;
  if (::isatty(STDERR_FILENO)) {
    options.progress = [uri](std::uint64_t received, std::uint64_t total) {
      std::cerr << "\rdownloading " << uri << ": " << packaging::MibString(received);
      if (total > 0) std::cerr << " / " << packaging::MibString(total);
      std::cerr << std::flush;
    };
  }
  return options;
}

int RunUnpack(const PackageArgs& args) {
  fs::path archive = args.source;
  packaging::UnpackOptions options;
  std::unique_ptr<fs::path, void (*)(fs::path*)> downloaded(nullptr, [](fs::path* p) {
    std::error_code ec;
    fs::remove_all(*p, ec);
    delete p;
  });
  if (!model::IsPath(args.source)) {
    auto parsed = model::ParseUri(args.source);
    if (!parsed) return Fail(parsed.error());
    char pattern[] = "/tmp/strata-download-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return Fail(util::IOError("cannot create a temp dir"));
    downloaded.reset(new fs::path(pattern));
    archive = *downloaded / parsed->package_name;
    auto fetched =
        packaging::FetchToFile(args.source, archive, FetchOptionsForTerminal(args.source));
    if (::isatty(STDERR_FILENO)) std::cerr << "\n";
    if (!fetched) return Fail(fetched.error());
    // Ray strips a single top-level directory from remote archives only.
    options.strip_top_level = packaging::StripTopLevel::kYes;
  }
  auto unpacked = packaging::UnpackArchive(archive, args.dest, options);
  if (!unpacked) return Fail(unpacked.error());
  std::cout << unpacked->string() << "\n";
  return kExitOk;
}

void AddDirAndExcludes(CLI::App* command, PackageArgs* args) {
  command->add_option("DIR", args->dir, "directory to package")->required();
  command->add_option("--exclude", args->excludes, "gitignore-style pattern (repeatable)")
      ->allow_extra_args(false);
}

}  // namespace

void AddPackageCommands(CLI::App& app, int* exit_code) {
  CLI::App* package =
      app.add_subcommand("package", "Build, identify and unpack working_dir / py_modules packages");
  package->require_subcommand(1);
  auto args = std::make_shared<PackageArgs>();

  CLI::App* list = package->add_subcommand("list", "Print the files that would be packaged");
  AddDirAndExcludes(list, args.get());
  list->callback([args, exit_code] { *exit_code = RunList(*args); });

  CLI::App* uri = package->add_subcommand("uri", "Print the package URI of a directory");
  AddDirAndExcludes(uri, args.get());
  uri->callback([args, exit_code] { *exit_code = RunUri(*args); });

  CLI::App* create =
      package->add_subcommand("create", "Write the package archive and print its URI");
  AddDirAndExcludes(create, args.get());
  create->add_option("-o,--output", args->output, "archive to write (.zip)")->required();
  create->callback([args, exit_code] { *exit_code = RunCreate(*args); });

  CLI::App* unpack = package->add_subcommand(
      "unpack", "Unpack a local archive or a remote URI (file://, http(s)://, s3://, gs://)");
  unpack->add_option("SOURCE", args->source, "archive path or URI")->required();
  unpack->add_option("DEST", args->dest, "directory to create")->required();
  unpack->callback([args, exit_code] { *exit_code = RunUnpack(*args); });
}

}  // namespace strata::cli
