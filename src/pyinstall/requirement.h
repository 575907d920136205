// PEP 508 dependency specifiers ("requirements"), parsed and printed as the
// `packaging` library (pip's, 22 and later) does.
//
// Grammar (whitespace is spaces and tabs):
//   requirement = ws? name ws? extras? ws? details END
//   name        = [A-Za-z0-9] [A-Za-z0-9._-]*, ending at a word boundary
//   extras      = "[" ws? (name (ws? "," ws? name)*)? ws? "]"
//   details     = "@" ws? url ((ws marker_part?) | END)
//               | specifiers ws? marker_part?
//   url         = [^ \t]+  (not checked further, like packaging)
//   specifiers  = "(" ws? clauses ws? ")" | clauses        (may be empty)
//   clauses     = clause (ws? "," ws? clause)*, each clause PEP 440's
//                 operator and version as packaging's Specifier reads them
//   marker_part = ";" marker ws?             (see markers.h)
// Errors are ValueErrors "Invalid requirement '<text>': <packaging's message>
// at position N" (N counts characters from 0), e.g. "Expected end or
// semicolon (after version specifier)".
//
// ToString() is str(packaging.requirements.Requirement): the name as written,
// extras sorted and comma-joined, the specifier set sorted, "@ url", then
// "; marker" (after a space when there is a URL).
//
// Thread-safety: Requirement is a value type; NormalizeName is pure.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "pyinstall/markers.h"
#include "pyinstall/version.h"
#include "util/result.h"

namespace strata::pyinstall {

// PEP 503 normalisation: lowercase, each run of '-', '_' and '.' as one '-'.
std::string NormalizeName(std::string_view name);

struct Requirement {
  std::string name;              // as written
  std::set<std::string> extras;  // as written
  SpecifierSet specifier;        // empty with a URL
  std::string url;               // "" unless `name @ url`
  std::optional<Marker> marker;

  static util::Result<Requirement> Parse(std::string_view text);
  std::string ToString() const;
};

}  // namespace strata::pyinstall
