#include "pyinstall/version.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace strata::pyinstall {
namespace {

Version V(std::string_view text) {
  util::Result<Version> v = Version::Parse(text);
  EXPECT_TRUE(v) << text << ": " << (v ? "" : v.error().message);
  return v ? *v : Version();
}

SpecifierSet S(std::string_view text) {
  util::Result<SpecifierSet> s = SpecifierSet::Parse(text);
  EXPECT_TRUE(s) << text << ": " << (s ? "" : s.error().message);
  return s ? *s : SpecifierSet();
}

std::string Normal(std::string_view text) {
  return V(text).ToString();
}

bool In(std::string_view spec, std::string_view version,
        std::optional<bool> prereleases = std::nullopt) {
  return S(spec).Contains(V(version), prereleases);
}

TEST(Version, Normalises) {
  EXPECT_EQ(Normal("1.0.0-ALPHA.1"), "1.0.0a1");
  EXPECT_EQ(Normal("v1.0"), "1.0");
  EXPECT_EQ(Normal("  V1.0\n"), "1.0");
  EXPECT_EQ(Normal("1.0-1"), "1.0.post1");
  EXPECT_EQ(Normal("1.0.post"), "1.0.post0");
  EXPECT_EQ(Normal("1.0-r4"), "1.0.post4");
  EXPECT_EQ(Normal("1.0rev"), "1.0.post0");
  EXPECT_EQ(Normal("1.0rc1"), "1.0rc1");
  EXPECT_EQ(Normal("1.0c1"), "1.0rc1");
  EXPECT_EQ(Normal("1.0pre2"), "1.0rc2");
  EXPECT_EQ(Normal("1.0-preview_3"), "1.0rc3");
  EXPECT_EQ(Normal("1.0beta"), "1.0b0");
  EXPECT_EQ(Normal("1.0-dev"), "1.0.dev0");
  EXPECT_EQ(Normal("1!2.0"), "1!2.0");
  EXPECT_EQ(Normal("0!2.0"), "2.0");
  EXPECT_EQ(Normal("01.002"), "1.2");
  EXPECT_EQ(Normal("1.0+Ubuntu-1"), "1.0+ubuntu.1");
  EXPECT_EQ(Normal("1.0+abc_007.X"), "1.0+abc.7.x");
  EXPECT_EQ(Normal("1.0a-1"), "1.0a1");  // the number belongs to the pre-release
  EXPECT_EQ(Normal("1.0a.-1"), "1.0a0.post1");
  EXPECT_EQ(Normal("1.0a..post1"), "1.0a0.post1");
  EXPECT_EQ(Normal("1.0.0a1.post2.dev3+ubuntu.1"), "1.0.0a1.post2.dev3+ubuntu.1");
  Version v = V("1!2.3.4rc5.post6.dev7+x.8");
  EXPECT_EQ(v.Public(), "1!2.3.4rc5.post6.dev7");
  EXPECT_EQ(v.BaseVersion(), "1!2.3.4");
  EXPECT_EQ(v.epoch(), 1u);
  EXPECT_EQ(v.release(), (std::vector<std::uint64_t>{2, 3, 4}));
  EXPECT_TRUE(v.is_prerelease());
  EXPECT_TRUE(v.is_postrelease());
  EXPECT_TRUE(v.is_devrelease());
  EXPECT_TRUE(v.has_local());
  EXPECT_FALSE(V("1.0.post1").is_prerelease());
  EXPECT_TRUE(V("1.0.dev1").is_prerelease());
}

TEST(Version, RejectsInvalid) {
  for (std::string_view text : {"", "1.0+", "1..0", "a1", "1.0.", ".1", "1.0+a..b", "1.0+-a", "v",
                                "1.0 a1", "1!", "1.0-", "1.0post1-1", "1.0.dev1.post1", "1.0+ab+cd",
                                "1.0_+x", "1.0a1b2", "1.0.*", "99999999999999999999"}) {
    util::Result<Version> v = Version::Parse(text);
    ASSERT_FALSE(v) << text;
    EXPECT_EQ(v.error().kind, util::ErrorKind::kValueError);
    EXPECT_EQ(v.error().message, "Invalid version: '" + std::string(text) + "'");
  }
}

TEST(Version, Orders) {
  const std::vector<std::string_view> ascending = {"0.9",
                                                   "1.0.dev456",
                                                   "1.0a1",
                                                   "1.0a2.dev456",
                                                   "1.0a12.dev456",
                                                   "1.0a12",
                                                   "1.0b1.dev456",
                                                   "1.0b2",
                                                   "1.0b2.post345.dev456",
                                                   "1.0b2.post345",
                                                   "1.0rc1.dev456",
                                                   "1.0rc1",
                                                   "1.0",
                                                   "1.0+abc.5",
                                                   "1.0+abc.7",
                                                   "1.0+5",
                                                   "1.0.post456.dev34",
                                                   "1.0.post456",
                                                   "1.0.15",
                                                   "1.1.dev1",
                                                   "1!0.1"};
  for (std::size_t i = 0; i + 1 < ascending.size(); ++i) {
    EXPECT_LT(V(ascending[i]), V(ascending[i + 1])) << ascending[i] << " < " << ascending[i + 1];
  }
  EXPECT_EQ(V("1.0"), V("1.0.0"));
  EXPECT_EQ(V("1.0"), V("1"));
  EXPECT_EQ(V("1.0a"), V("1.0-alpha0"));
  EXPECT_NE(V("1.0"), V("1.0+0"));
  EXPECT_LT(V("1.0+a"), V("1.0+a.0"));
  EXPECT_LT(V("1.0+abc"), V("1.0+abd"));
  EXPECT_LT(V("1.0+zzz"), V("1.0+0"));  // numbers sort above strings
  EXPECT_LT(V("1.0+2"), V("1.0+10"));
  EXPECT_LT(V("5.0"), V("1!0.1"));
}

TEST(SpecifierSet, Compatible) {
  EXPECT_TRUE(In("~=2.2", "2.2"));
  EXPECT_TRUE(In("~=2.2", "2.9.1"));
  EXPECT_TRUE(In("~=2.2", "2.2.post1"));
  EXPECT_FALSE(In("~=2.2", "3.0"));
  EXPECT_FALSE(In("~=2.2", "2.1"));
  EXPECT_TRUE(In("~=1.4.5a4", "1.4.5a4"));
  EXPECT_TRUE(In("~=1.4.5a4", "1.4.9"));
  EXPECT_FALSE(In("~=1.4.5a4", "1.5.0"));
  EXPECT_TRUE(In("~=1.4.5a4", "1.4.6a1"));  // the clause names a pre-release
  EXPECT_TRUE(In("~=1.4.5", "1.4.5+local"));
  EXPECT_TRUE(In("~=1!2.0", "1!2.5"));
  EXPECT_FALSE(In("~=1!2.0", "2.5"));
}

TEST(SpecifierSet, EqualityAndPrefix) {
  EXPECT_TRUE(In("==1.2.*", "1.2"));
  EXPECT_TRUE(In("==1.2.*", "1.2.3.post1"));
  EXPECT_TRUE(In("==1.2.*", "1.2+local"));
  EXPECT_FALSE(In("==1.2.*", "1.20"));
  EXPECT_FALSE(In("==1.2.*", "1.3"));
  EXPECT_TRUE(In("==1.2.0.*", "1.2"));
  EXPECT_TRUE(In("==1.2.0.*", "1.2a1", true));  // 1.2a1 is 1.2.0a1 (packaging >= 22)
  EXPECT_TRUE(In("!=1.2.*", "1.3"));
  EXPECT_FALSE(In("!=1.2.*", "1.2.9"));
  EXPECT_TRUE(In("==1.0", "1.0+local"));
  EXPECT_TRUE(In("==1.0", "1.0.0"));
  EXPECT_FALSE(In("==1.0+local", "1.0"));
  EXPECT_FALSE(In("==1.0+local", "1.0+other"));
  EXPECT_TRUE(In("==1.0+local", "1.0.0+local"));
  EXPECT_FALSE(In("!=1.0", "1.0+local"));
  EXPECT_FALSE(In("===foobar", "1.0"));
  EXPECT_TRUE(In("===1.0", "1.0"));
  EXPECT_FALSE(In("===1.0", "1.0.0"));  // string equality, not version equality
  EXPECT_TRUE(In("===1.0+ABC", "1.0+abc"));
}

TEST(SpecifierSet, ExclusiveBounds) {
  EXPECT_TRUE(In(">1.7", "1.7.1"));
  EXPECT_FALSE(In(">1.7", "1.7.post1"));
  EXPECT_FALSE(In(">1.7", "1.7+local"));
  EXPECT_TRUE(In(">1.7.post1", "1.7.post2"));
  EXPECT_TRUE(In(">1.7", "1.8.post1"));
  EXPECT_FALSE(In("<1.7", "1.7a1", true));
  EXPECT_FALSE(In("<1.7", "1.7.dev0", true));
  EXPECT_TRUE(In("<1.7", "1.6.9a1", true));
  EXPECT_TRUE(In("<1.7rc1", "1.7a1", true));  // a pre-release bound admits earlier ones
  EXPECT_FALSE(In("<1.7rc1", "1.7a1"));       // `<` never names a pre-release
  EXPECT_TRUE(In("<1.7", "1.6+local"));
  EXPECT_TRUE(In("<=1.7", "1.7+local"));
  EXPECT_TRUE(In(">=1.7", "1.7+local"));
}

TEST(SpecifierSet, PreReleases) {
  EXPECT_FALSE(In(">=1.0", "2.0a1"));
  EXPECT_TRUE(In(">=1.0", "2.0a1", true));
  EXPECT_TRUE(In(">=1.0a1", "2.0a1"));
  EXPECT_TRUE(In(">=1.0a1,<3", "2.0b1"));
  EXPECT_FALSE(In(">=1.0a1", "2.0a1", false));
  EXPECT_FALSE(In("!=1.0a1", "2.0a1"));  // != names nothing
  EXPECT_FALSE(In(">0.9", "1.0.dev1"));
  EXPECT_FALSE(In("", "1.0a1"));
  EXPECT_TRUE(In("", "1.0a1", true));
  EXPECT_TRUE(In("", "1.0"));

  std::vector<Version> versions = {V("1.0"), V("2.0a1"), V("1.5")};
  auto strings = [](const std::vector<Version>& vs) {
    std::vector<std::string> out;
    for (const Version& v : vs) out.push_back(v.ToString());
    return out;
  };
  using Strings = std::vector<std::string>;
  EXPECT_EQ(strings(S(">=1.2").Filter(versions)), (Strings{"1.5"}));
  EXPECT_EQ(strings(S(">=1.2").Filter(versions, true)), (Strings{"2.0a1", "1.5"}));
  EXPECT_EQ(strings(S("").Filter(versions)), (Strings{"1.0", "1.5"}));
  EXPECT_EQ(strings(S("").Filter({V("2.0a1"), V("2.0b1")})), (Strings{"2.0a1", "2.0b1"}));
  EXPECT_EQ(strings(S("").Filter({V("2.0a1")}, false)), Strings{});
  // Like `packaging`, a non-empty set does not fall back to pre-releases.
  EXPECT_EQ(strings(S(">=1.2").Filter({V("2.0a1")})), Strings{});
}

TEST(SpecifierSet, ParsesAndPrints) {
  EXPECT_TRUE(S("").empty());
  EXPECT_TRUE(S(" , ").empty());
  EXPECT_EQ(S(">= 1.0 , <2,!=1.5.*").ToString(), "!=1.5.*,<2,>=1.0");
  EXPECT_EQ(S("==1.0.0-ALPHA").ToString(), "==1.0.0-ALPHA");  // printed as written
  EXPECT_EQ(S(">=1.0,>=1.0.0").ToString(), ">=1.0");
  EXPECT_EQ(S("~=1.0,~=1.0.0").ToString(), "~=1.0,~=1.0.0");
  EXPECT_EQ(S("===  foobar ").ToString(), "===foobar");
  for (std::string_view text :
       {"=>1.0", "~=1.*", "~=1", "==1.0.*+local", ">=1.0.*", "<1.0+local", "==", ">=", "1.0",
        "==1.0.dev1.*", "== 1.0 a", "===a b", "~=1.0+local", ">=1.0,", "=1.0", "<>1.0"}) {
    if (text == ">=1.0,") {
      EXPECT_TRUE(SpecifierSet::Parse(text)) << text;  // empty clauses are skipped
      continue;
    }
    util::Result<SpecifierSet> s = SpecifierSet::Parse(text);
    ASSERT_FALSE(s) << text;
    EXPECT_EQ(s.error().kind, util::ErrorKind::kValueError);
  }
  EXPECT_EQ(SpecifierSet::Parse(">=1, =>2").error().message, "Invalid specifier: '=>2'");
}

// --- Differential test against Python's `packaging` -------------------------------------------

constexpr char kScript[] = R"PY(
import functools, sys
try:
    from pip._vendor.packaging.version import Version, InvalidVersion
    from pip._vendor.packaging.specifiers import Specifier, SpecifierSet, InvalidSpecifier
except ImportError:
    try:
        from packaging.version import Version, InvalidVersion
        from packaging.specifiers import Specifier, SpecifierSet, InvalidSpecifier
    except ImportError:
        sys.exit(3)

lines = open(sys.argv[1]).read().split("\n")
n_versions, n_specs, n_probes = map(int, lines[0].split())
texts = [bytes.fromhex(l).decode() for l in lines[1:1 + n_versions]]
specs = [bytes.fromhex(l).decode() for l in lines[1 + n_versions:1 + n_versions + n_specs]]
probes = [Version(bytes.fromhex(l).decode())
          for l in lines[1 + n_versions + n_specs:1 + n_versions + n_specs + n_probes]]
out = []
valid = []
for i, t in enumerate(texts):
    try:
        v = Version(t)
    except InvalidVersion:
        out.append("V\t!")
        continue
    valid.append((i, v))
    out.append("V\t" + str(v))
order = sorted(valid, key=lambda p: p[1])
out.append("S\t" + " ".join(str(i) for i, _ in order))
out.append("C\t" + "".join("=" if a[1] == b[1] else "<" for a, b in zip(order, order[1:])))
for s in specs:
    try:
        for clause in s.split(","):
            if clause.strip():
                Specifier(clause)
        ss = SpecifierSet(s)
    except InvalidSpecifier:
        out.append("P\t!")
        continue
    flags = "".join(str(int(ss.contains(p)) + 2 * int(ss.contains(p, prereleases=True))
                        + 4 * int(ss.contains(p, prereleases=False))) for p in probes)
    kept = " ".join(str(probes.index(p)) for p in ss.filter(probes))
    out.append("P\t" + str(ss) + "\t" + flags + "\t" + kept)
print("\n".join(out))
)PY";

