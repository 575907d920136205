// PEP 440 versions and version specifiers, as the `packaging` library
// (pip's) implements them.
//
// Version: [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local], parsed with PEP 440's
// normalisation (case, "alpha"/"beta"/"c"/"pre"/"preview" spellings, separators
// '.', '-', '_', implicit numbers, a leading 'v', "-N" as a post release),
// ordered by PEP 440's rules (release compared with trailing zeros ignored;
// dev < pre < final < post; a local version sorts after its public one; local
// segments compare numbers numerically and above strings). ToString() gives
// the normalised form ("1.0.0a1.post2.dev3+ubuntu.1").
//
// SpecifierSet: comma-separated clauses `~=`, `==`, `!=`, `<=`, `>=`, `<`,
// `>`, `===`, with `==1.2.*`/`!=1.2.*` prefix matching and local-version
// rules of PEP 440 (`==1.0` matches `1.0+local`; `<`/`>` exclude pre/post/local
// releases of the bound as the spec says). Contains(v, prereleases) follows
// `packaging`: pre-releases match only when allowed or when a clause names a
// pre-release (`==`, `>=`, `<=`, `~=`, `===` with a pre-release version); an
// empty set's Filter keeps pre-releases when no final release is given.
// Clauses `packaging` < 22 accepted only as "legacy" specifiers are invalid.
//
// Numbers are 64-bit: a version with a larger number does not parse (Python's
// are unbounded).
//
// Thread-safety: value types.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace strata::pyinstall {

class Version {
 public:
  // ValueError "Invalid version: '<text>'" when `text` is not PEP 440.
  static util::Result<Version> Parse(std::string_view text);

  std::string ToString() const;     // normalised
  std::string Public() const;       // without the local part
  std::string BaseVersion() const;  // epoch and release only

  std::uint64_t epoch() const { return epoch_; }
  const std::vector<std::uint64_t>& release() const { return release_; }
  bool is_prerelease() const { return pre_.has_value() || dev_.has_value(); }
  bool is_postrelease() const { return post_.has_value(); }
  bool is_devrelease() const { return dev_.has_value(); }
  bool has_local() const { return !local_.empty(); }

  friend std::strong_ordering operator<=>(const Version& a, const Version& b);
  friend bool operator==(const Version& a, const Version& b) { return (a <=> b) == 0; }

 private:
  friend class SpecifierSet;  // compares public and base versions

  Version WithoutLocal() const;
  Version BaseOnly() const;
  // Segments as `packaging` splits a normalised version for prefix matching:
  // epoch, release numbers, then "a1", "post2", "dev3" as present.
  std::vector<std::string> PrefixSegments() const;

  struct Pre {
    char kind;  // 'a', 'b' or 'c' (rc)
    std::uint64_t number;
  };
  // A local segment: a number, or a lowercase string.
  struct LocalPart {
    bool is_number;
    std::uint64_t number;
    std::string text;
  };

  std::uint64_t epoch_ = 0;
  std::vector<std::uint64_t> release_;
  std::optional<Pre> pre_;
  std::optional<std::uint64_t> post_;
  std::optional<std::uint64_t> dev_;
  std::vector<LocalPart> local_;
};

class SpecifierSet {
 public:
  // "" is the empty set (matches every final release). ValueError "Invalid
  // specifier: '<clause>'" for a malformed clause.
  static util::Result<SpecifierSet> Parse(std::string_view text);

  // `prereleases`: nullopt = PEP 440's default (only if a clause names one).
  bool Contains(const Version& version, std::optional<bool> prereleases = std::nullopt) const;
  // The versions that match, in input order; pre-releases are kept when
  // allowed, or (empty set only, `prereleases` unset) when no final release
  // is given, as `packaging` does.
  std::vector<Version> Filter(const std::vector<Version>& versions,
                              std::optional<bool> prereleases = std::nullopt) const;

  // Clauses sorted and comma-joined, as `packaging` prints a SpecifierSet.
  std::string ToString() const;
  bool empty() const { return clauses_.empty(); }

 private:
  struct Clause {
    std::string op;       // "~=", "==", "!=", "<=", ">=", "<", ">", "==="
    std::string version;  // as written, stripped (`packaging` prints it so)
    bool wildcard = false;
    std::optional<Version> parsed;  // without ".*"; absent for "===" text
  };
  static util::Result<Clause> ParseClause(std::string_view text);
  bool ClauseContains(const Clause& clause, const Version& version) const;
  bool NamesPrerelease() const;

  std::vector<Clause> clauses_;
};

}  // namespace strata::pyinstall
