#include "pyinstall/requirement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pyinstall/reference_python_testing.h"
#include "util/pyjson.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

using testing::Capture;
using testing::ReferencePython;

Requirement Parse(std::string_view text) {
  util::Result<Requirement> req = Requirement::Parse(text);
  EXPECT_TRUE(req) << text << ": " << req.error().message;
  return req ? *req : Requirement{};
}

TEST(NormalizeNameTest, Pep503) {
  EXPECT_EQ(NormalizeName("Foo_Bar"), "foo-bar");
  EXPECT_EQ(NormalizeName("foo.-_bar"), "foo-bar");
  EXPECT_EQ(NormalizeName("FOO--bar__baz..QUX"), "foo-bar-baz-qux");
  EXPECT_EQ(NormalizeName("zope.interface"), "zope-interface");
}

TEST(RequirementTest, NameExtrasSpecifierMarker) {
  Requirement req = Parse(R"(name[extra1, extra2]>=1.0,<2 ; python_version>="3.8")");
  EXPECT_EQ(req.name, "name");
  EXPECT_EQ(req.extras, (std::set<std::string>{"extra1", "extra2"}));
  EXPECT_EQ(req.specifier.ToString(), "<2,>=1.0");
  EXPECT_TRUE(req.url.empty());
  ASSERT_TRUE(req.marker);
  EXPECT_EQ(req.marker->ToString(), R"(python_version >= "3.8")");
  EXPECT_EQ(req.ToString(), R"(name[extra1,extra2]<2,>=1.0; python_version >= "3.8")");
}

TEST(RequirementTest, Url) {
  Requirement req = Parse("name @ https://x/y.whl");
  EXPECT_EQ(req.url, "https://x/y.whl");
  EXPECT_TRUE(req.specifier.empty());
  EXPECT_EQ(req.ToString(), "name@ https://x/y.whl");
  req = Parse("name@https://x/y.whl ; os_name == 'nt'");
  EXPECT_EQ(req.ToString(), R"(name@ https://x/y.whl ; os_name == "nt")");
  // Without a space the semicolon belongs to the URL.
  EXPECT_EQ(Parse("name @ file:///a;b").url, "file:///a;b");
}

TEST(RequirementTest, ParenthesisedSpecifierAndWhitespace) {
  EXPECT_EQ(Parse("name (>=1.0)").ToString(), "name>=1.0");
  EXPECT_EQ(Parse("  name  ( >= 1.0 , < 2 )  ").ToString(), "name<2,>=1.0");
  EXPECT_EQ(Parse("\tName.With-Dots_ [ B , a ] == 1.*").ToString(), "Name.With-Dots_[B,a]==1.*");
  EXPECT_EQ(Parse("name[]").ToString(), "name");
  EXPECT_EQ(Parse("name;os_name=='nt'").ToString(), R"(name; os_name == "nt")");
  EXPECT_EQ(Parse("name===foo-bar").ToString(), "name===foo-bar");
  EXPECT_EQ(Parse("name~=1.4.5a4").ToString(), "name~=1.4.5a4");
  EXPECT_EQ(Parse("name==1.0+local.1").ToString(), "name==1.0+local.1");
}

TEST(RequirementTest, Invalid) {
  struct Case {
    const char* text;
    const char* problem;
  };
  for (const Case& c : std::vector<Case>{
           {"name[",
            "Expected matching RIGHT_BRACKET for LEFT_BRACKET, after extras at position 4"},
           {">=1.0", "Expected package name at the start of dependency specifier at position 0"},
           {"name==1.0;", "Expected a marker variable or quoted string at position 10"},
           {"", "Expected package name"},
           {"name[a b]", "Expected comma between extra names"},
           {"name[a,]", "Expected extra name after comma"},
           {"name (>=1.0", "Expected matching RIGHT_PARENTHESIS for LEFT_PARENTHESIS"},
           {"name>=1.0.*", ".* suffix can only be used with `==` or `!=` operators"},
           {"name>=1.0+local", "Local version label can only be used with `==` or `!=` operators"},
           {"name 1.0", "Expected end or semicolon (after name and no valid version specifier)"},
           {"name>=1.0 foo", "Expected end or semicolon (after version specifier) at position 4"},
           {"name @ ", "Expected URL after @"},
           {"name @ u x", "Expected end or semicolon (after URL and whitespace)"},
           {"name; os_name == 'nt' junk", "Expected end of dependency specifier"},
       }) {
    util::Result<Requirement> req = Requirement::Parse(c.text);
    ASSERT_FALSE(req) << c.text;
    EXPECT_EQ(req.error().kind, util::ErrorKind::kValueError);
    EXPECT_NE(req.error().message.find(c.problem), std::string::npos)
        << c.text << " -> " << req.error().message;
    EXPECT_NE(req.error().message.find("'" + std::string(c.text) + "'"), std::string::npos);
  }
}

// --- Differential test against packaging (pip's vendored copy) -------------

constexpr const char* kRequirementScript = R"(import json, sys
from pip._vendor.packaging.requirements import Requirement
out = []
for text in json.load(open(sys.argv[1])):
    try:
        out.append({"ok": True, "str": str(Requirement(text))})
    except Exception as e:
        cause = e.__cause__
        out.append({"ok": False, "error": str(e).split("\n")[0],
                    "start": cause.span[0] if cause is not None else -1})
print(json.dumps(out))
)";

