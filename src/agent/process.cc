#include "agent/process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>

extern char** environ;

namespace strata::agent {
namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText(int err) {
  const char* text = ::strerrordesc_np(err);
  return text != nullptr ? text : "error " + std::to_string(err);
}

// Closes a descriptor on scope exit.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// posix_spawn attributes and file actions, destroyed on scope exit.
class SpawnSetup {
 public:
  SpawnSetup() {
    ::posix_spawnattr_init(&attr);
    ::posix_spawn_file_actions_init(&actions);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  ~SpawnSetup() {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
};

// Kills and reaps the child if RunCommand is left early (e.g. `on_line` threw).
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  void Release() { pid_ = -1; }

 private:
  pid_t pid_;
};

// Splits output into lines, feeds `on_line` and keeps the last lines.
class LineCollector {
 public:
  explicit LineCollector(const RunOptions& options) : options_(options) {}

  void Feed(const char* data, size_t size) {
    while (size > 0) {
      const void* nl = std::memchr(data, '\n', size);
      size_t take = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data) : size;
      size_t room = kMaxLineBytes - partial_.size();
      if (take >= room) {
        partial_.append(data, room);
        Emit();
        data += room;
        size -= room;
        continue;
      }
      partial_.append(data, take);
      if (!nl) return;
      Emit();
      data += take + 1;
      size -= take + 1;
    }
  }

  void Finish() {
    if (!partial_.empty()) Emit();
  }

  std::string Tail() const {
    std::string out;
    for (size_t i = 0; i < tail_.size(); ++i) {
      if (i > 0) out += '\n';
      out += tail_[i];
    }
    return out;
  }

 private:
  void Emit() {
    if (options_.on_line) options_.on_line(partial_);
    if (options_.tail_lines > 0) {
      tail_.push_back(partial_);
      if (tail_.size() > options_.tail_lines) tail_.pop_front();
    }
    partial_.clear();
  }

  const RunOptions& options_;
  std::string partial_;
  std::deque<std::string> tail_;
};

bool IsExecutableFile(const std::string& path, bool* exists) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  *exists = true;
  return S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string ResolveAgainst(const std::filesystem::path& cwd, const std::string& path) {
  if (cwd.empty() || (!path.empty() && path[0] == '/')) return path;
  return (cwd / path).string();
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::chrono::milliseconds CeilMs(Clock::duration d) {
  if (d <= Clock::duration::zero()) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(d);
}

}  // namespace

std::string ShellQuote(std::string_view word) {
  if (word.empty()) return "''";
  bool safe = std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::strchr("_@%+=:,./-", c) != nullptr;
  });
  if (safe && word.find('\0') == std::string_view::npos) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\"'\"'";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string ShellJoin(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += ' ';
    out += ShellQuote(words[i]);
  }
  return out;
}

util::Result<std::vector<std::string>> ShellSplit(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  bool in_word = false;
  const size_t n = text.size();
  for (size_t i = 0; i < n; ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) words.push_back(std::move(current));
      current.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (i + 1 >= n) return util::ValueError("No escaped character");
      current += text[++i];
    } else if (c == '\'') {
      size_t close = text.find('\'', i + 1);
      if (close == std::string_view::npos) return util::ValueError("No closing quotation");
      current.append(text.substr(i + 1, close - i - 1));
      i = close;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < n && text[j] != '"'; ++j) {
        if (text[j] == '\\') {
          if (j + 1 >= n) return util::ValueError("No escaped character");
          if (text[j + 1] == '"' || text[j + 1] == '\\') {
            current += text[++j];
            continue;
          }
        }
        current += text[j];
      }
      if (j >= n) return util::ValueError("No closing quotation");
      i = j;
    } else {
      current += c;
    }
  }
  if (in_word) words.push_back(std::move(current));
  return words;
}

std::string FormatFailure(const CommandResult& r) {
  std::string out = "Command `" + r.command_line + "` ";
  if (r.timed_out) {
    out += "timed out and was killed (exit code " + std::to_string(r.exit_code) + ").";
  } else {
    out += "failed with exit code " + std::to_string(r.exit_code) + ".";
  }
  if (r.tail.empty()) return out + " It printed nothing.";
  return out + " Last output lines:\n" + r.tail;
}

