#include "pyinstall/wheel_tags.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "pyinstall/python_script.h"

extern char** environ;

namespace strata::pyinstall {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<std::string> Split(std::string_view text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t pos = text.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.emplace_back(text.substr(start));
      return parts;
    }
    parts.emplace_back(text.substr(start, pos - start));
    start = pos + 1;
  }
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// packaging: re.match(r"^[\w\d._]*$", name) and no "__"; ASCII only here.
bool IsValidNamePart(std::string_view name) {
  if (name.empty() || name.find("__") != std::string_view::npos) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_' || c == '.';
  });
}

// PEP 503: runs of '-', '_' and '.' become one '-', lowercase.
std::string CanonicalName(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      if (out.empty() || out.back() != '-') out += '-';
    } else {
      out += c;
    }
  }
  return Lower(out);
}

util::Error InvalidWheel(std::string_view filename, std::string_view why) {
  return util::ValueError("Invalid wheel filename (" + std::string(why) +
                          "): " + std::string(filename));
}

std::string VersionNodot(int major, int minor) {
  return std::to_string(major) + std::to_string(minor);
}

// packaging's _manylinux.platform_tags followed by _musllinux.platform_tags
// and the plain platform.
std::vector<std::string> PlatformTags(const TargetFacts& facts) {
  std::vector<std::string> platforms;
  const std::string& linux = facts.platform;  // "linux_<arch>"
  std::string arch = linux.substr(linux.find('_') + 1);
  if (facts.manylinux_abi && facts.glibc && facts.glibc->first >= 0) {
    // Below these no manylinux tag is defined for the architecture.
    std::pair<int, int> too_old = {2, 16};
    if (arch == "x86_64" || arch == "i686") too_old = {2, 4};
    // packaging assumes minor 50 as the last of any earlier glibc major.
    std::vector<std::pair<int, int>> maxima = {*facts.glibc};
    for (int major = facts.glibc->first - 1; major > 1; --major) maxima.emplace_back(major, 50);
    for (auto [major, max_minor] : maxima) {
      int min_minor = major == too_old.first ? too_old.second : -1;
      for (int minor = max_minor; minor > min_minor; --minor) {
        platforms.push_back("manylinux_" + std::to_string(major) + "_" + std::to_string(minor) +
                            "_" + arch);
        if (major != 2) continue;
        if (minor == 17) platforms.push_back("manylinux2014_" + arch);
        if (minor == 12) platforms.push_back("manylinux2010_" + arch);
        if (minor == 5) platforms.push_back("manylinux1_" + arch);
      }
    }
  }
  if (facts.musl) {
    for (int minor = facts.musl->second; minor >= 0; --minor) {
      platforms.push_back("musllinux_" + std::to_string(facts.musl->first) + "_" +
                          std::to_string(minor) + "_" + arch);
    }
  }
  platforms.push_back(linux);
  return platforms;
}

// Prints the facts as one JSON line after a marker, so that anything else the
// interpreter writes (warnings share the pipe) is told apart. The code mirrors
// packaging 21-24 (tags._cpython_abis, _manylinux, _musllinux).
constexpr const char* kFactsScript = R"PY(
import json, os, re, struct, subprocess, sys, sysconfig
from importlib.machinery import EXTENSION_SUFFIXES
v = sys.version_info
cv = sysconfig.get_config_var
flags = ''
if v >= (3, 13) and cv('Py_GIL_DISABLED'):
    flags += 't'
dbg = cv('Py_DEBUG')
if dbg or (dbg is None and (hasattr(sys, 'gettotalrefcount') or '_d.pyd' in EXTENSION_SUFFIXES)):
    flags += 'd'
if v < (3, 8):
    pm = cv('WITH_PYMALLOC')
    if pm or pm is None:
        flags += 'm'
    if v < (3, 3):
        us = cv('Py_UNICODE_SIZE')
        if us == 4 or (us is None and sys.maxunicode == 0x10FFFF):
            flags += 'u'
plat = sysconfig.get_platform().replace('.', '_').replace('-', '_')
if sys.maxsize <= 2 ** 32:
    plat = {'linux_x86_64': 'linux_i686', 'linux_aarch64': 'linux_armv7l'}.get(plat, plat)
arch = plat.split('_', 1)[-1]
def elf():
    try:
        with open(sys.executable, 'rb') as f:
            return f.read(52)
    except OSError:
        return b''
def abi_ok():
    if arch in ('x86_64', 'aarch64', 'ppc64', 'ppc64le', 's390x'):
        return True
    h = elf()
    if len(h) < 40 or h[:4] != b'\x7fELF' or h[4] != 1 or h[5] != 1:
        return False
    machine, = struct.unpack('<H', h[18:20])
    eflags, = struct.unpack('<I', h[36:40])
    if arch == 'i686':
        return machine == 3
    return arch == 'armv7l' and machine == 40 and (eflags & 0xFF000000) == 0x05000000 and (eflags & 0x400) == 0x400
