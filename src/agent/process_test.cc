#include "agent/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/temp_dir_testing.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using util::testing::TempDir;

CommandSpec Sh(const std::string& script) {
  return CommandSpec{{"sh", "-c", script}};
}

CommandResult MustRun(const CommandSpec& spec, const RunOptions& options = {}) {
  auto result = RunCommand(spec, options);
  EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().ToString());
  if (!result) return {};
  return *result;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits until a file exists and holds a full line.
std::string WaitForLine(const fs::path& path) {
  for (int i = 0; i < 400; ++i) {
    std::string text = ReadFile(path);
    if (!text.empty() && text.back() == '\n') return text;
    std::this_thread::sleep_for(5ms);
  }
  return "";
}

// True when `pid` is gone or a zombie waiting for its (non-reaping) parent.
bool ProcessDead(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    if (::kill(pid, 0) != 0) return true;
    std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    size_t paren = stat.rfind(')');
    if (stat.empty() || (paren != std::string::npos && paren + 2 < stat.size() &&
                         (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X'))) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

TEST(RunCommandTest, ExitCodes) {
  EXPECT_EQ(MustRun({{"true"}}).exit_code, 0);
  EXPECT_EQ(MustRun(Sh("exit 3")).exit_code, 3);
  CommandResult killed = MustRun(Sh("kill -9 $$"));
  EXPECT_EQ(killed.exit_code, 128 + 9);
  EXPECT_FALSE(killed.timed_out);
}

TEST(RunCommandTest, MergesStdoutAndStderrInOrder) {
  CommandResult r = MustRun(Sh("echo a; echo b >&2; echo c"));
  EXPECT_EQ(r.tail, "a\nb\nc");
  EXPECT_EQ(r.command_line, "sh -c 'echo a; echo b >&2; echo c'");
}

TEST(RunCommandTest, TailKeepsLastLines) {
  RunOptions options;
  options.tail_lines = 3;
  CommandResult r =
      MustRun(Sh("i=1; while [ $i -le 1000 ]; do echo line$i; i=$((i+1)); done"), options);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.tail, "line998\nline999\nline1000");
  options.tail_lines = 0;
  EXPECT_EQ(MustRun(Sh("echo x"), options).tail, "");
}

TEST(RunCommandTest, StreamsEveryLine) {
  std::vector<std::string> lines;
  RunOptions options;
  options.on_line = [&](std::string_view line) { lines.emplace_back(line); };
  CommandResult r = MustRun(
      Sh("i=1; while [ $i -le 1000 ]; do echo line$i; i=$((i+1)); done; printf 'no newline'"),
      options);
  ASSERT_EQ(lines.size(), 1001u);
  EXPECT_EQ(lines[0], "line1");
  EXPECT_EQ(lines[999], "line1000");
  EXPECT_EQ(lines[1000], "no newline");
  EXPECT_TRUE(r.tail.ends_with("\nline1000\nno newline")) << r.tail;
}

TEST(RunCommandTest, SplitsOverlongLines) {
  std::vector<size_t> sizes;
  RunOptions options;
  options.on_line = [&](std::string_view line) { sizes.push_back(line.size()); };
  MustRun(Sh("head -c 150000 /dev/zero | tr '\\0' x; echo"), options);
  ASSERT_EQ(sizes.size(), 3u);
  EXPECT_EQ(sizes[0], kMaxLineBytes);
  EXPECT_EQ(sizes[1], kMaxLineBytes);
  EXPECT_EQ(sizes[2], 150000 - 2 * kMaxLineBytes);
}

TEST(RunCommandTest, StdinIsDevNull) {
  CommandResult r = MustRun({{"cat"}});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.tail, "");
}

TEST(RunCommandTest, InheritedEnvironmentWithOverrides) {
  ::setenv("STRATA_PROCESS_TEST_INHERITED", "from-parent", 1);
  ::setenv("STRATA_PROCESS_TEST_OVERRIDDEN", "old", 1);
  CommandSpec spec =
      Sh("echo $STRATA_PROCESS_TEST_INHERITED $STRATA_PROCESS_TEST_OVERRIDDEN "
         "$STRATA_PROCESS_TEST_ADDED");
  spec.env = {{"STRATA_PROCESS_TEST_OVERRIDDEN", "new"}, {"STRATA_PROCESS_TEST_ADDED", "a b"}};
  EXPECT_EQ(MustRun(spec).tail, "from-parent new a b");
  ::unsetenv("STRATA_PROCESS_TEST_INHERITED");
  ::unsetenv("STRATA_PROCESS_TEST_OVERRIDDEN");
}

TEST(RunCommandTest, ReplacedEnvironmentIsExact) {
  CommandSpec spec{{"env"}};
  spec.env_mode = EnvMode::kReplace;
  spec.env = {{"PATH", "/usr/bin:/bin"}, {"ONLY", "this"}};
  EXPECT_EQ(MustRun(spec).tail, "PATH=/usr/bin:/bin\nONLY=this");
}

TEST(RunCommandTest, LooksUpArgv0OnTheChildsPath) {
  TempDir dir;
  fs::path tool = dir.path() / "strata-test-tool";
  std::ofstream(tool) << "#!/bin/sh\necho tool ran \"$@\"\n";
  fs::permissions(tool, fs::perms::owner_all);
  CommandSpec spec{{"strata-test-tool", "x"}};
  spec.env = {{"PATH", dir.path().string() + ":/usr/bin:/bin"}};
  EXPECT_EQ(MustRun(spec).tail, "tool ran x");

  // Without that PATH it is not found.
  auto missing = RunCommand(CommandSpec{{"strata-test-tool"}});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, util::ErrorKind::kNotFound);

  // A relative path with '/' resolves against cwd.
  CommandSpec relative{{"./strata-test-tool", "y"}};
  relative.cwd = dir.path();
  EXPECT_EQ(MustRun(relative).tail, "tool ran y");
}

TEST(RunCommandTest, WorkingDirectory) {
  TempDir dir;
  CommandSpec spec{{"pwd"}};
  spec.cwd = dir.path();
  EXPECT_EQ(MustRun(spec).tail, dir.path().string());

  spec.cwd = dir.path() / "missing";
  auto r = RunCommand(spec);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("missing"), std::string::npos) << r.error().message;
}

