// The `pip` and `uv` plugins: one isolated virtual environment per distinct
// spec, built with the node's Python and the installer's own resolver.
//
// URI: "pip://<sha1 hex of json.dumps(spec, sort_keys=True)>" (Ray's naming;
// a spec that is still a bare list is hashed as {"packages": list}), and
// "uv://<sha1>" alike.
//
// Layout of a cache entry (built in SetupContext::staging_dir, renamed to
// SetupContext::final_dir by the manager):
//
//   <entry>/
//     virtualenv/          `python -m venv --without-pip` (pip) / `uv venv` (uv);
//                          no system site-packages: the base interpreter's
//                          packages are not importable
//       lib/pythonX.Y/site-packages/_strata_runtime.pth
//                          only when STRATA_PYTHON_PACKAGE_DIR names a directory
//     requirements.txt     the spec's `packages`, one per line
//     exec_cwd/            empty; the cwd of every installer command, so that
//                          nothing in a cwd can shadow pip
//
// pip: `python -m pip --python <venv>/bin/python install <options> -r
// requirements.txt` with the base interpreter's pip (pip >= 22.3), so the venv
// needs no pip of its own; with `pip_version` the venv gets pip through
// ensurepip and `pip install pip<pip_version>`, and then installs with it.
// Options default to ["--disable-pip-version-check", "--no-cache-dir"].
// `pip_check: true` runs `pip check` afterwards. Commands inherit the agent's
// environment plus SetupContext::installer_env (PIP_INDEX_URL, pip.conf and
// ${STRATA_RUNTIME_ENV_CREATE_WORKING_DIR} in requirement lines work as for
// pip itself).
//
// uv: the `uv` executable on PATH (Validate fails when there is none):
// `uv venv --python <node python>`, `uv pip install --python <venv python>
// <options, default ["--no-cache"]> -r requirements.txt`, optional `uv pip
// check`. `uv_version` cannot be honoured with a node-wide uv: it is logged
// and ignored.
//
// Relocation: venv and installers write absolute paths (activate scripts,
// console-script shebangs, pyvenv.cfg). After installing, Create rewrites the
// staging path to the final path in those files, so the env works once the
// manager has renamed it.
//
// Context: py_executable = <entry>/virtualenv/bin/python and path_prepend
// gains <entry>/virtualenv/bin (the launcher derives VIRTUAL_ENV from it);
// no `source activate` prefix.
//
// Thread-safety: see plugin.h; the functions below are safe to call
// concurrently for different directories.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "agent/plugin.h"
#include "util/pyjson.h"
#include "util/result.h"

namespace strata::agent {

std::unique_ptr<RuntimeEnvPlugin> MakePipPlugin();  // field "pip"
std::unique_ptr<RuntimeEnvPlugin> MakeUvPlugin();   // field "uv"

// `<setup.python> -m pip install --disable-pip-version-check --no-cache-dir
// --target <target> <wheel>` (dependencies included, as Ray installs
// py_modules wheels), with setup's deadline, cancel flag, log and
// installer_env. `target` is created if missing.
util::Status InstallWheelToTarget(const std::filesystem::path& wheel,
                                  const std::filesystem::path& target, const SetupContext& setup);

// "<scheme>://<sha1 hex of DumpsSorted(spec)>", where a list spec is hashed
// as {"packages": spec}.
std::string InstallerSpecUri(std::string_view scheme, const util::Json& spec);

// Rewrites every occurrence of the directory `from` (as a whole path prefix)
// with `to` in the files of `venv` that hold absolute paths: pyvenv.cfg, and
// every regular file in bin/ whose name starts with "activate"/"Activate" or
// whose first line is a "#!" line. A shebang line that becomes longer than
// the kernel accepts (127 bytes) or holds a space is turned into the
// `#!/bin/sh` + `'''exec' ...` form pip itself uses for such paths.
util::Status RelocateVirtualenv(const std::filesystem::path& venv,
                                const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace strata::agent