def glibc():
    try:
        s = os.confstr('CS_GNU_LIBC_VERSION').split()[1]
    except (AttributeError, OSError, ValueError, IndexError):
        try:
            import ctypes
            f = ctypes.CDLL(None).gnu_get_libc_version
            f.restype = ctypes.c_char_p
            s = f().decode('ascii')
        except Exception:
            return None
    m = re.match(r'([0-9]+)\.([0-9]+)', s)
    return [int(m.group(1)), int(m.group(2))] if m else [-1, -1]
def musl():
    try:
        with open(sys.executable, 'rb') as f:
            ident = struct.unpack('16B', f.read(16))
            if ident[:4] != tuple(b'\x7fELF') or ident[4] not in (1, 2):
                return None
            e_fmt, p_fmt, p_idx = {1: ('IIIIHHH', 'IIIIIIII', (0, 1, 4)), 2: ('QQQIHHH', 'IIQQQQQQ', (0, 2, 5))}[ident[4]]
            f.seek(struct.calcsize('HHI'), 1)
            _, phoff, _, _, _, phentsize, phnum = struct.unpack(e_fmt, f.read(struct.calcsize(e_fmt)))
            for i in range(phnum + 1):
                f.seek(phoff + phentsize * i)
                ph = struct.unpack(p_fmt, f.read(struct.calcsize(p_fmt)))
                if ph[p_idx[0]] == 3:
                    f.seek(ph[p_idx[1]])
                    ld = os.fsdecode(f.read(ph[p_idx[2]])).strip('\0')
                    break
            else:
                return None
    except (OSError, struct.error):
        return None
    if 'musl' not in ld:
        return None
    err = subprocess.run([ld], stderr=subprocess.PIPE, universal_newlines=True).stderr
    lines = [n for n in (n.strip() for n in err.splitlines()) if n]
    m = len(lines) >= 2 and lines[0][:4] == 'musl' and re.match(r'Version (\d+)\.(\d+)', lines[1])
    return [int(m.group(1)), int(m.group(2))] if m else None
import platform
linux = platform.system() == 'Linux'
print('STRATA-FACTS ' + json.dumps({
    'implementation': sys.implementation.name, 'system': platform.system(),
    'major': v[0], 'minor': v[1], 'abi_flags': flags, 'platform': plat,
    'manylinux_abi': linux and abi_ok(), 'glibc': linux and glibc() or None,
    'musl': linux and musl() or None}))
)PY";

std::string ErrnoText(int err) {
  return std::strerror(err);
}

