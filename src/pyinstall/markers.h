// PEP 508 environment markers, as the `packaging` library (pip's, 22 and
// later) parses, prints and evaluates them, and the facts of a target
// interpreter they are evaluated against.
//
// Grammar (whitespace is spaces and tabs):
//   marker     = atom (("and" | "or") atom)*
//   atom       = "(" marker ")" | operand op operand
//   operand    = variable | '...' | "..."     (no backslash escapes)
//   op         = "===" | "==" | "~=" | "!=" | "<=" | ">=" | "<" | ">"
//              | "in" | "not" ws "in"
//   variable   = python_version | python_full_version | os_name | sys_platform
//              | platform_release | platform_system | platform_version
//              | platform_machine | platform_python_implementation
//              | implementation_name | implementation_version | extra
//              and the legacy spellings packaging accepts: os.name,
//              sys.platform, platform.version, platform.machine,
//              platform.python_implementation and python_implementation.
// "and" binds tighter than "or". Errors are ValueErrors carrying packaging's
// message ("Expected marker operator, one of ...") and the position.
//
// Evaluation follows packaging: `in`/`not in` test substrings; `extra` values
// are compared after PEP 503 name normalisation (PEP 685). Other operators
// compare as PEP 440 versions (Specifier `<op><rhs>` contains `lhs`,
// pre-releases allowed) when the variable is version-like (python_version,
// python_full_version, implementation_version, platform_release) and both
// sides parse; otherwise as strings, where `~=` and `===` are undefined (a
// ValueError). Unlike packaging 24, a non-version value never raises
// InvalidVersion: it falls back to string comparison (as packaging 25 does).
//
// ToString() prints packaging's normal form: `var op "value"`, single spaces,
// redundant parentheses dropped. Two deliberate differences from packaging:
// `((a or b)) and c` keeps its parentheses (packaging drops them and changes
// the meaning), and a comparison of two variables evaluates both (packaging
// takes the right one as a literal).
//
// Thread-safety: InterpreterFacts and Marker are immutable values once built;
// InterpreterFacts::Read may be called from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "util/pyjson.h"
#include "util/result.h"

namespace strata::pyinstall {

// The marker environment of one interpreter: the values of
// packaging.markers.default_environment().
struct InterpreterFacts {
  std::string implementation_name;             // "cpython"
  std::string implementation_version;          // "3.11.7", "3.13.0a2"
  std::string os_name;                         // "posix"
  std::string platform_machine;                // "x86_64"
  std::string platform_release;                // "6.1.0-18-amd64"
  std::string platform_system;                 // "Linux"
  std::string platform_version;                // "#1 SMP PREEMPT_DYNAMIC ..."
  std::string python_full_version;             // "3.11.7"
  std::string platform_python_implementation;  // "CPython"
  std::string python_version;                  // "3.11"
  std::string sys_platform;                    // "linux"

  // Runs `python` (a path, or a name looked up on PATH) once with a small
  // `-I -c` script and caches the answer for the process, keyed by the
  // interpreter's resolved path (so a venv's symlinked python shares its base's
  // entry). Failures are not cached: NotFound when there is no such program,
  // IOError when it cannot run or fails, ValueError when its output is not
  // the expected JSON.
  static util::Result<InterpreterFacts> Read(const std::string& python);

  // An object with the eleven keys above, all strings (ValueError otherwise;
  // other keys are ignored).
  static util::Result<InterpreterFacts> FromJson(const util::Json& json);
  util::Json ToJson() const;

  // The value of a marker variable (canonical name), or nullptr.
  const std::string* Get(std::string_view variable) const;
};

class Marker {
 public:
  // ValueError "Invalid marker '<text>': <problem> at position N".
  static util::Result<Marker> Parse(std::string_view text);

  // True when the marker holds for `facts` with one of `extras` as `extra`
  // (pip's match_markers: with no extras, `extra` is ""). ValueError for an
  // undefined comparison such as `os_name ~= "posix"`.
  util::Result<bool> Evaluate(const InterpreterFacts& facts,
                              const std::set<std::string>& extras = {}) const;

  std::string ToString() const;

  // A syntax error of the marker grammar: packaging's message and the byte
  // span [start, end] it points at.
  struct SyntaxProblem {
    std::string message;
    std::size_t start = 0;
    std::size_t end = 0;
  };
  // For Requirement: parses the marker that starts at byte `*pos` of `source`,
  // and the whitespace after it, leaving `*pos` after them; what follows is
  // the caller's to check.
  static std::variant<Marker, SyntaxProblem> ParsePrefix(std::string_view source, std::size_t* pos);

  struct Expr;  // the parse tree, defined in markers.cc

 private:
  explicit Marker(std::shared_ptr<const Expr> root) : root_(std::move(root)) {}

  std::shared_ptr<const Expr> root_;
};

}  // namespace strata::pyinstall
