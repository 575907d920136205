#include "agent/pip_plugin.h"

#include <stdlib.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "agent/launcher.h"
#include "agent/process.h"
#include "util/digest.h"
#include "util/log.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using util::Json;

// Linux refuses longer "#!" lines (BINPRM_BUF_SIZE was 128 before 5.1);
// pip's own limit for plain shebangs.
constexpr size_t kMaxShebangLength = 127;

// The spellings that differ between the two installers.
struct InstallerNames {
  std::string field;        // "pip" / "uv"
  std::string check_key;    // "pip_check" / "uv_check"
  std::string version_key;  // "pip_version" / "uv_version"
  std::string options_key;  // "pip_install_options" / "uv_pip_install_options"
  std::vector<std::string> default_options;
};

const InstallerNames& PipNames() {
  static const InstallerNames names{"pip",
                                    "pip_check",
                                    "pip_version",
                                    "pip_install_options",
                                    {"--disable-pip-version-check", "--no-cache-dir"}};
  return names;
}

const InstallerNames& UvNames() {
  static const InstallerNames names{
      "uv", "uv_check", "uv_version", "uv_pip_install_options", {"--no-cache"}};
  return names;
}

// A normalised pip/uv spec.
struct InstallSpec {
  std::vector<std::string> packages;
  bool check = false;
  std::optional<std::string> version;
  std::vector<std::string> options;
};

util::Result<std::vector<std::string>> StringList(const Json& value, const std::string& what) {
  if (!value.is_array()) {
    return util::ValueError(what + " must be a list of strings, got " + util::PyTypeRepr(value));
  }
  std::vector<std::string> out;
  for (const Json& item : value) {
    if (!item.is_string()) {
      return util::ValueError(what + " must be a list of strings, but holds " + util::PyRepr(item));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

util::Result<InstallSpec> ParseSpec(const Json& value, const InstallerNames& names) {
  const std::string field = "runtime_env['" + names.field + "']";
  InstallSpec spec;
  spec.options = names.default_options;
  if (value.is_array()) {
    auto packages = StringList(value, field);
    if (!packages) return std::move(packages).error();
    spec.packages = std::move(packages).value();
    return spec;
  }
  if (!value.is_object()) {
    return util::ValueError(field + " must be a list or a dict once validated, got " +
                            util::PyTypeRepr(value));
  }
  if (!value.contains("packages")) {
    return util::ValueError(field + " must include field 'packages', but got " +
                            util::PyRepr(value));
  }
  auto packages = StringList(value["packages"], field + "['packages']");
  if (!packages) return std::move(packages).error();
  spec.packages = std::move(packages).value();
  if (value.contains(names.check_key)) {
    const Json& check = value[names.check_key];
    if (!check.is_boolean() && !check.is_null()) {
      return util::TypeError(field + "['" + names.check_key + "'] must be of type bool, got " +
                             util::PyTypeRepr(check));
    }
    spec.check = check.is_boolean() && check.get<bool>();
  }
  if (value.contains(names.version_key) && !value[names.version_key].is_null()) {
    const Json& version = value[names.version_key];
    if (!version.is_string()) {
      return util::TypeError(field + "['" + names.version_key + "'] must be of type str, got " +
                             util::PyTypeRepr(version));
    }
    spec.version = version.get<std::string>();
  }
  if (value.contains(names.options_key) && !value[names.options_key].is_null()) {
    auto options = StringList(value[names.options_key], field + "['" + names.options_key + "']");
    if (!options) return std::move(options).error();
    spec.options = std::move(options).value();
  }
  return spec;
}

void Log(const SetupContext& setup, std::string_view line) {
  if (setup.log) setup.log(line);
}

util::Status WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return util::IOError("cannot write " + path.string());
  return {};
}

util::Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::IOError("cannot read " + path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return util::IOError("cannot read " + path.string());
  return buffer.str();
}

// The package an installer says it cannot find, from one output line:
// pip's "ERROR: No matching distribution found for X" and uv's
// "Because X was not found in the package registry ...".
std::optional<std::string> MissingPackage(std::string_view line) {
  constexpr std::string_view kPip = "No matching distribution found for ";
  if (auto at = line.find(kPip); at != std::string_view::npos) {
    std::string_view rest = line.substr(at + kPip.size());
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back()))) {
      rest.remove_suffix(1);
    }
    if (!rest.empty()) return std::string(rest);
  }
  constexpr std::string_view kUv = "Because ";
  constexpr std::string_view kUvTail = " was not found in the package registry";
  if (auto tail = line.find(kUvTail); tail != std::string_view::npos) {
    auto at = line.rfind(kUv, tail);
    if (at != std::string_view::npos && at + kUv.size() < tail) {
      return std::string(line.substr(at + kUv.size(), tail - at - kUv.size()));
    }
  }
  return std::nullopt;
}

