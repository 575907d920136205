#include "pyinstall/resolver.h"

#include <algorithm>
#include <memory>
#include <tuple>
#include <utility>

namespace strata::pyinstall {
namespace {

// Shown version lists keep the newest this many.
constexpr std::size_t kMaxListedVersions = 20;
// Conflicts named in a final message; more are counted.
constexpr std::size_t kMaxShownConflicts = 5;
// Requirers named in a "via" chain: the first, "...", then the last two.
constexpr std::size_t kMaxChainShown = 4;
// Conflicts a failure carries up the search.
constexpr std::size_t kMaxCarriedConflicts = 50;

std::string CandidateKey(const Candidate& candidate) {
  std::string key = candidate.version.ToString();
  if (!candidate.url.empty()) key += " @ " + candidate.url;
  return key;
}

std::vector<std::string> Clauses(const SpecifierSet& specifier) {
  std::vector<std::string> out;
  std::string text = specifier.ToString();
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

bool IsExactClause(const std::string& clause) {
  if (clause.starts_with("===")) return true;
  return clause.starts_with("==") && !clause.ends_with(".*");
}

// `==V` (not a wildcard) or `===V` naming exactly `version`.
bool PinsExactly(const SpecifierSet& specifier, const Version& version) {
  for (const std::string& clause : Clauses(specifier)) {
    if (clause.starts_with("===")) {
      if (clause.substr(3) == version.ToString()) return true;
    } else if (IsExactClause(clause)) {
      util::Result<Version> pinned = Version::Parse(clause.substr(2));
      if (pinned && *pinned == version) return true;
    }
  }
  return false;
}

// The requirement without its marker: name, extras, specifier or URL.
std::string RequirementText(const Requirement& requirement) {
  std::string out = requirement.name;
  if (!requirement.extras.empty()) {
    out += '[';
    bool first = true;
    for (const std::string& extra : requirement.extras) {
      if (!first) out += ',';
      out += extra;
      first = false;
    }
    out += ']';
  }
  if (!requirement.url.empty()) return out + " @ " + requirement.url;
  return out + requirement.specifier.ToString();
}

std::string JoinVersions(std::vector<Version> versions) {
  std::sort(versions.begin(), versions.end());
  versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
  std::string out;
  std::size_t skip =
      versions.size() > kMaxListedVersions ? versions.size() - kMaxListedVersions : 0;
  if (skip > 0) out = "...";
  for (std::size_t i = skip; i < versions.size(); ++i) {
    if (!out.empty()) out += ", ";
    out += versions[i].ToString();
  }
  return out;
}

// "a", "a and b", "a, b and c".
std::string JoinAnd(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? " and " : ", ";
    out += items[i];
  }
  return out;
}

std::set<std::string> NormalizeAll(const std::set<std::string>& names) {
  std::set<std::string> out;
  for (const std::string& name : names) out.insert(NormalizeName(name));
  return out;
}

class Resolver {
 public:
  Resolver(const InterpreterFacts& target, ResolverProvider& provider,
           const ResolveOptions& options)
      : target_(target), provider_(provider), options_(options) {}

  util::Result<Resolution> Run(const std::vector<Requirement>& roots);

 private:
  // One requirement in force: a root requirement, or a Requires-Dist line of
  // a chosen candidate (for its base or one of its requested extras).
  struct Constraint {
    std::string project;  // the requirement's, normalised
    const Requirement* requirement = nullptr;
    std::string source;            // normalised requirer; "" for the root spec
    std::string source_extra;      // normalised; "" for the base dependencies
    std::set<std::string> extras;  // requested, normalised
    // The chosen projects without which this requirement would not be in
    // force: the source and, for an extra's dependency, whatever requested
    // that extra.
    std::set<std::string> support;
  };

  struct Viable {
    std::vector<const Candidate*> candidates;  // in trial order
    // Pre-releases or yanked versions matched but were left out by a rule
    // that further requirements can lift, so a failure here is not final.
    bool rule_excluded = false;
  };

  // What the chosen candidates require, recomputed after every choice.
  struct State {
    std::vector<Constraint> constraints;
    std::map<std::string, std::vector<std::size_t>> on;   // project -> constraints
    std::vector<std::string> order;                       // projects, first required first
    std::map<std::string, std::set<std::string>> extras;  // chosen -> requested and provided
    std::map<std::string, Viable> viable;                 // for projects not chosen
  };

  struct Explanation {
    std::string text;
    std::set<std::string> projects;  // the projects it names
  };

