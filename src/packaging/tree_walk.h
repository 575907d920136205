// The package tree walk: which files and directories of a local directory go into a package.
//
// WalkPackageTree visits the tree below `root`. A path is excluded when either source says so
// (as Ray skips a path that any matcher matches):
//   * the vetoes: the default excludes (`.git`, `.venv`, `venv`, `__pycache__`, or the
//     override) followed by the runtime env's `excludes`, one rule list relative to `root`
//     (so `excludes: ["!venv"]` brings a default back);
//   * the ignore files, with git's precedence (see packaging/ignore.h; lowest first): per
//     directory, from `root` down, its `.gitignore` (unless disabled), then its `.rayignore`,
//     each relative to the directory holding it and applying to its subtree.
// An excluded directory is not descended into, so nothing below it can be re-included.
// A `.gitignore`/`.rayignore` that is itself a symbolic link is not read (as git does).
//
// Symbolic links are followed: a link to a file yields a file entry whose `path` is the link's
// own name and whose `source` is the resolved target; a link to a directory is walked like a
// directory (and counts as one for directory-only patterns, unlike git, which does not follow
// links). Sockets, FIFOs and device files are skipped.
//
// Where the result differs from `git ls-files --others --exclude-standard` on the same tree with
// the same ignore files: git never lists anything named `.git` (here `.git` is an ordinary
// default exclude), does not descend into nested repositories, and lists symbolic links
// themselves instead of following them.
//
// Errors (values, never exceptions), each message naming the path:
//   * root missing or not a directory: kValueError;
//   * a link to an ancestor directory, or links that loop: kValueError;
//   * a dangling link: kNotFound;
//   * an unreadable directory or ignore file: kIOError.
// Links that are excluded are never resolved, so an excluded dangling link is no error.
//
// Directories are walked by several threads at once (WalkOptions::threads). When several paths
// are in error, which of them the error names is unspecified.
//
// Thread-safety: WalkPackageTree is reentrant (no shared state); WalkOptionsFromEnvironment
// reads the process environment and must not race with setenv/unsetenv.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "packaging/entry.h"
#include "util/result.h"

namespace strata::packaging {

// Ray's default excludes for working_dir / py_modules uploads.
std::vector<std::string> DefaultExcludes();

struct WalkOptions {
  // Lowest-precedence patterns, relative to the root.
  std::vector<std::string> default_excludes = DefaultExcludes();
  // Honour `.gitignore` files (STRATA_RUNTIME_ENV_IGNORE_GITIGNORE=1 turns this off).
  bool read_gitignore = true;
  // Honour `.rayignore` files.
  bool read_rayignore = true;
  // Threads walking directories at once (0: one per core). The result does not depend on it.
  unsigned threads = 0;
};

// Options from the environment:
//   STRATA_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES: when set, a comma-separated list (items
//     whitespace-stripped, empty items dropped) replacing the default excludes; "" disables them.
//   STRATA_RUNTIME_ENV_IGNORE_GITIGNORE: "1" disables `.gitignore` files (not `.rayignore`).
WalkOptions WalkOptionsFromEnvironment();

// Every non-excluded regular file below `root` and every non-excluded directory that contains
// no included entry (the root itself is never listed), sorted bytewise by `path`. Files carry
// `source`, `size` and `executable` (the owner's execute bit of the resolved file).
util::Result<std::vector<PackageEntry>> WalkPackageTree(const std::filesystem::path& root,
                                                        const std::vector<std::string>& excludes,
                                                        const WalkOptions& options);

}  // namespace strata::packaging