// Runs one installer step. `what` completes "while ..." in messages
// ("installing packages"); `field` names the runtime_env field.
util::Status RunStep(const std::string& field, const std::string& what,
                     std::vector<std::string> argv, const fs::path& cwd, const SetupContext& setup,
                     std::vector<std::pair<std::string, std::string>> extra_env = {}) {
  CommandSpec spec;
  spec.argv = std::move(argv);
  spec.cwd = cwd;
  spec.env_mode = EnvMode::kInherit;
  spec.env = std::move(extra_env);
  spec.env.insert(spec.env.end(), setup.installer_env.begin(), setup.installer_env.end());
  if (setup.container) {
    // Inside the image: its Python, its environment, the same paths.
    auto inner = ContainerBaseEnv(*setup.container, CurrentEnvironment());
    inner.insert(inner.end(), spec.env.begin(), spec.env.end());
    spec.argv = ContainerRunArgv(*setup.container, spec.argv, inner, cwd.string(), {});
    spec.cwd.clear();
    spec.env.clear();
  }
  std::optional<std::string> missing;
  RunOptions options;
  options.deadline = setup.deadline;
  options.cancel = setup.cancel;
  options.tail_lines = 50;
  options.on_line = [&](std::string_view line) {
    if (!missing) missing = MissingPackage(line);
    Log(setup, line);
  };
  Log(setup, "Run cmd (" + field + ", " + what + "): " + ShellJoin(spec.argv));
  auto result = RunCommand(spec, options);
  const std::string prefix = "Failed to set up runtime_env field '" + field + "' ";
  if (!result) {
    return util::Error{result.error().kind == util::ErrorKind::kNotFound ? util::ErrorKind::kIOError
                                                                         : result.error().kind,
                       prefix + "while " + what + ": " + result.error().message};
  }
  if (result->timed_out) {
    bool cancelled = setup.cancel != nullptr && setup.cancel->load();
    return util::Error{cancelled ? util::ErrorKind::kUnavailable : util::ErrorKind::kTimeout,
                       prefix + "while " + what + ": " +
                           (cancelled ? "setup was cancelled. " : "the setup deadline passed. ") +
                           FormatFailure(*result)};
  }
  if (result->exit_code != 0) {
    if (missing) {
      return util::ValueError(prefix + "while " + what + ": no matching distribution found for " +
                              *missing + ". " + FormatFailure(*result));
    }
    return util::IOError(prefix + "while " + what + ". " + FormatFailure(*result));
  }
  return {};
}

// <venv>/lib/pythonX.Y/site-packages.
util::Result<fs::path> SitePackages(const fs::path& venv) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(venv / "lib", ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with("python") && fs::is_directory(entry.path() / "site-packages", ec)) {
      return entry.path() / "site-packages";
    }
  }
  return util::IOError("virtualenv " + venv.string() + " has no lib/python*/site-packages");
}

// Makes Strata's runtime package importable in an isolated venv.
util::Status WriteRuntimePth(const fs::path& venv, const SetupContext& setup) {
  const char* dir = std::getenv("STRATA_PYTHON_PACKAGE_DIR");
  std::error_code ec;
  if (dir == nullptr || *dir == '\0' || !fs::is_directory(dir, ec)) return {};
  auto site = SitePackages(venv);
  if (!site) return std::move(site).error();
  fs::path absolute = fs::absolute(dir, ec);
  Log(setup, "Adding " + absolute.string() + " to the virtualenv through _strata_runtime.pth");
  return WriteFile(*site / "_strata_runtime.pth", absolute.string() + "\n");
}

bool IsPathChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
         c == '+' || c == '@' || c == '~' || c == '%';
}