  struct Failure {
    std::set<std::string> conflict;  // the chosen projects that caused it
    std::vector<Explanation> why;
    bool rule_excluded = false;  // see Viable: the failure may not be final
  };

  struct Nogood {
    std::map<std::string, std::string> choices;  // project -> candidate key
    std::vector<Explanation> why;
  };

  // Every candidate in `candidates` of a project failed while `choices`
  // held: with those choices, a project left with no other candidate fails
  // at once, whatever requires it.
  struct Exhaustion {
    std::set<std::string> candidates;            // keys
    std::map<std::string, std::string> choices;  // project -> candidate key
    std::vector<Explanation> why;
  };

  // Per chosen candidate: its metadata and its dependencies per extra ("" for
  // the base), markers evaluated.
  struct CandidateInfo {
    DistributionMetadata metadata;
    std::set<std::string> provided;  // normalised
    std::map<std::string, std::vector<const Requirement*>> dependencies;
  };

  util::Result<const std::vector<Candidate>*> IndexCandidates(const std::string& project);
  util::Result<const Candidate*> DirectCandidate(const std::string& project,
                                                 const std::string& url);
  util::Result<CandidateInfo*> Info(const std::string& project, const Candidate& candidate);
  util::Result<const std::vector<const Requirement*>*> Dependencies(const std::string& project,
                                                                    const Candidate& candidate,
                                                                    const std::string& extra);

  util::Result<std::vector<const Candidate*>> Pool(const std::string& project,
                                                   const std::vector<const Constraint*>& on);
  bool PythonAllows(const Candidate& candidate) const;
  static bool Satisfies(const Candidate& candidate, const Constraint& constraint);
  util::Result<Viable> ComputeViable(const std::string& project,
                                     const std::vector<const Constraint*>& on);

  std::vector<const Constraint*> ConstraintsOn(const State& state,
                                               const std::string& project) const;
  void AddConstraint(State& state, const std::string& project, const Requirement& requirement,
                     const std::string& source, const std::string& source_extra);
  util::Result<State> Build();
  // nullopt when the state is consistent (and its viable sets filled).
  util::Result<std::optional<Failure>> Check(State& state);
  util::Result<std::optional<Failure>> Search(State& state);

  std::optional<std::size_t> MatchingNogood(const std::string& project, const std::string& key);
  bool ChoicesHold(const std::map<std::string, std::string>& choices,
                   const std::string& skip) const;
  void Learn(const Failure& failure);

  std::string Display(const std::string& project) const;
  std::string Chosen(const std::string& project) const;
  std::string Via(const State& state, const std::string& project,
                  std::set<std::string>& named) const;
  std::string SourceClause(const State& state, const Constraint& constraint,
                           std::set<std::string>& named) const;
  util::Result<Explanation> ExplainNoCandidates(const State& state, const std::string& project,
                                                const std::vector<const Constraint*>& on);
  util::Result<std::string> Detail(const std::string& project,
                                   const std::vector<const Constraint*>& on);
  util::Result<Explanation> ExplainMismatch(const State& state, const std::string& project,
                                            const Constraint& violated);

  Resolution MakeResolution(const State& state) const;

  const InterpreterFacts& target_;
  ResolverProvider& provider_;
  const ResolveOptions& options_;
  std::optional<Version> python_;  // the target's major.minor.micro

  std::vector<Requirement> roots_;              // those whose markers hold
  std::map<std::string, std::string> display_;  // normalised -> first spelling seen
  std::map<std::string, std::vector<Candidate>> index_candidates_;
  std::map<std::pair<std::string, std::string>, Candidate> direct_candidates_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<CandidateInfo>> infos_;

  std::map<std::string, Candidate> chosen_;
  std::vector<Nogood> nogoods_;
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> nogoods_by_choice_;
  std::map<std::string, std::vector<Exhaustion>> exhausted_;  // by project
  std::size_t rounds_ = 0;
  std::optional<Resolution> resolution_;
};

util::Result<const std::vector<Candidate>*> Resolver::IndexCandidates(const std::string& project) {
  auto it = index_candidates_.find(project);
  if (it == index_candidates_.end()) {
    util::Result<std::vector<Candidate>> got = provider_.Candidates(project);
    if (!got) {
      return util::Error{got.error().kind, "Cannot get the versions of " + Display(project) + ": " +
                                               got.error().message};
    }
    std::vector<Candidate> sorted = *std::move(got);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Candidate& a, const Candidate& b) { return a.version > b.version; });
    it = index_candidates_.emplace(project, std::move(sorted)).first;
  }
  return &it->second;
}

