// Where `pip install` looks for packages, decided from the sources pip reads
// and in pip's precedence (pip 23's configuration.Configuration and
// cli.parser.ConfigOptionParser; checked against pip's own parser in tests).
//
// 1. Configuration files, INI as Python's configparser.RawConfigParser reads
//    them (see ParseIni). They are loaded by kind, later kinds overriding
//    earlier ones key by key, and within a kind later files overriding
//    earlier ones:
//      global: <d>/pip/pip.conf for each d in $XDG_CONFIG_DIRS (':'-separated,
//              "/etc/xdg" when unset or blank), then /etc/pip.conf
//      user:   ~/.pip/pip.conf (legacy), then $XDG_CONFIG_HOME/pip/pip.conf
//              (~/.config/pip/pip.conf); skipped when $PIP_CONFIG_FILE names
//              an existing file, or with --isolated
//      site:   <sys.prefix>/pip.conf (of the Python that would run pip: the
//              virtual environment's directory)
//      env:    the file named by $PIP_CONFIG_FILE
//    PIP_CONFIG_FILE=/dev/null (os.devnull) loads no file at all.
// 2. Environment variables PIP_<NAME> (name lowercased, '_' as '-'), over
//    every file; not read with --isolated.
//    In the merged result, section [global] applies first, then [install],
//    then the environment, each overriding the one before; an empty value is
//    ignored (and so hides a value of the same key from a lower source).
//    Recognised keys: index-url (and its alias pypi-url), extra-index-url,
//    find-links, trusted-host (whitespace-separated lists that replace, not
//    extend, a list from a lower source), no-index (pip's strtobool: y, yes,
//    t, true, on, 1 / n, no, f, false, off, 0, any case).
// 3. Command-line options, as a pip runtime_env's `pip_install_options` gives
//    them: `--index-url X`, `--index-url=X`, `-i X`, `-iX`, `--pypi-url`,
//    `--extra-index-url`, `--find-links`/`-f`, `--trusted-host` (these three
//    append to the lists from configuration, as optparse does), `--no-index`,
//    `--isolated` (anywhere in the list, as pip checks it). Anything else —
//    other options, values of options not listed, abbreviations pip would
//    accept ("--index"), positional arguments, everything after "--" — is
//    returned in `unhandled_options`, in order, for the caller to decide (a
//    native install falls back to pip when it is not empty).
//
// Thread-safety: pure functions over their arguments, reading files; safe to
// call concurrently. ProcessEnvironment() reads `environ`, which setenv in
// another thread would race with.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/result.h"

namespace strata::pyinstall {

inline constexpr char kDefaultIndexUrl[] = "https://pypi.org/simple";

struct IndexConfig {
  std::string index_url = kDefaultIndexUrl;
  std::vector<std::string> extra_index_urls;
  std::vector<std::string> find_links;
  std::vector<std::string> trusted_hosts;
  bool no_index = false;
  bool isolated = false;
  // For messages: per pip option name ("index-url", "extra-index-url",
  // "find-links", "trusted-host", "no-index"), where its value came from, in
  // the order the sources applied: "/etc/pip.conf [global] index-url",
  // "environment PIP_INDEX_URL", "option --index-url". No entry: pip's default.
  std::map<std::string, std::vector<std::string>> origins;
  std::vector<std::string> unhandled_options;
};

struct IndexConfigSources {
  // The environment pip would run with, in os.environ's order (the order only
  // matters when two variables name the same option, e.g. PIP_INDEX_URL and
  // PIP_PYPI_URL). HOME (else the passwd entry), XDG_CONFIG_DIRS,
  // XDG_CONFIG_HOME and PIP_CONFIG_FILE are read from here too.
  std::vector<std::pair<std::string, std::string>> environment;
  // sys.prefix of the Python that would run pip; no site file when unset.
  std::optional<std::filesystem::path> site_prefix;
  // The directory pip hard-codes as "/etc"; tests point it elsewhere.
  std::filesystem::path system_config_dir = "/etc";
};

// This process's environment, in `environ` order.
std::vector<std::pair<std::string, std::string>> ProcessEnvironment();

// ValueError when a configuration file cannot be parsed (naming the file and
// line, as configparser does), when a no-index value is not a boolean, or
// when an option that needs a value ends the list ("-i option requires 1
// argument", optparse's words).
util::Result<IndexConfig> LoadIndexConfig(const std::vector<std::string>& options,
                                          const IndexConfigSources& sources);

// One INI file as RawConfigParser (strict, no interpolation, no inline
// comments, '=' or ':' delimiters) reads it: sections in order, each with its
// options (lowercased names) in order, the [DEFAULT] section's options
// merged into every section first as parser.items() gives them; multi-line
// values joined with '\n'. ValueError for a missing section header, a line
// that is neither, an empty option name, or a duplicate section or option.
using IniSection = std::vector<std::pair<std::string, std::string>>;
util::Result<std::vector<std::pair<std::string, IniSection>>> ParseIni(std::string_view text,
                                                                       std::string_view file);

}  // namespace strata::pyinstall
