// Virtual environments made without running Python: the tree that
// `python -m venv --without-pip DIR` (CPython 3.11 and later, on Linux) makes
// for the same base interpreter, in a millisecond or two.
//
// Layout of DIR, as venv writes it (X.Y the base's version):
//   pyvenv.cfg       home, include-system-site-packages, version, [prompt],
//                    executable and command, in venv's order and spelling
//   bin/<exe>        symlink to the base executable, <exe> being the name the
//                    base was given by (python3, python3.11, ...)
//   bin/python, bin/python3, bin/pythonX.Y
//                    those of the three that are not <exe>: relative symlinks
//                    to <exe>
//   bin/activate, activate.csh, activate.fish, Activate.ps1
//                    the base's own venv/scripts templates (common/ and
//                    posix/), placeholders replaced and quoted exactly as that
//                    base's venv module does (patched Pythons quote them,
//                    gh-124651), file mode copied from the template
//   include/pythonX.Y, lib/pythonX.Y/site-packages
//                    the base's `venv` sysconfig scheme
//   lib64 -> lib     on a 64-bit interpreter
//   .gitignore       from Python 3.13 on ("*", as venv's default)
// Directories and pyvenv.cfg get the process umask, as venv's do.
//
// The tree is built in a fresh sibling directory (".<name>.strata-venv-*")
// and renamed onto DIR, so DIR appears complete or not at all.
//
// Thread-safety: BaseInterpreter::Read may be called from any thread (its
// cache is guarded by a mutex); CreateVenv may run concurrently for
// different directories.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace strata::pyinstall {

// What venv creation needs to know about a base interpreter.
struct BaseInterpreter {
  // sys.executable: the interpreter as it was invoked, absolute, symlinks kept
  // ("/usr/bin/python3"). venv writes it into pyvenv.cfg's command.
  std::string executable;
  // os.path.realpath(sys.executable): pyvenv.cfg's `executable`.
  std::string real_executable;
  // sys._base_executable: differs from `executable` when the interpreter is
  // itself a venv's. bin/<its name> links here; its directory is `home`.
  std::string base_executable;
  int major = 3;
  int minor = 0;
  int micro = 0;
  std::string base_prefix;  // sys.base_prefix
  bool is_64bit = true;     // sys.maxsize > 2**32, which decides lib64
  // The `venv` sysconfig scheme's paths relative to the environment:
  // "bin", "include/python3.11", "lib/python3.11/site-packages".
  std::string scripts_dir;
  std::string include_dir;
  std::string purelib_dir;

  // One activation script template, as venv's install_scripts walks them.
  struct Script {
    std::string source;  // absolute template path
    std::string target;  // relative to scripts_dir: "activate", "sub/x"
    // How this venv module quotes a placeholder's value in this file: "none",
    // "shell" (shlex.quote) or "powershell" ('...' with '' for ').
    std::string quoting;
    bool binary = false;  // .exe/.pdb: copied as they are
  };
  std::vector<Script> scripts;

  // Runs `python` (a path, or a name looked up on PATH) once with a small
  // `-I -c` script and caches the answer for the process. The cache key is
  // the absolute path of the program run, symlinks NOT resolved, because the
  // name an interpreter is invoked by shows in the venv (bin/python3 vs
  // bin/python3.11, pyvenv.cfg's home and command). Failures are not cached.
  // NotFound when there is no such program; IOError when it cannot run or
  // fails; ValueError when its answer is not understood, or it is not a
  // CPython 3.11 or later on a POSIX system other than macOS.
  static util::Result<BaseInterpreter> Read(const std::string& python);
};

struct VenvOptions {
  // --prompt: pyvenv.cfg's `prompt` and the activate scripts' prefix. "."
  // means the basename of the current directory, as in venv.
  std::optional<std::string> prompt;
  // --system-site-packages.
  bool system_site_packages = false;
};

struct VenvInfo {
  std::filesystem::path dir;            // absolute, lexically normal
  std::filesystem::path python;         // bin/<exe>
  std::filesystem::path site_packages;  // lib/pythonX.Y/site-packages
};

// Makes the environment at `dir` (parents created as needed). ValueError when
// `dir` contains ':' (venv refuses it too) or exists and is not an empty
// directory; IOError on a filesystem failure, leaving nothing behind. An
// activation template that is not UTF-8 is skipped with a warning, as venv does.
util::Result<VenvInfo> CreateVenv(const std::filesystem::path& dir, const BaseInterpreter& base,
                                  const VenvOptions& options = {});

}  // namespace strata::pyinstall
