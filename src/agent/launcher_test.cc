#include "agent/launcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/temp_dir_testing.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Env = std::vector<std::pair<std::string, std::string>>;
using Argv = std::vector<std::string>;

using util::testing::TempDir;

std::optional<std::string> Get(const Env& env, const std::string& name) {
  for (const auto& [key, value] : env) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- PlanLaunch: rule 1, env_vars expansion ----------------------------------

TEST(PlanLaunchTest, ExpandsEnvVarsLikeRay) {
  RuntimeEnvContext context;
  context.env_vars = {
      {"BRACED", "${A}"},
      {"BARE", "$A/x"},
      {"UNDEF_UPPER", "<${UNDEFINED_UPPER_1}>"},
      {"UNDEF_LOWER", "<${undefined_lower}>"},
      {"UNDEF_BARE", "<$UNDEFINED_BARE>"},
      {"CHAINED", "${BRACED}-$BARE"},
      {"PATH", "${PATH}:/x"},
      {"FORWARD", "$LATER"},
      {"LATER", "later"},
      {"DOLLARS", "$ a$ ${ ${} $$A"},
      {"UNCLOSED", "${A"},
      {"MIXED", "${A}${A_B}${a_b}"},
      {"NOT_RESCANNED", "$HOLDS_REF"},
  };
  Env base = {{"A", "1"}, {"PATH", "/usr/bin"}, {"HOLDS_REF", "${A}$A"}};
  LaunchPlan plan = PlanLaunch(context, {"true"}, base);
  EXPECT_EQ(Get(plan.env, "BRACED"), "1");
  EXPECT_EQ(Get(plan.env, "BARE"), "1/x");
  EXPECT_EQ(Get(plan.env, "UNDEF_UPPER"), "<>");
  EXPECT_EQ(Get(plan.env, "UNDEF_LOWER"), "<${undefined_lower}>");
  EXPECT_EQ(Get(plan.env, "UNDEF_BARE"), "<$UNDEFINED_BARE>");
  EXPECT_EQ(Get(plan.env, "CHAINED"), "1-1/x");
  EXPECT_EQ(Get(plan.env, "PATH"), "/usr/bin:/x");
  EXPECT_EQ(Get(plan.env, "FORWARD"), "$LATER");
  EXPECT_EQ(Get(plan.env, "DOLLARS"), "$ a$ ${ ${} $1");
  EXPECT_EQ(Get(plan.env, "UNCLOSED"), "${A");
  EXPECT_EQ(Get(plan.env, "MIXED"), "1${a_b}");
  // expandvars does not rescan "${A}$A"; Ray's cleanup then drops "${A}".
  EXPECT_EQ(Get(plan.env, "NOT_RESCANNED"), "$A");
  // Base entries keep their place, new ones follow in order.
  ASSERT_GE(plan.env.size(), 3u);
  EXPECT_EQ(plan.env[0].first, "A");
  EXPECT_EQ(plan.env[1].first, "PATH");
  EXPECT_EQ(plan.env[2].first, "HOLDS_REF");
  EXPECT_EQ(plan.env[3].first, "BRACED");
  EXPECT_EQ(plan.env.back().first, "NOT_RESCANNED");
}

TEST(PlanLaunchTest, ExpandEnvValueDirectly) {
  Env env = {{"HOME", "/home/u"}, {"with space", "ws"}};
  EXPECT_EQ(ExpandEnvValue("$HOME/.cache", env), "/home/u/.cache");
  EXPECT_EQ(ExpandEnvValue("${with space}", env), "ws");
  EXPECT_EQ(ExpandEnvValue("${HOME}x${NOPE}y", env), "/home/uxy");
  EXPECT_EQ(ExpandEnvValue("plain", env), "plain");
  EXPECT_EQ(ExpandEnvValue("${NOPE", env), "${NOPE");
}

TEST(PlanLaunchTest, BaseEnvironmentIsKept) {
  RuntimeEnvContext context;
  Env base = {{"HOME", "/home/u"}, {"LANG", "C"}, {"HOME", "/dup"}};
  LaunchPlan plan = PlanLaunch(context, {"true"}, base);
  EXPECT_EQ(plan.env, (Env{{"HOME", "/home/u"}, {"LANG", "C"}}));
  EXPECT_EQ(plan.argv, Argv{"true"});
  EXPECT_EQ(plan.cwd, "");
}

// --- rule 2: PYTHONPATH -----------------------------------------------------

TEST(PlanLaunchTest, PythonpathOrder) {
  RuntimeEnvContext context;
  context.pythonpath = {"/wd", "/mod"};
  context.env_vars = {{"PYTHONPATH", "/user1:/user2"}};
  Env base = {{"PYTHONPATH", "/node1:/node2"}};
  EXPECT_EQ(Get(PlanLaunch(context, {"true"}, base).env, "PYTHONPATH"),
            "/wd:/mod:/user1:/user2:/node1:/node2");
}

TEST(PlanLaunchTest, PythonpathUserReferenceIsNotDuplicated) {
  RuntimeEnvContext context;
  context.pythonpath = {"/wd"};
  context.env_vars = {{"PYTHONPATH", "/user:${PYTHONPATH}:/after"}};
  Env base = {{"PYTHONPATH", "/node1:/node2"}};
  EXPECT_EQ(Get(PlanLaunch(context, {"true"}, base).env, "PYTHONPATH"),
            "/wd:/user:/node1:/node2:/after");
}

TEST(PlanLaunchTest, PythonpathSkipsEmptyPartsAndIsOptional) {
  RuntimeEnvContext context;
  context.pythonpath = {"/wd", ""};
  context.env_vars = {{"PYTHONPATH", ":/user::"}};
  EXPECT_EQ(Get(PlanLaunch(context, {"true"}, {}).env, "PYTHONPATH"), "/wd:/user");

  RuntimeEnvContext none;
  EXPECT_EQ(Get(PlanLaunch(none, {"true"}, {{"A", "1"}}).env, "PYTHONPATH"), std::nullopt);

  RuntimeEnvContext only_node;
  EXPECT_EQ(Get(PlanLaunch(only_node, {"true"}, {{"PYTHONPATH", "/n"}}).env, "PYTHONPATH"), "/n");

  RuntimeEnvContext only_context;
  only_context.pythonpath = {"/wd"};
  EXPECT_EQ(Get(PlanLaunch(only_context, {"true"}, {}).env, "PYTHONPATH"), "/wd");
}

// --- rule 3: PATH, VIRTUAL_ENV, PYTHONHOME ----------------------------------

TEST(PlanLaunchTest, PathPrependSetsVirtualEnv) {
  RuntimeEnvContext context;
  context.path_prepend = {"/envs/abc/virtualenv/bin/", "/extra/bin"};
  context.env_vars = {{"PATH", "/user/bin:${PATH}"}};
  Env base = {{"PATH", "/usr/bin:/bin"}, {"PYTHONHOME", "/opt/py"}, {"HOME", "/h"}};
  LaunchPlan plan = PlanLaunch(context, {"true"}, base);
  EXPECT_EQ(Get(plan.env, "PATH"), "/envs/abc/virtualenv/bin/:/extra/bin:/user/bin:/usr/bin:/bin");
  EXPECT_EQ(Get(plan.env, "VIRTUAL_ENV"), "/envs/abc/virtualenv");
  EXPECT_EQ(Get(plan.env, "PYTHONHOME"), std::nullopt);
  EXPECT_EQ(Get(plan.env, "HOME"), "/h");
}

TEST(PlanLaunchTest, PathPrependWithoutExistingPath) {
  RuntimeEnvContext context;
  context.path_prepend = {"/v/bin"};
  LaunchPlan plan = PlanLaunch(context, {"true"}, {});
  EXPECT_EQ(Get(plan.env, "PATH"), "/v/bin");
  EXPECT_EQ(Get(plan.env, "VIRTUAL_ENV"), "/v");
}

TEST(PlanLaunchTest, NoPathPrependLeavesPathAlone) {
  RuntimeEnvContext context;
  Env base = {{"PATH", "/usr/bin"}, {"PYTHONHOME", "/opt/py"}};
  LaunchPlan plan = PlanLaunch(context, {"true"}, base);
  EXPECT_EQ(plan.env, base);
}

// --- rule 4: cwd ----------------------------------------------------------

TEST(PlanLaunchTest, Cwd) {
  RuntimeEnvContext context;
  context.cwd = "/tmp/wd";
  EXPECT_EQ(PlanLaunch(context, {"true"}, {}).cwd, "/tmp/wd");
}

// --- rule 5: argv -----------------------------------------------------------

TEST(PlanLaunchTest, PyExecutableWithArguments) {
  RuntimeEnvContext context;
  context.py_executable = "mpirun -np 2 python";
  EXPECT_EQ(PlanLaunch(context, {"python", "worker.py", "--x"}, {}).argv,
            (Argv{"mpirun", "-np", "2", "python", "worker.py", "--x"}));
  EXPECT_EQ(PlanLaunch(context, {"python3", "-c", "pass"}, {}).argv,
            (Argv{"mpirun", "-np", "2", "python", "-c", "pass"}));
  // Only the bare names are replaced.
  EXPECT_EQ(PlanLaunch(context, {"/usr/bin/python", "w.py"}, {}).argv,
            (Argv{"/usr/bin/python", "w.py"}));
  EXPECT_EQ(PlanLaunch(context, {"python3.11", "w.py"}, {}).argv, (Argv{"python3.11", "w.py"}));
  EXPECT_EQ(PlanLaunch(context, {"sh", "python"}, {}).argv, (Argv{"sh", "python"}));
}

TEST(PlanLaunchTest, PyExecutableQuoting) {
  RuntimeEnvContext context;
  context.py_executable = "'/opt/my env/bin/python' -u";
  EXPECT_EQ(PlanLaunch(context, {"python", "w.py"}, {}).argv,
            (Argv{"/opt/my env/bin/python", "-u", "w.py"}));
  context.py_executable = "'/unbalanced python";  // falls back to whitespace split
  EXPECT_EQ(PlanLaunch(context, {"python"}, {}).argv, (Argv{"'/unbalanced", "python"}));
}

TEST(PlanLaunchTest, OverrideWorkerEntrypoint) {
  RuntimeEnvContext context;
  context.py_executable = "mpirun -np 2 python";
  context.override_worker_entrypoint = "/new/entry.py";
  EXPECT_EQ(PlanLaunch(context, {"python", "default_worker.py", "--a"}, {}).argv,
            (Argv{"mpirun", "-np", "2", "python", "/new/entry.py", "--a"}));
  EXPECT_EQ(PlanLaunch(context, {"python"}, {}).argv,
            (Argv{"mpirun", "-np", "2", "python", "/new/entry.py"}));
  // Without py_executable the node's python stays, the entrypoint is still replaced.
  context.py_executable = "";
  EXPECT_EQ(PlanLaunch(context, {"python", "default_worker.py"}, {}).argv,
            (Argv{"python", "/new/entry.py"}));
  // Not a python command: untouched.
  EXPECT_EQ(PlanLaunch(context, {"java", "Main"}, {}).argv, (Argv{"java", "Main"}));
}

TEST(PlanLaunchTest, CommandPrefixShape) {
  RuntimeEnvContext context;
  context.command_prefix = {"cd", "/wd", "&&", "source", "/v/bin/activate", "1>&2", "&&"};
  context.py_executable = "/v/bin/python";
  LaunchPlan plan = PlanLaunch(context, {"python", "worker.py", "a b", "it's"}, {});
  EXPECT_EQ(plan.argv,
            (Argv{"bash", "-c",
                  "cd /wd && source /v/bin/activate 1>&2 && exec /v/bin/python worker.py 'a b' "
                  "'it'\"'\"'s'"}));
  RuntimeEnvContext plain;
  plain.command_prefix = {"nice", "-n", "5"};
  EXPECT_EQ(PlanLaunch(plain, {"echo", "$HOME"}, {}).argv,
            (Argv{"bash", "-c", "nice -n 5 exec echo '$HOME'"}));
}

TEST(CurrentEnvironmentTest, ReadsEnviron) {
  ::setenv("STRATA_LAUNCHER_TEST_VAR", "a=b c", 1);
  Env env = CurrentEnvironment();
  EXPECT_EQ(Get(env, "STRATA_LAUNCHER_TEST_VAR"), "a=b c");
  ::unsetenv("STRATA_LAUNCHER_TEST_VAR");
}

// --- RunInContext ---------------------------------------------------------

LaunchPlan ShPlan(const std::string& script) {
  return LaunchPlan{{"sh", "-c", script}, CurrentEnvironment(), ""};
}

TEST(RunInContextTest, PropagatesExitCode) {
  auto seven = RunInContext(ShPlan("exit 7"));
  ASSERT_TRUE(seven.has_value()) << seven.error().ToString();
  EXPECT_EQ(*seven, 7);
  auto zero = RunInContext(LaunchPlan{{"true"}, CurrentEnvironment(), ""});
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(*zero, 0);
  auto killed = RunInContext(ShPlan("kill -9 $$"));
  ASSERT_TRUE(killed.has_value());
  EXPECT_EQ(*killed, 128 + SIGKILL);
}

TEST(RunInContextTest, CannotStartIsAnErrorNamingTheCommand) {
  auto r = RunInContext(LaunchPlan{{"strata-no-such-worker", "--x"}, CurrentEnvironment(), ""});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, util::ErrorKind::kNotFound);
  EXPECT_NE(r.error().message.find("strata-no-such-worker"), std::string::npos)
      << r.error().message;

  auto missing_cwd = RunInContext(LaunchPlan{{"true"}, CurrentEnvironment(), "/nonexistent/wd"});
  ASSERT_FALSE(missing_cwd.has_value());
  EXPECT_NE(missing_cwd.error().message.find("/nonexistent/wd"), std::string::npos);

  EXPECT_FALSE(RunInContext(LaunchPlan{}).has_value());
}

