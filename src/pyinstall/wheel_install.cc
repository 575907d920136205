#include "pyinstall/wheel_install.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>

#include "util/pyjson.h"

namespace strata::pyinstall {
namespace {

namespace fs = std::filesystem;
using util::Result;
using util::Status;

constexpr std::string_view kInstaller = "strata\n";

util::Error ErrnoError(const std::string& what, const fs::path& p, int err) {
  return util::IOError(what + " '" + p.string() + "': " + std::strerror(err));
}

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;  // Python's \w also takes non-ASCII letters
}

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view StripSpace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::IOError("cannot read '" + path.string() + "'");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A unique sibling name for a file about to replace `dest`.
fs::path TempSibling(const fs::path& dest) {
  static std::atomic<unsigned> counter{0};
  return dest.parent_path() / ("." + dest.filename().string() + ".strata-" +
                               std::to_string(::getpid()) + "-" + std::to_string(counter++));
}

// Writes `content` as a new file (created with `mode` under the umask) and
// renames it onto `dest`, so an existing file or hardlink at `dest` is
// replaced, never written through.
Status WriteNewFile(const fs::path& dest, std::string_view content, mode_t mode) {
  const fs::path tmp = TempSibling(dest);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("cannot create", tmp, errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoError("cannot write", tmp, err);
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError("cannot rename onto", dest, err);
  }
  return Status::Ok();
}

Status EnsureParent(const fs::path& dest) {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec)
    return util::IOError("cannot create '" + dest.parent_path().string() + "': " + ec.message());
  return Status::Ok();
}

// Places cached files at their destinations, hardlinking until the first
// EXDEV and copying from then on.
class Linker {
 public:
  Linker(const InstallOptions& options)
      : options_(options), copy_(options.link_mode == LinkMode::kCopy) {}

  bool crossed_filesystems() const { return crossed_; }

  Status Place(const fs::path& src, const fs::path& dest, bool executable) {
    if (!copy_) {
      if (::link(src.c_str(), dest.c_str()) == 0) return Status::Ok();
      int err = errno;
      if (err == EEXIST) {
        const fs::path tmp = TempSibling(dest);
        if (::link(src.c_str(), tmp.c_str()) == 0) {
          if (::rename(tmp.c_str(), dest.c_str()) == 0) return Status::Ok();
          err = errno;
          ::unlink(tmp.c_str());
          return ErrnoError("cannot rename onto", dest, err);
        }
        err = errno;
      }
      if (err == EXDEV) {
        copy_ = true;
        crossed_ = true;
        if (options_.warn) {
          options_.warn("the wheel cache " + src.parent_path().string() +
                        " and the environment are on different filesystems: copying files "
                        "instead of hardlinking them");
        }
      } else if (err != EMLINK && err != EPERM) {
        return ErrnoError("cannot hardlink to", dest, err);
      }
      // EMLINK (too many links) and EPERM (filesystems without hardlinks):
      // this file is copied.
    }
    auto content = ReadFile(src);
    if (!content) return content.error();
    return WriteNewFile(dest, *content, executable ? 0755 : 0644);
  }

 private:
  const InstallOptions& options_;
  bool copy_;
  bool crossed_ = false;
};

// entry_points.txt as importlib.metadata reads it: stripped lines, '#'
// comments, "[group]" sections, "name = value" pairs. name -> value per
// group, first position kept and last value winning, like a dict.
using EntryPoints = std::vector<std::pair<std::string, std::string>>;

void SetEntry(EntryPoints& group, std::string name, std::string value) {
  for (auto& [n, v] : group) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  group.emplace_back(std::move(name), std::move(value));
}