util::Result<const Candidate*> Resolver::DirectCandidate(const std::string& project,
                                                         const std::string& url) {
  auto key = std::make_pair(project, url);
  auto it = direct_candidates_.find(key);
  if (it == direct_candidates_.end()) {
    util::Result<Candidate> got = provider_.DirectCandidate(project, url);
    if (!got) {
      return util::Error{got.error().kind, "Cannot get " + Display(project) + " from " + url +
                                               ": " + got.error().message};
    }
    Candidate candidate = *std::move(got);
    candidate.url = url;
    it = direct_candidates_.emplace(key, std::move(candidate)).first;
  }
  return &it->second;
}

util::Result<Resolver::CandidateInfo*> Resolver::Info(const std::string& project,
                                                      const Candidate& candidate) {
  auto key = std::make_pair(project, CandidateKey(candidate));
  auto it = infos_.find(key);
  if (it == infos_.end()) {
    util::Result<DistributionMetadata> got = provider_.Metadata(project, candidate);
    if (!got) {
      return util::Error{got.error().kind, "Cannot get the metadata of " + Display(project) + " " +
                                               candidate.version.ToString() + ": " +
                                               got.error().message};
    }
    auto info = std::make_unique<CandidateInfo>();
    info->metadata = *std::move(got);
    for (const std::string& extra : info->metadata.provides_extra) {
      info->provided.insert(NormalizeName(extra));
    }
    it = infos_.emplace(key, std::move(info)).first;
  }
  return it->second.get();
}

util::Result<const std::vector<const Requirement*>*> Resolver::Dependencies(
    const std::string& project, const Candidate& candidate, const std::string& extra) {
  util::Result<CandidateInfo*> info = Info(project, candidate);
  if (!info) return info.error();
  auto found = (*info)->dependencies.find(extra);
  if (found != (*info)->dependencies.end()) return &found->second;
  std::vector<const Requirement*> out;
  for (const Requirement& requirement : (*info)->metadata.requires_dist) {
    if (!requirement.marker) {
      if (extra.empty()) out.push_back(&requirement);
      continue;
    }
    // An extra's dependencies are those its marker adds to the base ones.
    util::Result<bool> base = requirement.marker->Evaluate(target_, {});
    util::Result<bool> with_extra =
        extra.empty() ? base : requirement.marker->Evaluate(target_, {extra});
    if (!base || !with_extra) {
      const util::Error& error = !base ? base.error() : with_extra.error();
      return util::ValueError("Cannot evaluate the marker of " + Display(project) + " " +
                              candidate.version.ToString() + "'s requirement '" +
                              requirement.ToString() + "': " + error.message);
    }
    if (extra.empty() ? *base : (*with_extra && !*base)) out.push_back(&requirement);
  }
  return &(*info)->dependencies.emplace(extra, std::move(out)).first->second;
}

bool Resolver::PythonAllows(const Candidate& candidate) const {
  if (!candidate.requires_python || !python_) return true;
  return candidate.requires_python->Contains(*python_, true);
}

bool Resolver::Satisfies(const Candidate& candidate, const Constraint& constraint) {
  if (!constraint.requirement->url.empty()) return candidate.url == constraint.requirement->url;
  return constraint.requirement->specifier.Contains(candidate.version, true);
}

util::Result<std::vector<const Candidate*>> Resolver::Pool(
    const std::string& project, const std::vector<const Constraint*>& on) {
  std::set<std::string> urls;
  for (const Constraint* c : on) {
    if (!c->requirement->url.empty()) urls.insert(c->requirement->url);
  }
  std::vector<const Candidate*> pool;
  if (urls.size() > 1) return pool;
  if (urls.size() == 1) {
    util::Result<const Candidate*> direct = DirectCandidate(project, *urls.begin());
    if (!direct) return direct.error();
    pool.push_back(*direct);
    return pool;
  }
  util::Result<const std::vector<Candidate>*> all = IndexCandidates(project);
  if (!all) return all.error();
  for (const Candidate& candidate : **all) pool.push_back(&candidate);
  return pool;
}

