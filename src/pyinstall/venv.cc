#include "pyinstall/venv.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string_view>
#include <utility>

#include "pyinstall/python_script.h"
#include "util/log.h"
#include "util/pyjson.h"

extern char** environ;

namespace strata::pyinstall {

namespace fs = std::filesystem;

namespace {

// What venv would do, asked of the interpreter itself: the `venv` sysconfig
// scheme (relative to a sentinel environment), and, for each activation
// template install_scripts would copy, how this venv module's
// replace_variables quotes a value there (probed with a value that needs
// quoting everywhere). Older Pythons answer with their version only.
constexpr const char* kFactsScript = R"(import json, os, sys
if sys.version_info < (3, 11) or os.name != "posix":
    print(json.dumps({"version": list(sys.version_info[:3]), "os_name": os.name}))
    sys.exit()
import shlex, sysconfig, types, venv
E = "/@strata-venv@"
V = {"base": E, "platbase": E, "installed_base": E, "installed_platbase": E}
def rel(name):
    path = sysconfig.get_path(name, scheme="venv", vars=V)
    return path[len(E) + 1:] if path.startswith(E + "/") else None
def quoting(source):
    raw = "a b'c"
    ctx = types.SimpleNamespace(env_dir=raw, env_name=raw, prompt=raw, bin_name=raw,
                                env_exe=raw, script_path=source)
    out = venv.EnvBuilder().replace_variables("__VENV_DIR__", ctx)
    return {raw: "none", shlex.quote(raw): "shell", "'a b''c'": "powershell"}.get(out)
scripts = []
top = os.path.join(os.path.abspath(os.path.dirname(venv.__file__)), "scripts")
for root, dirs, files in os.walk(top):
    if root == top:
        dirs[:] = [d for d in dirs if d in ("common", os.name)]
        continue
    for f in files:
        source = os.path.join(root, f)
        binary = source.endswith((".exe", ".pdb"))
        scripts.append({"source": source,
                        "target": os.path.join(*root[len(top):].split(os.sep)[2:], f),
                        "binary": binary, "quoting": "none" if binary else quoting(source)})
print(json.dumps({
    "implementation": sys.implementation.name, "os_name": os.name,
    "sys_platform": sys.platform, "executable": sys.executable,
    "real_executable": os.path.realpath(sys.executable),
    "base_executable": getattr(sys, "_base_executable", None) or None,
    "version": list(sys.version_info[:3]), "base_prefix": sys.base_prefix,
    "is_64bit": sys.maxsize > 2**32, "scripts_dir": rel("scripts"),
    "include_dir": rel("include"), "purelib_dir": rel("purelib"), "scripts": scripts,
}))
)";

std::string ErrnoText(int error) {
  return std::strerror(error);
}

util::Result<BaseInterpreter> ParseFacts(const std::string& program, const util::Json& json) {
  auto bad = [&](const std::string& what) {
    return util::ValueError(program + " reported unexpected venv facts: " + what);
  };
  if (!json.is_object()) return bad("not a JSON object");
  auto version = json.find("version");
  if (version == json.end() || !version->is_array() || version->size() != 3) {
    return bad("no version");
  }
  BaseInterpreter base;
  for (const util::Json& part : *version) {
    if (!part.is_number_unsigned()) return bad("version is not three numbers");
  }
  base.major = (*version)[0].get<int>();
  base.minor = (*version)[1].get<int>();
  base.micro = (*version)[2].get<int>();
  std::string version_text = std::to_string(base.major) + "." + std::to_string(base.minor) + "." +
                             std::to_string(base.micro);
  if (std::make_pair(base.major, base.minor) < std::make_pair(3, 11)) {
    return util::ValueError(program + " is Python " + version_text +
                            "; native venv creation needs Python 3.11 or later");
  }
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto it = json.find(key);
    if (it == json.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  std::optional<std::string> implementation = text("implementation");
  std::optional<std::string> os_name = text("os_name");
  std::optional<std::string> sys_platform = text("sys_platform");
  if (implementation != "cpython" || os_name != "posix" || sys_platform == "darwin") {
    return util::ValueError(program + " is not CPython on a POSIX system other than macOS");
  }
  struct Field {
    const char* key;
    std::string BaseInterpreter::*member;
  };
  for (const Field& field : {Field{"executable", &BaseInterpreter::executable},
                             Field{"real_executable", &BaseInterpreter::real_executable},
                             Field{"base_executable", &BaseInterpreter::base_executable},
                             Field{"base_prefix", &BaseInterpreter::base_prefix},
                             Field{"scripts_dir", &BaseInterpreter::scripts_dir},
                             Field{"include_dir", &BaseInterpreter::include_dir},
                             Field{"purelib_dir", &BaseInterpreter::purelib_dir}}) {
    std::optional<std::string> value = text(field.key);
    if (!value || value->empty()) return bad(std::string("no ") + field.key);
    base.*field.member = *value;
  }
  if (base.executable.front() != '/' || base.base_executable.front() != '/') {
    return bad("a relative executable");
  }
  auto is_64bit = json.find("is_64bit");
  if (is_64bit == json.end() || !is_64bit->is_boolean()) return bad("no is_64bit");
  base.is_64bit = is_64bit->get<bool>();
  auto scripts = json.find("scripts");
  if (scripts == json.end() || !scripts->is_array()) return bad("no scripts");
  for (const util::Json& entry : *scripts) {
    if (!entry.is_object() || !entry.contains("source") || !entry["source"].is_string() ||
        !entry.contains("target") || !entry["target"].is_string() || !entry.contains("binary") ||
        !entry["binary"].is_boolean() || !entry.contains("quoting")) {
      return bad("a malformed script entry");
    }
    BaseInterpreter::Script script;
    script.source = entry["source"].get<std::string>();
    script.target = entry["target"].get<std::string>();
    script.binary = entry["binary"].get<bool>();
    if (!entry["quoting"].is_string()) {
      return util::ValueError(program + "'s venv quotes the placeholders of " + script.source +
                              " in a way Strata does not know");
    }
    script.quoting = entry["quoting"].get<std::string>();
    base.scripts.push_back(std::move(script));
  }
  return base;
}

// shlex.quote (its safe set is ASCII [\w@%+=:,./-]).
std::string ShellQuote(const std::string& text) {
  if (text.empty()) return "''";
  bool safe = true;
  for (unsigned char c : text) {
    bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!word && (c == '\0' || std::strchr("@%+=:,./-_", c) == nullptr)) {
      safe = false;
      break;
    }
  }
  if (safe) return text;
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\"'\"'") : std::string(1, c);
  return quoted + "'";
}