std::string Hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// A fixed-seed generator so that failures reproduce.
class Rng {
 public:
  std::uint64_t Next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return state_ >> 33;
  }
  template <class T>
  const T& Pick(const std::vector<T>& items) {
    return items[Next() % items.size()];
  }
  bool Chance(int percent) { return static_cast<int>(Next() % 100) < percent; }

 private:
  std::uint64_t state_ = 20240607;
};

std::vector<std::string> GenerateVersions(Rng& rng, std::size_t count) {
  const std::vector<std::string> seps = {"", ".", "-", "_"};
  const std::vector<std::string> pre = {"a",   "b",       "c", "rc", "alpha", "beta",
                                        "pre", "preview", "A", "RC", "Alpha"};
  const std::vector<std::string> post = {"post", "rev", "r", "POST"};
  const std::vector<std::string> numbers = {"0", "1", "2", "10", "00", "007", ""};
  const std::vector<std::string> local = {"ubuntu", "1", "ABC", "0", "a1", "deb10u2", "z"};
  const std::vector<std::string> junk = {"",   "",  "",  "",  "",  ".", "+",
                                         "..", "*", "x", "-", " ", "!"};
  std::vector<std::string> out;
  while (out.size() < count) {
    std::string v;
    if (rng.Chance(10)) v += rng.Pick(std::vector<std::string>{" ", "\t", "v", "V"});
    if (rng.Chance(10)) v += rng.Pick(std::vector<std::string>{"1", "0", "2"}) + "!";
    std::size_t parts = 1 + rng.Next() % 4;
    for (std::size_t i = 0; i < parts; ++i) {
      if (i > 0) v += '.';
      v += rng.Pick(std::vector<std::string>{"0", "1", "2", "3", "10", "01"});
    }
    if (rng.Chance(35)) v += rng.Pick(seps) + rng.Pick(pre) + rng.Pick(seps) + rng.Pick(numbers);
    if (rng.Chance(25)) {
      v += rng.Chance(20) ? "-" + rng.Pick(std::vector<std::string>{"1", "2", "0"})
                          : rng.Pick(seps) + rng.Pick(post) + rng.Pick(seps) + rng.Pick(numbers);
    }
    if (rng.Chance(20)) v += rng.Pick(seps) + "dev" + rng.Pick(seps) + rng.Pick(numbers);
    if (rng.Chance(20)) {
      v += "+" + rng.Pick(local);
      if (rng.Chance(50)) v += rng.Pick(std::vector<std::string>{".", "-", "_"}) + rng.Pick(local);
    }
    if (rng.Chance(15)) {
      v.insert(rng.Next() % (v.size() + 1), rng.Pick(junk));
    }
    if (rng.Chance(5)) v += " ";
    out.push_back(v);
  }
  return out;
}