util::Result<Resolver::Viable> Resolver::ComputeViable(const std::string& project,
                                                       const std::vector<const Constraint*>& on) {
  util::Result<std::vector<const Candidate*>> pool = Pool(project, on);
  if (!pool) return pool.error();
  Viable viable;
  std::vector<const Candidate*> prereleases;
  bool any_final = false;
  for (const Candidate* candidate : *pool) {
    if (!PythonAllows(*candidate)) continue;
    bool matches = std::all_of(on.begin(), on.end(),
                               [&](const Constraint* c) { return Satisfies(*candidate, *c); });
    if (!matches) continue;
    if (candidate->url.empty() && candidate->yanked) {
      bool pinned = std::any_of(on.begin(), on.end(), [&](const Constraint* c) {
        return PinsExactly(c->requirement->specifier, candidate->version);
      });
      if (!pinned) {
        viable.rule_excluded = true;
        continue;
      }
    }
    if (candidate->url.empty() && candidate->version.is_prerelease() &&
        !options_.allow_prereleases) {
      // packaging: a specifier that names a pre-release lets pre-releases in.
      bool named = std::any_of(on.begin(), on.end(), [&](const Constraint* c) {
        return c->requirement->specifier.Contains(candidate->version, std::nullopt);
      });
      if (!named) {
        prereleases.push_back(candidate);
        continue;
      }
    }
    if (!candidate->version.is_prerelease()) any_final = true;
    viable.candidates.push_back(candidate);
  }
  if (!prereleases.empty()) {
    if (any_final) {
      viable.rule_excluded = true;
    } else {
      viable.candidates.insert(viable.candidates.end(), prereleases.begin(), prereleases.end());
      std::stable_sort(
          viable.candidates.begin(), viable.candidates.end(),
          [](const Candidate* a, const Candidate* b) { return a->version > b->version; });
    }
  }
  if (options_.preference == PreferencePolicy::kPreferInstalled) {
    auto preferred = options_.preferred.find(project);
    if (preferred != options_.preferred.end()) {
      auto it = std::find_if(
          viable.candidates.begin(), viable.candidates.end(),
          [&](const Candidate* c) { return c->url.empty() && c->version == preferred->second; });
      if (it != viable.candidates.end()) std::rotate(viable.candidates.begin(), it, it + 1);
    }
  }
  return viable;
}

std::vector<const Resolver::Constraint*> Resolver::ConstraintsOn(const State& state,
                                                                 const std::string& project) const {
  std::vector<const Constraint*> out;
  auto it = state.on.find(project);
  if (it == state.on.end()) return out;
  for (std::size_t index : it->second) out.push_back(&state.constraints[index]);
  return out;
}

void Resolver::AddConstraint(State& state, const std::string& project,
                             const Requirement& requirement, const std::string& source,
                             const std::string& source_extra) {
  display_.emplace(project, requirement.name);
  Constraint constraint;
  constraint.project = project;
  constraint.requirement = &requirement;
  constraint.source = source;
  constraint.source_extra = source_extra;
  constraint.extras = NormalizeAll(requirement.extras);
  if (!source.empty()) constraint.support.insert(source);
  auto [it, inserted] = state.on.try_emplace(project);
  if (inserted) state.order.push_back(project);
  it->second.push_back(state.constraints.size());
  state.constraints.push_back(std::move(constraint));
}

util::Result<Resolver::State> Resolver::Build() {
  State state;
  for (const Requirement& root : roots_) {
    AddConstraint(state, NormalizeName(root.name), root, "", "");
  }
  std::set<std::pair<std::string, std::string>> added;
  bool changed = true;
  while (changed) {
    changed = false;
    for (std::size_t i = 0; i < state.order.size(); ++i) {
      const std::string project = state.order[i];
      auto chosen = chosen_.find(project);
      if (chosen == chosen_.end()) continue;
      util::Result<CandidateInfo*> info = Info(project, chosen->second);
      if (!info) return info.error();
      std::set<std::string>& extras = state.extras[project];
      for (const Constraint* c : ConstraintsOn(state, project)) {
        for (const std::string& extra : c->extras) {
          if ((*info)->provided.contains(extra)) extras.insert(extra);
        }
      }
      std::vector<std::string> parts{""};
      parts.insert(parts.end(), extras.begin(), extras.end());
      for (const std::string& extra : parts) {
        if (!added.emplace(project, extra).second) continue;
        changed = true;
        util::Result<const std::vector<const Requirement*>*> deps =
            Dependencies(project, chosen->second, extra);
        if (!deps) return deps.error();
        for (const Requirement* dep : **deps) {
          AddConstraint(state, NormalizeName(dep->name), *dep, project, extra);
        }
      }
    }
  }
  // An extra's dependencies are in force only while something requests the
  // extra: their support includes the requesters' support.
  changed = true;
  while (changed) {
    changed = false;
    for (Constraint& c : state.constraints) {
      if (c.source_extra.empty()) continue;
      for (const Constraint* requester : ConstraintsOn(state, c.source)) {
        if (!requester->extras.contains(c.source_extra)) continue;
        for (const std::string& p : requester->support) {
          if (c.support.insert(p).second) changed = true;
        }
      }
    }
  }
  return state;
}