std::string PowerShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

// What bytes.decode('utf-8') accepts: no overlong forms, surrogates or code
// points above U+10FFFF.
bool IsUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int length = c >= 0xC2 && c <= 0xDF   ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (length == 0 || i + length > text.size()) return false;
    unsigned char second = static_cast<unsigned char>(text[i + 1]);
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (c == 0xE0) low = 0xA0;
    if (c == 0xED) high = 0x9F;
    if (c == 0xF0) low = 0x90;
    if (c == 0xF4) high = 0x8F;
    if (second < low || second > high) return false;
    for (int k = 2; k < length; ++k) {
      unsigned char next = static_cast<unsigned char>(text[i + k]);
      if (next < 0x80 || next > 0xBF) return false;
    }
    i += length;
  }
  return true;
}

void ReplaceAll(std::string& text, std::string_view from, const std::string& to) {
  std::size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
}

util::Result<std::string> ReadWhole(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return util::IOError("cannot read " + path.string() + ": " + ErrnoText(errno));
  std::string data;
  char buffer[16384];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return util::IOError("cannot read " + path.string() + ": " + ErrnoText(error));
    }
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

// Creates `path` with mode 0666 less the umask, as Python's open(path, 'w')
// does, then sets `mode` when given (shutil.copymode).
util::Status WriteWhole(const fs::path& path, std::string_view data,
                        std::optional<mode_t> mode = std::nullopt) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return util::IOError("cannot write " + path.string() + ": " + ErrnoText(errno));
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return util::IOError("cannot write " + path.string() + ": " + ErrnoText(error));
    }
    done += static_cast<std::size_t>(n);
  }
  if (mode && ::fchmod(fd, *mode) != 0) {
    int error = errno;
    ::close(fd);
    return util::IOError("cannot chmod " + path.string() + ": " + ErrnoText(error));
  }
  if (::close(fd) != 0) {
    return util::IOError("cannot write " + path.string() + ": " + ErrnoText(errno));
  }
  return util::Status::Ok();
}

util::Status MakeDirs(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return util::IOError("cannot create " + path.string() + ": " + ec.message());
  return util::Status::Ok();
}

