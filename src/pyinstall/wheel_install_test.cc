#include "pyinstall/wheel_install.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "pyinstall/reference_python_testing.h"
#include "pyinstall/wheel_cache.h"
#include "pyinstall/wheel_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

namespace fs = std::filesystem;
using testing::MakeWheel;
using testing::WheelSpec;
using util::testing::ReadFile;
using util::testing::TempDir;

struct ShellRun {
  int status = -1;
  std::string output;
};

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

ShellRun Sh(const std::string& command) {
  ShellRun run;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, n);
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

WheelSpec FullSpec() {
  WheelSpec spec;
  spec.files = {
      {"demo/__init__.py",
       "VALUE = 1\n\n\ndef main():\n    print('demo main')\n    return 0\n\n\n"
       "def gui():\n    return 0\n\n\nclass Cls:\n    @staticmethod\n    def run():\n"
       "        print('cls run')\n        return 0\n"},
      {"demo/cli.py", "from demo import main\n"},
      {"demo_mod.py", "X = 2\n"},
      {"demo-1.0.data/purelib/demo_extra.py", "Y = 3\n"},
      {"demo-1.0.data/scripts/demo-tool", "#!python\nimport demo\nprint('tool', demo.VALUE)\n"},
      {"demo-1.0.data/scripts/plain.sh", "#!/bin/sh\necho plain\n"},
      {"demo-1.0.data/scripts/demo-cli", "#!python\nraise SystemExit('setuptools wrapper')\n"},
      {"demo-1.0.data/scripts/windowed", "#!pythonw -u\r\nprint('w')\n"},
      {"demo-1.0.data/data/share/demo/readme.txt", "hello\n"},
      {"demo-1.0.data/headers/demo.h", "int demo;\n"},
      {"demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"},
      {"demo-1.0.dist-info/entry_points.txt",
       "[console_scripts]\ndemo-cli = demo.cli:main\ndemo-cls = demo:Cls.run\n\n"
       "[gui_scripts]\ndemo-gui = demo:gui [extra]\n"},
  };
  spec.executable = {"demo-1.0.data/scripts/demo-tool", "demo-1.0.data/scripts/plain.sh",
                     "demo-1.0.data/scripts/demo-cli"};
  return spec;
}

struct FileInfo {
  std::string content;
  bool executable = false;
  nlink_t links = 0;
};

// Regular files under `root` by relative path.
std::map<std::string, FileInfo> Listing(const fs::path& root) {
  std::map<std::string, FileInfo> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    if (S_ISDIR(st.st_mode)) continue;
    FileInfo info;
    if (S_ISREG(st.st_mode)) info.content = ReadFile(e.path());
    info.executable = (st.st_mode & 0111) != 0;
    info.links = st.st_nlink;
    out[e.path().lexically_relative(root).string()] = info;
  }
  return out;
}

std::set<std::string> Keys(const std::map<std::string, FileInfo>& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k);
  return out;
}

class WheelInstallTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    python_ = testing::ReferencePython();
    if (python_.empty()) GTEST_SKIP() << "no python3 with pip";
    version_ = Sh(python_ + " -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'").output;
    if (!version_.empty()) version_.pop_back();
  }

  fs::path MakeVenv(const fs::path& path) {
    ShellRun run = Sh(python_ + " -m venv --without-pip " + Quote(path.string()));
    EXPECT_EQ(run.status, 0) << run.output;
    return path;
  }

  // pip run for the venv of `target` (--python must precede the command).
  ShellRun Pip(const fs::path& target, const std::string& args) {
    return Sh(python_ + " -m pip --disable-pip-version-check --no-input --python " +
              Quote(target.string()) + " " + args);
  }

  std::string python_;
  std::string version_;
};