TEST(RunCommandTest, CommandNotFoundIsAnErrorNamingIt) {
  auto r = RunCommand(CommandSpec{{"strata-no-such-command-xyz", "--version"}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, util::ErrorKind::kNotFound);
  EXPECT_NE(r.error().message.find("strata-no-such-command-xyz"), std::string::npos)
      << r.error().message;

  auto empty = RunCommand(CommandSpec{});
  EXPECT_FALSE(empty.has_value());
}

TEST(RunCommandTest, NonExecutableIsAnErrorNamingIt) {
  TempDir dir;
  fs::path file = dir.path() / "not-executable";
  std::ofstream(file) << "echo hi\n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  auto r = RunCommand(CommandSpec{{file.string()}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, util::ErrorKind::kIOError);
  EXPECT_NE(r.error().message.find("not-executable"), std::string::npos) << r.error().message;

  auto directory = RunCommand(CommandSpec{{dir.path().string()}});
  EXPECT_FALSE(directory.has_value());
}

TEST(RunCommandTest, DeadlineKillsTheWholeProcessTree) {
  TempDir dir;
  fs::path pidfile = dir.path() / "grandchild.pid";
  RunOptions options;
  options.deadline = Clock::now() + 300ms;
  std::vector<std::string> lines;
  options.on_line = [&](std::string_view line) { lines.emplace_back(line); };
  auto start = Clock::now();
  CommandResult r = MustRun(
      Sh("sleep 100 & echo $! > " + pidfile.string() + "; echo started; sleep 100; wait"), options);
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_EQ(r.tail, "started");
  EXPECT_EQ(lines, std::vector<std::string>{"started"});
  EXPECT_LT(elapsed, 2s);
  std::string pid_text = WaitForLine(pidfile);
  ASSERT_FALSE(pid_text.empty());
  pid_t grandchild = std::stoi(pid_text);
  EXPECT_TRUE(ProcessDead(grandchild)) << "grandchild " << grandchild << " survived";
  EXPECT_NE(FormatFailure(r).find("timed out"), std::string::npos);
}

TEST(RunCommandTest, DeadlineEscalatesToSigkill) {
  RunOptions options;
  options.deadline = Clock::now() + 100ms;
  options.kill_grace = 200ms;
  auto start = Clock::now();
  // The shell and its sleep ignore SIGTERM (ignored dispositions are inherited).
  CommandResult r = MustRun(Sh("trap '' TERM; echo ready; sleep 100"), options);
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(RunCommandTest, DeadlineAlreadyPassed) {
  RunOptions options;
  options.deadline = Clock::now() - 1s;
  CommandResult r = MustRun({{"sleep", "100"}}, options);
  EXPECT_TRUE(r.timed_out);
}

TEST(RunCommandTest, CancelFlagKills) {
  std::atomic<bool> cancel{false};
  RunOptions options;
  options.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    cancel = true;
  });
  auto start = Clock::now();
  CommandResult r = MustRun({{"sleep", "100"}}, options);
  auto elapsed = Clock::now() - start;
  canceller.join();
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM);
  EXPECT_GE(elapsed, 150ms);
  EXPECT_LT(elapsed, 2s);
}

TEST(RunCommandTest, CancelGivesAShellsChildTheWholeGrace) {
  // The shell leader dies on SIGTERM at once; its child handles SIGTERM by
  // cleaning up for 0.5 s, which must finish within the 3 s grace.
  std::atomic<bool> cancel{false};
  RunOptions options;
  options.cancel = &cancel;
  options.kill_grace = 3s;
  options.on_line = [&](std::string_view line) {
    if (line == "ready") cancel = true;
  };
  int started_pid = 0;
  options.on_start = [&](int pid) { started_pid = pid; };
  const char* child =
      "import signal, sys, time\n"
      "def stop(*_):\n"
      "    time.sleep(0.5)\n"
      "    print('cleaned up', flush=True)\n"
      "    sys.exit(0)\n"
      "signal.signal(signal.SIGTERM, stop)\n"
      "print('ready', flush=True)\n"
      "time.sleep(60)\n";
  CommandResult r = MustRun(Sh(std::string("python3 -c \"") + child + "\"; echo after"), options);
  EXPECT_TRUE(r.timed_out);
  EXPECT_GT(started_pid, 0);
  EXPECT_NE(r.tail.find("cleaned up"), std::string::npos) << r.tail;
}