util::Status Symlink(const std::string& target, const fs::path& link) {
  if (::symlink(target.c_str(), link.c_str()) != 0) {
    return util::IOError("cannot link " + link.string() + " to " + target + ": " +
                         ErrnoText(errno));
  }
  return util::Status::Ok();
}

// A new empty directory next to `dir`, made like venv's os.makedirs (mode
// 0777 less the umask).
util::Result<fs::path> MakeSiblingTemp(const fs::path& dir) {
  std::random_device device;
  std::mt19937_64 random(device() ^ (static_cast<std::uint64_t>(::getpid()) << 32));
  for (int attempt = 0; attempt < 100; ++attempt) {
    char suffix[17];
    std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(random()));
    fs::path temp = dir.parent_path() / ("." + dir.filename().string() + ".strata-venv-" + suffix);
    if (::mkdir(temp.c_str(), 0777) == 0) return temp;
    if (errno != EEXIST) {
      return util::IOError("cannot create " + temp.string() + ": " + ErrnoText(errno));
    }
  }
  return util::IOError("cannot find a free temporary name next to " + dir.string());
}

// Everything below `root`, the final environment being `dir`.
util::Status Populate(const fs::path& root, const fs::path& dir, const BaseInterpreter& base,
                      const VenvOptions& options) {
  // EnvBuilder.__init__: --prompt "." means the current directory's name.
  std::optional<std::string> prompt = options.prompt;
  if (prompt == ".") {
    std::error_code ec;
    fs::path cwd = fs::current_path(ec);
    if (ec) return util::IOError("cannot read the current directory: " + ec.message());
    prompt = cwd.filename().string();
  }
  const std::string env_name = dir.filename().string();
  const std::string exe_name = fs::path(base.base_executable).filename().string();
  const fs::path bin = dir / base.scripts_dir;
  const std::string env_exe = (bin / exe_name).string();

  if (util::Status status = MakeDirs(root / base.include_dir); !status) return status;
  if (util::Status status = MakeDirs(root / base.purelib_dir); !status) return status;
  if (base.is_64bit) {
    if (util::Status status = Symlink("lib", root / "lib64"); !status) return status;
  }
  if (util::Status status = MakeDirs(root / base.scripts_dir); !status) return status;

  // setup_python: bin/<exe> links to the base, the other names to bin/<exe>.
  if (util::Status status = Symlink(base.base_executable, root / base.scripts_dir / exe_name);
      !status) {
    return status;
  }
  for (const std::string& name :
       {std::string("python"), std::string("python3"), "python3." + std::to_string(base.minor)}) {
    if (name == exe_name) continue;
    if (util::Status status = Symlink(exe_name, root / base.scripts_dir / name); !status) {
      return status;
    }
  }

  // install_scripts with replace_variables' context.
  std::string bin_name = base.scripts_dir;
  std::string context_prompt = prompt.value_or(env_name);
  if (std::make_pair(base.major, base.minor) < std::make_pair(3, 13)) {
    context_prompt = "(" + context_prompt + ") ";
  }
  const std::pair<std::string_view, std::string> replacements[] = {
      {"__VENV_DIR__", dir.string()},      {"__VENV_NAME__", env_name},
      {"__VENV_PROMPT__", context_prompt}, {"__VENV_BIN_NAME__", bin_name},
      {"__VENV_PYTHON__", env_exe},
  };
  for (const BaseInterpreter::Script& script : base.scripts) {
    util::Result<std::string> data = ReadWhole(script.source);
    if (!data) return data.error();
    struct stat st;
    if (::stat(script.source.c_str(), &st) != 0) {
      return util::IOError("cannot stat " + script.source + ": " + ErrnoText(errno));
    }
    if (!script.binary) {
      if (!IsUtf8(*data)) {
        util::LogWarning("unable to copy script " + script.source + ", may be binary");
        continue;
      }
      for (const auto& [placeholder, value] : replacements) {
        std::string quoted = script.quoting == "shell"        ? ShellQuote(value)
                             : script.quoting == "powershell" ? PowerShellQuote(value)
                                                              : value;
        ReplaceAll(*data, placeholder, quoted);
      }
    }
    fs::path target = root / base.scripts_dir / script.target;
    if (util::Status status = MakeDirs(target.parent_path()); !status) return status;
    if (util::Status status = WriteWhole(target, *data, st.st_mode & 07777); !status) {
      return status;
    }
  }

  if (std::make_pair(base.major, base.minor) >= std::make_pair(3, 13)) {
    util::Status status =
        WriteWhole(root / ".gitignore",
                   "# Created by venv; see https://docs.python.org/3/library/venv.html\n*\n");
    if (!status) return status;
  }

  // create_configuration, as venv's final rewrite leaves it.
  std::string cfg = "home = " + fs::path(base.base_executable).parent_path().string() + "\n";
  cfg += std::string("include-system-site-packages = ") +
         (options.system_site_packages ? "true" : "false") + "\n";
  cfg += "version = " + std::to_string(base.major) + "." + std::to_string(base.minor) + "." +
         std::to_string(base.micro) + "\n";
  if (prompt) cfg += "prompt = " + util::PyRepr(util::Json(*prompt)) + "\n";
  cfg += "executable = " + base.real_executable + "\n";
  cfg += "command = " + base.executable + " -m venv --without-pip";
  if (options.system_site_packages) cfg += " --system-site-packages";
  if (options.prompt) cfg += " --prompt=\"" + *options.prompt + "\"";
  cfg += " " + dir.string() + "\n";
  return WriteWhole(root / "pyvenv.cfg", cfg);
}

}  // namespace