// Installs the same wheel with InstallWheel and with pip into two fresh venvs
// whose paths have the same length, and compares them file by file.
TEST_P(WheelInstallTest, MatchesPip) {
  TempDir tmp;
  const fs::path base = tmp.path() / GetParam();
  const fs::path wheel = MakeWheel(base / "wheels", FullSpec());
  UnpackedWheelCache cache(base / "cache");
  auto unpacked = cache.Get(wheel, testing::FileSha256(wheel));
  ASSERT_TRUE(unpacked) << unpacked.error().message;

  const fs::path ours = MakeVenv(base / "venv-a");
  const fs::path pips = MakeVenv(base / "venv-b");
  const auto fresh = Listing(ours);

  const std::string url = Sh(python_ +
                             " -c 'import sys; from pip._internal.utils.urls import path_to_url; "
                             "print(path_to_url(sys.argv[1]))' " +
                             Quote(wheel.string()))
                              .output;
  InstallOptions options;
  options.requested = true;
  // pip >= 23.3 records the hash of a local archive; older pip an empty
  // archive_info (DirectUrl with an empty sha256).
  options.direct_url = DirectUrl{url.substr(0, url.size() - 1), testing::FileSha256(wheel)};
  int warnings = 0;
  options.warn = [&](const std::string&) { ++warnings; };
  auto result = InstallWheel(*unpacked, InstallScheme::ForVenv(ours, version_, "demo"), options);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(warnings, 0);
  EXPECT_FALSE(result->copied_across_filesystems);

  ShellRun pip =
      Pip(pips / "bin/python",
          "install --no-deps --no-cache-dir --no-compile --no-index " + Quote(wheel.string()));
  ASSERT_EQ(pip.status, 0) << pip.output;

  const auto a = Listing(ours);
  const auto b = Listing(pips);
  ASSERT_EQ(Keys(a), Keys(b));
  const bool space = ours.string().find(' ') != std::string::npos;
  const std::string site = "lib/python" + version_ + "/site-packages/";
  const std::string info = site + "demo-1.0.dist-info/";
  for (const auto& [path, file] : a) {
    if (fresh.count(path) > 0) continue;
    if (path == info + "INSTALLER") {
      EXPECT_EQ(file.content, "strata\n");
      EXPECT_EQ(b.at(path).content, "pip\n");
      continue;
    }
    if (path == info + "RECORD") continue;
    EXPECT_EQ(file.executable, b.at(path).executable) << path;
    // pip writes "#!<python>" for .data scripts even where the kernel cannot
    // run it (a space); InstallWheel writes the /bin/sh form there.
    if (space && (path == "bin/demo-tool" || path == "bin/windowed")) continue;
    EXPECT_EQ(Replace(file.content, ours.string(), pips.string()), b.at(path).content) << path;
  }
  EXPECT_TRUE(a.count("bin/demo-cli") && a.count("bin/demo-cls") && a.count("bin/demo-gui"));
  EXPECT_TRUE(a.count("include/site/python" + version_ + "/demo/demo.h"));
  EXPECT_TRUE(a.count("share/demo/readme.txt"));
  EXPECT_TRUE(a.count(info + "REQUESTED") && a.count(info + "direct_url.json"));
  EXPECT_EQ(a.at(info + "direct_url.json").content, b.at(info + "direct_url.json").content);

  // Cached files are hardlinked; rewritten ones are not.
  EXPECT_GT(a.at(site + "demo/__init__.py").links, 1u);
  EXPECT_GT(a.at("bin/plain.sh").links, 1u);
  EXPECT_EQ(a.at("bin/demo-tool").links, 1u);
  EXPECT_EQ(a.at(info + "RECORD").links, 1u);
  EXPECT_EQ(ReadFile(unpacked->files_dir() / "demo-1.0.data/scripts/demo-tool"),
            FullSpec().files.at("demo-1.0.data/scripts/demo-tool"));

  // RECORD: pip's rows, as a set, once the venv path in script contents is
  // substituted (which changes their hashes) and INSTALLER's row set aside.
  auto ours_rows = ParseRecord(a.at(info + "RECORD").content);
  auto pips_rows = ParseRecord(b.at(info + "RECORD").content);
  ASSERT_TRUE(ours_rows && pips_rows);
  using Row = std::tuple<std::string, std::string, std::string>;
  std::set<Row> ours_set, pips_set;
  for (const RecordRow& r : *ours_rows) {
    const fs::path file = (ours / site / r.path).lexically_normal();
    // A skipped setuptools wrapper keeps its wheel path (pip's quirk): no file.
    if (!r.hash.empty() && fs::exists(file)) {
      EXPECT_EQ(RecordHash(ReadFile(file)), r.hash) << r.path;
    }
    if (r.path.ends_with("INSTALLER")) continue;
    if (space && (r.path.ends_with("bin/demo-tool") || r.path.ends_with("bin/windowed"))) continue;
    std::string hash = r.hash;
    const std::string content = ReadFile(file);
    if (content.find(ours.string()) != std::string::npos) {
      hash = RecordHash(Replace(content, ours.string(), pips.string()));
    }
    ours_set.insert({r.path, hash, r.size});
  }
  for (const RecordRow& r : *pips_rows) {
    if (r.path.ends_with("INSTALLER")) continue;
    if (space && (r.path.ends_with("bin/demo-tool") || r.path.ends_with("bin/windowed"))) continue;
    pips_set.insert({r.path, r.hash, r.size});
  }
  EXPECT_EQ(ours_set, pips_set);
  // Same order too: both sort.
  std::vector<std::string> ours_order, pips_order;
  for (const auto& r : *ours_rows) ours_order.push_back(r.path);
  for (const auto& r : *pips_rows) pips_order.push_back(r.path);
  EXPECT_EQ(ours_order, pips_order);

  // The environment works.
  const std::string py = Quote((ours / "bin/python").string());
  ShellRun import = Sh(py + " -c 'import demo, demo_mod, demo_extra; print(demo.VALUE)'");
  EXPECT_EQ(import.output, "1\n");
  EXPECT_EQ(Sh(Quote((ours / "bin/demo-cli").string())).output, "demo main\n");
  EXPECT_EQ(Sh(Quote((ours / "bin/demo-cls").string())).output, "cls run\n");
  EXPECT_EQ(Sh(Quote((ours / "bin/demo-tool").string())).output, "tool 1\n");
  EXPECT_EQ(Sh(Quote((ours / "bin/plain.sh").string())).output, "plain\n");
  EXPECT_EQ(Sh(py + " -c 'from importlib.metadata import entry_points as e; "
                    "print(sorted(x.name for x in e(group=\"console_scripts\")), "
                    "[x.value for x in e(group=\"gui_scripts\")])'")
                .output,
            "['demo-cli', 'demo-cls'] ['demo:gui [extra]']\n");
  const fs::path target = ours / "bin/python";
  ShellRun list = Pip(target, "list --format=freeze");
  EXPECT_NE(list.output.find("demo==1.0"), std::string::npos) << list.output;
  ShellRun check = Pip(target, "check");
  EXPECT_EQ(check.status, 0) << check.output;
  ShellRun uninstall = Pip(target, "uninstall -y demo");
  EXPECT_EQ(uninstall.status, 0) << uninstall.output;
  auto after = Listing(ours);
  EXPECT_EQ(Keys(after), Keys(fresh));
  // The cache is untouched by the uninstall.
  EXPECT_EQ(ReadFile(unpacked->files_dir() / "demo/__init__.py"),
            FullSpec().files.at("demo/__init__.py"));
}