// Replaces `from` by `to` where `from` is a whole path prefix: not preceded
// by a path character or '/', and followed by '/' or a non-path character.
std::string ReplacePathPrefix(const std::string& text, const std::string& from,
                              const std::string& to, bool* changed) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t at = text.find(from, pos);
    if (at == std::string::npos) break;
    size_t end = at + from.size();
    bool starts = at == 0 || (!IsPathChar(text[at - 1]) && text[at - 1] != '/');
    bool ends = end == text.size() || text[end] == '/' || !IsPathChar(text[end]);
    out.append(text, pos, at - pos);
    if (starts && ends) {
      out += to;
      *changed = true;
    } else {
      out.append(from);
    }
    pos = end;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

// `#!<python>` is turned into pip's sh trampoline when the kernel cannot run it.
std::string FixLongShebang(std::string text) {
  if (!text.starts_with("#!")) return text;
  size_t eol = text.find('\n');
  std::string first = text.substr(0, eol);
  if (first.size() <= kMaxShebangLength && first.find(' ') == std::string::npos) return text;
  std::string interpreter = first.substr(2);
  if (interpreter.find("python") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : interpreter) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  std::string rest = eol == std::string::npos ? "" : text.substr(eol + 1);
  return "#!/bin/sh\n'''exec' " + quoted + " \"$0\" \"$@\"\n' '''\n" + rest;
}

util::Status RelocateFile(const fs::path& path, const std::string& from, const std::string& to,
                          bool is_script) {
  auto text = ReadFile(path);
  if (!text) return std::move(text).error();
  bool changed = false;
  std::string updated = ReplacePathPrefix(*text, from, to, &changed);
  if (!changed) return {};
  if (is_script) updated = FixLongShebang(std::move(updated));
  // Truncating in place keeps the file's mode (console scripts stay executable).
  return WriteFile(path, updated);
}

// bin/python may link to an interpreter that exists only inside a container
// image, so the link itself is what must be there.
bool VenvPythonPresent(const fs::path& bin) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(bin / "python", ec));
}

util::Status CheckVenvPython(const std::string& field, const fs::path& venv) {
  if (!VenvPythonPresent(venv / "bin")) {
    return util::IOError("Failed to set up runtime_env field '" + field + "': the virtualenv " +
                         venv.string() + " has no bin/python");
  }
  return {};
}

// The parts shared by the two plugins.
class InstallerPlugin : public RuntimeEnvPlugin {
 public:
  explicit InstallerPlugin(const InstallerNames& names) : names_(names) {}

  std::string_view name() const override { return names_.field; }

  std::vector<std::string> Uris(const model::RuntimeEnv& env) const override {
    auto value = env.Get(names_.field);
    if (!value || !util::PyTruthy(*value)) return {};
    // A venv built on a container image's Python only works in that image.
    util::Json base = env.Get(std::string(kBaseImageField), nullptr);
    if (base.is_object() && base.contains("image_id")) {
      return {InstallerSpecUri(
          names_.field, util::Json::object({{"spec", *value}, {"image", base["image_id"]}}))};
    }
    return {InstallerSpecUri(names_.field, *value)};
  }

  util::Status Create(const std::string& uri, const model::RuntimeEnv& env,
                      const SetupContext& setup) const override {
    auto value = env.Get(names_.field);
    if (!value) {
      return util::ValueError("runtime_env has no field '" + names_.field + "' for " + uri);
    }
    auto spec = ParseSpec(*value, names_);
    if (!spec) return std::move(spec).error();
    const fs::path& staging = setup.staging_dir;
    std::error_code ec;
    fs::create_directories(staging / "exec_cwd", ec);
    if (ec) {
      return util::IOError("Failed to set up runtime_env field '" + names_.field +
                           "': cannot create " + (staging / "exec_cwd").string() + ": " +
                           ec.message());
    }
    std::string requirements;
    for (const std::string& line : spec->packages) requirements += line + "\n";
    if (auto ok = WriteFile(staging / "requirements.txt", requirements); !ok) return ok;
    Log(setup, "Creating the " + names_.field + " environment " + uri + " in " + staging.string());
    if (auto ok = Install(*spec, setup); !ok) return ok;
    if (!setup.final_dir.empty() && setup.final_dir != staging) {
      if (auto ok = RelocateVirtualenv(staging / "virtualenv", staging, setup.final_dir); !ok) {
        return ok;
      }
    }
    return {};
  }