// Specifiers use normalised versions where `packaging` 21.3 (pip's vendored
// copy) works on the text as written and later releases normalise it.
std::vector<std::string> GenerateSpecifiers(Rng& rng, std::size_t count) {
  const std::vector<std::string> versions = {
      "1.0",       "1.0.0",    "1",   "1.2",   "1.2.3",       "1.0a1", "1.0rc1",
      "1.0.post1", "1.0.dev1", "2.0", "1!1.0", "1.0b2.post1", "0.9",   "1.1.dev0"};
  const std::vector<std::string> ops = {"==", "!=", ">=", "<=", ">", "<", "~=", "==="};
  std::vector<std::string> out;
  auto clause = [&](const std::string& op) {
    std::string version = rng.Pick(versions);
    if (op == "~=" && version.find('.') == std::string::npos) version += ".0";
    std::string text = op + (rng.Chance(15) ? " " : "") + version;
    if ((op == "==" || op == "!=") && rng.Chance(30)) {
      // `packaging` 21.3 pads after cutting: "1.0a1" fails "==1.0.0.*" there.
      if (version == "1.0.0") text.resize(text.size() - 2);
      text += rng.Chance(80) ? ".*" : "+local.1";
    } else if (op == ">=" && rng.Chance(10)) {
      text += "-ALPHA";  // an un-normalised spelling, compared as a version
    } else if (rng.Chance(4)) {
      text += rng.Pick(std::vector<std::string>{".*", "+x", "."});  // mostly invalid
    }
    return text;
  };
  while (out.size() < count) {
    std::string first = rng.Pick(ops);
    std::string text = clause(first);
    if (first != "===" && rng.Chance(40)) {
      std::string second;
      do {
        second = rng.Pick(ops);
      } while (second == first || second == "===");
      text += rng.Chance(50) ? "," : " , ";
      text += clause(second);
    }
    if (rng.Chance(3)) text = "=>" + text.substr(2);
    out.push_back(text);
  }
  out.push_back("");
  return out;
}

