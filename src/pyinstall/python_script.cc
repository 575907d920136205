#include "pyinstall/python_script.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string_view>
#include <vector>

extern char** environ;

namespace strata::pyinstall {

namespace fs = std::filesystem;

std::optional<fs::path> FindPython(const std::string& python) {
  std::error_code ec;
  if (python.find('/') != std::string::npos) {
    if (::access(python.c_str(), X_OK) != 0) return std::nullopt;
    fs::path absolute = fs::absolute(python, ec);
    return ec ? std::nullopt : std::optional<fs::path>(absolute.lexically_normal());
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    std::size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    fs::path candidate = fs::absolute(fs::path(dir.empty() ? "." : dir) / python, ec);
    if (!ec && fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate.lexically_normal();
    }
    if (colon == std::string_view::npos) return std::nullopt;
    dirs.remove_prefix(colon + 1);
  }
}

util::Result<std::string> RunPythonScript(const std::filesystem::path& program,
                                          std::string_view script, SiteImport site,
                                          std::chrono::milliseconds timeout) {
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return util::IOError(std::string("pipe: ") + strerror(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return util::IOError(std::string("pipe: ") + strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  // Descriptors other threads opened without O_CLOEXEC stay out of the child.
  ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::string program_text = program.string();
  std::string script_text(script);
  std::vector<char*> argv = {program_text.data(), const_cast<char*>("-I")};
  if (site == SiteImport::kSkip) argv.push_back(const_cast<char*>("-S"));
  argv.push_back(const_cast<char*>("-c"));
  argv.push_back(script_text.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int spawn_error =
      ::posix_spawn(&pid, program_text.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  if (spawn_error != 0) {
    ::close(out[0]);
    ::close(err[0]);
    return util::IOError("cannot run " + program_text + ": " + strerror(spawn_error));
  }

  // Both pipes are drained together so that a chatty stderr cannot block the
  // child while we wait on stdout.
  std::string texts[2];
  std::array<pollfd, 2> fds = {pollfd{out[0], POLLIN, 0}, pollfd{err[0], POLLIN, 0}};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
      } else {
        texts[i].append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  for (pollfd& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return util::IOError(program_text + " did not answer within " +
                         std::to_string(timeout.count() / 1000) + " s");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return util::IOError(program_text + " failed to run its facts script (status " +
                         std::to_string(status) + "): " + texts[1]);
  }
  return texts[0];
}

}  // namespace strata::pyinstall
