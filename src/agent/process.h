// Running installer commands (pip, python -m venv, conda, `mpirun --version`,
// nsys ...) as subprocesses whose output goes to the setup log and whose
// failures are reported with the last lines they printed.
//
// RunCommand starts argv[0] (looked up on the PATH of the CHILD's environment)
// with posix_spawn in a new process group, stdin from /dev/null and
// stdout+stderr merged into one pipe. Output is split into lines, handed to
// `on_line` and the last `tail_lines` are kept. The whole process group is
// killed when:
//   * the deadline passes or `*cancel` becomes true: SIGTERM to the group,
//     then SIGKILL after `kill_grace` (result.timed_out = true);
//   * the main child has exited: whatever is left of its group (background
//     grandchildren) gets SIGKILL once the pipe reaches end of file or after
//     a short grace (kStrayOutputGrace), so a grandchild holding the pipe open
//     cannot hang the caller. After a SIGTERM the group keeps the whole
//     `kill_grace` instead: a shell leader dies at once while its child may
//     still be cleaning up. The command's process group never outlives
//     RunCommand.
// Only descriptors 0, 1 and 2 reach the child (all others are closed in the
// child, whether or not they are O_CLOEXEC), and every signal disposition is
// reset to the default with an empty signal mask.
//
// A command that cannot be started (empty argv, not found on PATH, not
// executable, bad cwd) is an error value naming argv[0]. A non-zero exit is
// NOT an error: the caller decides (see FormatFailure).
//
// Caveats: the child is reaped with waitpid(pid); a process that sets SIGCHLD
// to SIG_IGN or reaps with waitpid(-1) elsewhere breaks that (RunCommand then
// returns a kInternal error "Lost track of ...").
//
// Thread-safety: all functions are safe to call concurrently from any thread
// (no global state; posix_spawn is used instead of fork so that
// multi-threaded callers are fine). `on_line` is called on the calling thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace strata::agent {

enum class EnvMode { kInherit, kReplace };

struct CommandSpec {
  std::vector<std::string> argv;         // argv[0] looked up on PATH (of the child's env)
  std::filesystem::path cwd;             // empty: inherit
  EnvMode env_mode = EnvMode::kInherit;  // kReplace: `env` is the whole environment
  std::vector<std::pair<std::string, std::string>> env;  // kInherit: overrides/additions
};

struct CommandResult {
  int exit_code = 0;         // 128+N when killed by signal N
  bool timed_out = false;    // killed because the deadline passed or cancel was requested
  std::string tail;          // last `tail_lines` lines of merged stdout+stderr, '\n'-joined
  std::string command_line;  // argv joined with shell quoting, for error messages
};

struct RunOptions {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  const std::atomic<bool>* cancel = nullptr;           // polled (every <= 50 ms); true → kill
  std::function<void(std::string_view line)> on_line;  // every output line, without '\n'
  // Called once the child runs, with its pid (= its process group id).
  std::function<void(int pid)> on_start;
  size_t tail_lines = 50;
  std::chrono::milliseconds kill_grace{2000};  // SIGTERM → wait → SIGKILL
};

// How long output is still read after the main child exited while something
// else (a background grandchild) keeps the pipe open.
inline constexpr std::chrono::milliseconds kStrayOutputGrace{300};
// Lines longer than this (e.g. progress bars redrawn with '\r') are cut into
// pieces of this size.
inline constexpr size_t kMaxLineBytes = 64 * 1024;

util::Result<CommandResult> RunCommand(const CommandSpec& spec, const RunOptions& options = {});

// How RunCommand starts its child, for callers that keep the child running
// (the worker pool): posix_spawn of `argv` (argv[0] looked up on the PATH in
// `env`, relative to `cwd`) in a new process group, in `cwd` (empty: inherit),
// stdin from /dev/null, stdout and stderr on `output_fd`, no other
// descriptor, every signal disposition reset and an empty signal mask. `env`
// is the complete environment as "NAME=value" strings. Returns the pid (= the
// process group id) without waiting; the caller must reap it. Errors as
// RunCommand's for a command that cannot be started.
util::Result<int> SpawnInNewGroup(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env,
                                  const std::filesystem::path& cwd, int output_fd);

// Like Python's shlex.quote: words made only of [A-Za-z0-9_@%+=:,./-] are
// returned as they are, "" becomes '', anything else is single-quoted with
// ' written as '"'"'.
std::string ShellQuote(std::string_view word);

// ShellQuote of every word, joined with spaces.
std::string ShellJoin(const std::vector<std::string>& words);

// Like Python's shlex.split (POSIX mode, no comments): whitespace separates
// words, '...' is literal, "..." allows \" and \\, a backslash outside quotes
// escapes the next character. Errors (ValueError) as shlex words them:
// "No closing quotation", "No escaped character".
util::Result<std::vector<std::string>> ShellSplit(std::string_view text);

// "Command `...` failed with exit code N. Last output lines:\n<tail>", or
// "Command `...` timed out and was killed (exit code N). Last output lines:\n<tail>".
// When nothing was printed the sentence ends with "It printed nothing." instead.
std::string FormatFailure(const CommandResult& r);

// The file execvp would run for `name` under the given PATH value ("" or
// unset PATH: the system default path). A name containing '/' is taken as a
// path (relative ones and relative PATH entries resolve against `cwd` when it
// is non-empty). kNotFound when nothing matches; kIOError naming the file when
// the only match is not an executable regular file.
util::Result<std::string> FindExecutable(std::string_view name,
                                         const std::optional<std::string>& path_var,
                                         const std::filesystem::path& cwd = {});

}  // namespace strata::agent
