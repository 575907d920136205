#include "pyinstall/markers.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "pyinstall/facts_testing.h"
#include "pyinstall/reference_python_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

using testing::Capture;
using testing::LinuxFacts;
using testing::ReferencePython;

bool Eval(std::string_view text, const InterpreterFacts& facts = LinuxFacts(),
          const std::set<std::string>& extras = {}) {
  util::Result<Marker> marker = Marker::Parse(text);
  EXPECT_TRUE(marker) << text << ": " << marker.error().message;
  if (!marker) return false;
  util::Result<bool> value = marker->Evaluate(facts, extras);
  EXPECT_TRUE(value) << text << ": " << value.error().message;
  return value && *value;
}

std::string Str(std::string_view text) {
  util::Result<Marker> marker = Marker::Parse(text);
  EXPECT_TRUE(marker) << text << ": " << marker.error().message;
  return marker ? marker->ToString() : "";
}

TEST(MarkerTest, ExtraComparesNormalisedNames) {
  EXPECT_TRUE(Eval(R"(extra == "Test_Thing")", LinuxFacts(), {"test-thing"}));
  EXPECT_TRUE(Eval(R"(extra == "test.thing")", LinuxFacts(), {"Test__Thing"}));
  EXPECT_FALSE(Eval(R"(extra == "test-thing")", LinuxFacts(), {}));
  EXPECT_TRUE(Eval(R"(extra == "b")", LinuxFacts(), {"a", "b"}));
  // One extra at a time, as pip evaluates them.
  EXPECT_FALSE(Eval(R"(extra == "a" and extra == "b")", LinuxFacts(), {"a", "b"}));
  EXPECT_EQ(Str(R"(extra == "Test_Thing")"), R"(extra == "test-thing")");
  EXPECT_EQ(Str(R"("Test_Thing" == extra)"), R"("test-thing" == extra)");
  // packaging normalises the printed value of the first comparison only.
  EXPECT_EQ(Str(R"(os_name == "posix" and extra == "Test_Thing")"),
            R"(os_name == "posix" and extra == "Test_Thing")");
}

TEST(MarkerTest, AndBindsTighterThanOr) {
  std::string text = R"(python_version < "3.12" and (sys_platform == "linux" or os_name == "nt"))";
  EXPECT_TRUE(Eval(text));
  InterpreterFacts py312 = LinuxFacts();
  py312.python_version = "3.12";
  EXPECT_FALSE(Eval(text, py312));
  InterpreterFacts windows = LinuxFacts();
  windows.sys_platform = "win32";
  windows.os_name = "nt";
  EXPECT_TRUE(Eval(text, windows));
  windows.os_name = "java";
  EXPECT_FALSE(Eval(text, windows));
  EXPECT_TRUE(Eval(R"(os_name == "nt" and sys_platform == "x" or python_version >= "3")"));
  EXPECT_FALSE(Eval(R"(os_name == "nt" and (sys_platform == "x" or python_version >= "3"))"));
  EXPECT_EQ(Str(text), text);
}

TEST(MarkerTest, InAndNotInAreSubstringTests) {
  EXPECT_TRUE(Eval(R"("linux" in sys_platform)"));
  EXPECT_TRUE(Eval(R"("lin" in sys_platform)"));
  EXPECT_FALSE(Eval(R"("win" in sys_platform)"));
  EXPECT_TRUE(Eval(R"("win" not   in sys_platform)"));
  EXPECT_TRUE(Eval(R"(platform_machine in "x86_64 aarch64")"));
  EXPECT_EQ(Str(R"("win" not	in sys_platform)"), R"("win" not in sys_platform)");
}

TEST(MarkerTest, VersionVariablesCompareAsVersions) {
  EXPECT_TRUE(Eval(R"(python_full_version >= "3.11.2")"));
  EXPECT_FALSE(Eval(R"(python_full_version < "3.11.2")"));
  EXPECT_TRUE(Eval(R"(python_version > "3.9")"));  // as strings "3.11" < "3.9"
  EXPECT_TRUE(Eval(R"(python_version == "3.11.*")"));
  EXPECT_TRUE(Eval(R"(python_version ~= "3.8")"));
  EXPECT_TRUE(Eval(R"("3.8" < python_version)"));
  EXPECT_TRUE(Eval(R"(python_full_version >= "3.11.0rc1")"));
  EXPECT_TRUE(Eval(R"(implementation_version == "3.11.7")"));
  InterpreterFacts dev = LinuxFacts();
  dev.python_full_version = "3.13.0+";  // an untagged build; packaging reads 3.13.0+local
  EXPECT_TRUE(Eval(R"(python_full_version >= "3.13")", dev));
}

