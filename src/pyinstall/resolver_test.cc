#include "pyinstall/resolver.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "pyinstall/facts_testing.h"

namespace strata::pyinstall {
namespace {

using testing::LinuxFacts;

Requirement R(std::string_view text) {
  util::Result<Requirement> r = Requirement::Parse(text);
  EXPECT_TRUE(r) << text << ": " << (r ? "" : r.error().message);
  return r ? *r : Requirement();
}

Version V(std::string_view text) {
  util::Result<Version> v = Version::Parse(text);
  EXPECT_TRUE(v) << text;
  return v ? *v : Version();
}

struct Release {
  std::vector<std::string> requires_dist;
  std::vector<std::string> extras;
  std::string requires_python;
  bool yanked = false;
};

// An index in memory: projects, versions and their metadata.
class MemoryProvider : public ResolverProvider {
 public:
  void Add(const std::string& project, const std::string& version, Release release = {}) {
    Entry entry;
    entry.candidate.version = V(version);
    entry.candidate.yanked = release.yanked;
    if (!release.requires_python.empty()) {
      entry.candidate.requires_python = *SpecifierSet::Parse(release.requires_python);
    }
    for (const std::string& line : release.requires_dist) {
      entry.metadata.requires_dist.push_back(R(line));
    }
    entry.metadata.provides_extra = release.extras;
    projects_[project].push_back(std::move(entry));
  }
  void AddDirect(const std::string& project, const std::string& url, const std::string& version,
                 std::vector<std::string> requires_dist = {}) {
    Entry entry;
    entry.candidate.version = V(version);
    entry.candidate.url = url;
    for (const std::string& line : requires_dist) entry.metadata.requires_dist.push_back(R(line));
    direct_[{project, url}] = std::move(entry);
  }
  void BreakMetadata(const std::string& project, const std::string& version) {
    broken_.emplace(project, version);
  }

  util::Result<std::vector<Candidate>> Candidates(const std::string& project) override {
    ++candidate_calls[project];
    std::vector<Candidate> out;
    for (const Entry& entry : projects_[project]) out.push_back(entry.candidate);
    return out;
  }
  util::Result<Candidate> DirectCandidate(const std::string& project,
                                          const std::string& url) override {
    auto it = direct_.find({project, url});
    if (it == direct_.end()) return util::NotFoundError("no such file");
    return it->second.candidate;
  }
  util::Result<DistributionMetadata> Metadata(const std::string& project,
                                              const Candidate& candidate) override {
    if (broken_.contains({project, candidate.version.ToString()})) {
      return util::IOError("connection reset");
    }
    if (!candidate.url.empty()) return direct_.at({project, candidate.url}).metadata;
    for (const Entry& entry : projects_[project]) {
      if (entry.candidate.version == candidate.version) return entry.metadata;
    }
    return util::NotFoundError("no metadata");
  }

  std::map<std::string, int> candidate_calls;

