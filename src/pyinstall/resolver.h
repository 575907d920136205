// Dependency resolution: from root requirements to one version per project,
// with pip's (resolvelib's) semantics, explaining conflicts in plain words.
//
// Semantics, as pip applies them:
//  - Markers of root requirements and of Requires-Dist lines are evaluated for
//    the target interpreter; a dependency of a project requested with extras
//    counts when its marker holds with `extra` "" or with one of those extras
//    (PEP 685 normalised). Extras the distribution does not list in
//    Provides-Extra are ignored, with a warning in the resolution.
//  - Extras merge per project: project[a] and project[b] resolve one version
//    with both extras' dependencies.
//  - Every requirement on a project constrains its version (pip checks a
//    chosen version with pre-releases allowed). A requirement with a URL
//    (PEP 508 direct reference) makes the provider's candidate for that URL
//    the project's only candidate; two different URLs conflict.
//  - Candidates are tried newest first. A yanked version is a candidate only
//    when some requirement pins it exactly (`==V` without '*', or `===V`). A
//    version whose requires-python does not contain the target's
//    major.minor.micro is never a candidate. Pre-releases are candidates when
//    ResolveOptions::allow_prereleases, when a requirement on the project
//    names a pre-release, or when no final release is a candidate
//    (`packaging`'s filter over the requirements' combined specifiers).
//  - With PreferencePolicy::kPreferInstalled, a preferred version (already
//    cached or locked) is tried first when it is a candidate; otherwise, and
//    with kNewest, preferences are ignored.
//
// Algorithm: depth-first search that picks one required project at a time
// (exact pins and URLs first, then the fewest remaining candidates, then the
// order in which projects were first required) and tries its candidates;
// after each choice, every requirement on a chosen project must hold and
// every required project must keep at least one candidate. Failures backjump
// (conflict-directed backjumping): each failure carries the set of choices
// that caused it, the search returns straight to the latest of them, and the
// set with the failing choice is remembered as a nogood so that combination is
// never tried again in another branch. Every candidate tried is a round;
// ResolveOptions bounds the rounds and the wall-clock time.
//
// Errors:
//  - ValueError when no resolution exists. A project with no candidate for a
//    root requirement alone:
//      "No version of foo satisfies foo>=3 (available: 1.0, 2.0)"
//      "No version of foo satisfies foo>=2: all versions of foo >=2 require
//       Python >=3.12; the target is 3.11.7"
//    (the list adds "; yanked: 3.0" and "; pre-releases: 3.0b1" for versions
//    those rules left out, and says "none" for an unknown project).
//    Otherwise the root requirements involved and the conflicts that ended
//    the search, each naming its chain:
//      "Cannot install demo==2.0 and six==1.15: demo 2.0 requires six>=1.16,
//       but the spec pins six==1.15."
//      "Cannot install app: lib 1.0 (via app 1.0) requires foo>=3, but no
//       version of foo satisfies it (available: 1.0, 2.0)."
//    Conflicts are joined with "; " (at most five, then "; and N more"); a
//    chain longer than four shows its first requirer, "...", and the last
//    two ("via p0 1 → ... → p8 1 → p9 1"). Other conflict forms:
//    "<source> requires <req>, but <project> <version> is already chosen",
//    and combinations "<a> requires x<2, <b> requires x>3, but the spec
//    pins x==2.5" (requirers first, the root spec last).
//  - kTimeout "Dependency resolution gave up after N rounds" when the
//    round bound or the deadline is reached.
//  - The provider's errors, prefixed with what was being fetched
//    ("Cannot get the versions of foo: ", "Cannot get the metadata of foo
//    1.0: ") and keeping their kind; ValueError for a marker that cannot be
//    evaluated.
//
// Thread-safety: Resolve uses the provider from the calling thread only;
// concurrent Resolve calls need separate providers unless the provider is
// thread-safe. The value types are plain values.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pyinstall/markers.h"
#include "pyinstall/requirement.h"
#include "pyinstall/version.h"
#include "util/result.h"

namespace strata::pyinstall {

// One installable version of a project.
struct Candidate {
  Version version;
  bool yanked = false;
  // The distribution's Requires-Python; nullopt when absent (or unreadable:
  // pip ignores an invalid one).
  std::optional<SpecifierSet> requires_python;
  // "" for a version from an index; the direct reference for a URL candidate.
  std::string url;
};

// A distribution's core metadata, as far as resolution needs it.
struct DistributionMetadata {
  std::vector<Requirement> requires_dist;   // Requires-Dist, markers kept
  std::vector<std::string> provides_extra;  // Provides-Extra, as written
};

// Where candidates and metadata come from (indexes and the wheel cache in
// production, memory in tests). Project names passed in are PEP 503
// normalised.
class ResolverProvider {
 public:
  virtual ~ResolverProvider() = default;

  // Every version the indexes offer, in any order; empty for an unknown
  // project.
  virtual util::Result<std::vector<Candidate>> Candidates(const std::string& project) = 0;
  // The candidate a direct reference `project @ url` stands for (its url set).
  virtual util::Result<Candidate> DirectCandidate(const std::string& project,
                                                  const std::string& url) = 0;
  // The metadata of a candidate returned by one of the calls above.
  virtual util::Result<DistributionMetadata> Metadata(const std::string& project,
                                                      const Candidate& candidate) = 0;
};

enum class PreferencePolicy { kNewest, kPreferInstalled };

struct ResolveOptions {
  bool allow_prereleases = false;  // pip's --pre
  // Normalised project name -> version to try first under kPreferInstalled.
  std::map<std::string, Version> preferred;
  PreferencePolicy preference = PreferencePolicy::kNewest;
  std::size_t max_rounds = 200000;  // pip's resolvelib bound
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// One requirement that brought a project into the resolution.
struct RequiredBy {
  std::string project;  // normalised requirer; "" for the root spec
  std::string extra;    // the requirer's extra (normalised) it came with; "" for none
  Requirement requirement;
};

struct ResolvedProject {
  std::string name;  // PEP 503 normalised
  Candidate candidate;
  std::set<std::string> extras;         // requested and provided, normalised
  std::vector<RequiredBy> required_by;  // root requirements first, then in discovery order
};

struct Resolution {
  std::map<std::string, ResolvedProject> projects;  // by normalised name
  std::vector<std::string> warnings;  // e.g. "demo 1.0 does not provide the extra 'x'"
  std::size_t rounds = 0;             // candidates tried
};

util::Result<Resolution> Resolve(const std::vector<Requirement>& roots,
                                 const InterpreterFacts& target, ResolverProvider& provider,
                                 const ResolveOptions& options = {});

}  // namespace strata::pyinstall
