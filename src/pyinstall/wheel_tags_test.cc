#include "pyinstall/wheel_tags.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

std::vector<std::string> TagStrings(const std::vector<Tag>& tags) {
  std::vector<std::string> out;
  for (const Tag& tag : tags) out.push_back(tag.ToString());
  return out;
}

WheelFilename MustParse(std::string_view name) {
  auto wheel = WheelFilename::Parse(name);
  EXPECT_TRUE(wheel) << name << ": " << wheel.error().ToString();
  return wheel ? *wheel : WheelFilename{};
}

TEST(WheelFilename, ParsesNameVersionAndTags) {
  WheelFilename wheel = MustParse("requests-2.28.1-py3-none-any.whl");
  EXPECT_EQ(wheel.name, "requests");
  EXPECT_EQ(wheel.version.ToString(), "2.28.1");
  EXPECT_FALSE(wheel.build);
  EXPECT_EQ(TagStrings(wheel.tags), std::vector<std::string>{"py3-none-any"});
}

TEST(WheelFilename, NormalisesNamesWithUnderscoresDotsAndCase) {
  EXPECT_EQ(MustParse("typing_extensions-4.4.0-py3-none-any.whl").name, "typing-extensions");
  EXPECT_EQ(MustParse("zope.interface-6.2-cp311-cp311-linux_x86_64.whl").name, "zope-interface");
  EXPECT_EQ(MustParse("Jinja2-3.1.2-py3-none-any.whl").name, "jinja2");
  EXPECT_EQ(MustParse("ruamel.yaml.clib-0.2.8-py3-none-any.whl").name, "ruamel-yaml-clib");
  EXPECT_EQ(MustParse("a._b-1-py3-none-any.whl").name, "a-b");
  // The version's '-' is escaped as '_' in file names; PEP 440 reads it back.
  EXPECT_EQ(MustParse("foo-1.0_post1-py3-none-any.whl").version.ToString(), "1.0.post1");
  EXPECT_EQ(MustParse("torch-2.2.1+cpu-cp311-cp311-linux_x86_64.whl").version.ToString(),
            "2.2.1+cpu");
}