util::Result<std::string> FindExecutable(std::string_view name,
                                         const std::optional<std::string>& path_var,
                                         const std::filesystem::path& cwd) {
  if (name.empty()) return util::NotFoundError("Cannot run ``: empty command name");
  std::string quoted = ShellQuote(name);
  if (name.find('/') != std::string_view::npos) {
    std::string path = ResolveAgainst(cwd, std::string(name));
    bool exists = false;
    if (IsExecutableFile(path, &exists)) return path;
    if (!exists) return util::NotFoundError("Cannot run `" + quoted + "`: no such file");
    return util::IOError("Cannot run `" + quoted + "`: not an executable file");
  }
  std::string search = path_var.value_or("");
  if (search.empty()) search = "/bin:/usr/bin";  // what execvp uses without PATH
  std::optional<std::string> unusable;
  size_t start = 0;
  while (start <= search.size()) {
    size_t end = search.find(':', start);
    if (end == std::string::npos) end = search.size();
    std::string dir = search.substr(start, end - start);
    start = end + 1;
    if (dir.empty()) continue;
    std::string candidate = ResolveAgainst(cwd, dir + "/" + std::string(name));
    bool exists = false;
    if (IsExecutableFile(candidate, &exists)) return candidate;
    if (exists && !unusable) unusable = candidate;
  }
  if (unusable) {
    return util::IOError("Cannot run `" + quoted + "`: " + *unusable +
                         " is not an executable file");
  }
  return util::NotFoundError("Cannot run `" + quoted + "`: command not found on PATH (" + search +
                             ")");
}

util::Result<int> SpawnInNewGroup(const std::vector<std::string>& argv_words,
                                  const std::vector<std::string>& env,
                                  const std::filesystem::path& cwd, int output_fd) {
  if (argv_words.empty()) return util::ValueError("Cannot run a command with an empty argv");
  const std::string& name = argv_words[0];
  // Everything the child needs is prepared here, before posix_spawn.
  std::optional<std::string> path_var;
  for (const std::string& s : env) {
    if (s.starts_with("PATH=")) path_var = s.substr(5);
  }
  if (!cwd.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(cwd, ec)) {
      return util::NotFoundError("Cannot run `" + ShellQuote(name) + "`: working directory " +
                                 cwd.string() + " does not exist");
    }
  }
  auto found = FindExecutable(name, path_var, cwd);
  if (!found) return found.error();
  std::error_code ec;
  std::string exe = std::filesystem::absolute(*found, ec).string();
  if (ec) exe = *found;

  std::vector<char*> argv;
  for (const std::string& a : argv_words) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& s : env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);

  SpawnSetup setup;
  std::string cwd_text = cwd.string();
  if (!cwd_text.empty()) ::posix_spawn_file_actions_addchdir_np(&setup.actions, cwd_text.c_str());
  ::posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&setup.actions, output_fd, 1);
  ::posix_spawn_file_actions_adddup2(&setup.actions, output_fd, 2);
  ::posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t all_signals;
  sigfillset(&all_signals);
  sigdelset(&all_signals, SIGKILL);
  sigdelset(&all_signals, SIGSTOP);
  ::posix_spawnattr_setflags(
      &setup.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  ::posix_spawnattr_setpgroup(&setup.attr, 0);
  ::posix_spawnattr_setsigmask(&setup.attr, &empty_mask);
  ::posix_spawnattr_setsigdefault(&setup.attr, &all_signals);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, exe.c_str(), &setup.actions, &setup.attr, argv.data(), envp.data());
  if (rc != 0) {
    return util::IOError("Cannot run `" + ShellQuote(name) + "` (" + exe + "): " + ErrnoText(rc));
  }
  return pid;
}