util::Result<std::optional<Resolver::Failure>> Resolver::Check(State& state) {
  for (const std::string& project : state.order) {
    std::vector<const Constraint*> on = ConstraintsOn(state, project);
    auto chosen = chosen_.find(project);
    if (chosen != chosen_.end()) {
      for (const Constraint* c : on) {
        if (Satisfies(chosen->second, *c)) continue;
        Failure failure;
        failure.conflict = c->support;
        failure.conflict.insert(project);
        util::Result<Explanation> why = ExplainMismatch(state, project, *c);
        if (!why) return why.error();
        failure.why.push_back(*std::move(why));
        return std::optional<Failure>(std::move(failure));
      }
      continue;
    }
    util::Result<Viable> viable = ComputeViable(project, on);
    if (!viable) return viable.error();
    for (const Exhaustion& known : exhausted_[project]) {
      if (viable->candidates.empty() || !ChoicesHold(known.choices, "")) continue;
      bool covered = std::all_of(
          viable->candidates.begin(), viable->candidates.end(),
          [&](const Candidate* c) { return known.candidates.contains(CandidateKey(*c)); });
      if (!covered) continue;
      Failure failure;
      for (const Constraint* c : on) failure.conflict.insert(c->support.begin(), c->support.end());
      for (const auto& choice : known.choices) failure.conflict.insert(choice.first);
      failure.why = known.why;
      return std::optional<Failure>(std::move(failure));
    }
    if (viable->candidates.empty()) {
      Failure failure;
      for (const Constraint* c : on) failure.conflict.insert(c->support.begin(), c->support.end());
      failure.rule_excluded = viable->rule_excluded;
      util::Result<Explanation> why = ExplainNoCandidates(state, project, on);
      if (!why) return why.error();
      failure.why.push_back(*std::move(why));
      return std::optional<Failure>(std::move(failure));
    }
    state.viable[project] = *std::move(viable);
  }
  return std::optional<Failure>();
}

std::optional<std::size_t> Resolver::MatchingNogood(const std::string& project,
                                                    const std::string& key) {
  auto it = nogoods_by_choice_.find({project, key});
  if (it == nogoods_by_choice_.end()) return std::nullopt;
  for (std::size_t index : it->second) {
    if (ChoicesHold(nogoods_[index].choices, project)) return index;
  }
  return std::nullopt;
}

bool Resolver::ChoicesHold(const std::map<std::string, std::string>& choices,
                           const std::string& skip) const {
  for (const auto& [project, key] : choices) {
    if (project == skip) continue;
    auto chosen = chosen_.find(project);
    if (chosen == chosen_.end() || CandidateKey(chosen->second) != key) return false;
  }
  return true;
}

void Resolver::Learn(const Failure& failure) {
  if (failure.rule_excluded || failure.conflict.empty()) return;
  Nogood nogood;
  for (const std::string& project : failure.conflict) {
    nogood.choices.emplace(project, CandidateKey(chosen_.at(project)));
  }
  nogood.why = failure.why;
  std::size_t index = nogoods_.size();
  for (const auto& choice : nogood.choices) nogoods_by_choice_[choice].push_back(index);
  nogoods_.push_back(std::move(nogood));
}