INSTANTIATE_TEST_SUITE_P(Paths, WheelInstallTest, ::testing::Values("plain", "with space"),
                         [](const auto& info) {
                           return info.param == "plain" ? std::string("Plain")
                                                        : std::string("WithSpace");
                         });

TEST(WheelInstallCopyTest, CopyModeAndReinstall) {
  TempDir tmp;
  const fs::path wheel = MakeWheel(tmp.path() / "wheels", FullSpec());
  UnpackedWheelCache cache(tmp.path() / "cache");
  auto unpacked = cache.Get(wheel, testing::FileSha256(wheel));
  ASSERT_TRUE(unpacked) << unpacked.error().message;
  const fs::path venv = tmp.path() / "venv";
  const InstallScheme scheme = InstallScheme::ForVenv(venv, "3.11", "demo");
  InstallOptions options;
  options.link_mode = LinkMode::kCopy;
  auto result = InstallWheel(*unpacked, scheme, options);
  ASSERT_TRUE(result) << result.error().message;
  const fs::path init = venv / "lib/python3.11/site-packages/demo/__init__.py";
  struct stat st {};
  ASSERT_EQ(::stat(init.c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(ReadFile(init), FullSpec().files.at("demo/__init__.py"));
  ASSERT_EQ(::stat((venv / "bin/plain.sh").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0100, 0u);
  EXPECT_FALSE(fs::exists(venv / "bin/demo-cli") &&
               ReadFile(venv / "bin/demo-cli").find("setuptools wrapper") != std::string::npos);

  // Installing again over the copies replaces them with hardlinks.
  auto again = InstallWheel(*unpacked, scheme);
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(::stat(init.c_str(), &st), 0);
  EXPECT_GT(st.st_nlink, 1u);
  EXPECT_EQ(again->installed, result->installed);
}

TEST(WheelInstallCopyTest, FallsBackToCopiesAcrossFilesystems) {
  TempDir tmp;
  struct stat shm {
  }, work{};
  if (::stat("/dev/shm", &shm) != 0 || ::stat(tmp.path().c_str(), &work) != 0 ||
      shm.st_dev == work.st_dev) {
    GTEST_SKIP() << "no second filesystem at /dev/shm";
  }
  char pattern[] = "/dev/shm/strata-test.XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const fs::path cache_root = pattern;
  const fs::path wheel = MakeWheel(tmp.path() / "wheels", FullSpec());
  UnpackedWheelCache cache(cache_root);
  auto unpacked = cache.Get(wheel, testing::FileSha256(wheel));
  ASSERT_TRUE(unpacked) << unpacked.error().message;
  InstallOptions options;
  std::vector<std::string> warnings;
  options.warn = [&](const std::string& m) { warnings.push_back(m); };
  auto result =
      InstallWheel(*unpacked, InstallScheme::ForVenv(tmp.path() / "venv", "3.11", "demo"), options);
  fs::remove_all(cache_root);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_TRUE(result->copied_across_filesystems);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("different filesystems"), std::string::npos);
  EXPECT_EQ(ReadFile(tmp.path() / "venv/lib/python3.11/site-packages/demo_mod.py"), "X = 2\n");
}

TEST(WheelInstallErrorTest, RejectsBadDataAndEntryPoints) {
  TempDir tmp;
  UnpackedWheelCache cache(tmp.path() / "cache");
  auto install = [&](WheelSpec spec) {
    const fs::path wheel = MakeWheel(tmp.path() / "wheels", spec);
    auto unpacked = cache.Get(wheel, testing::FileSha256(wheel));
    EXPECT_TRUE(unpacked) << unpacked.error().message;
    return InstallWheel(*unpacked, InstallScheme::ForVenv(tmp.path() / "venv", "3.11", "demo"));
  };
  WheelSpec unknown_key = FullSpec();
  unknown_key.files["demo-1.0.data/weird/x"] = "x";
  auto r = install(unknown_key);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Unknown scheme key"), std::string::npos);
  WheelSpec flat = FullSpec();
  flat.files["demo-1.0.data/x"] = "x";
  r = install(flat);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("Unexpected file"), std::string::npos);
  WheelSpec no_suffix = FullSpec();
  no_suffix.files["demo-1.0.dist-info/entry_points.txt"] = "[console_scripts]\nx = demo\n";
  r = install(no_suffix);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("A callable suffix is required"), std::string::npos);
}

