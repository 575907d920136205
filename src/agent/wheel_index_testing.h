// Test-only helpers for installer tests (included by pip_plugin_test.cc
// only; not part of libstrata): tiny wheels built with python3's zipfile, a
// PEP 503 index over them served by `python3 -m http.server` on 127.0.0.1,
// and scoped environment variables.
//
// Thread-safety: none; test fixtures use these from one thread.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/process.h"
#include "util/pyjson.h"
#include "util/scoped_env_testing.h"

namespace strata::agent::testing {

namespace fs = std::filesystem;

inline std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline void WriteText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

using util::testing::ScopedEnv;

// One wheel to build: `<name>/__init__.py` holds VERSION and a main() that
// prints "<name> <version>"; `script` names a console script calling it.
struct WheelSpec {
  std::string name;
  std::string version;
  std::vector<std::string> requires_dist;
  std::string script;            // "" for none
  std::string subdir = "files";  // relative to the index root; "files" is indexed
};

// Builds the wheels under `root` (root/<subdir>/<name>-<version>-py3-none-any.whl)
// and a PEP 503 index root/simple/<name>/index.html over root/files.
// Returns "" or an error text.
inline std::string BuildWheels(const fs::path& root, const std::vector<WheelSpec>& wheels) {
  static constexpr const char* kScript = R"PY(
import base64, hashlib, json, os, sys, zipfile

root, specs = sys.argv[1], json.load(open(sys.argv[2]))

def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

for s in specs:
    name, version = s["name"], s["version"]
    dist = f"{name}-{version}.dist-info"
    files = {}
    files[f"{name}/__init__.py"] = (
        f'VERSION = "{version}"\n\n\ndef main():\n    print("{name} " + VERSION)\n')
    files[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in s["requires"]))
    files[f"{dist}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: strata-test\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n")
    if s["script"]:
        files[f"{dist}/entry_points.txt"] = (
            f"[console_scripts]\n{s['script']} = {name}:main\n")
    record = "".join(f"{p},{record_hash(d.encode())},{len(d.encode())}\n"
                     for p, d in files.items())
    files[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    out_dir = os.path.join(root, s["subdir"])
    os.makedirs(out_dir, exist_ok=True)
    with zipfile.ZipFile(os.path.join(out_dir, f"{name}-{version}-py3-none-any.whl"), "w") as z:
        for p, d in files.items():
            z.writestr(p, d)

projects = {}
files_dir = os.path.join(root, "files")
for f in sorted(os.listdir(files_dir)):
    projects.setdefault(f.split("-")[0].lower(), []).append(f)
os.makedirs(os.path.join(root, "simple"), exist_ok=True)
with open(os.path.join(root, "simple", "index.html"), "w") as h:
    h.write("<!DOCTYPE html><html><body>\n"
            + "".join(f'<a href="{p}/">{p}</a><br>\n' for p in projects)
            + "</body></html>\n")
for p, names in projects.items():
    os.makedirs(os.path.join(root, "simple", p), exist_ok=True)
    with open(os.path.join(root, "simple", p, "index.html"), "w") as h:
        h.write("<!DOCTYPE html><html><body>\n"
                + "".join(f'<a href="../../files/{n}">{n}</a><br>\n' for n in names)
                + "</body></html>\n")
)PY";
  util::Json specs = util::Json::array();
  for (const WheelSpec& wheel : wheels) {
    specs.push_back({{"name", wheel.name},
                     {"version", wheel.version},
                     {"requires", wheel.requires_dist},
                     {"script", wheel.script},
                     {"subdir", wheel.subdir}});
  }
  fs::create_directories(root);
  WriteText(root / "build_wheels.py", kScript);
  WriteText(root / "wheels.json", specs.dump());
  CommandSpec spec;
  spec.argv = {"python3", (root / "build_wheels.py").string(), root.string(),
               (root / "wheels.json").string()};
  auto result = RunCommand(spec);
  if (!result) return result.error().message;
  if (result->exit_code != 0) return FormatFailure(*result);
  return "";
}

// `python3 -u -m http.server --bind 127.0.0.1 --directory <root> 0`, killed
// (SIGTERM, then SIGKILL) on destruction. The kernel picks the port; the
// server's first stdout line tells it.
class HttpServer {
 public:
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        ::close(stdout_fd_);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    ::close(stdout_fd_);
  }

  int port() const { return port_; }

  // nullptr and *error on failure. The server's request log goes to `log`.
  static std::unique_ptr<HttpServer> Start(const fs::path& root, const fs::path& log,
                                           std::string* error) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      *error = "pipe2 failed";
      return nullptr;
    }
    std::vector<std::string> argv = {"python3",     "-u",          "-m",
                                     "http.server", "--bind",      "127.0.0.1",
                                     "--directory", root.string(), "0"};
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls until exec; a crashed test must not
      // leave the server behind.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(null_fd, 0);
      ::dup2(fds[1], 1);
      ::dup2(log_fd, 2);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    ::close(log_fd);
    ::close(null_fd);
    if (pid < 0) {
      ::close(fds[0]);
      *error = "fork failed";
      return nullptr;
    }
    std::unique_ptr<HttpServer> server(new HttpServer(pid, fds[0]));
    std::string line;
    if (!server->ReadLine(std::chrono::seconds(30), &line)) {
      *error = "python3 -m http.server did not become ready; its log:\n" + ReadText(log);
      return nullptr;
    }
    // "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
    auto at = line.find(" port ");
    server->port_ = at == std::string::npos ? 0 : std::atoi(line.c_str() + at + 6);
    if (server->port_ == 0) {
      *error = "unexpected http.server banner: " + line;
      return nullptr;
    }
    return server;
  }

 private:
  HttpServer(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  bool ReadLine(std::chrono::seconds timeout, std::string* line) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string buffer;
    while (buffer.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{stdout_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t got = ::read(stdout_fd_, chunk, sizeof(chunk));
      if (got <= 0) return false;  // the child died
      buffer.append(chunk, static_cast<size_t>(got));
    }
    *line = buffer.substr(0, buffer.find('\n'));
    return true;
  }

  pid_t pid_;
  int stdout_fd_;
  int port_ = 0;
};

}  // namespace strata::agent::testing