TEST(Differential, MatchesPythonPackaging) {
  Rng rng;
  std::vector<std::string> texts = GenerateVersions(rng, 300);
  std::vector<std::string> specs = GenerateSpecifiers(rng, 100);
  const std::vector<std::string> probe_texts = {
      "0.9",     "1.0.dev1",    "1.0a1",       "1.0rc1",   "1.0",   "1.0+local.1", "1.0+x",
      "1.0.0",   "1.0.post1",   "1.0.1",       "1.1.dev0", "1.1",   "1.2",         "1.2.3",
      "1.2.3a1", "1.2.3.post1", "1.2.9",       "1.9",      "2.0a1", "2.0",         "2.0+local.1",
      "1!1.0",   "1!1.0.5",     "1.0b2.post1", "1.0b3",    "3.0"};
  std::vector<Version> probes;
  for (const std::string& p : probe_texts) probes.push_back(V(p));

  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("strata_version_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream input(dir / "input.txt");
    input << texts.size() << ' ' << specs.size() << ' ' << probe_texts.size() << '\n';
    for (const auto& t : texts) input << Hex(t) << '\n';
    for (const auto& s : specs) input << Hex(s) << '\n';
    for (const auto& p : probe_texts) input << Hex(p) << '\n';
    std::ofstream(dir / "check.py") << kScript;
  }
  std::string command =
      "python3 '" + (dir / "check.py").string() + "' '" + (dir / "input.txt").string() + "' 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  int status = pclose(pipe);
  std::filesystem::remove_all(dir);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) GTEST_SKIP() << "no packaging for python3";
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;

  std::vector<std::vector<std::string>> rows;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    while (true) {
      std::size_t tab = line.find('\t', start);
      fields.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    rows.push_back(fields);
  }
  ASSERT_EQ(rows.size(), texts.size() + 2 + specs.size()) << output;

  // Versions: validity and normal form.
  std::vector<std::pair<std::size_t, Version>> valid;
  std::size_t invalid_count = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    util::Result<Version> v = Version::Parse(texts[i]);
    EXPECT_EQ(v ? v->ToString() : "!", rows[i][1]) << "version '" << texts[i] << "'";
    if (v) {
      valid.emplace_back(i, *v);
    } else {
      ++invalid_count;
    }
  }
  EXPECT_GT(invalid_count, 10u);
  EXPECT_GT(valid.size(), 150u);

  // Ordering: the same stable sort, and the same equalities between neighbours.
  std::stable_sort(valid.begin(), valid.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  std::string order, relations;
  for (std::size_t i = 0; i < valid.size(); ++i) {
    order += (i ? " " : "") + std::to_string(valid[i].first);
    if (i > 0) relations += valid[i - 1].second == valid[i].second ? "=" : "<";
  }
  EXPECT_EQ(order, rows[texts.size()][1]);
  EXPECT_EQ(relations, rows[texts.size() + 1].size() > 1 ? rows[texts.size() + 1][1] : "");

  // Specifiers: validity, printing, Contains with each prereleases setting, Filter.
  std::size_t valid_specs = 0;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const std::vector<std::string>& row = rows[texts.size() + 2 + i];
    util::Result<SpecifierSet> s = SpecifierSet::Parse(specs[i]);
    if (!s) {
      EXPECT_EQ(row[1], "!") << "specifier '" << specs[i] << "': " << s.error().message;
      continue;
    }
    ++valid_specs;
    ASSERT_EQ(row.size(), 4u) << "specifier '" << specs[i] << "' is valid here only";
    EXPECT_EQ(s->ToString(), row[1]) << specs[i];
    for (std::size_t p = 0; p < probes.size(); ++p) {
      int flags = int{s->Contains(probes[p])} + 2 * int{s->Contains(probes[p], true)} +
                  4 * int{s->Contains(probes[p], false)};
      EXPECT_EQ(std::to_string(flags), row[2].substr(p, 1))
          << "'" << specs[i] << "' contains " << probe_texts[p] << " (1: default, 2: with "
          << "pre-releases, 4: without)";
    }
    std::string kept;
    for (const Version& v : s->Filter(probes)) {
      auto at = std::find(probes.begin(), probes.end(), v) - probes.begin();
      kept += (kept.empty() ? "" : " ") + std::to_string(at);
    }
    EXPECT_EQ(kept, row[3]) << "filter '" << specs[i] << "'";
  }
  EXPECT_GT(valid_specs, 70u);
}

}  // namespace
}  // namespace strata::pyinstall