TEST(RunCommandTest, GrandchildHoldingThePipeDoesNotHang) {
  TempDir dir;
  fs::path pidfile = dir.path() / "grandchild.pid";
  auto start = Clock::now();
  CommandResult r = MustRun(Sh("sleep 100 & echo $! > " + pidfile.string() + "; echo done"));
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.tail, "done");
  EXPECT_LT(elapsed, 2s);
  pid_t grandchild = std::stoi(WaitForLine(pidfile));
  EXPECT_TRUE(ProcessDead(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST(RunCommandTest, ChildThatClosesItsOutputStillHonoursTheDeadline) {
  RunOptions options;
  options.deadline = Clock::now() + 200ms;
  auto start = Clock::now();
  CommandResult r = MustRun(Sh("exec >/dev/null 2>&1; sleep 100"), options);
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST(RunCommandTest, NoDescriptorLeaksIntoChildren) {
  int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaked, 3);
  CommandResult r = MustRun(Sh("ls /proc/$$/fd"));
  ::close(leaked);
  EXPECT_EQ(r.tail, "0\n1\n2");
}

TEST(RunCommandTest, ConcurrentRunsFromManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = RunCommand(Sh("echo " + std::to_string(i) + "; exit " + std::to_string(i)));
      if (r && r->exit_code == i && r->tail == std::to_string(i)) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
}

TEST(ShellQuoteTest, LikeShlexQuote) {
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("abc-1.2_x/y:z,@%+="), "abc-1.2_x/y:z,@%+=");
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\"'\"'s'");
  EXPECT_EQ(ShellQuote("$HOME"), "'$HOME'");
  EXPECT_EQ(ShellQuote("a*"), "'a*'");
  EXPECT_EQ(ShellJoin({"pip", "install", "a b", ""}), "pip install 'a b' ''");
}

TEST(ShellSplitTest, LikeShlexSplit) {
  using V = std::vector<std::string>;
  EXPECT_EQ(*ShellSplit("mpirun -np 2 python"), (V{"mpirun", "-np", "2", "python"}));
  EXPECT_EQ(*ShellSplit("  a\t b\n"), (V{"a", "b"}));
  EXPECT_EQ(*ShellSplit("'/a b/python' -u"), (V{"/a b/python", "-u"}));
  EXPECT_EQ(*ShellSplit("\"x \\\" \\\\ \\n\" y"), (V{"x \" \\ \\n", "y"}));
  EXPECT_EQ(*ShellSplit("a\\ b c''d \"\""), (V{"a b", "cd", ""}));
  EXPECT_EQ(*ShellSplit(""), V{});
  EXPECT_EQ(ShellSplit("'open").error().message, "No closing quotation");
  EXPECT_EQ(ShellSplit("\"open").error().message, "No closing quotation");
  EXPECT_EQ(ShellSplit("trailing\\").error().message, "No escaped character");
  // Round trip.
  V words{"a b", "it's", "", "$x", "plain"};
  EXPECT_EQ(*ShellSplit(ShellJoin(words)), words);
}

TEST(FormatFailureTest, Messages) {
  CommandResult r;
  r.command_line = "pip install x";
  r.exit_code = 1;
  r.tail = "ERROR: no\nERROR: really";
  EXPECT_EQ(FormatFailure(r),
            "Command `pip install x` failed with exit code 1. Last output lines:\n"
            "ERROR: no\nERROR: really");
  r.timed_out = true;
  r.exit_code = 143;
  r.tail = "";
  EXPECT_EQ(FormatFailure(r),
            "Command `pip install x` timed out and was killed (exit code 143). It printed "
            "nothing.");
}

TEST(FindExecutableTest, SearchesPathInOrder) {
  TempDir a;
  TempDir b;
  for (const fs::path& dir : {a.path(), b.path()}) {
    std::ofstream(dir / "tool") << "#!/bin/sh\n";
    fs::permissions(dir / "tool", fs::perms::owner_all);
  }
  std::ofstream(a.path() / "plain") << "x";
  auto found = FindExecutable("tool", a.path().string() + "::" + b.path().string());
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, (a.path() / "tool").string());
  auto plain = FindExecutable("plain", a.path().string());
  ASSERT_FALSE(plain.has_value());
  EXPECT_EQ(plain.error().kind, util::ErrorKind::kIOError);
  auto sh = FindExecutable("sh", std::nullopt);
  ASSERT_TRUE(sh.has_value());
}

}  // namespace
}  // namespace strata::agent
