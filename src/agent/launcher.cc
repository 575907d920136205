#include "agent/launcher.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>

#include "agent/process.h"
#include "util/log.h"
#include "util/pystring.h"

extern char** environ;

namespace strata::agent {
namespace {

using EnvList = std::vector<std::pair<std::string, std::string>>;

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool IsUpperNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

const std::string* Lookup(const EnvList& env, std::string_view name) {
  for (const auto& [key, value] : env) {
    if (key == name) return &value;  // first match, like getenv and os.environ
  }
  return nullptr;
}

void SetVar(EnvList& env, const std::string& name, std::string value) {
  for (auto& [key, current] : env) {
    if (key == name) {
      current = std::move(value);
      return;
    }
  }
  env.emplace_back(name, std::move(value));
}

void UnsetVar(EnvList& env, std::string_view name) {
  std::erase_if(env, [&](const auto& entry) { return entry.first == name; });
}

// posixpath.expandvars: `\$(\w+|\{[^}]*\})` (ASCII), unknown names left alone,
// substituted values not rescanned.
std::string PyExpandVars(std::string_view text, const EnvList& env) {
  if (text.find('$') == std::string_view::npos) return std::string(text);
  std::string out;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    size_t dollar = text.find('$', i);
    if (dollar == std::string_view::npos) break;
    out.append(text.substr(i, dollar - i));
    size_t name_begin = 0;
    size_t name_end = 0;
    size_t match_end = 0;
    if (dollar + 1 < n && IsWordChar(text[dollar + 1])) {
      name_begin = dollar + 1;
      name_end = name_begin;
      while (name_end < n && IsWordChar(text[name_end])) ++name_end;
      match_end = name_end;
    } else if (dollar + 1 < n && text[dollar + 1] == '{' &&
               text.find('}', dollar + 2) != std::string_view::npos) {
      name_begin = dollar + 2;
      name_end = text.find('}', name_begin);
      match_end = name_end + 1;
    } else {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const std::string* value = Lookup(env, text.substr(name_begin, name_end - name_begin));
    if (value != nullptr) {
      out += *value;
    } else {
      out.append(text.substr(dollar, match_end - dollar));
    }
    i = match_end;
  }
  if (i < n) out.append(text.substr(i));
  return out;
}

// re.sub(r"\$\{[A-Z0-9_]+\}", "", text)
std::string RemoveUndefinedBraced(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t j = i + 2;
      while (j < text.size() && IsUpperNameChar(text[j])) ++j;
      if (j > i + 2 && j < text.size() && text[j] == '}') {
        i = j + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

std::vector<std::string> SplitPath(const std::string& value) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(':', start);
    if (end == std::string::npos) end = value.size();
    parts.push_back(value.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::string ParentDir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  size_t slash = dir.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return dir.substr(0, slash);
}

// --- RunInContext's signal relay -------------------------------------------

constexpr int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
constexpr size_t kSignalCount = sizeof(kForwardedSignals) / sizeof(kForwardedSignals[0]);

std::mutex g_run_mutex;
std::atomic<pid_t> g_child{0};
std::atomic<int> g_pending_signal{0};
static_assert(std::atomic<pid_t>::is_always_lock_free);
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void ForwardSignal(int sig, siginfo_t* info, void*) {
  // Kernel-generated (terminal Ctrl-C, hangup): the child, in our process
  // group, got it too.
  if (info != nullptr && info->si_code == SI_KERNEL) return;
  int saved_errno = errno;
  pid_t child = g_child.load();
  if (child > 0) {
    ::kill(child, sig);
  } else {
    g_pending_signal.store(sig);
  }
  errno = saved_errno;
}

// Installs the relay for the forwarded signals the caller does not ignore and
// restores the previous dispositions on destruction.
class SignalRelay {
 public:
  SignalRelay() {
    for (size_t i = 0; i < kSignalCount; ++i) {
      struct sigaction current {};
      ::sigaction(kForwardedSignals[i], nullptr, &current);
      if (current.sa_handler == SIG_IGN && (current.sa_flags & SA_SIGINFO) == 0) continue;
      struct sigaction relay {};
      relay.sa_sigaction = ForwardSignal;
      relay.sa_flags = SA_SIGINFO;  // no SA_RESTART: waitpid returns EINTR, we loop
      sigemptyset(&relay.sa_mask);
      if (::sigaction(kForwardedSignals[i], &relay, &old_[i]) == 0) installed_[i] = true;
    }
  }
  SignalRelay(const SignalRelay&) = delete;
  SignalRelay& operator=(const SignalRelay&) = delete;
  ~SignalRelay() {
    for (size_t i = 0; i < kSignalCount; ++i) {
      if (installed_[i]) ::sigaction(kForwardedSignals[i], &old_[i], nullptr);
    }
  }
  // Signals to reset to SIG_DFL in the child: the relayed ones (the child
  // must not see our handler's disposition) plus SIGPIPE and SIGXFSZ.
  sigset_t ChildDefaults() const {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigaddset(&set, SIGXFSZ);
    for (size_t i = 0; i < kSignalCount; ++i) {
      if (installed_[i]) sigaddset(&set, kForwardedSignals[i]);
    }
    return set;
  }

 private:
  struct sigaction old_[kSignalCount] {};
  bool installed_[kSignalCount] = {};
};

}  // namespace

std::string ExpandEnvValue(std::string_view value, const EnvList& env) {
  return RemoveUndefinedBraced(PyExpandVars(value, env));
}

LaunchPlan PlanLaunch(const RuntimeEnvContext& context, const std::vector<std::string>& command,
                      const EnvList& base_env) {
  LaunchPlan plan;
  // Rule 1: base environment (first occurrence of a name wins), then env_vars.
  plan.container = context.container;
  EnvList container_env;
  if (context.container) container_env = ContainerBaseEnv(*context.container, base_env);
  for (const auto& [key, value] : context.container ? container_env : base_env) {
    if (Lookup(plan.env, key) == nullptr) plan.env.emplace_back(key, value);
  }
  const std::string* base_pythonpath_ptr = Lookup(plan.env, "PYTHONPATH");
  std::string base_pythonpath = base_pythonpath_ptr ? *base_pythonpath_ptr : "";
  bool user_set_pythonpath = false;
  for (const auto& [key, value] : context.env_vars) {
    SetVar(plan.env, key, ExpandEnvValue(value, plan.env));
    if (key == "PYTHONPATH") user_set_pythonpath = true;
  }

  // Rule 2: PYTHONPATH.
  std::vector<std::string> entries = context.pythonpath;
  if (user_set_pythonpath) {
    for (std::string& part : SplitPath(*Lookup(plan.env, "PYTHONPATH"))) {
      entries.push_back(std::move(part));
    }
  }
  if (!base_pythonpath.empty()) {
    for (std::string& part : SplitPath(base_pythonpath)) entries.push_back(std::move(part));
  }
  std::vector<std::string> unique;
  for (std::string& entry : entries) {
    if (entry.empty() || std::find(unique.begin(), unique.end(), entry) != unique.end()) continue;
    unique.push_back(std::move(entry));
  }
  if (!unique.empty()) {
    std::string joined;
    for (const std::string& entry : unique) joined += (joined.empty() ? "" : ":") + entry;
    SetVar(plan.env, "PYTHONPATH", std::move(joined));
  }

  // Rule 3: PATH, VIRTUAL_ENV, PYTHONHOME.
  std::string prepend;
  for (const std::string& dir : context.path_prepend) {
    if (!dir.empty()) prepend += (prepend.empty() ? "" : ":") + dir;
  }
  if (!prepend.empty()) {
    const std::string* path = Lookup(plan.env, "PATH");
    std::string new_path = prepend;
    if (path != nullptr && !path->empty()) new_path += ":" + *path;
    SetVar(plan.env, "PATH", std::move(new_path));
    auto first = std::find_if(context.path_prepend.begin(), context.path_prepend.end(),
                              [](const std::string& dir) { return !dir.empty(); });
    SetVar(plan.env, "VIRTUAL_ENV", ParentDir(*first));
    UnsetVar(plan.env, "PYTHONHOME");
  }

  // Rule 4: working directory.
  plan.cwd = context.cwd;

  // Rule 5: argv.
  std::vector<std::string> argv = command;
  if (!argv.empty() && (argv[0] == "python" || argv[0] == "python3")) {
    if (!context.py_executable.empty()) {
      auto words = ShellSplit(context.py_executable);
      std::vector<std::string> exe_words;
      if (words) {
        exe_words = std::move(*words);
      } else {
        util::LogWarning("py_executable '" + context.py_executable + "': " + words.error().message +
                         "; splitting it on whitespace");
        exe_words = util::PySplit(context.py_executable);
      }
      if (!exe_words.empty()) {
        argv.erase(argv.begin());
        argv.insert(argv.begin(), exe_words.begin(), exe_words.end());
        // argv[exe_words.size()] is now what was command[1].
      }
      if (context.override_worker_entrypoint) {
        size_t script = exe_words.empty() ? 1 : exe_words.size();
        if (argv.size() > script) {
          argv[script] = *context.override_worker_entrypoint;
        } else {
          argv.push_back(*context.override_worker_entrypoint);
        }
      }
    } else if (context.override_worker_entrypoint) {
      if (argv.size() > 1) {
        argv[1] = *context.override_worker_entrypoint;
      } else {
        argv.push_back(*context.override_worker_entrypoint);
      }
    }
  }
  if (!context.command_prefix.empty()) {
    std::string script;
    for (const std::string& word : context.command_prefix) script += word + " ";
    script += "exec " + ShellJoin(argv);
    argv = {"bash", "-c", std::move(script)};
  }
  plan.argv = std::move(argv);
  return plan;
}

LaunchPlan HostPlan(const LaunchPlan& plan, const EnvList& host_env) {
  if (!plan.container) return plan;
  std::vector<std::string> mounts;
  if (!plan.cwd.empty()) mounts.push_back(plan.cwd);
  if (const std::string* pythonpath = Lookup(plan.env, "PYTHONPATH")) {
    for (std::string& entry : SplitPath(*pythonpath)) {
      auto linked = SymlinkTargetDirs(entry);
      mounts.push_back(std::move(entry));
      mounts.insert(mounts.end(), linked.begin(), linked.end());
    }
  }
  LaunchPlan host;
  host.argv = ContainerRunArgv(*plan.container, plan.argv, plan.env, plan.cwd, mounts);
  host.env = host_env;
  return host;
}

EnvList CurrentEnvironment() {
  EnvList env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

util::Result<int> RunInContext(const LaunchPlan& plan) {
  if (plan.argv.empty()) return util::ValueError("Cannot run a command with an empty argv");
  const std::string command_line = ShellJoin(plan.argv);
  std::vector<std::string> env_strings;
  std::optional<std::string> path_var;
  for (const auto& [key, value] : plan.env) {
    env_strings.push_back(key + "=" + value);
    if (key == "PATH" && !path_var) path_var = value;
  }
  if (!plan.cwd.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(plan.cwd, ec)) {
      return util::NotFoundError("Cannot run `" + command_line + "`: working directory " +
                                 plan.cwd + " does not exist");
    }
  }
  auto found = FindExecutable(plan.argv[0], path_var, plan.cwd);
  if (!found) {
    return util::Error{found.error().kind,
                       found.error().message + " (command: `" + command_line + "`)"};
  }
  std::error_code ec;
  std::string exe = std::filesystem::absolute(*found, ec).string();
  if (ec) exe = *found;

  std::vector<char*> argv;
  for (const std::string& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);

  std::lock_guard<std::mutex> lock(g_run_mutex);
  // Signals arriving before the child's pid is known stay pending in this
  // thread (or are remembered by the handler if another thread takes them).
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int sig : kForwardedSignals) sigaddset(&forwarded, sig);
  sigset_t old_mask;
  ::pthread_sigmask(SIG_BLOCK, &forwarded, &old_mask);
  g_child.store(0);
  g_pending_signal.store(0);

  int rc = 0;
  pid_t pid = -1;
  {
    SignalRelay relay;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    ::posix_spawnattr_init(&attr);
    ::posix_spawn_file_actions_init(&actions);
    if (!plan.cwd.empty()) ::posix_spawn_file_actions_addchdir_np(&actions, plan.cwd.c_str());
    sigset_t empty_mask;
    sigemptyset(&empty_mask);
    sigset_t defaults = relay.ChildDefaults();
    ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    ::posix_spawnattr_setsigmask(&attr, &empty_mask);
    ::posix_spawnattr_setsigdefault(&attr, &defaults);
    rc = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), envp.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);

    int status = 0;
    bool reaped = false;
    if (rc == 0) {
      g_child.store(pid);
      if (int sig = g_pending_signal.exchange(0); sig != 0) ::kill(pid, sig);
      ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);  // pending ones get relayed now
      // Wait without reaping, forget the pid, then reap: the relay never
      // signals a pid that may have been reused.
      for (;;) {
        siginfo_t info{};
        if (::waitid(P_PID, pid, &info, WEXITED | WNOWAIT) == 0 || errno != EINTR) break;
      }
      g_child.store(0);
      pid_t waited;
      while ((waited = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
      }
      reaped = waited == pid;
      if (!reaped) rc = -errno;
    } else {
      ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    }
    if (reaped) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
  }
  if (rc < 0) {
    return util::Error{util::ErrorKind::kInternal,
                       "Lost track of `" + command_line + "`: " + ::strerror(-rc)};
  }
  return util::IOError("Cannot run `" + command_line + "` (" + exe + "): " + ::strerror(rc));
}

}  // namespace strata::agent