TEST(RunInContextTest, AppliesEnvironmentAndCwd) {
  TempDir dir;
  TempDir bin;
  fs::path tool = bin.path() / "strata-ctx-tool";
  std::ofstream(tool) << "#!/bin/sh\necho tool\n";
  fs::permissions(tool, fs::perms::owner_all);

  RuntimeEnvContext context;
  context.cwd = dir.path().string();
  context.env_vars = {{"STRATA_GREETING", "hello ${STRATA_WHO}"}};
  context.path_prepend = {bin.path().string()};
  Env base = {{"PATH", "/usr/bin:/bin"}, {"STRATA_WHO", "world"}};
  LaunchPlan plan = PlanLaunch(
      context,
      {"sh", "-c",
       "pwd > out.txt; echo \"$STRATA_GREETING\" >> out.txt; echo \"$VIRTUAL_ENV\" >> out.txt; "
       "strata-ctx-tool >> out.txt"},
      base);
  auto r = RunInContext(plan);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(ReadFile(dir.path() / "out.txt"), dir.path().string() + "\nhello world\n" +
                                                  bin.path().parent_path().string() + "\ntool\n");
}

TEST(RunInContextTest, CommandPrefixRunsThroughBash) {
  TempDir dir;
  RuntimeEnvContext context;
  context.command_prefix = {"cd", dir.path().string(), "&&", "export", "PREFIXED=yes", "&&"};
  LaunchPlan plan = PlanLaunch(context, {"sh", "-c", "echo \"$PREFIXED $(pwd)\" > out.txt"},
                               CurrentEnvironment());
  auto r = RunInContext(plan);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(*r, 0);
  EXPECT_EQ(ReadFile(dir.path() / "out.txt"), "yes " + dir.path().string() + "\n");
}