 private:
  struct Entry {
    Candidate candidate;
    DistributionMetadata metadata;
  };
  std::map<std::string, std::vector<Entry>> projects_;
  std::map<std::pair<std::string, std::string>, Entry> direct_;
  std::set<std::pair<std::string, std::string>> broken_;
};

util::Result<Resolution> ResolveIn(MemoryProvider& provider, const std::vector<std::string>& roots,
                                   const ResolveOptions& options = {},
                                   const InterpreterFacts& facts = LinuxFacts()) {
  std::vector<Requirement> requirements;
  for (const std::string& root : roots) requirements.push_back(R(root));
  return Resolve(requirements, facts, provider, options);
}

// "a==1.0 b==2.0", sorted by name.
std::string Pins(const util::Result<Resolution>& resolution) {
  if (!resolution) return "error: " + resolution.error().message;
  std::string out;
  for (const auto& [name, project] : resolution->projects) {
    if (!out.empty()) out += ' ';
    out += name + "==" + project.candidate.version.ToString();
  }
  return out;
}

std::string Message(const util::Result<Resolution>& resolution) {
  if (resolution) return "resolved: " + Pins(resolution);
  EXPECT_EQ(resolution.error().kind, util::ErrorKind::kValueError);
  return resolution.error().message;
}

TEST(Resolver, SimpleChain) {
  MemoryProvider p;
  p.Add("a", "1.0", {.requires_dist = {"b>=1"}});
  p.Add("b", "1.0", {.requires_dist = {"c"}});
  p.Add("b", "2.0", {.requires_dist = {"c<2"}});
  p.Add("c", "1.0");
  p.Add("c", "2.0");
  util::Result<Resolution> r = ResolveIn(p, {"a"});
  EXPECT_EQ(Pins(r), "a==1.0 b==2.0 c==1.0");
  ASSERT_TRUE(r);
  const ResolvedProject& c = r->projects.at("c");
  ASSERT_EQ(c.required_by.size(), 1u);
  EXPECT_EQ(c.required_by[0].project, "b");
  EXPECT_EQ(c.required_by[0].requirement.ToString(), "c<2");
  EXPECT_EQ(r->projects.at("a").required_by[0].project, "");
}

TEST(Resolver, EmptyRootsResolveToNothing) {
  MemoryProvider p;
  EXPECT_EQ(Pins(ResolveIn(p, {})), "");
}

TEST(Resolver, Diamond) {
  MemoryProvider p;
  p.Add("app", "1.0", {.requires_dist = {"left", "right"}});
  p.Add("left", "1.0", {.requires_dist = {"base>=1"}});
  p.Add("right", "1.0", {.requires_dist = {"base<2"}});
  for (const char* v : {"0.9", "1.0", "1.5", "2.0"}) p.Add("base", v);
  util::Result<Resolution> r = ResolveIn(p, {"app"});
  EXPECT_EQ(Pins(r), "app==1.0 base==1.5 left==1.0 right==1.0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->projects.at("base").required_by.size(), 2u);
}

TEST(Resolver, BacktracksFromNewestToOlder) {
  MemoryProvider p;
  p.Add("a", "1.0", {.requires_dist = {"c==2"}});
  p.Add("a", "2.0", {.requires_dist = {"c==1"}});
  p.Add("b", "1.0", {.requires_dist = {"c==2"}});
  p.Add("c", "1");
  p.Add("c", "2");
  EXPECT_EQ(Pins(ResolveIn(p, {"a", "b"})), "a==1.0 b==1.0 c==2");
  EXPECT_EQ(Pins(ResolveIn(p, {"b", "a"})), "a==1.0 b==1.0 c==2");
}

TEST(Resolver, BacktracksThroughADeeperDependency) {
  MemoryProvider p;
  // The newest x pulls in y 2, whose z requirement clashes with the pin.
  p.Add("x", "1.0", {.requires_dist = {"y<2"}});
  p.Add("x", "2.0", {.requires_dist = {"y>=2"}});
  p.Add("y", "1.0", {.requires_dist = {"z<2"}});
  p.Add("y", "2.0", {.requires_dist = {"z>=2"}});
  p.Add("z", "1.0");
  p.Add("z", "2.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"x", "z==1.0"})), "x==1.0 y==1.0 z==1.0");
}

TEST(Resolver, ExtrasAddTheirDependencies) {
  MemoryProvider p;
  p.Add("demo", "1.0",
        {.requires_dist = {"base", "fast; extra == \"speed\"", "pretty; extra == 'Color_Out'"},
         .extras = {"speed", "color-out"}});
  p.Add("base", "1.0");
  p.Add("fast", "1.0");
  p.Add("pretty", "1.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"demo"})), "base==1.0 demo==1.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"demo[speed]"})), "base==1.0 demo==1.0 fast==1.0");
  // PEP 685: extras compare normalised on both sides.
  util::Result<Resolution> r = ResolveIn(p, {"demo[COLOR.out]"});
  EXPECT_EQ(Pins(r), "base==1.0 demo==1.0 pretty==1.0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->projects.at("demo").extras, (std::set<std::string>{"color-out"}));
  ASSERT_EQ(r->projects.at("pretty").required_by.size(), 1u);
  EXPECT_EQ(r->projects.at("pretty").required_by[0].project, "demo");
  EXPECT_EQ(r->projects.at("pretty").required_by[0].extra, "color-out");
}

TEST(Resolver, ExtrasMergePerProject) {
  MemoryProvider p;
  p.Add("demo", "1.0",
        {.requires_dist = {"fast; extra == 'a'", "pretty; extra == 'b'"}, .extras = {"a", "b"}});
  p.Add("fast", "1.0");
  p.Add("pretty", "1.0");
  p.Add("app", "1.0", {.requires_dist = {"demo[b]"}});
  util::Result<Resolution> r = ResolveIn(p, {"demo[a]", "app"});
  EXPECT_EQ(Pins(r), "app==1.0 demo==1.0 fast==1.0 pretty==1.0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->projects.at("demo").extras, (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(r->warnings.empty());
}

TEST(Resolver, ExtraRequestedLaterStillConstrains) {
  MemoryProvider p;
  // demo is chosen first (fewest candidates); app then asks for demo[x],
  // whose dependency rules out the newest lib.
  p.Add("demo", "1.0", {.requires_dist = {"lib<2; extra == 'x'"}, .extras = {"x"}});
  p.Add("app", "1.0", {.requires_dist = {"demo[x]"}});
  p.Add("app", "2.0", {.requires_dist = {"demo[x]"}});
  p.Add("lib", "1.0");
  p.Add("lib", "2.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"demo", "app", "lib"})), "app==2.0 demo==1.0 lib==1.0");
}

TEST(Resolver, UnknownExtraIsAWarning) {
  MemoryProvider p;
  p.Add("demo", "1.0", {.requires_dist = {"fast; extra == 'x'"}});
  p.Add("fast", "1.0");
  util::Result<Resolution> r = ResolveIn(p, {"demo[x]"});
  EXPECT_EQ(Pins(r), "demo==1.0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->warnings, (std::vector<std::string>{"demo 1.0 does not provide the extra 'x'"}));
}

TEST(Resolver, SelfReferencingExtras) {
  MemoryProvider p;
  p.Add(
      "demo", "1.0",
      {.requires_dist = {"demo[a,b]; extra == 'all'", "fast; extra == 'a'", "pretty; extra == 'b'"},
       .extras = {"a", "b", "all"}});
  p.Add("fast", "1.0");
  p.Add("pretty", "1.0");
  util::Result<Resolution> r = ResolveIn(p, {"demo[all]"});
  EXPECT_EQ(Pins(r), "demo==1.0 fast==1.0 pretty==1.0");
}

TEST(Resolver, MarkersExcludeDependenciesForTheTarget) {
  MemoryProvider p;
  p.Add("demo", "1.0",
        {.requires_dist = {"winonly; sys_platform == 'win32'", "old; python_version < '3.8'",
                           "new; python_version >= '3.8'"}});
  p.Add("new", "1.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"demo", "rootwin; sys_platform == 'win32'"})), "demo==1.0 new==1.0");

  InterpreterFacts windows = LinuxFacts();
  windows.sys_platform = "win32";
  p.Add("winonly", "1.0");
  p.Add("rootwin", "1.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"demo", "rootwin; sys_platform == 'win32'"}, {}, windows)),
            "demo==1.0 new==1.0 rootwin==1.0 winonly==1.0");
}

TEST(Resolver, PreReleaseRules) {
  MemoryProvider p;
  p.Add("foo", "1.0");
  p.Add("foo", "2.0b1");
  p.Add("bar", "1.0a1");
  p.Add("bar", "1.0a2");
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"})), "foo==1.0");
  // A specifier naming a pre-release lets them in.
  EXPECT_EQ(Pins(ResolveIn(p, {"foo>=2.0b1"})), "foo==2.0b1");
  EXPECT_EQ(Pins(ResolveIn(p, {"foo>=1.5"})), "foo==2.0b1");  // no final satisfies
  EXPECT_EQ(Pins(ResolveIn(p, {"bar"})), "bar==1.0a2");       // only pre-releases exist
  ResolveOptions pre;
  pre.allow_prereleases = true;
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"}, pre)), "foo==2.0b1");
}

TEST(Resolver, PreReleaseNamedByADependency) {
  MemoryProvider p;
  p.Add("app", "1.0", {.requires_dist = {"foo>=2.0b1"}});
  p.Add("foo", "1.0");
  p.Add("foo", "2.0b1");
  p.Add("foo", "2.0b2");
  EXPECT_EQ(Pins(ResolveIn(p, {"app", "foo"})), "app==1.0 foo==2.0b2");
}

TEST(Resolver, YankedOnlyWhenPinnedExactly) {
  MemoryProvider p;
  p.Add("foo", "1.0");
  p.Add("foo", "2.0", {.yanked = true});
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"})), "foo==1.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"foo==2.0"})), "foo==2.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"foo===2.0"})), "foo==2.0");
  EXPECT_EQ(Message(ResolveIn(p, {"foo>=2"})),
            "No version of foo satisfies foo>=2 (available: 1.0; yanked: 2.0)");
  EXPECT_EQ(Message(ResolveIn(p, {"foo==2.*"})),
            "No version of foo satisfies foo==2.* (available: 1.0; yanked: 2.0)");
}

TEST(Resolver, RequiresPythonFiltersCandidates) {
  MemoryProvider p;
  p.Add("foo", "1.0", {.requires_python = ">=3.8"});
  p.Add("foo", "2.0", {.requires_python = ">=3.12"});
  p.Add("foo", "2.1", {.requires_python = ">=3.12"});
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"})), "foo==1.0");
  EXPECT_EQ(Message(ResolveIn(p, {"foo>=2"})),
            "No version of foo satisfies foo>=2: all versions of foo >=2 require Python >=3.12; "
            "the target is 3.11.7");
  InterpreterFacts newer = LinuxFacts();
  newer.python_full_version = "3.12.1";
  newer.python_version = "3.12";
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"}, {}, newer)), "foo==2.1");
  // The micro version counts, and an alpha target is its release.
  p.Add("bar", "1.0", {.requires_python = ">=3.11.8"});
  EXPECT_EQ(Message(ResolveIn(p, {"bar"})),
            "No version of bar satisfies bar: all versions of bar require Python >=3.11.8; the "
            "target is 3.11.7");
  newer.python_full_version = "3.13.0a2";
  p.Add("baz", "1.0", {.requires_python = ">=3.13"});
  EXPECT_EQ(Pins(ResolveIn(p, {"baz"}, {}, newer)), "baz==1.0");
}

TEST(Resolver, PreferInstalledOnlyWhenAllowed) {
  MemoryProvider p;
  p.Add("foo", "1.0");
  p.Add("foo", "1.5");
  p.Add("foo", "2.0");
  ResolveOptions options;
  options.preferred["foo"] = V("1.5");
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"}, options)), "foo==2.0");  // kNewest ignores it
  options.preference = PreferencePolicy::kPreferInstalled;
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"}, options)), "foo==1.5");
  EXPECT_EQ(Pins(ResolveIn(p, {"foo>=2"}, options)), "foo==2.0");
  // A preferred version that conflicts is given up.
  p.Add("app", "1.0", {.requires_dist = {"foo!=1.5"}});
  EXPECT_EQ(Pins(ResolveIn(p, {"app", "foo"}, options)), "app==1.0 foo==2.0");
  // Preferences for yanked versions and pre-releases do not lift those rules.
  p.Add("foo", "3.0", {.yanked = true});
  p.Add("foo", "4.0b1");
  options.preferred["foo"] = V("3.0");
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"}, options)), "foo==2.0");
  options.preferred["foo"] = V("4.0b1");
  EXPECT_EQ(Pins(ResolveIn(p, {"foo"}, options)), "foo==2.0");
}

TEST(Resolver, IssueExampleConflictMessage) {
  MemoryProvider p;
  p.Add("demo", "1.0", {.requires_dist = {"six"}});
  p.Add("demo", "2.0", {.requires_dist = {"six>=1.16"}});
  p.Add("six", "1.15");
  p.Add("six", "1.16");
  EXPECT_EQ(Message(ResolveIn(p, {"demo==2.0", "six==1.15"})),
            "Cannot install demo==2.0 and six==1.15: demo 2.0 requires six>=1.16, but the spec "
            "pins six==1.15.");
  EXPECT_EQ(Message(ResolveIn(p, {"six==1.15", "demo==2.0"})),
            "Cannot install six==1.15 and demo==2.0: demo 2.0 requires six>=1.16, but the spec "
            "pins six==1.15.");
  // Unpinned, the older demo works.
  EXPECT_EQ(Pins(ResolveIn(p, {"demo", "six==1.15"})), "demo==1.0 six==1.15");
}

TEST(Resolver, ConflictMessageNamesTheChain) {
  MemoryProvider p;
  p.Add("app", "1.0", {.requires_dist = {"lib"}});
  p.Add("lib", "1.0", {.requires_dist = {"six>=1.16"}});
  p.Add("six", "1.15");
  p.Add("six", "1.16");
  EXPECT_EQ(Message(ResolveIn(p, {"app", "six==1.15"})),
            "Cannot install app and six==1.15: lib 1.0 (via app 1.0) requires six>=1.16, but the "
            "spec pins six==1.15.");
  p.Add("tool", "1.0", {.requires_dist = {"foo>=3"}});
  p.Add("foo", "1.0");
  p.Add("foo", "2.0");
  EXPECT_EQ(Message(ResolveIn(p, {"tool"})),
            "Cannot install tool: tool 1.0 requires foo>=3, but no version of foo satisfies it "
            "(available: 1.0, 2.0).");
}

TEST(Resolver, ConflictBetweenTwoDependencies) {
  MemoryProvider p;
  p.Add("a", "1.0", {.requires_dist = {"c>=2"}});
  p.Add("b", "1.0", {.requires_dist = {"c<2"}});
  p.Add("c", "1.0");
  p.Add("c", "2.0");
  EXPECT_EQ(Message(ResolveIn(p, {"a", "b"})),
            "Cannot install a and b: a 1.0 requires c>=2, but b 1.0 requires c<2.");
}

TEST(Resolver, EveryCandidateFailingIsListed) {
  MemoryProvider p;
  p.Add("demo", "1.0", {.requires_dist = {"six>=1.17"}});
  p.Add("demo", "2.0", {.requires_dist = {"six>=1.16"}});
  p.Add("six", "1.15");
  p.Add("six", "1.16");
  p.Add("six", "1.17");
  EXPECT_EQ(Message(ResolveIn(p, {"demo", "six==1.15"})),
            "Cannot install demo and six==1.15: demo 2.0 requires six>=1.16, but the spec pins "
            "six==1.15; demo 1.0 requires six>=1.17, but the spec pins six==1.15.");
}

TEST(Resolver, NoMatchingVersion) {
  MemoryProvider p;
  p.Add("foo", "2.0");
  p.Add("foo", "1.0");
  EXPECT_EQ(Message(ResolveIn(p, {"foo>=3"})),
            "No version of foo satisfies foo>=3 (available: 1.0, 2.0)");
  EXPECT_EQ(Message(ResolveIn(p, {"nothing"})),
            "No version of nothing satisfies nothing (available: none)");
  EXPECT_EQ(Message(ResolveIn(p, {"foo>=2", "foo<2"})),
            "No version of foo satisfies foo>=2 and foo<2 (available: 1.0, 2.0)");
  p.Add("bar", "1.0");
  p.Add("bar", "2.0a1");
  EXPECT_EQ(Message(ResolveIn(p, {"bar>=3"})),
            "No version of bar satisfies bar>=3 (available: 1.0; pre-releases: 2.0a1)");
}

TEST(Resolver, Cycle) {
  MemoryProvider p;
  p.Add("a", "1.0", {.requires_dist = {"b"}});
  p.Add("b", "1.0", {.requires_dist = {"a"}});
  p.Add("b", "2.0", {.requires_dist = {"a>=2"}});
  util::Result<Resolution> r = ResolveIn(p, {"a"});
  EXPECT_EQ(Pins(r), "a==1.0 b==1.0");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->projects.at("a").required_by.size(), 2u);
  EXPECT_EQ(r->projects.at("a").required_by[1].project, "b");
}

TEST(Resolver, DirectReferences) {
  MemoryProvider p;
  p.Add("demo", "1.0");
  p.Add("demo", "3.0");
  p.AddDirect("demo", "https://example.com/demo-2.0-py3-none-any.whl", "2.0", {"six"});
  p.Add("six", "1.0");
  p.Add("app", "1.0", {.requires_dist = {"demo>=2"}});
  util::Result<Resolution> r =
      ResolveIn(p, {"app", "demo @ https://example.com/demo-2.0-py3-none-any.whl"});
  EXPECT_EQ(Pins(r), "app==1.0 demo==2.0 six==1.0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->projects.at("demo").candidate.url, "https://example.com/demo-2.0-py3-none-any.whl");
  EXPECT_EQ(
      Message(ResolveIn(p, {"demo @ https://example.com/demo-2.0-py3-none-any.whl", "demo>=3"})),
      "No version of demo satisfies demo @ https://example.com/demo-2.0-py3-none-any.whl and "
      "demo>=3 (available: 2.0)");
  util::Result<Resolution> missing = ResolveIn(p, {"demo @ https://example.com/nothing.whl"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, util::ErrorKind::kNotFound);
  EXPECT_EQ(missing.error().message,
            "Cannot get demo from https://example.com/nothing.whl: no such file");
}

TEST(Resolver, MetadataErrorsAreReported) {
  MemoryProvider p;
  p.Add("demo", "1.0");
  p.BreakMetadata("demo", "1.0");
  util::Result<Resolution> r = ResolveIn(p, {"demo"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, util::ErrorKind::kIOError);
  EXPECT_EQ(r.error().message, "Cannot get the metadata of demo 1.0: connection reset");
}

TEST(Resolver, ProviderIsAskedOncePerProject) {
  MemoryProvider p;
  p.Add("a", "1.0", {.requires_dist = {"c==2"}});
  p.Add("a", "2.0", {.requires_dist = {"c==1"}});
  p.Add("b", "1.0", {.requires_dist = {"c==2"}});
  p.Add("c", "1");
  p.Add("c", "2");
  EXPECT_EQ(Pins(ResolveIn(p, {"a", "b"})), "a==1.0 b==1.0 c==2");
  EXPECT_EQ(p.candidate_calls, (std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}}));
}

// 30 projects of 20 versions in a chain p0 → p1 → ... → p29, where every
// version of p29 requires p0==1: newest first, the only solution is the
// oldest p0, behind the whole chain.
void AddDeepGraph(MemoryProvider& p) {
  constexpr int kProjects = 30;
  constexpr int kVersions = 20;
  for (int i = 0; i < kProjects; ++i) {
    for (int v = 1; v <= kVersions; ++v) {
      std::string next = i + 1 < kProjects ? "p" + std::to_string(i + 1) : "p0==1";
      p.Add("p" + std::to_string(i), std::to_string(v), {.requires_dist = {next}});
    }
  }
}

TEST(Resolver, LargeGraphWithADeepSolution) {
  MemoryProvider p;
  AddDeepGraph(p);
  util::Result<Resolution> r = ResolveIn(p, {"p0"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->projects.size(), 30u);
  EXPECT_EQ(r->projects.at("p0").candidate.version.ToString(), "1");
  EXPECT_EQ(r->projects.at("p29").candidate.version.ToString(), "20");
  EXPECT_LT(r->rounds, ResolveOptions().max_rounds);
  RecordProperty("rounds", static_cast<int>(r->rounds));
}

TEST(Resolver, RoundBound) {
  MemoryProvider p;
  AddDeepGraph(p);
  ResolveOptions options;
  options.max_rounds = 100;
  util::Result<Resolution> r = ResolveIn(p, {"p0"}, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, util::ErrorKind::kTimeout);
  EXPECT_EQ(r.error().message, "Dependency resolution gave up after 100 rounds");
  options.max_rounds = 200000;
  options.deadline = std::chrono::steady_clock::now();
  r = ResolveIn(p, {"p0"}, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, util::ErrorKind::kTimeout);
}

TEST(Resolver, LargeGraphWithoutSolutionEnds) {
  MemoryProvider p;
  AddDeepGraph(p);
  util::Result<Resolution> r = ResolveIn(p, {"p0>=2"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, util::ErrorKind::kValueError);
  EXPECT_NE(r.error().message.find(
                "Cannot install p0>=2: p29 20 (via p0 20 → ... → p27 20 → p28 20) requires "
                "p0==1, but the spec requires p0>=2; p29 19 (via"),
            std::string::npos)
      << r.error().message;
  RecordProperty("message", r.error().message);
}

}  // namespace
}  // namespace strata::pyinstall
