// Installing an unpacked wheel (wheel_cache.h) into an environment, per the
// binary distribution format and as pip 23-25 does it
// (pip/_internal/operations/install/wheel.py with distlib's ScriptMaker).
//
// Where the cache entry's files/ go (X.Y the interpreter's version, lib_dir
// purelib when WHEEL says Root-Is-Purelib: true, else platlib):
//
//   files/                                  InstallScheme (ForVenv)
//     pkg/__init__.py, mod.py, ...      ->  lib_dir/...      <venv>/lib/pythonX.Y/site-packages/
//     demo-1.0.dist-info/...            ->  lib_dir/...
//     demo-1.0.data/purelib/...         ->  purelib/...      <venv>/lib/pythonX.Y/site-packages/
//     demo-1.0.data/platlib/...         ->  platlib/...      <venv>/lib/pythonX.Y/site-packages/
//     demo-1.0.data/scripts/...         ->  scripts/...      <venv>/bin/
//     demo-1.0.data/headers/...         ->  headers/...      <venv>/include/site/pythonX.Y/<name>/
//     demo-1.0.data/data/...            ->  data/...         <venv>/
//
// Every file is hardlinked from the cache (LinkMode::kHardlink), or copied
// when asked (kCopy) or when the cache and the target are on different
// filesystems (EXDEV: one warning through InstallOptions::warn, then copies
// for the rest of the install). Files that differ from the cache are written
// as new files and renamed into place, never through a link, because the
// cache's files are shared by every environment:
//   * .data/scripts files whose first line starts with "#!python" (so also
//     "#!pythonw"): that line becomes "#!<python>\n" (pip's fix_script; the
//     rest of the line is dropped); the mode follows the cached file;
//   * console_scripts and gui_scripts of entry_points.txt: distlib's script
//     template under distlib's shebang, mode 0755 (see ScriptText); a
//     .data/scripts file named like an entry point is skipped, as pip does;
//     as in pip's get_console_script_specs, a console script "pip" becomes
//     pip, pipX and pipX.Y of the target Python (other pipN[.M] entries are
//     dropped), "easy_install" becomes easy_install and easy_install-X.Y
//     (ENSUREPIP_OPTIONS, which pip also reads there, is ignored);
//   * dist-info/INSTALLER ("strata\n"), REQUESTED (empty, when requested),
//     direct_url.json (when a direct URL is given), and RECORD.
// An existing file at a destination is replaced (pip unlinks it first).
// Directories are created as needed (0755 under the umask); empty
// directories of the wheel are not created, as with pip.
//
// RECORD is rewritten the way pip's get_csv_rows_for_installed does it: each
// row of the wheel's RECORD keeps its hash and size with its path mapped to
// where the file went, relative to lib_dir ("../../../bin/demo"); rows of
// changed scripts get the new file's hash; generated files are added with
// their hash ("sha256=" + urlsafe base64 without padding) and size; files
// installed but missing from the wheel's RECORD are added with empty hash
// and size; RECORD's own row has neither. Rows are sorted, written with
// csv.writer's quoting and "\r\n".
//
// Shebangs (distlib's _build_shebang on Linux): "#!<python>" when the path
// holds no space and the line is at most 127 bytes with "#!" and the newline;
// otherwise
//   #!/bin/sh
//   '''exec' <python, double-quoted when it holds a space> "$0" "$@"
//   ' '''
// pip's fix_script writes "#!<python>" for .data scripts whatever the length;
// here those get the /bin/sh form too when the simple line would not work.
//
// Thread-safety: InstallWheel may run concurrently for different target
// environments; two installs into one environment at once are not supported.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pyinstall/wheel_cache.h"
#include "util/result.h"

namespace strata::pyinstall {

struct InstallScheme {
  std::filesystem::path purelib;
  std::filesystem::path platlib;
  std::filesystem::path scripts;
  std::filesystem::path headers;
  std::filesystem::path data;
  // The interpreter scripts' shebangs name: what pip sees as sys.executable.
  std::filesystem::path python;
  // Its "X.Y", for pip's renaming of the pip and easy_install entry points
  // (see InstallWheel); empty: those are installed under their own names.
  std::string python_version;

  // pip's scheme for a virtual environment at `venv` (absolute) of Python
  // `python_version` ("3.11"), for project `dist_name` (pip uses the name of
  // the requirement, i.e. METADATA's Name for a wheel file): purelib = platlib
  // = <venv>/lib/python3.11/site-packages, scripts = <venv>/bin, headers =
  // <venv>/include/site/python3.11/<dist_name>, data = <venv>, python =
  // <venv>/bin/python, python_version = "3.11".
  static InstallScheme ForVenv(const std::filesystem::path& venv, std::string_view python_version,
                               std::string_view dist_name);
};

enum class LinkMode { kHardlink, kCopy };

// PEP 610's direct_url.json for an archive URL (a wheel given by URL or
// path): {"archive_info": {"hash": "sha256=<hex>", "hashes": {"sha256":
// "<hex>"}}, "url": "<url>"}, as pip's json.dumps(sort_keys=True) writes
// it. Empty sha256: "archive_info": {} (pip, for a local wheel file).
struct DirectUrl {
  std::string url;
  std::string sha256;
  std::string ToJson() const;
};

struct InstallOptions {
  LinkMode link_mode = LinkMode::kHardlink;
  bool requested = false;               // writes dist-info/REQUESTED
  std::optional<DirectUrl> direct_url;  // writes dist-info/direct_url.json
  // Called at most once per install, when hardlinks fall back to copies.
  std::function<void(const std::string& message)> warn;
};

struct InstallResult {
  std::vector<std::filesystem::path> installed;  // every file placed, absolute, sorted
  bool copied_across_filesystems = false;
};

// Installs `wheel` into `scheme`. Errors: ValueError (a wheel path leaving its
// scheme directory, an unknown .data scheme key or a file directly in .data,
// an entry point without a callable suffix or otherwise invalid), IOError.
// On error, files already placed stay (as with pip, which rolls back only
// when it replaced an earlier version).
util::Result<InstallResult> InstallWheel(const UnpackedWheel& wheel, const InstallScheme& scheme,
                                         const InstallOptions& options = {});

// The text of the console (or GUI) script for entry point `value`
// ("pkg.cli:main" or "pkg.cli:Cls.method", optionally followed by
// "[extras]") with `python` as the interpreter, as distlib writes it:
//
//   #!<python>
//   # -*- coding: utf-8 -*-
//   import re
//   import sys
//   from pkg.cli import main
//   if __name__ == '__main__':
//       sys.argv[0] = re.sub(r'(-script\.pyw|\.exe)?$', '', sys.argv[0])
//       sys.exit(main())
//
// ValueError for a value without ":" (pip's MissingCallableSuffix) or one
// that distlib would not parse.
util::Result<std::string> ScriptText(std::string_view value, const std::filesystem::path& python);

// The shebang block (ending in "\n") distlib puts in front of a script.
std::string Shebang(const std::filesystem::path& python);

// "sha256=<urlsafe base64, no padding>" of `bytes`, as RECORD holds it.
std::string RecordHash(std::string_view bytes);

}  // namespace strata::pyinstall