util::Result<CommandResult> RunCommand(const CommandSpec& spec, const RunOptions& options) {
  CommandResult result;
  result.command_line = ShellJoin(spec.argv);
  if (spec.argv.empty()) return util::ValueError("Cannot run a command with an empty argv");
  const std::string& name = spec.argv[0];

  // The child's complete environment.
  std::vector<std::string> env_strings;
  if (spec.env_mode == EnvMode::kInherit) {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env_strings.emplace_back(*e);
  }
  for (const auto& [key, value] : spec.env) {
    if (key.empty() || key.find('=') != std::string::npos) {
      return util::ValueError("Cannot run `" + ShellQuote(name) +
                              "`: invalid environment variable name '" + key + "'");
    }
    std::string prefix = key + "=";
    auto it = std::find_if(env_strings.begin(), env_strings.end(),
                           [&](const std::string& s) { return s.starts_with(prefix); });
    if (it != env_strings.end()) {
      *it = prefix + value;
    } else {
      env_strings.push_back(prefix + value);
    }
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return util::IOError("Cannot run `" + ShellQuote(name) + "`: pipe: " + ErrnoText(errno));
  }
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  auto spawned = SpawnInNewGroup(spec.argv, env_strings, spec.cwd, write_end.get());
  if (!spawned) return std::move(spawned).error();
  pid_t pid = *spawned;
  ChildGuard guard(pid);
  write_end.Reset();
  if (options.on_start) options.on_start(pid);

  LineCollector lines(options);
  bool eof = false;
  bool exited = false;
  Clock::time_point exited_at;
  std::optional<Clock::time_point> term_at;
  bool kill_sent = false;
  char buffer[65536];
  for (;;) {
    Clock::time_point now = Clock::now();
    if (!term_at && ((options.deadline && now >= *options.deadline) ||
                     (options.cancel != nullptr && options.cancel->load()))) {
      ::kill(-pid, SIGTERM);
      term_at = now;
      result.timed_out = true;
    }
    if (term_at && !kill_sent && now >= *term_at + options.kill_grace) {
      ::kill(-pid, SIGKILL);
      kill_sent = true;
    }
    if (!exited) {
      // WNOWAIT: the zombie keeps its pid, so the process group id stays ours
      // until the final waitpid below.
      siginfo_t info{};
      if (::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
        if (info.si_pid == pid) {
          exited = true;
          exited_at = now;
        }
      } else if (errno != EINTR) {
        guard.Release();
        return util::Error{util::ErrorKind::kInternal,
                           "Lost track of `" + result.command_line + "`: " + ErrnoText(errno)};
      }
    }
    // While a SIGTERM's grace runs, the rest of the group (a shell's child
    // with a handler that cleans up) gets the whole grace, not the stray-output one.
    bool terminating = term_at && !kill_sent;
    if (exited && (eof || (!terminating && now >= exited_at + kStrayOutputGrace))) break;

    Clock::duration wait = eof ? std::chrono::milliseconds(5) : std::chrono::milliseconds(50);
    if (options.deadline && !term_at) wait = std::min(wait, *options.deadline - now);
    if (terminating) wait = std::min(wait, *term_at + options.kill_grace - now);
    if (exited && !terminating) wait = std::min(wait, exited_at + kStrayOutputGrace - now);
    pollfd pfd{read_end.get(), POLLIN, 0};
    int ready = ::poll(&pfd, eof ? 0 : 1, static_cast<int>(CeilMs(wait).count()));
    if (ready > 0 && !eof) {
      ssize_t got = ::read(read_end.get(), buffer, sizeof(buffer));
      if (got > 0) {
        lines.Feed(buffer, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        eof = true;
      }
    }
  }
  // Whatever is left of the group (background grandchildren) goes with it.
  ::kill(-pid, SIGKILL);
  guard.Release();
  int status = 0;
  pid_t waited;
  while ((waited = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (waited != pid) {
    return util::Error{util::ErrorKind::kInternal,
                       "Lost track of `" + result.command_line + "`: " + ErrnoText(errno)};
  }
  lines.Finish();
  result.exit_code = ExitCodeOf(status);
  result.tail = lines.Tail();
  return result;
}

}  // namespace strata::agent