  util::Status ModifyContext(const std::map<std::string, fs::path>& dirs,
                             const model::RuntimeEnv& env, const SetupContext&,
                             RuntimeEnvContext& context) const override {
    std::vector<std::string> uris = Uris(env);
    if (uris.empty()) return {};
    auto it = dirs.find(uris.front());
    if (it == dirs.end()) {
      return util::Error{util::ErrorKind::kInternal,
                         "no directory was published for " + uris.front()};
    }
    fs::path bin = it->second / "virtualenv" / "bin";
    if (!VenvPythonPresent(bin)) {
      return util::ValueError("Local directory " + it->second.string() + " for URI " +
                              uris.front() +
                              " does not exist on the cluster. Something may have gone wrong "
                              "while installing the runtime_env `" +
                              names_.field + "` packages.");
    }
    context.py_executable = (bin / "python").string();
    context.path_prepend.push_back(bin.string());
    return {};
  }

 protected:
  // Builds staging/virtualenv from staging/requirements.txt.
  virtual util::Status Install(const InstallSpec& spec, const SetupContext& setup) const = 0;

  const InstallerNames& names_;
};

class PipPlugin : public InstallerPlugin {
 public:
  PipPlugin() : InstallerPlugin(PipNames()) {}

 protected:
  util::Status Install(const InstallSpec& spec, const SetupContext& setup) const override {
    const fs::path& staging = setup.staging_dir;
    const fs::path cwd = staging / "exec_cwd";
    const fs::path venv = staging / "virtualenv";
    const std::string venv_python = (venv / "bin" / "python").string();
    const std::string field = names_.field;
    if (auto ok = RunStep(field, "creating the virtualenv",
                          {setup.python, "-m", "venv", "--without-pip", venv.string()}, cwd, setup);
        !ok) {
      return ok;
    }
    if (auto ok = CheckVenvPython(field, venv); !ok) return ok;
    if (auto ok = WriteRuntimePth(venv, setup); !ok) return ok;

    // Without pip_version the base interpreter's pip installs into the venv.
    std::vector<std::string> pip = {setup.python, "-m", "pip", "--python", venv_python};
    if (spec.version) {
      if (auto ok = RunStep(field, "installing pip into the virtualenv",
                            {venv_python, "-m", "ensurepip", "--default-pip"}, cwd, setup);
          !ok) {
        return ok;
      }
      if (auto ok = RunStep(field, "installing pip" + *spec.version,
                            {venv_python, "-m", "pip", "install", "--disable-pip-version-check",
                             "pip" + *spec.version},
                            cwd, setup);
          !ok) {
        return ok;
      }
      pip = {venv_python, "-m", "pip"};
    }

    std::vector<std::string> install = pip;
    install.push_back("install");
    install.insert(install.end(), spec.options.begin(), spec.options.end());
    install.push_back("-r");
    install.push_back((staging / "requirements.txt").string());
    if (auto ok = RunStep(field, "installing packages", install, cwd, setup); !ok) return ok;

    if (spec.check) {
      std::vector<std::string> check = pip;
      check.push_back("check");
      check.push_back("--disable-pip-version-check");
      if (auto ok = RunStep(field, "running pip check", check, cwd, setup); !ok) return ok;
    } else {
      Log(setup, "Skip pip check.");
    }
    return {};
  }
};

util::Result<std::string> FindUv() {
  const char* path = std::getenv("PATH");
  auto uv = FindExecutable("uv", path ? std::optional<std::string>(path) : std::nullopt);
  if (!uv) {
    return util::ValueError(
        "runtime_env field 'uv' needs the uv executable on PATH of this node; none found "
        "(Strata's native installer will remove this need)");
  }
  return *uv;
}

class UvPlugin : public InstallerPlugin {
 public:
  UvPlugin() : InstallerPlugin(UvNames()) {}

  util::Status Validate(const model::RuntimeEnv& env) const override {
    if (!env.HasUv()) return {};
    auto uv = FindUv();
    if (!uv) return std::move(uv).error();
    return {};
  }