TEST(MarkerTest, FallsBackToStringsWhenASideIsNoVersion) {
  // "5.10.0-21-amd64" is no version: string comparison, "6..." > "5...".
  EXPECT_TRUE(Eval(R"(platform_release >= "5.10.0-21-amd64")"));
  EXPECT_FALSE(Eval(R"(platform_release < "5.10.0-21-amd64")"));
  // The value is no version (packaging 24 raises InvalidVersion here).
  EXPECT_TRUE(Eval(R"(platform_release > "5.10")"));
  InterpreterFacts release = LinuxFacts();
  release.platform_release = "5.9";
  EXPECT_TRUE(Eval(R"(platform_release < "5.10")", release));  // as versions
  // Not a version variable: strings, even when both look like versions.
  EXPECT_FALSE(Eval(R"(platform_machine == "1.0")"));
  EXPECT_TRUE(Eval(R"(sys_platform == "linux")"));
  util::Result<Marker> marker = Marker::Parse(R"(os_name ~= "posix")");
  ASSERT_TRUE(marker);
  util::Result<bool> value = marker->Evaluate(LinuxFacts());
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().kind, util::ErrorKind::kValueError);
}

TEST(MarkerTest, NormalisedSpelling) {
  EXPECT_EQ(Str("python_version>'3.8'"), R"(python_version > "3.8")");
  EXPECT_EQ(Str("os.name=='posix'"), R"(os_name == "posix")");
  EXPECT_EQ(Str("python_implementation == 'CPython'"),
            R"(platform_python_implementation == "CPython")");
  EXPECT_EQ(Str("platform.python_implementation == 'CPython'"),
            R"(platform_python_implementation == "CPython")");
  EXPECT_EQ(Str(" ( os_name == 'a' ) "), R"(os_name == "a")");
  EXPECT_EQ(Str("((os_name == 'a' or os_name == 'b'))"), R"(os_name == "a" or os_name == "b")");
  EXPECT_EQ(Str("(os_name == 'a') and (os_name == 'b' or os_name == 'c')"),
            R"(os_name == "a" and (os_name == "b" or os_name == "c"))");
  // packaging prints `os_name == "a" or os_name == "b" and os_name == "c"`.
  EXPECT_EQ(Str("((os_name == 'a' or os_name == 'b')) and os_name == 'c'"),
            R"((os_name == "a" or os_name == "b") and os_name == "c")");
}

TEST(MarkerTest, InvalidMarkers) {
  struct Case {
    const char* text;
    const char* problem;
  };
  for (const Case& c : std::vector<Case>{
           {"", "Expected a marker variable or quoted string at position 0"},
           {"python_version", "Expected marker operator"},
           {"python_version >= ", "Expected a marker variable or quoted string at position 18"},
           {"python_version >= '3.8", "Expected a marker variable or quoted string"},
           {"os_name = 'posix'", "Expected marker operator"},
           {"os_name not'posix'", "Expected whitespace after 'not'"},
           {"os_name not == 'posix'", "Expected 'in' after 'not'"},
           {"(os_name == 'posix'", "Expected matching RIGHT_PARENTHESIS for LEFT_PARENTHESIS"},
           {"os_name == 'posix' and", "Expected a marker variable or quoted string"},
           {"os_name == 'posix' xor os_name == 'nt'", "Expected end of marker expression"},
           {"platform.release == '1'", "Expected a marker variable or quoted string"},
           {"python_versions == '3'", "Expected a marker variable or quoted string"},
           {"os_name == 'a\\nb'", "Backslash escapes"},
       }) {
    util::Result<Marker> marker = Marker::Parse(c.text);
    ASSERT_FALSE(marker) << c.text;
    EXPECT_EQ(marker.error().kind, util::ErrorKind::kValueError);
    EXPECT_NE(marker.error().message.find(c.problem), std::string::npos)
        << c.text << " -> " << marker.error().message;
    EXPECT_NE(marker.error().message.find(c.text), std::string::npos);
  }
}