TEST(WheelFilename, ExpandsCompressedTagSets) {
  WheelFilename wheel = MustParse("six-1.16.0-py2.py3-none-any.whl");
  EXPECT_EQ(TagStrings(wheel.tags), (std::vector<std::string>{"py2-none-any", "py3-none-any"}));
  wheel = MustParse("numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
  EXPECT_EQ(TagStrings(wheel.tags), (std::vector<std::string>{"cp311-cp311-manylinux_2_17_x86_64",
                                                              "cp311-cp311-manylinux2014_x86_64"}));
  wheel = MustParse("x-1-py2.py3-none.abi3-ANY.any.whl");  // lowercased, duplicates dropped
  EXPECT_EQ(TagStrings(wheel.tags), (std::vector<std::string>{"py2-none-any", "py2-abi3-any",
                                                              "py3-none-any", "py3-abi3-any"}));
}

TEST(WheelFilename, ParsesBuildTags) {
  WheelFilename wheel = MustParse("tables-3.6.1-2-cp39-cp39-manylinux1_x86_64.whl");
  ASSERT_TRUE(wheel.build);
  EXPECT_EQ(wheel.build->number, 2u);
  EXPECT_EQ(wheel.build->suffix, "");
  wheel = MustParse("foo-1.0-10_local-py3-none-any.whl");
  ASSERT_TRUE(wheel.build);
  EXPECT_EQ(*wheel.build, (BuildTag{10, "_local"}));
  EXPECT_LT((BuildTag{2, "z"}), (BuildTag{10, ""}));  // numbers compare as numbers
  EXPECT_LT((BuildTag{1, ""}), (BuildTag{1, "a"}));
}

TEST(WheelFilename, RejectsMalformedNamesNamingTheFile) {
  for (const char* name : {
           "foo-1.0-py3-none-any.zip",       // not .whl
           "foo-1.0-py3-none-any",           // no extension
           "foo-1.0-any.whl",                // too few parts
           "foo-1.0-py3-none.whl",           // too few parts
           "foo-1.0-1-2-py3-none-any.whl",   // too many parts
           "foo-1.0-a1-py3-none-any.whl",    // build tag must start with a digit
           "foo-1.0--py3-none-any.whl",      // empty build tag
           "foo__bar-1.0-py3-none-any.whl",  // "__" in the name
           "foo+bar-1.0-py3-none-any.whl",   // character outside [A-Za-z0-9._]
           "-1.0-py3-none-any.whl",          // empty name
           "foo-bar-1.0-py3-none-any.whl",   // unescaped '-': version "bar"
           "foo-1.0.x-py3-none-any.whl",     // not PEP 440
       }) {
    auto wheel = WheelFilename::Parse(name);
    ASSERT_FALSE(wheel) << name;
    EXPECT_EQ(wheel.error().kind, util::ErrorKind::kValueError) << name;
    EXPECT_NE(wheel.error().message.find(name), std::string::npos) << wheel.error().message;
  }
}

TargetFacts Cpython311() {
  TargetFacts facts;
  facts.python_minor = 11;
  facts.platform = "linux_x86_64";
  facts.glibc = std::make_pair(2, 36);
  return facts;
}

TEST(SupportedTags, OrdersCpythonAbi3NoneThenCompatible) {
  std::vector<std::string> tags = TagStrings(SupportedTags(Cpython311()));
  // 32 manylinux_2_x (2_36..2_5) + 3 legacy aliases + linux_x86_64.
  const size_t platforms = 32 + 3 + 1;
  ASSERT_EQ(tags.size(), platforms * (3 + 9 + 13) + 14);
  EXPECT_EQ(tags[0], "cp311-cp311-manylinux_2_36_x86_64");
  EXPECT_EQ(tags[19], "cp311-cp311-manylinux_2_17_x86_64");
  EXPECT_EQ(tags[20], "cp311-cp311-manylinux2014_x86_64");
  EXPECT_EQ(tags[platforms - 1], "cp311-cp311-linux_x86_64");
  EXPECT_EQ(tags[platforms], "cp311-abi3-manylinux_2_36_x86_64");
  EXPECT_EQ(tags[2 * platforms], "cp311-none-manylinux_2_36_x86_64");
  EXPECT_EQ(tags[3 * platforms], "cp310-abi3-manylinux_2_36_x86_64");
  EXPECT_EQ(tags[12 * platforms - 1], "cp32-abi3-linux_x86_64");
  EXPECT_EQ(tags[12 * platforms], "py311-none-manylinux_2_36_x86_64");
  EXPECT_EQ(tags[13 * platforms], "py3-none-manylinux_2_36_x86_64");
  EXPECT_EQ(tags[25 * platforms - 1], "py30-none-linux_x86_64");
  EXPECT_EQ(
      std::vector<std::string>(tags.end() - 14, tags.end()),
      (std::vector<std::string>{"cp311-none-any", "py311-none-any", "py3-none-any",
                                "py310-none-any", "py39-none-any", "py38-none-any", "py37-none-any",
                                "py36-none-any", "py35-none-any", "py34-none-any", "py33-none-any",
                                "py32-none-any", "py31-none-any", "py30-none-any"}));
}

TEST(SupportedTags, ManylinuxStartsAt2_17OutsideX86AndMusllinuxFollows) {
  TargetFacts facts = Cpython311();
  facts.platform = "linux_aarch64";
  facts.glibc = std::make_pair(2, 18);
  facts.musl = std::make_pair(1, 2);
  std::vector<std::string> tags = TagStrings(SupportedTags(facts));
  EXPECT_EQ(std::vector<std::string>(tags.begin(), tags.begin() + 7),
            (std::vector<std::string>{
                "cp311-cp311-manylinux_2_18_aarch64", "cp311-cp311-manylinux_2_17_aarch64",
                "cp311-cp311-manylinux2014_aarch64", "cp311-cp311-musllinux_1_2_aarch64",
                "cp311-cp311-musllinux_1_1_aarch64", "cp311-cp311-musllinux_1_0_aarch64",
                "cp311-cp311-linux_aarch64"}));

  facts.glibc.reset();  // musl only
  tags = TagStrings(SupportedTags(facts));
  EXPECT_EQ(tags[0], "cp311-cp311-musllinux_1_2_aarch64");

  facts.musl.reset();
  facts.glibc = std::make_pair(2, 36);
  facts.manylinux_abi = false;  // e.g. armv7l without hard float
  tags = TagStrings(SupportedTags(facts));
  EXPECT_EQ(tags[0], "cp311-cp311-linux_aarch64");
}

TEST(SupportedTags, DebugAndFreeThreadedAbis) {
  TargetFacts facts = Cpython311();
  facts.glibc.reset();
  facts.abi_flags = "d";
  std::vector<std::string> tags = TagStrings(SupportedTags(facts));
  EXPECT_EQ(std::vector<std::string>(tags.begin(), tags.begin() + 4),
            (std::vector<std::string>{"cp311-cp311d-linux_x86_64", "cp311-cp311-linux_x86_64",
                                      "cp311-abi3-linux_x86_64", "cp311-none-linux_x86_64"}));

  facts.python_minor = 13;
  facts.abi_flags = "td";  // free-threaded debug: no abi3 at all
  tags = TagStrings(SupportedTags(facts));
  EXPECT_EQ(std::vector<std::string>(tags.begin(), tags.begin() + 4),
            (std::vector<std::string>{"cp313-cp313td-linux_x86_64", "cp313-cp313t-linux_x86_64",
                                      "cp313-none-linux_x86_64", "py313-none-linux_x86_64"}));
  EXPECT_EQ(std::count_if(tags.begin(), tags.end(),
                          [](const std::string& t) { return t.find("abi3") != std::string::npos; }),
            0);
}

TEST(Priority, PicksTheBestTagAndRejectsIncompatibleWheels) {
  std::vector<Tag> supported = SupportedTags(Cpython311());
  auto priority = [&](std::string_view name) { return Priority(MustParse(name), supported); };
  auto native = priority("numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
  auto newer =
      priority("greenlet-3.0.3-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl");
  auto abi3 = priority("cryptography-42.0.5-cp39-abi3-manylinux_2_28_x86_64.whl");
  auto pure = priority("six-1.16.0-py2.py3-none-any.whl");
  ASSERT_TRUE(native && newer && abi3 && pure);
  EXPECT_EQ(*native, 19);
  EXPECT_EQ(*newer, 8);  // manylinux_2_28 ranks above 2_24 and 2_17
  EXPECT_LT(*native, *abi3);
  EXPECT_LT(*abi3, *pure);
  EXPECT_EQ(*pure, static_cast<int>(supported.size()) - 12);  // py3-none-any
  EXPECT_FALSE(priority("numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.whl"));
  EXPECT_FALSE(priority("numpy-1.26.4-cp311-cp311-manylinux_2_38_x86_64.whl"));  // glibc too old
  EXPECT_FALSE(priority("pywin32-306-cp311-cp311-win_amd64.whl"));
  EXPECT_FALSE(priority("x-1-py2-none-any.whl"));
}

TEST(TargetFactsRead, ReportsAMissingOrBrokenInterpreter) {
  auto facts = TargetFacts::Read("/nonexistent/python3");
  ASSERT_FALSE(facts);
  EXPECT_EQ(facts.error().kind, util::ErrorKind::kNotFound);
  facts = TargetFacts::Read("strata-no-such-python");
  ASSERT_FALSE(facts);
  EXPECT_EQ(facts.error().kind, util::ErrorKind::kNotFound);
  facts = TargetFacts::Read("/bin/false");  // exits 1
  ASSERT_FALSE(facts);
  EXPECT_EQ(facts.error().kind, util::ErrorKind::kIOError);
  facts = TargetFacts::Read("true");  // exits 0 without printing facts
  ASSERT_FALSE(facts);
  EXPECT_EQ(facts.error().kind, util::ErrorKind::kIOError);
}

// --- Differential tests against pip's vendored packaging ----------------------

// Runs python3 with `script` and `argument`; stdout, or nullopt when python3
// or pip's packaging is unavailable.
std::optional<std::string> RunReference(const std::string& script, const std::string& argument) {
  util::testing::TempDir dir;
  std::string path = (dir.path() / "ref.py").string();
  std::ofstream(path) << script;
  std::string command = "python3 " + path + " " + argument + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  if (::pclose(pipe) != 0) return std::nullopt;
  return output;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  return lines;
}

TEST(Differential, SupportedTagsEqualSysTagsOfPython3) {
  auto expected = RunReference(
      "from pip._vendor import packaging\n"
      "from pip._vendor.packaging.tags import sys_tags\n"
      "print(packaging.__version__.split('.')[0])\n"
      "for t in sys_tags(): print(t)\n",
      "");
  if (!expected) GTEST_SKIP() << "python3 with pip is not available";
  auto facts = TargetFacts::Read("python3");
  ASSERT_TRUE(facts) << facts.error().ToString();
  std::vector<std::string> ours = TagStrings(SupportedTags(*facts));
  std::vector<std::string> theirs = Lines(*expected);
  ASSERT_GT(theirs.size(), 10u);
  const int packaging_major = std::stoi(theirs[0]);
  theirs.erase(theirs.begin());
  if (packaging_major < 22) {
    // The one documented difference: older packaging (pip < 24.1) has no
    // cp3X-none-any.
    std::string cp_none_any = "cp" + std::to_string(facts->python_major) +
                              std::to_string(facts->python_minor) + "-none-any";
    auto it = std::find(ours.begin(), ours.end(), cp_none_any);
    ASSERT_NE(it, ours.end());
    ours.erase(it);
  }
  EXPECT_EQ(ours.size(), theirs.size());
  for (size_t i = 0; i < std::min(ours.size(), theirs.size()); ++i) {
    ASSERT_EQ(ours[i], theirs[i]) << "at index " << i;
  }
  // The second read comes from the cache and agrees.
  auto again = TargetFacts::Read("python3");
  ASSERT_TRUE(again);
  EXPECT_EQ(TagStrings(SupportedTags(*again)), TagStrings(SupportedTags(*facts)));
}

// Real wheel names (PyPI and the project's wheelhouse), then edge cases.
const char* const kWheelNames[] = {
    "Jinja2-3.1.2-py3-none-any.whl",
    "MarkupSafe-2.1.2-cp311-cp311-linux_x86_64.whl",
    "PyYAML-6.0-cp311-cp311-linux_x86_64.whl",
    "attrs-22.2.0-py3-none-any.whl",
    "certifi-2022.9.24-py3-none-any.whl",
    "charset_normalizer-3.0.1-py3-none-any.whl",
    "click-8.1.3-py3-none-any.whl",
    "cloudpickle-2.2.0-py3-none-any.whl",
    "idna-3.3-py3-none-any.whl",
    "mpmath-1.2.1-py3-none-any.whl",
    "networkx-2.8.8-py3-none-any.whl",
    "numpy-1.24.2-cp311-cp311-linux_x86_64.whl",
    "packaging-23.0-py3-none-any.whl",
    "pandas-1.5.3-cp311-cp311-linux_x86_64.whl",
    "python_dateutil-2.8.2-py3-none-any.whl",
    "pytz-2022.7.1-py3-none-any.whl",
    "requests-2.28.1-py3-none-any.whl",
    "scipy-1.10.1-cp311-cp311-linux_x86_64.whl",
    "six-1.16.0-py3-none-any.whl",
    "sympy-1.11.1-py3-none-any.whl",
    "tomli-2.0.1-py3-none-any.whl",
    "toolz-0.12.0-py3-none-any.whl",
    "typing_extensions-4.4.0-py3-none-any.whl",
    "urllib3-1.26.12-py3-none-any.whl",
    "pip-18.1-py2.py3-none-any.whl",
    "pip-23.2.1-py3-none-any.whl",
    "setuptools-40.6.2-py2.py3-none-any.whl",
    "setuptools-67.6.1-py3-none-any.whl",
    "wheel-0.43.0-py3-none-any.whl",
    "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "numpy-1.26.4-cp311-cp311-musllinux_1_1_x86_64.whl",
    "numpy-1.26.4-cp312-cp312-macosx_11_0_arm64.whl",
    "cryptography-42.0.5-cp39-abi3-manylinux_2_28_x86_64.whl",
    "cffi-1.16.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "PyYAML-6.0.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "psycopg2_binary-2.9.9-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "zope.interface-6.2-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.manylinux_2_17_x86_64."
    "manylinux2014_x86_64.whl",
    "backports.zoneinfo-0.2.1-cp38-cp38-manylinux1_x86_64.whl",
    "ruamel.yaml.clib-0.2.8-cp311-cp311-manylinux_2_5_x86_64.manylinux1_x86_64.whl",
    "greenlet-3.0.3-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    "pyzmq-25.1.2-pp310-pypy310_pp73-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "torch-2.2.1+cpu-cp311-cp311-linux_x86_64.whl",
    "pywin32-306-cp311-cp311-win_amd64.whl",
    "charset_normalizer-3.3.2-cp311-cp311-macosx_10_9_universal2.whl",
    "simplejson-3.19.2-cp27-cp27mu-manylinux1_x86_64.whl",
    "SQLAlchemy-2.0.27-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "pydantic_core-2.16.3-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "python_dateutil-2.9.0.post0-py2.py3-none-any.whl",
    "debugpy-1.8.1-py2.py3-none-any.whl",
    "tables-3.6.1-2-cp39-cp39-manylinux1_x86_64.whl",
    "regex-2023.12.25-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "Cython-0.29.37-py2.py3-none-any.whl",
    // Edge cases.
    "foo-1.0-10_local-py3-none-any.whl",
    "Foo.Bar_baz-1.0RC1-PY3-None-Any.whl",
    "foo-1.0_post1-py2.py3-none.abi3-any.whl",
    "foo-v1.0-py3-none-any.whl",
    "foo-1!2.0-py3-none-any.whl",
    "foo-1.0-a1-py3-none-any.whl",
    "foo__bar-1.0-py3-none-any.whl",
    "foo-bar-1.0-py3-none-any.whl",
    "foo-1.0-py3-none.whl",
    "foo-1.0-1-2-py3-none-any.whl",
    "foo-1.0-py3-none-any.zip",
};

TEST(Differential, ParseMatchesParseWheelFilename) {
  util::testing::TempDir dir;
  std::string names_path = (dir.path() / "names.txt").string();
  {
    std::ofstream names(names_path);
    for (const char* name : kWheelNames) names << name << "\n";
  }
  auto expected = RunReference(
      "import sys\n"
      "from pip._vendor.packaging.utils import parse_wheel_filename\n"
      "for line in open(sys.argv[1]):\n"
      "    try:\n"
      "        n, v, b, t = parse_wheel_filename(line.rstrip('\\n'))\n"
      "    except Exception:\n"
      "        print('ERROR')\n"
      "        continue\n"
      "    build = '%d,%s' % b if b else '-'\n"
      "    print('|'.join([n, str(v), build, ','.join(sorted(map(str, t)))]))\n",
      names_path);
  if (!expected) GTEST_SKIP() << "python3 with pip is not available";
  std::vector<std::string> theirs = Lines(*expected);
  ASSERT_EQ(theirs.size(), std::size(kWheelNames));
  for (size_t i = 0; i < theirs.size(); ++i) {
    auto wheel = WheelFilename::Parse(kWheelNames[i]);
    std::string ours = "ERROR";
    if (wheel) {
      std::vector<std::string> tags = TagStrings(wheel->tags);
      std::sort(tags.begin(), tags.end());
      std::string joined;
      for (const std::string& tag : tags) joined += (joined.empty() ? "" : ",") + tag;
      std::string build =
          wheel->build ? std::to_string(wheel->build->number) + "," + wheel->build->suffix : "-";
      ours = wheel->name + "|" + wheel->version.ToString() + "|" + build + "|" + joined;
    }
    EXPECT_EQ(ours, theirs[i]) << kWheelNames[i];
  }
}

}  // namespace
}  // namespace strata::pyinstall
