#include "pyinstall/venv.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "pyinstall/reference_python_testing.h"
#include "util/pyjson.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

namespace fs = std::filesystem;
using testing::Capture;
using util::testing::ReadFile;
using util::testing::TempDir;

const char* const kPyenvPython = "/root/.pyenv/versions/3.11.7/bin/python3";
const char* const kDebianPython = "/usr/bin/python3";

std::string Quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

void ReplaceAll(std::string& text, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size()) {
    text.replace(pos, from.size(), to);
  }
}

// Every entry below `root`: its kind and mode, then a symlink's target or a
// file's content with `from` replaced by `to`.
std::map<std::string, std::string> Tree(const fs::path& root, const std::string& from = "",
                                        const std::string& to = "") {
  std::map<std::string, std::string> tree;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st;
    EXPECT_EQ(::lstat(it->path().c_str(), &st), 0);
    std::string entry = std::to_string(st.st_mode & 07777) + " ";
    if (it->is_symlink()) {
      entry += "link -> " + fs::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      entry += "dir";
    } else {
      std::string content = ReadFile(it->path());
      if (!from.empty()) ReplaceAll(content, from, to);
      entry += "file\n" + content;
    }
    tree[fs::relative(it->path(), root).string()] = entry;
  }
  return tree;
}

// Makes `<parent>/ref/<name>` with `python -m venv --without-pip <args>` and
// `<parent>/ours/<name>` with CreateVenv, and expects the same trees once the
// reference's directory is replaced by ours.
void ExpectSameAsVenv(const std::string& python, const std::string& name, const std::string& args,
                      const VenvOptions& options) {
  TempDir temp;
  fs::path ref = temp.path() / "ref" / name;
  fs::path ours = temp.path() / "ours" / name;
  std::string out = Capture(Quote(python) + " -m venv --without-pip " + args + " " +
                            Quote(ref.string()) + " 2>&1 && echo ok");
  ASSERT_EQ(out, "ok\n");
  util::Result<BaseInterpreter> base = BaseInterpreter::Read(python);
  ASSERT_TRUE(base) << base.error().message;
  util::Result<VenvInfo> info = CreateVenv(ours, *base, options);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->dir, ours);
  EXPECT_EQ(info->python, ours / "bin" / fs::path(python).filename());
  EXPECT_EQ(info->site_packages, ours / base->purelib_dir);

  std::map<std::string, std::string> expected = Tree(ref, ref.string(), ours.string());
  std::map<std::string, std::string> actual = Tree(ours);
  std::vector<std::string> expected_names;
  std::vector<std::string> actual_names;
  for (const auto& [path, entry] : expected) expected_names.push_back(path);
  for (const auto& [path, entry] : actual) actual_names.push_back(path);
  ASSERT_EQ(actual_names, expected_names);
  for (const auto& [path, entry] : expected) EXPECT_EQ(actual[path], entry) << path;
  // Nothing left next to the environment but the environment.
  EXPECT_EQ(std::distance(fs::directory_iterator(ours.parent_path()), fs::directory_iterator()), 1);
}

bool Has(const char* python) {
  return ::access(python, X_OK) == 0;
}

TEST(VenvTest, SameTreeAsVenvForPyenvPython) {
  if (!Has(kPyenvPython)) GTEST_SKIP() << kPyenvPython << " is absent";
  ExpectSameAsVenv(kPyenvPython, "env", "", {});
}

TEST(VenvTest, SameTreeAsVenvForDebianPython) {
  if (!Has(kDebianPython)) GTEST_SKIP() << kDebianPython << " is absent";
  ExpectSameAsVenv(kDebianPython, "env", "", {});
}

// 3.13 writes a .gitignore and leaves the prompt's parentheses to the scripts.
TEST(VenvTest, SameTreeAsVenvForOtherVersions) {
  int tried = 0;
  for (const char* python :
       {"/root/.pyenv/versions/3.12.1/bin/python3", "/root/.pyenv/versions/3.13.0/bin/python3"}) {
    if (!Has(python)) continue;
    SCOPED_TRACE(python);
    ++tried;
    VenvOptions options;
    options.prompt = "p";
    ExpectSameAsVenv(python, "env", "--prompt p", options);
  }
  if (tried == 0) GTEST_SKIP() << "no pyenv 3.12.1 or 3.13.0";
}

