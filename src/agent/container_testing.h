// Test-only helpers for tests that run tools and podman (included by
// *_test.cc only; not part of libstrata): running a command and collecting its
// output, and tiny podman images made of the host's own binaries.
//
// Thread-safety: none; tests use these from one thread.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "agent/container.h"
#include "agent/process.h"
#include "util/error.h"
#include "util/result.h"
#include "util/temp_dir_testing.h"

namespace strata::agent::testing {

namespace fs = std::filesystem;

// A command's exit code (-1 when it could not run) and its output lines, or
// why it could not run.
struct ToolOutput {
  int exit_code = -1;
  std::string text;
};

inline ToolOutput RunTool(const CommandSpec& spec,
                          std::chrono::seconds timeout = std::chrono::seconds(120)) {
  ToolOutput out;
  RunOptions options;
  options.deadline = std::chrono::steady_clock::now() + timeout;
  options.on_line = [&](std::string_view line) {
    out.text += line;
    out.text += "\n";
  };
  auto result = RunCommand(spec, options);
  if (!result) {
    out.text = result.error().message;
    return out;
  }
  out.exit_code = result->exit_code;
  return out;
}

inline ToolOutput RunTool(std::vector<std::string> argv,
                          std::chrono::seconds timeout = std::chrono::seconds(120)) {
  CommandSpec spec;
  spec.argv = std::move(argv);
  return RunTool(spec, timeout);
}

// Hex digits from std::random_device, to keep names of concurrent test runs
// apart.
inline std::string RandomSuffix() {
  std::random_device device;
  std::ostringstream out;
  out << std::hex << device() << device();
  return out.str();
}

// Copies `binary` and the shared libraries `ldd` lists for it, the dynamic
// loader included, into `root` at their host paths. Links are followed: the
// copies are regular files.
inline util::Status CopyWithLibraries(const fs::path& root, const fs::path& binary) {
  auto copy = [&](const fs::path& file) -> util::Status {
    std::error_code ec;
    const fs::path target = root / file.relative_path();
    const fs::path source = fs::canonical(file, ec);
    if (!ec) fs::create_directories(target.parent_path(), ec);
    if (!ec) fs::copy_file(source, target, fs::copy_options::overwrite_existing, ec);
    if (ec) return util::IOError("cannot copy " + file.string() + ": " + ec.message());
    return {};
  };
  std::error_code ec;
  const fs::path resolved = fs::canonical(binary, ec);
  if (ec) return util::IOError("cannot resolve " + binary.string() + ": " + ec.message());
  ToolOutput ldd = RunTool({"ldd", resolved.string()});
  if (ldd.exit_code != 0) return util::IOError("ldd " + resolved.string() + ":\n" + ldd.text);
  if (util::Status copied = copy(binary); !copied) return copied;
  // "\tlibc.so.6 => /lib/.../libc.so.6 (0x...)", "\t/lib64/ld-linux-x86-64.so.2 (0x...)";
  // the vDSO has no path.
  std::istringstream lines(ldd.text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      if (!word.starts_with("/")) continue;
      if (fs::exists(word)) {
        if (util::Status copied = copy(word); !copied) return copied;
      }
      break;
    }
  }
  return {};
}

// A podman image imported from a root file system of host binaries (with
// their libraries), extra files and an empty /tmp, named
// localhost/strata-test/<prefix>-<pid>-<random>:1; removed on destruction.
class TinyImage {
 public:
  struct File {
    std::string content;
    mode_t mode = 0644;
  };

  explicit TinyImage(const std::string& prefix)
      : reference_("localhost/strata-test/" + prefix + "-" + std::to_string(::getpid()) + "-" +
                   RandomSuffix() + ":1") {}
  ~TinyImage() {
    if (imported_) RunTool(PodmanCommand({"rmi", "-f", reference_}));
  }
  TinyImage(const TinyImage&) = delete;
  TinyImage& operator=(const TinyImage&) = delete;

  // `files` maps absolute paths in the image to their content; `changes` are
  // Dockerfile instructions for `podman import --change`, e.g.
  // "ENV PATH=/usr/bin:/bin".
  util::Status Build(const std::vector<fs::path>& binaries,
                     const std::map<std::string, File>& files = {},
                     const std::vector<std::string>& changes = {}) {
    util::testing::TempDir dir;
    const fs::path root = dir.path() / "rootfs";
    for (const fs::path& binary : binaries) {
      if (util::Status copied = CopyWithLibraries(root, binary); !copied) return copied;
    }
    for (const auto& [path, file] : files) {
      util::testing::WriteFile(root / fs::path(path).relative_path(), file.content, file.mode);
    }
    std::error_code ec;
    fs::create_directories(root / "tmp", ec);
    if (ec) return util::IOError("cannot create " + (root / "tmp").string() + ": " + ec.message());
    const std::string tar = (dir.path() / "rootfs.tar").string();
    ToolOutput tarred = RunTool({"tar", "-C", root.string(), "-cf", tar, "."});
    if (tarred.exit_code != 0) return util::IOError("tar of the image root:\n" + tarred.text);
    std::vector<std::string> import = {"import"};
    for (const std::string& change : changes) {
      import.push_back("--change");
      import.push_back(change);
    }
    import.push_back(tar);
    import.push_back(reference_);
    ToolOutput imported = RunTool(PodmanCommand(import));
    if (imported.exit_code != 0) {
      return util::IOError("podman import " + reference_ + ":\n" + imported.text);
    }
    imported_ = true;
    return {};
  }

  const std::string& reference() const { return reference_; }

 private:
  std::string reference_;
  bool imported_ = false;
};

}  // namespace strata::agent::testing