TEST(InterpreterFactsTest, JsonRoundTrip) {
  InterpreterFacts facts = LinuxFacts();
  util::Result<InterpreterFacts> back = InterpreterFacts::FromJson(facts.ToJson());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ToJson(), facts.ToJson());
  util::Json missing = facts.ToJson();
  missing.erase("sys_platform");
  EXPECT_FALSE(InterpreterFacts::FromJson(missing));
  EXPECT_FALSE(InterpreterFacts::FromJson(util::Json::array()));
  EXPECT_EQ(*facts.Get("os_name"), "posix");
  EXPECT_EQ(facts.Get("extra"), nullptr);
}

TEST(InterpreterFactsTest, MissingInterpreter) {
  util::Result<InterpreterFacts> facts = InterpreterFacts::Read("no-such-python-strata");
  ASSERT_FALSE(facts);
  EXPECT_EQ(facts.error().kind, util::ErrorKind::kNotFound);
  facts = InterpreterFacts::Read("/bin/false");
  ASSERT_FALSE(facts);
  EXPECT_EQ(facts.error().kind, util::ErrorKind::kIOError);
}

TEST(InterpreterFactsTest, ReadIsCachedAndThreadSafe) {
  util::Result<InterpreterFacts> first = InterpreterFacts::Read("python3");
  if (!first) GTEST_SKIP() << "no python3: " << first.error().message;
  std::vector<std::thread> threads;
  std::vector<std::string> seen(8);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] {
      util::Result<InterpreterFacts> facts = InterpreterFacts::Read("python3");
      if (facts) seen[i] = facts->ToJson().dump();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& json : seen) EXPECT_EQ(json, first->ToJson().dump());
}

// --- Differential test against packaging (pip's vendored copy) -------------

constexpr const char* kMarkerScript = R"(import json, sys
from pip._vendor.packaging.markers import Marker
data = json.load(open(sys.argv[1]))
out = []
for text in data["markers"]:
    try:
        m = Marker(text)
    except Exception as e:
        out.append({"ok": False, "error": str(e).split("\n")[0]})
        continue
    row = {"ok": True, "str": str(m), "eval": []}
    for extra in ["", "Test_Thing"]:
        env = dict(data["env"], extra=extra)
        try:
            row["eval"].append(m.evaluate(env))
        except Exception as e:
            row["eval"].append(type(e).__name__)
    out.append(row)
print(json.dumps(out))
)";

