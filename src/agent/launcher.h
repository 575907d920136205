// Starting a command inside a RuntimeEnvContext: Ray's worker launch
// (setup_worker.py / exec_worker, reference §5.2) adapted to Strata's context,
// which applies the working directory, PYTHONPATH and PATH natively instead of
// through a shell prefix.
//
// PlanLaunch (pure) turns context + command + the caller's environment into a
// LaunchPlan:
//   1. env = base_env; then each context.env_vars entry, in order, is set to
//      its value expanded like Ray's update_envs: os.path.expandvars against
//      the environment built so far ($NAME with NAME in [A-Za-z0-9_]+, ${ANY};
//      unknown variables stay as they are), then every remaining ${NAME} with
//      NAME in [A-Z0-9_]+ is removed. So "${PATH}:/x" appends, an undefined
//      ${UPPER} becomes empty, an undefined $X or ${lower} stays literally.
//   2. PYTHONPATH = context.pythonpath, then the PYTHONPATH from step 1 if
//      env_vars set one, then base_env's PYTHONPATH; ':'-joined, empty entries
//      skipped, and every entry kept only at its FIRST position (so a user
//      value "${PYTHONPATH}:/x" places the node's entries where the user put
//      them and they are not appended a second time). Set only when non-empty;
//      otherwise left as step 1 left it.
//   3. PATH = context.path_prepend + the PATH from step 1. When path_prepend
//      is non-empty, VIRTUAL_ENV = parent of its first entry (a venv's bin/)
//      and PYTHONHOME is removed.
//   4. cwd = context.cwd.
//   5. argv = command, except: when command[0] is the bare name "python" or
//      "python3", a non-empty context.py_executable replaces it with its
//      words (shlex.split; on a quoting error, split on whitespace), and
//      context.override_worker_entrypoint replaces command[1] (appended when
//      there is none). With a non-empty context.command_prefix, argv becomes
//        {"bash", "-c", "<prefix words joined by spaces> exec <ShellJoin(argv)>"}
//      (prefix words unquoted, as Ray does, so "&&", "1>&2" keep their meaning).
//
// With context.container set, the plan describes the process INSIDE the
// container: step 1 starts from the image's environment
// (ContainerLayer::image_env) plus the base_env variables that
// PassesIntoContainer admits, instead of base_env, and plan.container is set.
// HostPlan then turns such a plan into the `podman run` that executes it.
//
// RunInContext runs a plan as a child process, like exec would but keeping
// the caller alive to relay signals: the child shares the caller's stdin,
// stdout, stderr, process group and inherited descriptors; argv[0] is looked
// up on the PLAN's PATH. While waiting, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
// SIGUSR1 and SIGUSR2 sent to the caller are forwarded to the child, except
// those the kernel generated (si_code SI_KERNEL, e.g. Ctrl-C at a terminal),
// which already reach the child through the shared process group, and those
// the caller ignores (SIG_IGN, e.g. SIGHUP under nohup), which stay ignored in
// the child. The caller's handlers are restored afterwards. SIGPIPE and
// SIGXFSZ are reset to the default in the child (as Python's subprocess does).
//
// Thread-safety: PlanLaunch and CurrentEnvironment are safe from any thread
// (CurrentEnvironment reads `environ`; do not call it while another thread
// calls setenv). RunInContext installs process-wide signal handlers, so calls
// are serialized by an internal mutex: a second concurrent call waits for the
// first child to exit.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/container.h"
#include "agent/context.h"
#include "util/result.h"

namespace strata::agent {

struct LaunchPlan {
  std::vector<std::string> argv;                         // what to exec
  std::vector<std::pair<std::string, std::string>> env;  // the COMPLETE environment
  std::string cwd;                                       // "" = inherit
  std::optional<ContainerLayer> container;               // argv/env/cwd are inside it
};

// `base_env` is the caller's environment (e.g. CurrentEnvironment()).
LaunchPlan PlanLaunch(const RuntimeEnvContext& context, const std::vector<std::string>& command,
                      const std::vector<std::pair<std::string, std::string>>& base_env);

// The plan to execute on the host: `plan` itself without a container; with
// one, ContainerRunArgv(plan.container, plan.argv, plan.env, plan.cwd) that
// also mounts the cwd and every PYTHONPATH entry (with the directories its
// symbolic links lead to, SymlinkTargetDirs), run with `host_env`.
LaunchPlan HostPlan(const LaunchPlan& plan,
                    const std::vector<std::pair<std::string, std::string>>& host_env);

// Step 1's expansion of one value against `env` (exposed for tests and for
// callers that expand a single value).
std::string ExpandEnvValue(std::string_view value,
                           const std::vector<std::pair<std::string, std::string>>& env);

// The process environment (`environ`), in order; entries without '=' skipped.
std::vector<std::pair<std::string, std::string>> CurrentEnvironment();

// Runs `plan` and waits for it: its exit code (128+N if killed by signal N),
// or an error naming the command if it cannot be started (empty argv, not
// found on the plan's PATH, not executable, missing cwd).
util::Result<int> RunInContext(const LaunchPlan& plan);

}  // namespace strata::agent