util::Result<std::optional<Resolver::Failure>> Resolver::Search(State& state) {
  // The next project to choose: exact pins and URLs, then the fewest
  // candidates, then the first required.
  const std::string* next = nullptr;
  std::tuple<bool, std::size_t> best{};
  for (const std::string& project : state.order) {
    if (chosen_.contains(project)) continue;
    bool exact = false;
    for (const Constraint* c : ConstraintsOn(state, project)) {
      if (!c->requirement->url.empty()) exact = true;
      for (const std::string& clause : Clauses(c->requirement->specifier)) {
        if (IsExactClause(clause)) exact = true;
      }
    }
    std::tuple<bool, std::size_t> rank{!exact, state.viable.at(project).candidates.size()};
    if (next == nullptr || rank < best) {
      next = &project;
      best = rank;
    }
  }
  if (next == nullptr) {
    resolution_ = MakeResolution(state);
    return std::optional<Failure>();
  }
  const std::string project = *next;
  const Viable viable = state.viable.at(project);

  Failure failed;
  failed.rule_excluded = viable.rule_excluded;
  for (const Constraint* c : ConstraintsOn(state, project)) {
    failed.conflict.insert(c->support.begin(), c->support.end());
  }
  // The choices that made candidates fail, apart from what requires the
  // project.
  std::set<std::string> reasons;
  auto absorb = [&failed, &reasons, &project](const Failure& f) {
    failed.conflict.insert(f.conflict.begin(), f.conflict.end());
    failed.conflict.erase(project);
    reasons.insert(f.conflict.begin(), f.conflict.end());
    reasons.erase(project);
    failed.rule_excluded = failed.rule_excluded || f.rule_excluded;
    for (const Explanation& why : f.why) {
      if (failed.why.size() >= kMaxCarriedConflicts) break;
      bool seen = std::any_of(failed.why.begin(), failed.why.end(),
                              [&](const Explanation& e) { return e.text == why.text; });
      if (!seen) failed.why.push_back(why);
    }
  };

  for (const Candidate* candidate : viable.candidates) {
    if (++rounds_ > options_.max_rounds ||
        (options_.deadline && std::chrono::steady_clock::now() >= *options_.deadline)) {
      return util::Error{util::ErrorKind::kTimeout, "Dependency resolution gave up after " +
                                                        std::to_string(rounds_ - 1) + " rounds"};
    }
    std::string key = CandidateKey(*candidate);
    if (std::optional<std::size_t> nogood = MatchingNogood(project, key)) {
      Failure known;
      for (const auto& choice : nogoods_[*nogood].choices) known.conflict.insert(choice.first);
      known.why = nogoods_[*nogood].why;
      absorb(known);
      continue;
    }
    chosen_[project] = *candidate;
    util::Result<State> after = Build();
    if (!after) {
      chosen_.erase(project);
      return after.error();
    }
    util::Result<std::optional<Failure>> problem = Check(*after);
    if (!problem) {
      chosen_.erase(project);
      return problem.error();
    }
    if (!*problem) {
      problem = Search(*after);
      if (!problem) {
        chosen_.erase(project);
        return problem.error();
      }
      if (!*problem) return problem;  // solved
      // Backjump: this choice played no part in the failure below.
      if (!(*problem)->conflict.contains(project) && !(*problem)->rule_excluded) {
        chosen_.erase(project);
        return problem;
      }
    }
    Failure& failure = **problem;
    if (failure.rule_excluded) {
      // Not final: more requirements could lift the rule, so fall back to
      // plain backtracking over every choice made so far.
      for (const auto& chosen : chosen_) failure.conflict.insert(chosen.first);
    }
    Learn(failure);
    chosen_.erase(project);
    absorb(failure);
  }
  if (!failed.rule_excluded) {
    Exhaustion exhaustion;
    for (const Candidate* candidate : viable.candidates) {
      exhaustion.candidates.insert(CandidateKey(*candidate));
    }
    for (const std::string& p : reasons) exhaustion.choices.emplace(p, CandidateKey(chosen_.at(p)));
    exhaustion.why = failed.why;
    exhausted_[project].push_back(std::move(exhaustion));
  }
  return std::optional<Failure>(std::move(failed));
}

std::string Resolver::Display(const std::string& project) const {
  auto it = display_.find(project);
  return it == display_.end() ? project : it->second;
}

std::string Resolver::Chosen(const std::string& project) const {
  return Display(project) + " " + chosen_.at(project).version.ToString();
}

// " (via app 1.0 → lib 1.0)": how `project` was first required, from the
// root spec down, when it is not a root requirement itself.
std::string Resolver::Via(const State& state, const std::string& project,
                          std::set<std::string>& named) const {
  std::vector<std::string> chain;
  std::string current = project;
  for (;;) {
    auto it = state.on.find(current);
    if (it == state.on.end() || it->second.empty()) break;
    const std::string& parent = state.constraints[it->second.front()].source;
    if (parent.empty() || !chosen_.contains(parent)) break;
    named.insert(parent);
    chain.push_back(Chosen(parent));
    current = parent;
  }
  if (chain.empty()) return "";
  std::reverse(chain.begin(), chain.end());
  if (chain.size() > kMaxChainShown) {
    chain.erase(chain.begin() + 1, chain.end() - (kMaxChainShown - 2));
    chain.insert(chain.begin() + 1, "...");
  }
  std::string out = " (via ";
  for (std::size_t i = 0; i < chain.size(); ++i) {
    if (i > 0) out += " → ";
    out += chain[i];
  }
  return out + ")";
}