// `python` as execvp would find it; empty when it is not there.
std::string FindExecutable(const std::string& python) {
  if (python.find('/') != std::string::npos)
    return ::access(python.c_str(), X_OK) == 0 ? python : "";
  const char* path = std::getenv("PATH");
  for (const std::string& dir : Split(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + python;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

std::optional<std::pair<int, int>> VersionPair(const nlohmann::json& value) {
  if (value.is_null()) return std::nullopt;
  return std::make_pair(value.at(0).get<int>(), value.at(1).get<int>());
}

util::Result<TargetFacts> ParseFacts(const std::string& exe, const std::string& output) {
  constexpr std::string_view kMarker = "STRATA-FACTS ";
  size_t at = output.rfind(kMarker);
  if (at == std::string::npos) {
    return util::IOError("`" + exe + "` printed no interpreter facts: " + output);
  }
  std::string line = output.substr(at + kMarker.size());
  line = line.substr(0, line.find('\n'));
  TargetFacts facts;
  std::string implementation, system;
  try {
    nlohmann::json json = nlohmann::json::parse(line);
    implementation = json.at("implementation").get<std::string>();
    system = json.at("system").get<std::string>();
    facts.python_major = json.at("major").get<int>();
    facts.python_minor = json.at("minor").get<int>();
    facts.abi_flags = json.at("abi_flags").get<std::string>();
    facts.platform = json.at("platform").get<std::string>();
    facts.manylinux_abi = json.at("manylinux_abi").get<bool>();
    facts.glibc = VersionPair(json.at("glibc"));
    facts.musl = VersionPair(json.at("musl"));
  } catch (const nlohmann::json::exception& e) {
    return util::IOError("`" + exe + "` printed malformed interpreter facts: " + e.what());
  }
  if (implementation != "cpython") {
    return util::ValueError("`" + exe + "` is " + implementation + ", only CPython is supported");
  }
  if (system != "Linux" || facts.platform.rfind("linux_", 0) != 0) {
    return util::ValueError("`" + exe + "` runs on " + system + " (" + facts.platform +
                            "), only Linux is supported");
  }
  return facts;
}

}  // namespace

std::string Tag::ToString() const {
  return interpreter + "-" + abi + "-" + platform;
}

util::Result<WheelFilename> WheelFilename::Parse(std::string_view filename) {
  constexpr std::string_view kSuffix = ".whl";
  if (filename.size() < kSuffix.size() ||
      filename.substr(filename.size() - kSuffix.size()) != kSuffix) {
    return InvalidWheel(filename, "extension must be '.whl'");
  }
  std::string_view stem = filename.substr(0, filename.size() - kSuffix.size());
  size_t dashes = std::count(stem.begin(), stem.end(), '-');
  if (dashes != 4 && dashes != 5) return InvalidWheel(filename, "wrong number of parts");
  std::vector<std::string> parts = Split(stem, '-');

  WheelFilename wheel;
  if (!IsValidNamePart(parts[0])) {
    return InvalidWheel(filename, "invalid project name '" + parts[0] + "'");
  }
  wheel.name = CanonicalName(parts[0]);
  auto version = Version::Parse(parts[1]);
  if (!version) return InvalidWheel(filename, "invalid version '" + parts[1] + "'");
  wheel.version = *std::move(version);
  if (dashes == 5) {
    const std::string& build = parts[2];
    size_t digits = 0;
    while (digits < build.size() && IsDigit(build[digits])) ++digits;
    // More than 19 digits could overflow; no real build number is that long.
    if (digits == 0 || digits > 19) {
      return InvalidWheel(filename, "invalid build number '" + build + "'");
    }
    wheel.build = BuildTag{std::stoull(build.substr(0, digits)), build.substr(digits)};
  }
  for (const std::string& interpreter : Split(parts[dashes - 2], '.')) {
    for (const std::string& abi : Split(parts[dashes - 1], '.')) {
      for (const std::string& platform : Split(parts[dashes], '.')) {
        Tag tag{Lower(interpreter), Lower(abi), Lower(platform)};
        if (std::find(wheel.tags.begin(), wheel.tags.end(), tag) == wheel.tags.end()) {
          wheel.tags.push_back(std::move(tag));
        }
      }
    }
  }
  return wheel;
}

util::Result<TargetFacts> TargetFacts::Read(const std::string& python) {
  static std::mutex mutex;
  static std::map<std::string, TargetFacts> cache;  // guarded by mutex

  std::string exe = FindExecutable(python);
  if (exe.empty()) return util::NotFoundError("Python interpreter not found: " + python);
  char* resolved = ::realpath(exe.c_str(), nullptr);
  if (resolved == nullptr) {
    return util::IOError("Cannot resolve `" + exe + "`: " + ErrnoText(errno));
  }
  std::string key = resolved;
  std::free(resolved);
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  // Run unresolved so that a venv's python still sees its own pyvenv.cfg.
  auto output = RunPythonScript(exe, kFactsScript, SiteImport::kSkip);
  if (!output) return output.error();
  auto facts = ParseFacts(exe, *output);
  if (!facts) return facts;
  std::lock_guard<std::mutex> lock(mutex);
  return cache.emplace(key, *std::move(facts)).first->second;
}

std::vector<Tag> SupportedTags(const TargetFacts& facts) {
  const int major = facts.python_major;
  const int minor = facts.python_minor;
  const std::vector<std::string> platforms = PlatformTags(facts);
  const std::pair<int, int> version = {major, minor};
  const bool threaded = facts.abi_flags.find('t') != std::string::npos;
  const bool abi3 = version >= std::make_pair(3, 2) && !threaded;
  const std::string nodot = VersionNodot(major, minor);
  const std::string cp = "cp" + nodot;

  std::vector<Tag> tags;
  auto add_all = [&](const std::string& interpreter, const std::string& abi) {
    for (const std::string& platform : platforms) tags.push_back({interpreter, abi, platform});
  };
  // _cpython_abis: a debug build from 3.8 on also loads non-debug extensions.
  add_all(cp, cp + facts.abi_flags);
  if (version >= std::make_pair(3, 8) && facts.abi_flags.find('d') != std::string::npos) {
    add_all(cp, cp + (threaded ? "t" : ""));
  }
  if (abi3) add_all(cp, "abi3");
  add_all(cp, "none");
  if (abi3) {
    for (int older = minor - 1; older > 1; --older)
      add_all("cp" + VersionNodot(major, older), "abi3");
  }

  // compatible_tags: py3X, py3, py3(X-1)..py30.
  std::vector<std::string> pys = {"py" + nodot, "py" + std::to_string(major)};
  for (int older = minor - 1; older >= 0; --older) pys.push_back("py" + VersionNodot(major, older));
  for (const std::string& py : pys) add_all(py, "none");
  // packaging >= 22 (pip >= 24.1) ranks the interpreter's own none-any here.
  tags.push_back({cp, "none", "any"});
  for (const std::string& py : pys) tags.push_back({py, "none", "any"});
  return tags;
}

std::optional<int> Priority(const WheelFilename& wheel, const std::vector<Tag>& supported) {
  for (size_t i = 0; i < supported.size(); ++i) {
    if (std::find(wheel.tags.begin(), wheel.tags.end(), supported[i]) != wheel.tags.end()) {
      return static_cast<int>(i);
    }
  }
  return std::nullopt;
}

}  // namespace strata::pyinstall