 protected:
  util::Status Install(const InstallSpec& spec, const SetupContext& setup) const override {
    auto uv = FindUv();
    if (!uv) return std::move(uv).error();
    const fs::path& staging = setup.staging_dir;
    const fs::path cwd = staging / "exec_cwd";
    const fs::path venv = staging / "virtualenv";
    const std::string venv_python = (venv / "bin" / "python").string();
    const std::string field = names_.field;
    if (auto ok = RunStep(field, "querying the uv version", {*uv, "--version"}, cwd, setup); !ok) {
      return ok;
    }
    if (spec.version) {
      Log(setup, "uv_version '" + *spec.version + "' is ignored: this node uses the uv at " + *uv);
    }
    // uv must use the node's Python, never download one.
    std::string python = setup.python;
    const char* path = std::getenv("PATH");
    if (auto found = FindExecutable(python, path ? std::optional<std::string>(path) : std::nullopt);
        found) {
      python = *found;
    }
    std::vector<std::pair<std::string, std::string>> no_downloads;
    if (std::getenv("UV_PYTHON_DOWNLOADS") == nullptr) {
      no_downloads.emplace_back("UV_PYTHON_DOWNLOADS", "never");
    }
    if (auto ok =
            RunStep(field, "creating the virtualenv",
                    {*uv, "venv", "--python", python, venv.string()}, cwd, setup, no_downloads);
        !ok) {
      return ok;
    }
    if (auto ok = CheckVenvPython(field, venv); !ok) return ok;
    if (auto ok = WriteRuntimePth(venv, setup); !ok) return ok;

    std::vector<std::string> install = {*uv, "pip", "install", "--python", venv_python};
    install.insert(install.end(), spec.options.begin(), spec.options.end());
    install.push_back("-r");
    install.push_back((staging / "requirements.txt").string());
    if (auto ok = RunStep(field, "installing packages", install, cwd, setup); !ok) return ok;
    if (spec.check) {
      if (auto ok = RunStep(field, "running uv pip check",
                            {*uv, "pip", "check", "--python", venv_python}, cwd, setup);
          !ok) {
        return ok;
      }
    } else {
      Log(setup, "Skip uv check.");
    }
    return {};
  }
};

}  // namespace

std::string InstallerSpecUri(std::string_view scheme, const util::Json& spec) {
  Json hashed = spec;
  if (spec.is_array()) hashed = Json::object({{"packages", spec}});
  return std::string(scheme) + "://" + util::Sha1Hex(util::DumpsSorted(hashed));
}

util::Status RelocateVirtualenv(const fs::path& venv, const fs::path& from, const fs::path& to) {
  std::string from_text = from.lexically_normal().string();
  std::string to_text = to.lexically_normal().string();
  while (from_text.size() > 1 && from_text.ends_with('/')) from_text.pop_back();
  while (to_text.size() > 1 && to_text.ends_with('/')) to_text.pop_back();
  if (from_text == to_text) return {};
  std::error_code ec;
  if (fs::is_regular_file(venv / "pyvenv.cfg", ec)) {
    if (auto ok = RelocateFile(venv / "pyvenv.cfg", from_text, to_text, false); !ok) return ok;
  }
  for (const auto& entry : fs::directory_iterator(venv / "bin", ec)) {
    if (!entry.is_regular_file(ec) || entry.is_symlink(ec)) continue;
    std::string name = entry.path().filename().string();
    bool activate = name.starts_with("activate") || name.starts_with("Activate");
    bool script = false;
    if (!activate) {
      std::ifstream in(entry.path(), std::ios::binary);
      char magic[2] = {0, 0};
      in.read(magic, 2);
      script = in.gcount() == 2 && magic[0] == '#' && magic[1] == '!';
    }
    if (!activate && !script) continue;
    if (auto ok = RelocateFile(entry.path(), from_text, to_text, script); !ok) return ok;
  }
  if (ec) return util::IOError("cannot list " + (venv / "bin").string() + ": " + ec.message());
  return {};
}

util::Status InstallWheelToTarget(const fs::path& wheel, const fs::path& target,
                                  const SetupContext& setup) {
  std::error_code ec;
  fs::create_directories(target, ec);
  if (ec) return util::IOError("cannot create " + target.string() + ": " + ec.message());
  // An empty cwd, so that nothing there can shadow pip.
  std::string pattern = (fs::temp_directory_path(ec) / "strata-pip-cwd-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return util::IOError("cannot create a temporary directory " + pattern);
  }
  fs::path cwd = pattern;
  util::Status status = RunStep(
      "py_modules", "installing wheel " + wheel.filename().string(),
      {setup.python, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir",
       "--target", fs::absolute(target, ec).string(), fs::absolute(wheel, ec).string()},
      cwd, setup);
  fs::remove_all(cwd, ec);
  return status;
}

std::unique_ptr<RuntimeEnvPlugin> MakePipPlugin() {
  return std::make_unique<PipPlugin>();
}
std::unique_ptr<RuntimeEnvPlugin> MakeUvPlugin() {
  return std::make_unique<UvPlugin>();
}

}  // namespace strata::agent