util::Result<BaseInterpreter> BaseInterpreter::Read(const std::string& python) {
  static std::mutex mutex;
  static auto* cache =
      new std::map<std::string, BaseInterpreter>();  // never destroyed: safe at exit

  std::optional<fs::path> program = FindPython(python);
  if (!program) return util::NotFoundError("no Python interpreter '" + python + "'");
  const std::string key = program->string();
  {
    std::lock_guard lock(mutex);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  // Not under the lock: two threads may both run a new interpreter once,
  // which is harmless, while other interpreters are not held up.
  util::Result<std::string> output = RunPythonScript(*program, kFactsScript);
  if (!output) return output.error();
  util::Result<util::Json> json = util::ParseJson(*output);
  if (!json) {
    return util::ValueError(key + " printed no JSON venv facts: " + json.error().message);
  }
  util::Result<BaseInterpreter> base = ParseFacts(key, *json);
  if (!base) return base.error();
  std::lock_guard lock(mutex);
  return cache->emplace(key, *std::move(base)).first->second;
}

util::Result<VenvInfo> CreateVenv(const fs::path& dir, const BaseInterpreter& base,
                                  const VenvOptions& options) {
  std::error_code ec;
  // os.path.abspath: absolute and lexically normal, symlinks kept.
  fs::path env_dir = fs::absolute(dir, ec).lexically_normal();
  if (ec) return util::IOError("cannot make " + dir.string() + " absolute: " + ec.message());
  if (!env_dir.has_filename()) env_dir = env_dir.parent_path();
  if (env_dir == env_dir.root_path()) {
    return util::ValueError("cannot create a virtual environment at " + env_dir.string());
  }
  if (env_dir.string().find(':') != std::string::npos) {
    return util::ValueError("Refusing to create a venv in " + env_dir.string() +
                            " because it contains the PATH separator :.");
  }
  auto not_empty = [&] {
    return util::ValueError("cannot create a virtual environment at " + env_dir.string() +
                            ": it exists and is not an empty directory");
  };
  fs::file_status status = fs::symlink_status(env_dir, ec);
  if (fs::exists(status)) {
    if (!fs::is_directory(status) || !fs::is_empty(env_dir, ec) || ec) return not_empty();
  }
  if (util::Status made = MakeDirs(env_dir.parent_path()); !made) return made.error();
  util::Result<fs::path> temp = MakeSiblingTemp(env_dir);
  if (!temp) return temp.error();
  util::Status populated = Populate(*temp, env_dir, base, options);
  // rename(2) replaces an empty directory, and fails on a non-empty one.
  if (populated && ::rename(temp->c_str(), env_dir.c_str()) != 0) {
    int error = errno;
    populated = error == ENOTEMPTY || error == EEXIST || error == ENOTDIR
                    ? util::Status(not_empty())
                    : util::Status(util::IOError("cannot rename " + temp->string() + " to " +
                                                 env_dir.string() + ": " + ErrnoText(error)));
  }
  if (!populated) {
    fs::remove_all(*temp, ec);
    return populated.error();
  }
  VenvInfo info;
  info.dir = env_dir;
  info.python = env_dir / base.scripts_dir / fs::path(base.base_executable).filename();
  info.site_packages = env_dir / base.purelib_dir;
  return info;
}

}  // namespace strata::pyinstall