// "the spec pins six==1.15", "demo[x] 2.0 (via app 1.0) requires six>=1.16".
std::string Resolver::SourceClause(const State& state, const Constraint& constraint,
                                   std::set<std::string>& named) const {
  std::string requirement = RequirementText(*constraint.requirement);
  if (constraint.source.empty()) {
    bool pin = false;
    for (const std::string& clause : Clauses(constraint.requirement->specifier)) {
      if (IsExactClause(clause)) pin = true;
    }
    return (pin || !constraint.requirement->url.empty() ? "the spec pins " : "the spec requires ") +
           requirement;
  }
  named.insert(constraint.source);
  std::string who = Display(constraint.source);
  if (!constraint.source_extra.empty()) who += "[" + constraint.source_extra + "]";
  who += " " + chosen_.at(constraint.source).version.ToString();
  return who + Via(state, constraint.source, named) + " requires " + requirement;
}

// What the candidates of `project` look like to requirements `on` that no
// candidate satisfies: ": all versions of foo >=2 require Python >=3.12; the
// target is 3.11.7", or " (available: 1.0, 2.0; yanked: 3.0)".
util::Result<std::string> Resolver::Detail(const std::string& project,
                                           const std::vector<const Constraint*>& on) {
  util::Result<std::vector<const Candidate*>> pool = Pool(project, on);
  if (!pool) return pool.error();
  std::vector<const Candidate*> matching;
  for (const Candidate* candidate : *pool) {
    if (std::all_of(on.begin(), on.end(),
                    [&](const Constraint* c) { return Satisfies(*candidate, *c); })) {
      matching.push_back(candidate);
    }
  }
  if (!matching.empty() && std::none_of(matching.begin(), matching.end(),
                                        [&](const Candidate* c) { return PythonAllows(*c); })) {
    std::set<std::string> needs;
    for (const Candidate* c : matching) needs.insert(c->requires_python->ToString());
    std::string which = "all versions of " + Display(project);
    if (on.size() == 1 && on.front()->requirement->url.empty() &&
        !on.front()->requirement->specifier.empty()) {
      which += " " + on.front()->requirement->specifier.ToString();
    }
    std::string need;
    if (needs.size() == 1) {
      need = "Python " + *needs.begin();
    } else {
      std::vector<std::string> parts;
      for (const Candidate* c : matching) {
        parts.push_back(c->version.ToString() + ": " + c->requires_python->ToString());
      }
      need = "another Python (";
      for (std::size_t i = 0; i < parts.size(); ++i) need += (i > 0 ? ", " : "") + parts[i];
      need += ")";
    }
    return ": " + which + " require " + need + "; the target is " + target_.python_full_version;
  }
  std::vector<Version> available, yanked, prereleases, other_python;
  for (const Candidate* c : *pool) {
    if (!PythonAllows(*c)) {
      other_python.push_back(c->version);
    } else if (c->yanked && c->url.empty()) {
      yanked.push_back(c->version);
    } else if (c->version.is_prerelease() && c->url.empty() && !options_.allow_prereleases) {
      prereleases.push_back(c->version);
    } else {
      available.push_back(c->version);
    }
  }
  std::string out = " (available: " + (available.empty() ? "none" : JoinVersions(available));
  if (!yanked.empty()) out += "; yanked: " + JoinVersions(yanked);
  if (!prereleases.empty()) out += "; pre-releases: " + JoinVersions(prereleases);
  if (!other_python.empty()) out += "; for other Pythons: " + JoinVersions(other_python);
  return out + ")";
}

util::Result<Resolver::Explanation> Resolver::ExplainNoCandidates(
    const State& state, const std::string& project, const std::vector<const Constraint*>& on) {
  Explanation out;
  out.projects.insert(project);
  // A requirement that no version satisfies even alone is the whole story.
  for (const Constraint* c : on) {
    util::Result<Viable> alone = ComputeViable(project, {c});
    if (!alone) return alone.error();
    if (!alone->candidates.empty()) continue;
    util::Result<std::string> detail = Detail(project, {c});
    if (!detail) return detail.error();
    std::string requirement = RequirementText(*c->requirement);
    if (c->source.empty()) {
      out.text = "No version of " + Display(project) + " satisfies " + requirement + *detail;
    } else {
      out.text = SourceClause(state, *c, out.projects) + ", but no version of " + Display(project) +
                 " satisfies it" + *detail;
    }
    return out;
  }
  bool all_root =
      std::all_of(on.begin(), on.end(), [](const Constraint* c) { return c->source.empty(); });
  if (all_root) {
    std::vector<std::string> requirements;
    for (const Constraint* c : on) requirements.push_back(RequirementText(*c->requirement));
    util::Result<std::string> detail = Detail(project, on);
    if (!detail) return detail.error();
    out.text =
        "No version of " + Display(project) + " satisfies " + JoinAnd(requirements) + *detail;
    return out;
  }
  std::vector<std::string> clauses;
  for (bool root : {false, true}) {
    for (const Constraint* c : on) {
      if (c->source.empty() != root) continue;
      std::string clause = SourceClause(state, *c, out.projects);
      if (std::find(clauses.begin(), clauses.end(), clause) == clauses.end()) {
        clauses.push_back(clause);
      }
    }
  }
  for (std::size_t i = 0; i < clauses.size(); ++i) {
    if (i > 0) out.text += i + 1 == clauses.size() ? ", but " : ", ";
    out.text += clauses[i];
  }
  return out;
}