TEST(WheelInstallScriptsTest, PipAndEasyInstallAreRenamedLikePip) {
  TempDir tmp;
  WheelSpec spec = FullSpec();
  spec.files["demo-1.0.dist-info/entry_points.txt"] =
      "[console_scripts]\npip = demo:main\npip3 = demo:main\npip3.9 = demo:main\n"
      "pipx = demo:main\neasy_install = demo:main\neasy_install-3.9 = demo:main\n";
  const fs::path wheel = MakeWheel(tmp.path() / "wheels", spec);
  UnpackedWheelCache cache(tmp.path() / "cache");
  auto unpacked = cache.Get(wheel, testing::FileSha256(wheel));
  ASSERT_TRUE(unpacked) << unpacked.error().message;
  auto result =
      InstallWheel(*unpacked, InstallScheme::ForVenv(tmp.path() / "venv", "3.11", "demo"));
  ASSERT_TRUE(result) << result.error().message;
  std::set<std::string> scripts;
  for (const auto& e : fs::directory_iterator(tmp.path() / "venv/bin")) {
    scripts.insert(e.path().filename().string());
  }
  EXPECT_EQ(scripts,
            (std::set<std::string>{"easy_install", "easy_install-3.11", "pip", "pip3", "pip3.11",
                                   "pipx", "plain.sh", "demo-tool", "windowed", "demo-cli"}));
}

TEST(ScriptTextTest, DistlibForms) {
  auto text = ScriptText("pkg.cli:Cls.main [x]", "/v/bin/python");
  ASSERT_TRUE(text);
  EXPECT_EQ(*text,
            "#!/v/bin/python\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
            "from pkg.cli import Cls\nif __name__ == '__main__':\n"
            "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
            "    sys.exit(Cls.main())\n");
  EXPECT_EQ(Shebang("/a b/python"), "#!/bin/sh\n'''exec' \"/a b/python\" \"$0\" \"$@\"\n' '''\n");
  const std::string long_path = "/" + std::string(130, 'x') + "/python";
  EXPECT_EQ(Shebang(long_path), "#!/bin/sh\n'''exec' " + long_path + " \"$0\" \"$@\"\n' '''\n");
  EXPECT_EQ(Shebang("/" + std::string(116, 'x') + "/python"),
            "#!/" + std::string(116, 'x') + "/python\n");  // 127 bytes with "#!" and "\n"
  EXPECT_FALSE(ScriptText("a:b:c", "/p"));
  EXPECT_FALSE(ScriptText("", "/p"));
  EXPECT_EQ(RecordHash(""), "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
  EXPECT_EQ((DirectUrl{"file:///w.whl", "ab"}).ToJson(),
            "{\"archive_info\": {\"hash\": \"sha256=ab\", \"hashes\": {\"sha256\": \"ab\"}}, "
            "\"url\": \"file:///w.whl\"}");
}

}  // namespace
}  // namespace strata::pyinstall