// Debian's venv quotes the placeholders (gh-124651); pyenv's 3.11.7 does not:
// a directory and prompt that need quoting show both.
TEST(VenvTest, PromptSystemSitePackagesAndQuotingAsVenv) {
  VenvOptions options;
  options.prompt = "my env's";
  options.system_site_packages = true;
  for (const char* python : {kPyenvPython, kDebianPython}) {
    if (!Has(python)) continue;
    SCOPED_TRACE(python);
    ExpectSameAsVenv(python, "my venv", "--system-site-packages --prompt \"my env's\"", options);
  }
}

TEST(VenvTest, ExecutableNameDecidesTheLinks) {
  std::string python = "/root/.pyenv/versions/3.11.7/bin/python3.11";
  if (!Has(python.c_str())) GTEST_SKIP() << python << " is absent";
  ExpectSameAsVenv(python, "env", "", {});
}

TEST(VenvTest, PyvenvCfgOfTheDebianPython) {
  if (!Has(kDebianPython)) GTEST_SKIP() << kDebianPython << " is absent";
  util::Result<BaseInterpreter> base = BaseInterpreter::Read(kDebianPython);
  ASSERT_TRUE(base) << base.error().message;
  TempDir temp;
  ASSERT_TRUE(CreateVenv(temp.path() / "v", *base));
  std::string version = std::to_string(base->major) + "." + std::to_string(base->minor) + "." +
                        std::to_string(base->micro);
  EXPECT_EQ(ReadFile(temp.path() / "v" / "pyvenv.cfg"),
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = " + version +
                "\nexecutable = " + fs::canonical(kDebianPython).string() +
                "\ncommand = /usr/bin/python3 -m venv --without-pip " +
                (temp.path() / "v").string() + "\n");
}

// The environment works: its python sees itself as a venv of the base, pip
// installs into it.
void ExpectWorkingVenv(const std::string& python) {
  util::Result<BaseInterpreter> base = BaseInterpreter::Read(python);
  ASSERT_TRUE(base) << base.error().message;
  TempDir temp;
  util::Result<VenvInfo> info = CreateVenv(temp.path() / "env", *base);
  ASSERT_TRUE(info) << info.error().message;
  std::string probe =
      Capture(Quote(info->python.string()) +
              " -c 'import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.path]))'");
  util::Result<util::Json> seen = util::ParseJson(probe);
  ASSERT_TRUE(seen) << probe;
  EXPECT_EQ((*seen)[0], info->dir.string());
  EXPECT_EQ((*seen)[1], base->base_prefix);
  std::vector<std::string> path = (*seen)[2].get<std::vector<std::string>>();
  EXPECT_NE(std::find(path.begin(), path.end(), info->site_packages.string()), path.end());
  util::Result<util::Json> base_sites = util::ParseJson(Capture(
      Quote(python) + " -c 'import json, site; print(json.dumps(site.getsitepackages()))'"));
  ASSERT_TRUE(base_sites);
  ASSERT_FALSE(base_sites->empty());
  for (const util::Json& site : *base_sites) {
    EXPECT_EQ(std::find(path.begin(), path.end(), site.get<std::string>()), path.end()) << site;
  }

  // A one-module wheel, installed by the base's pip into the venv.
  fs::path wheel = temp.path() / "tiny-1.0-py3-none-any.whl";
  std::string make_wheel = R"(import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("tiny.py", "VALUE = 42\n")
    z.writestr("tiny-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n")
    z.writestr("tiny-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("tiny-1.0.dist-info/RECORD", "")
)";
  ASSERT_EQ(Capture(Quote(python) + " -c " + Quote(make_wheel) + " " + Quote(wheel.string()) +
                    " && echo ok"),
            "ok\n");
  std::string pip = Capture(Quote(python) + " -m pip --python " + Quote(info->python.string()) +
                            " install --no-index --disable-pip-version-check -q " +
                            Quote(wheel.string()) + " 2>&1 && echo ok");
  ASSERT_EQ(pip, "ok\n");
  EXPECT_TRUE(fs::exists(info->site_packages / "tiny.py"));
  EXPECT_EQ(Capture(Quote(info->python.string()) + " -c 'import tiny; print(tiny.VALUE)'"), "42\n");
}