util::Result<Resolver::Explanation> Resolver::ExplainMismatch(const State& state,
                                                              const std::string& project,
                                                              const Constraint& violated) {
  std::vector<const Constraint*> on = ConstraintsOn(state, project);
  util::Result<Viable> viable = ComputeViable(project, on);
  if (!viable) return viable.error();
  if (viable->candidates.empty()) return ExplainNoCandidates(state, project, on);
  Explanation out;
  out.projects.insert(project);
  out.text = SourceClause(state, violated, out.projects) + ", but " + Chosen(project) +
             Via(state, project, out.projects) + " is already chosen";
  return out;
}

Resolution Resolver::MakeResolution(const State& state) const {
  Resolution resolution;
  for (const std::string& project : state.order) {
    ResolvedProject resolved;
    resolved.name = project;
    resolved.candidate = chosen_.at(project);
    auto extras = state.extras.find(project);
    if (extras != state.extras.end()) resolved.extras = extras->second;
    std::set<std::string> missing;
    for (const Constraint* c : ConstraintsOn(state, project)) {
      resolved.required_by.push_back({c->source, c->source_extra, *c->requirement});
      for (const std::string& extra : c->extras) {
        if (!resolved.extras.contains(extra)) missing.insert(extra);
      }
    }
    for (const std::string& extra : missing) {
      resolution.warnings.push_back(Chosen(project) + " does not provide the extra '" + extra +
                                    "'");
    }
    resolution.projects.emplace(project, std::move(resolved));
  }
  return resolution;
}

util::Result<Resolution> Resolver::Run(const std::vector<Requirement>& roots) {
  if (util::Result<Version> full = Version::Parse(target_.python_full_version)) {
    if (util::Result<Version> base = Version::Parse(full->BaseVersion())) python_ = *base;
  }
  for (const Requirement& root : roots) {
    if (root.marker) {
      util::Result<bool> holds = root.marker->Evaluate(target_, {});
      if (!holds) {
        return util::ValueError("Cannot evaluate the marker of requirement '" + root.ToString() +
                                "': " + holds.error().message);
      }
      if (!*holds) continue;
    }
    roots_.push_back(root);
  }
  util::Result<State> state = Build();
  if (!state) return state.error();
  util::Result<std::optional<Failure>> problem = Check(*state);
  if (!problem) return problem.error();
  if (*problem) return util::ValueError((*problem)->why.front().text);
  problem = Search(*state);
  if (!problem) return problem.error();
  if (!*problem) {
    resolution_->rounds = rounds_;
    return *std::move(resolution_);
  }
  const std::vector<Explanation>& why = (*problem)->why;
  std::set<std::string> named;
  std::string conflicts;
  for (std::size_t i = 0; i < why.size() && i < kMaxShownConflicts; ++i) {
    if (i > 0) conflicts += "; ";
    conflicts += why[i].text;
    named.insert(why[i].projects.begin(), why[i].projects.end());
  }
  if (why.size() > kMaxShownConflicts) {
    conflicts += "; and " + std::to_string(why.size() - kMaxShownConflicts) + " more";
  }
  std::vector<std::string> involved;
  for (const Requirement& root : roots_) {
    if (!named.contains(NormalizeName(root.name))) continue;
    std::string text = RequirementText(root);
    if (std::find(involved.begin(), involved.end(), text) == involved.end()) {
      involved.push_back(text);
    }
  }
  if (involved.empty()) {
    for (const Requirement& root : roots_) involved.push_back(RequirementText(root));
  }
  return util::ValueError("Cannot install " + JoinAnd(involved) + ": " + conflicts + ".");
}

}  // namespace

util::Result<Resolution> Resolve(const std::vector<Requirement>& roots,
                                 const InterpreterFacts& target, ResolverProvider& provider,
                                 const ResolveOptions& options) {
  Resolver resolver(target, provider, options);
  return resolver.Run(roots);
}

}  // namespace strata::pyinstall