TEST(MarkerDifferentialTest, AgreesWithPackaging) {
  util::Result<InterpreterFacts> facts = InterpreterFacts::Read("python3");
  if (!facts) GTEST_SKIP() << "no python3: " << facts.error().message;
  // The facts are those packaging computes in that interpreter.
  util::Result<util::Json> expected =
      util::ParseJson(Capture("python3 -c 'import json; from pip._vendor.packaging.markers import "
                              "default_environment as d; print(json.dumps(d()))' 2>/dev/null"));
  if (expected) {
    util::Result<InterpreterFacts> want = InterpreterFacts::FromJson(*expected);
    ASSERT_TRUE(want) << want.error().message;
    EXPECT_EQ(facts->ToJson(), want->ToJson());
  }
  std::string python = ReferencePython();
  if (python.empty()) GTEST_SKIP() << "no Python with pip's packaging >= 22";

  std::vector<std::string> markers = {
      R"(python_version >= "3.8")",
      R"(python_version<'3.12' and (sys_platform=='linux' or os_name=='nt'))",
      R"(python_version < "3.12" and sys_platform == "linux" or os_name == "nt")",
      R"("linux" in sys_platform)",
      R"("win" not in sys_platform)",
      R"(sys_platform in "linux darwin")",
      R"(python_full_version >= "3.11.2")",
      R"(python_full_version < "3.0")",
      R"(python_full_version == "3.11.*")",
      R"(python_full_version != "3.11.*")",
      R"(python_version ~= "3.8")",
      R"(python_version ~= "3.8.0")",
      R"(python_version === "3.11")",
      R"(python_version > "3.9")",
      R"(python_version <= "3.11")",
      R"(python_version == "3.11")",
      R"(python_version == "3.11.0")",
      R"("3.8" < python_version)",
      R"("3.13" >= python_version)",
      R"(python_full_version >= "3.11.0rc1")",
      R"(python_full_version > "3.11.7.dev0")",
      R"(python_full_version == "3.11.7+local")",
      R"(implementation_version >= "3.0")",
      R"(implementation_name == "cpython")",
      R"(implementation_name != "pypy")",
      R"(platform_python_implementation == "CPython")",
      R"(python_implementation == "CPython")",
      R"(platform.python_implementation == "PyPy")",
      R"(os.name == "posix")",
      R"(sys.platform == "linux")",
      R"(platform.machine == "x86_64")",
      R"(platform.version != "")",
      R"(platform_machine in "x86_64 aarch64 arm64")",
      R"(platform_machine == "aarch64")",
      R"(platform_system == "Linux")",
      R"(platform_system != "Windows")",
      R"(platform_system < "M")",
      R"(os_name < "q")",
      R"(platform_release >= "5.10.0-21-amd64")",
      R"(platform_release != "")",
      R"("amd64" in platform_release)",
      R"(platform_version >= "#1")",
      R"(extra == "Test_Thing")",
      R"(extra == "test-thing")",
      R"(extra == 'test.thing')",
      R"("Test_Thing" == extra)",
      R"(extra != "Test_Thing")",
      R"(os_name == "posix" and extra == "Test_Thing")",
      R"(extra == "test" or extra == "Test-Thing")",
      R"((extra == "Test_Thing"))",
      R"(((os_name == "posix")))",
      R"((os_name == "posix") and (sys_platform == "linux"))",
      R"((os_name == "nt" or os_name == "posix") and python_version >= "3")",
      R"(os_name == "nt" or (os_name == "posix" and (python_version >= "3" or extra == "x")))",
      R"(  os_name   ==   'posix'  )",
      "os_name\t==\t'posix'",
      R"(os_name=="posix"and python_version>="3")",
      R"(os_name=="posix"or python_version>="3")",
      R"(python_version > '3' and os_name == "posix" or sys_platform == 'win32')",
      R"(sys_platform == "")",
      R"(os_name == "")",
      // Invalid ones: the first line of packaging's message must appear.
      "",
      "os_name",
      "os_name ==",
      "os_name = 'posix'",
      "os_name not 'x'",
      "os_name not == 'x'",
      "(os_name == 'posix'",
      "os_name == 'posix')",
      "os_name == 'posix' and",
      "os_name == 'posix' xor sys_platform == 'linux'",
      "platform.release == '1'",
      "python_versions == '3'",
      "os_name == 'posix",
      "'posix' == 'posix'x",
  };
  util::testing::TempDir dir;
  util::Json input = {{"markers", markers}, {"env", facts->ToJson()}};
  std::ofstream(dir.path() / "in.json") << input.dump();
  std::ofstream(dir.path() / "check.py") << kMarkerScript;
  util::Result<util::Json> output =
      util::ParseJson(Capture("'" + python + "' " + (dir.path() / "check.py").string() + " " +
                              (dir.path() / "in.json").string()));
  ASSERT_TRUE(output) << output.error().message;
  ASSERT_EQ(output->size(), markers.size());
  int compared = 0;
  for (std::size_t i = 0; i < markers.size(); ++i) {
    const util::Json& want = (*output)[i];
    const std::string& text = markers[i];
    util::Result<Marker> marker = Marker::Parse(text);
    if (!want["ok"].get<bool>()) {
      ASSERT_FALSE(marker) << text << " parses, packaging: " << want["error"];
      EXPECT_NE(marker.error().message.find(want["error"].get<std::string>()), std::string::npos)
          << text << ": " << marker.error().message << " vs " << want["error"];
      continue;
    }
    ASSERT_TRUE(marker) << text << ": " << marker.error().message;
    EXPECT_EQ(marker->ToString(), want["str"].get<std::string>()) << text;
    std::vector<std::set<std::string>> extras = {{}, {"Test_Thing"}};
    for (std::size_t e = 0; e < extras.size(); ++e) {
      const util::Json& result = want["eval"][e];
      if (!result.is_boolean()) continue;  // packaging raised (InvalidVersion, ...)
      util::Result<bool> value = marker->Evaluate(*facts, extras[e]);
      ASSERT_TRUE(value) << text << ": " << value.error().message;
      EXPECT_EQ(*value, result.get<bool>()) << text << " with extra #" << e;
      ++compared;
    }
  }
  EXPECT_GT(compared, 100);
}

}  // namespace
}  // namespace strata::pyinstall