int g_custom_handler_calls = 0;
void CustomHandler(int) {
  ++g_custom_handler_calls;
}

TEST(RunInContextTest, RestoresSignalHandlers) {
  struct sigaction custom {};
  custom.sa_handler = CustomHandler;
  sigemptyset(&custom.sa_mask);
  struct sigaction saved {};
  ASSERT_EQ(::sigaction(SIGUSR1, &custom, &saved), 0);
  auto r = RunInContext(ShPlan("exit 0"));
  ASSERT_TRUE(r.has_value());
  struct sigaction after {};
  ::sigaction(SIGUSR1, nullptr, &after);
  EXPECT_EQ(after.sa_handler, &CustomHandler);
  ::sigaction(SIGUSR1, &saved, nullptr);
}

// Forks a process that runs a shell loop (after `trap`) with RunInContext and exits with its
// result, waits for `ready_file`, sends `sig` to the forked process and
// returns its exit status.
int ForwardSignalExitCode(int sig, const std::string& trap) {  // `trap`: shell setup
  TempDir dir;
  fs::path ready = dir.path() / "ready";
  std::string script = trap + "; echo ready > " + ready.string() + "; while :; do sleep 0.02; done";
  LaunchPlan plan = ShPlan(script);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    auto r = RunInContext(plan);
    ::_exit(r ? *r : 99);
  }
  for (int i = 0; i < 500 && !fs::exists(ready); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(fs::exists(ready));
  std::this_thread::sleep_for(20ms);
  ::kill(pid, sig);
  int status = 0;
  for (int i = 0; i < 500; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(10ms);
  }
  ADD_FAILURE() << "signal " << sig << " was not forwarded";
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

TEST(RunInContextTest, ForwardsSigterm) {
  EXPECT_EQ(ForwardSignalExitCode(SIGTERM, "trap 'exit 42' TERM"), 42);
}

TEST(RunInContextTest, ForwardsOtherSignals) {
  EXPECT_EQ(ForwardSignalExitCode(SIGUSR1, "trap 'exit 43' USR1"), 43);
  EXPECT_EQ(ForwardSignalExitCode(SIGHUP, "trap 'exit 44' HUP"), 44);
  EXPECT_EQ(ForwardSignalExitCode(SIGINT, "trap 'exit 45' INT"), 45);
}

TEST(RunInContextTest, UntrappedForwardedSignalKillsTheChild) {
  // The forked runner survives SIGTERM (it only relays it); the child dies of
  // it and the runner reports 128+15.
  EXPECT_EQ(ForwardSignalExitCode(SIGTERM, ":"), 128 + SIGTERM);
}

}  // namespace
}  // namespace strata::agent