TEST(VenvTest, PyenvVenvWorksAndPipInstallsIntoIt) {
  if (!Has(kPyenvPython)) GTEST_SKIP() << kPyenvPython << " is absent";
  ExpectWorkingVenv(kPyenvPython);
}

TEST(VenvTest, DebianVenvWorksAndPipInstallsIntoIt) {
  if (!Has(kDebianPython)) GTEST_SKIP() << kDebianPython << " is absent";
  ExpectWorkingVenv(kDebianPython);
}

util::Result<BaseInterpreter> AnyBase() {
  for (const char* python : {kPyenvPython, kDebianPython}) {
    if (Has(python)) return BaseInterpreter::Read(python);
  }
  return util::NotFoundError("no Python 3.11");
}

TEST(VenvTest, RefusesANonEmptyDirectoryAndLeavesNothingBehind) {
  util::Result<BaseInterpreter> base = AnyBase();
  if (!base) GTEST_SKIP() << base.error().message;
  TempDir temp;
  util::testing::WriteFile(temp.path() / "full" / "x", "x");
  util::Result<VenvInfo> info = CreateVenv(temp.path() / "full", *base);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().kind, util::ErrorKind::kValueError);
  EXPECT_NE(info.error().message.find("exists and is not an empty directory"), std::string::npos);
  util::testing::WriteFile(temp.path() / "file", "x");
  EXPECT_FALSE(CreateVenv(temp.path() / "file", *base));
  EXPECT_FALSE(CreateVenv(temp.path() / "a:b", *base));
  // Only what the test made.
  EXPECT_EQ(std::distance(fs::directory_iterator(temp.path()), fs::directory_iterator()), 2);
}

TEST(VenvTest, ReplacesAnEmptyDirectoryAndMakesParents) {
  util::Result<BaseInterpreter> base = AnyBase();
  if (!base) GTEST_SKIP() << base.error().message;
  TempDir temp;
  fs::create_directories(temp.path() / "empty");
  util::Result<VenvInfo> info = CreateVenv(temp.path() / "empty/", *base);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->dir, temp.path() / "empty");
  EXPECT_TRUE(fs::exists(temp.path() / "empty" / "pyvenv.cfg"));
  info = CreateVenv(temp.path() / "a" / "b" / ".." / "c", *base);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->dir, temp.path() / "a" / "c");
  EXPECT_TRUE(fs::is_symlink(temp.path() / "a" / "c" / "lib64"));
}

TEST(VenvTest, ReadCachesAndRejects) {
  util::Result<BaseInterpreter> missing = BaseInterpreter::Read("/nonexistent/python3");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, util::ErrorKind::kNotFound);
  util::Result<BaseInterpreter> base = AnyBase();
  if (!base) GTEST_SKIP() << base.error().message;
  EXPECT_EQ(base->major, 3);
  EXPECT_EQ(base->minor, 11);
  EXPECT_EQ(base->scripts_dir, "bin");
  EXPECT_EQ(base->include_dir, "include/python3.11");
  EXPECT_EQ(base->purelib_dir, "lib/python3.11/site-packages");
  EXPECT_EQ(base->scripts.size(), 4u);
  util::Result<BaseInterpreter> again = BaseInterpreter::Read(base->executable);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->executable, base->executable);

  const char* old = "/root/.pyenv/versions/3.10.13/bin/python3";
  if (Has(old)) {
    util::Result<BaseInterpreter> too_old = BaseInterpreter::Read(old);
    ASSERT_FALSE(too_old);
    EXPECT_EQ(too_old.error().kind, util::ErrorKind::kValueError);
    EXPECT_NE(too_old.error().message.find("3.11 or later"), std::string::npos);
  }
}

}  // namespace
}  // namespace strata::pyinstall