std::map<std::string, EntryPoints> ParseEntryPoints(std::string_view text) {
  std::map<std::string, EntryPoints> groups;
  std::string section;
  bool in_section = false;
  while (!text.empty()) {
    const auto eol = text.find_first_of("\r\n");
    std::string_view line = StripSpace(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (line.empty() || line.front() == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      while (!line.empty() && (line.front() == '[' || line.front() == ']')) line.remove_prefix(1);
      while (!line.empty() && (line.back() == '[' || line.back() == ']')) line.remove_suffix(1);
      section = std::string(line);
      in_section = true;
      continue;
    }
    const auto eq = line.find('=');
    if (!in_section || eq == std::string_view::npos) continue;
    SetEntry(groups[section], std::string(StripSpace(line.substr(0, eq))),
             std::string(StripSpace(line.substr(eq + 1))));
  }
  return groups;
}

std::string Base64UrlNoPad(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

bool IsVersionedName(std::string_view name, std::string_view stem, char separator) {
  // stem, then optionally: digits, or (separator is '-') "-digits.digits";
  // for pip: "pip", "pip3", "pip3.11" (separator '\0').
  if (!name.starts_with(stem)) return false;
  std::string_view rest = name.substr(stem.size());
  if (rest.empty()) return true;
  if (separator != '\0') {
    if (rest.front() != separator) return false;
    rest.remove_prefix(1);
  }
  auto digits = [&]() {
    std::size_t n = 0;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
    rest.remove_prefix(n);
    return n > 0;
  };
  if (!digits()) return false;
  if (rest.empty()) return separator == '\0';
  if (rest.front() != '.') return false;
  rest.remove_prefix(1);
  return digits() && rest.empty();
}

// pip's get_console_script_specs.
EntryPoints ConsoleScriptSpecs(EntryPoints console, const std::string& python_version) {
  if (python_version.empty()) return console;
  EntryPoints out;
  auto pop = [&](std::string_view name) -> std::optional<std::string> {
    for (auto it = console.begin(); it != console.end(); ++it) {
      if (it->first == name) {
        std::string value = it->second;
        console.erase(it);
        return value;
      }
    }
    return std::nullopt;
  };
  auto drop = [&](std::string_view stem, char separator) {
    std::erase_if(console,
                  [&](const auto& e) { return IsVersionedName(e.first, stem, separator); });
  };
  const std::string major = python_version.substr(0, python_version.find('.'));
  if (auto pip = pop("pip")) {
    out.emplace_back("pip", *pip);
    out.emplace_back("pip" + major, *pip);
    out.emplace_back("pip" + python_version, *pip);
    drop("pip", '\0');
  }
  if (auto easy_install = pop("easy_install")) {
    out.emplace_back("easy_install", *easy_install);
    out.emplace_back("easy_install-" + python_version, *easy_install);
    drop("easy_install", '-');
  }
  out.insert(out.end(), console.begin(), console.end());
  return out;
}

struct Placement {
  std::string src_record_path;  // the wheel's path
  fs::path dest;
  bool executable = false;
  bool script = false;  // from .data/scripts: its #!python line is fixed
};

}  // namespace

std::string RecordHash(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return "sha256=" + Base64UrlNoPad(digest, length);
}

InstallScheme InstallScheme::ForVenv(const fs::path& venv, std::string_view python_version,
                                     std::string_view dist_name) {
  InstallScheme scheme;
  const std::string python_xy = "python" + std::string(python_version);
  scheme.purelib = venv / "lib" / python_xy / "site-packages";
  scheme.platlib = scheme.purelib;
  scheme.scripts = venv / "bin";
  scheme.headers = venv / "include" / "site" / python_xy / std::string(dist_name);
  scheme.data = venv;
  scheme.python = venv / "bin" / "python";
  scheme.python_version = std::string(python_version);
  return scheme;
}

std::string DirectUrl::ToJson() const {
  util::Json info = util::Json::object();
  if (!sha256.empty()) {
    info["hash"] = "sha256=" + sha256;
    info["hashes"] = util::Json::object({{"sha256", sha256}});
  }
  return util::DumpsSorted(util::Json::object({{"archive_info", info}, {"url", url}}));
}

std::string Shebang(const fs::path& python) {
  std::string executable = python.string();
  if (executable.find(' ') != std::string::npos && !executable.starts_with('"')) {
    executable = "\"" + executable + "\"";
  }
  // distlib's limit on Linux: 127 bytes including "#!" and the newline.
  if (executable.find(' ') == std::string::npos && executable.size() + 3 <= 127) {
    return "#!" + executable + "\n";
  }
  return "#!/bin/sh\n'''exec' " + executable + " \"$0\" \"$@\"\n' '''\n";
}

Result<std::string> ScriptText(std::string_view value, const fs::path& python) {
  // distlib's ENTRY_RE callable: \w+([:.]\w+)*, then optional "[flags]".
  std::string_view rest = StripSpace(value);
  std::size_t end = 0;
  while (end < rest.size()) {
    std::size_t word = end;
    while (word < rest.size() && IsWordChar(rest[word])) ++word;
    if (word == end) break;
    end = word;
    if (end + 1 < rest.size() && (rest[end] == ':' || rest[end] == '.') &&
        IsWordChar(rest[end + 1])) {
      ++end;
    } else {
      break;
    }
  }
  const std::string_view callable = rest.substr(0, end);
  const std::string_view trailer = StripSpace(rest.substr(end));
  if (callable.empty() || (!trailer.empty() && trailer.front() != '[')) {
    return util::ValueError("Invalid script entry point specification '" + std::string(value) +
                            "'");
  }
  const auto colons = std::count(callable.begin(), callable.end(), ':');
  if (colons > 1) {
    return util::ValueError("Invalid script entry point specification '" + std::string(value) +
                            "'");
  }
  if (colons == 0) {
    return util::ValueError("Invalid script entry point: " + std::string(value) +
                            " - A callable suffix is required. Cf "
                            "https://packaging.python.org/specifications/entry-points/"
                            "#use-for-scripts for more information.");
  }
  const auto colon = callable.find(':');
  const std::string module(callable.substr(0, colon));
  const std::string func(callable.substr(colon + 1));
  const std::string import_name = func.substr(0, func.find('.'));
  return Shebang(python) +
         "# -*- coding: utf-8 -*-\n"
         "import re\n"
         "import sys\n"
         "from " +
         module + " import " + import_name +
         "\n"
         "if __name__ == '__main__':\n"
         "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
         "    sys.exit(" +
         func + "())\n";
}

Result<InstallResult> InstallWheel(const UnpackedWheel& wheel, const InstallScheme& scheme,
                                   const InstallOptions& options) {
  const fs::path files_dir = wheel.files_dir();
  const fs::path lib_dir =
      (wheel.root_is_purelib ? scheme.purelib : scheme.platlib).lexically_normal();
  const std::string where = wheel.name + " " + wheel.version;

  std::map<std::string, EntryPoints> entry_points;
  if (fs::exists(files_dir / wheel.dist_info / "entry_points.txt")) {
    auto text = ReadFile(files_dir / wheel.dist_info / "entry_points.txt");
    if (!text) return text.error();
    entry_points = ParseEntryPoints(*text);
  }
  const EntryPoints& console = entry_points["console_scripts"];
  const EntryPoints& gui = entry_points["gui_scripts"];
  auto is_entry_point = [&](const std::string& name) {
    auto named = [&](const EntryPoints& group) {
      return std::any_of(group.begin(), group.end(),
                         [&](const auto& e) { return e.first == name; });
    };
    return named(console) || named(gui);
  };
  // pip skips setuptools' wrappers EP, EP.exe, EP-script.py and EP.pya.
  auto is_entry_point_wrapper = [&](const std::string& base) {
    const std::string lower = LowerAscii(base);
    std::string match = base;
    if (lower.ends_with(".exe") || lower.ends_with(".pya")) {
      match = base.substr(0, base.size() - 4);
    } else if (lower.ends_with("-script.py")) {
      match = base.substr(0, base.size() - 10);
    }
    return is_entry_point(match);
  };

  const std::map<std::string, const fs::path*> scheme_dirs = {
      {"data", &scheme.data},       {"headers", &scheme.headers}, {"platlib", &scheme.platlib},
      {"purelib", &scheme.purelib}, {"scripts", &scheme.scripts},
  };
  auto inside = [](const fs::path& dir, const fs::path& path) {
    const auto rel = path.lexically_normal().lexically_relative(dir.lexically_normal());
    return !rel.empty() && *rel.begin() != "..";
  };

  std::vector<Placement> placements;
  for (const UnpackedWheelFile& file : wheel.files) {
    const std::string& path = file.path;
    const std::string top = path.substr(0, path.find('/'));
    Placement placement{path, {}, file.executable, false};
    if (top.ends_with(".data")) {
      const auto first = path.find('/');
      const auto second =
          first == std::string::npos ? std::string::npos : path.find('/', first + 1);
      if (second == std::string::npos) {
        return util::ValueError("Unexpected file in " + where + ": '" + path +
                                "'. .data directory contents should be named like: "
                                "'<scheme key>/<path>'.");
      }
      const std::string key = path.substr(first + 1, second - first - 1);
      auto dir = scheme_dirs.find(key);
      if (dir == scheme_dirs.end()) {
        return util::ValueError(
            "Unknown scheme key used in " + where + ": " + key + " (for file '" + path +
            "'). .data directory contents should be in subdirectories named "
            "with a valid scheme key (data, headers, platlib, purelib, scripts)");
      }
      placement.dest = (*dir->second / path.substr(second + 1)).lexically_normal();
      if (!inside(*dir->second, placement.dest)) {
        return util::ValueError("The wheel " + where + " has a file '" + path +
                                "' trying to install outside the target directory '" +
                                dir->second->string() + "'");
      }
      if (key == "scripts") {
        if (is_entry_point_wrapper(placement.dest.filename().string())) continue;
        placement.script = true;
      }
    } else {
      placement.dest = (lib_dir / path).lexically_normal();
      if (!inside(lib_dir, placement.dest)) {
        return util::ValueError("The wheel " + where + " has a file '" + path +
                                "' trying to install outside the target directory '" +
                                lib_dir.string() + "'");
      }
    }
    placements.push_back(std::move(placement));
  }

  auto record_path = [&](const fs::path& dest) {
    return dest.lexically_normal().lexically_relative(lib_dir).generic_string();
  };
  const std::string record_src = wheel.dist_info + "/RECORD";
  std::map<std::string, std::string> installed;  // wheel path -> RECORD path
  std::map<std::string, RecordRow> changed;      // RECORD path -> new row
  std::vector<RecordRow> generated;
  InstallResult result;
  Linker linker(options);

  for (const Placement& p : placements) {
    const fs::path src = files_dir / p.src_record_path;
    installed[p.src_record_path] = record_path(p.dest);
    result.installed.push_back(p.dest);
    if (auto s = EnsureParent(p.dest); !s) return s.error();
    // Rewritten below: linking the cached copy first would be wasted work.
    if (p.src_record_path == record_src) continue;
    if (p.script) {
      auto content = ReadFile(src);
      if (!content) return content.error();
      if (content->starts_with("#!python")) {
        const auto eol = content->find('\n');
        const std::string fixed =
            Shebang(scheme.python) + (eol == std::string::npos ? "" : content->substr(eol + 1));
        if (auto s = WriteNewFile(p.dest, fixed, p.executable ? 0755 : 0644); !s) return s.error();
        const std::string rp = record_path(p.dest);
        changed[rp] = {rp, RecordHash(fixed), std::to_string(fixed.size())};
        continue;
      }
    }
    if (auto s = linker.Place(src, p.dest, p.executable); !s) return s.error();
  }

  auto generate = [&](const fs::path& dest, const std::string& content, mode_t mode) -> Status {
    if (auto s = EnsureParent(dest); !s) return s;
    if (auto s = WriteNewFile(dest, content, mode); !s) return s;
    generated.push_back({record_path(dest), RecordHash(content), std::to_string(content.size())});
    result.installed.push_back(dest.lexically_normal());
    return Status::Ok();
  };
  const EntryPoints console_specs = ConsoleScriptSpecs(console, scheme.python_version);
  for (const EntryPoints* group : {&console_specs, &gui}) {
    for (const auto& [name, value] : *group) {
      auto text = ScriptText(value, scheme.python);
      if (!text) return text.error();
      if (auto s = generate(scheme.scripts / name, *text, 0755); !s) return s.error();
    }
  }
  const fs::path info_dir = lib_dir / wheel.dist_info;
  if (auto s = generate(info_dir / "INSTALLER", std::string(kInstaller), 0666); !s)
    return s.error();
  if (options.direct_url) {
    if (auto s = generate(info_dir / "direct_url.json", options.direct_url->ToJson(), 0666); !s) {
      return s.error();
    }
  }
  if (options.requested) {
    if (auto s = generate(info_dir / "REQUESTED", "", 0666); !s) return s.error();
  }

  // pip's get_csv_rows_for_installed.
  std::vector<std::tuple<std::string, std::string, std::string>> rows;
  for (const RecordRow& old : wheel.record) {
    std::string path = old.path;
    if (auto it = installed.find(old.path); it != installed.end()) {
      path = it->second;
      installed.erase(it);
    }
    if (auto it = changed.find(path); it != changed.end()) {
      rows.emplace_back(path, it->second.hash, it->second.size);
    } else {
      rows.emplace_back(path, old.hash, old.size);
    }
  }
  for (const RecordRow& g : generated) rows.emplace_back(g.path, g.hash, g.size);
  for (const auto& [src, path] : installed) rows.emplace_back(path, "", "");
  std::sort(rows.begin(), rows.end());
  std::string record;
  for (const auto& [path, hash, size] : rows) record += FormatRecordRow({path, hash, size});
  const fs::path record_dest = info_dir / "RECORD";
  if (auto s = EnsureParent(record_dest); !s) return s.error();
  if (auto s = WriteNewFile(record_dest, record, 0666); !s) return s.error();
  result.installed.push_back(record_dest.lexically_normal());

  std::sort(result.installed.begin(), result.installed.end());
  result.installed.erase(std::unique(result.installed.begin(), result.installed.end()),
                         result.installed.end());
  result.copied_across_filesystems = linker.crossed_filesystems();
  return result;
}

}  // namespace strata::pyinstall