TEST(RequirementDifferentialTest, AgreesWithPackaging) {
  std::string python = ReferencePython();
  if (python.empty()) GTEST_SKIP() << "no Python with pip's packaging >= 22";
  std::vector<std::string> texts = {
      "name",
      "Name",
      "name_with_underscores",
      "name.with.dots",
      "name-with-dashes",
      "a",
      "A1",
      "1name",
      "name-",
      "name.",
      "name_",
      "name-_",
      "name>=1.0",
      "name>=1.0,<2",
      "name >= 1.0 , < 2",
      "name<2,>=1.0",
      "name (>=1.0)",
      "name ( >=1.0 , <2 )",
      "name(>=1.0)",
      "name==1.0",
      "name==1.0.*",
      "name!=1.0.*",
      "name==1.0+local",
      "name==1.0+Local.7",
      "name!=1.0+local",
      "name~=1.0",
      "name~=1.0.0",
      "name~=1",
      "name===1.0",
      "name===anything-goes",
      "name>1.0a1",
      "name>=1.0.post1",
      "name>=1.0-1",
      "name>=1.0.dev3",
      "name>=1!2.0",
      "name>=v1.0",
      "name>=1.0RC1",
      "name>=1.0alpha2",
      "name == 1.0",
      "name==  1.0",
      "name>=1.0,>=1.0",
      "name<=3,>1,!=2.5",
      "name[extra]",
      "name[extra1,extra2]",
      "name[extra1, extra2]",
      "name[ extra1 , extra2 ]",
      "name[Extra_One,extra.two]",
      "name[b,a,c]",
      "name[]",
      "name[ ]",
      "name [extra] >= 1.0",
      "name[extra1, extra2]>=1.0,<2 ; python_version>=\"3.8\"",
      "name[extra]>=1.0; extra == 'Test_Thing'",
      "name; python_version < '3.8'",
      "name ; python_version < '3.8'",
      "name;python_version<'3.8'",
      "name>=1.0;python_version<'3.8' and os_name == 'posix'",
      "name>=1.0 ; (os_name == 'nt' or os_name == 'posix') and python_version >= '3'",
      "name; extra == 'Test_Thing' and os_name == 'posix'",
      "name; os_name == 'posix' and extra == 'Test_Thing'",
      "name; sys.platform == 'linux'",
      "name; platform_machine in 'x86_64 aarch64'",
      "name; 'linux' not in sys_platform",
      "name @ https://x/y.whl",
      "name@https://x/y.whl",
      "name @ https://x/y.whl ; os_name == 'nt'",
      "name @ https://x/y.whl;os_name=='nt'",
      "name[extra] @ https://example.com/name-1.0-py3-none-any.whl",
      "name @ file:///tmp/name-1.0.tar.gz",
      "name @ git+https://github.com/a/b.git@v1.0#egg=name",
      "name @ relative/path",
      "name @ https://x/y.whl   ",
      "   name   ",
      "\tname\t",
      "name  >=1.0  ",
      "zope.interface>=5",
      "typing-extensions>=4.0; python_version < '3.11'",
      "importlib-metadata>=4.6; python_version < \"3.10\"",
      "pywin32>=300; sys_platform == 'win32'",
      "colorama; platform_system == 'Windows'",
      "uvloop>=0.15; sys_platform != 'win32' and implementation_name == 'cpython'",
      "dataclasses; python_version == '3.6'",
      // Invalid ones: message and position must match.
      "",
      "   ",
      "name[",
      "name[extra",
      "name[extra,",
      "name[extra,]",
      "name[a b]",
      "name[,a]",
      ">=1.0",
      "-name",
      "name==1.0;",
      "name==1.0; ",
      "name==1.0 ;os_name",
      "name==1.0;os_name ==",
      "name 1.0",
      "name==",
      "name (>=1.0",
      "name >=1.0)",
      "name>=1.0.*",
      "name~=1.0.*",
      "name>=1.0+local",
      "name<1.0+local",
      "name~=1",
      "name>=1.0 foo",
      "name @",
      "name @ ",
      "name @ u x",
      "name; os_name == 'nt' junk",
      "name; os_name == 'nt' ;",
      "name ; (os_name == 'nt'",
      "name==1.0,",
      "name ==1.0, !=",
      "name[extra]x",
      "name!",
      "na me",
  };
  util::testing::TempDir dir;
  std::ofstream(dir.path() / "in.json") << util::Json(texts).dump();
  std::ofstream(dir.path() / "check.py") << kRequirementScript;
  util::Result<util::Json> output =
      util::ParseJson(Capture("'" + python + "' " + (dir.path() / "check.py").string() + " " +
                              (dir.path() / "in.json").string()));
  ASSERT_TRUE(output) << output.error().message;
  ASSERT_EQ(output->size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const util::Json& want = (*output)[i];
    const std::string& text = texts[i];
    util::Result<Requirement> req = Requirement::Parse(text);
    if (want["ok"].get<bool>()) {
      ASSERT_TRUE(req) << text << ": " << req.error().message;
      EXPECT_EQ(req->ToString(), want["str"].get<std::string>()) << text;
      continue;
    }
    ASSERT_FALSE(req) << text << " parses as " << req->ToString()
                      << ", packaging: " << want["error"];
    EXPECT_NE(req.error().message.find(want["error"].get<std::string>() + " at position " +
                                       std::to_string(want["start"].get<int>())),
              std::string::npos)
        << text << ": " << req.error().message << " vs " << want["error"] << " at "
        << want["start"];
  }
}

}  // namespace
}  // namespace strata::pyinstall
