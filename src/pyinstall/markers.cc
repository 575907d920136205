#include "pyinstall/markers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "pyinstall/pep508_text.h"
#include "pyinstall/python_script.h"
#include "pyinstall/requirement.h"
#include "pyinstall/version.h"

extern char** environ;

namespace strata::pyinstall {

// A node of packaging's marker list: operands joined by and/or. An atom is a
// comparison, or a parenthesised expression (`nested` holds exactly one).
struct Marker::Expr {
  struct Operand {
    bool is_variable = false;
    std::string text;  // canonical variable name, or the string's value
  };
  struct Atom {
    Operand lhs;
    std::string op;
    Operand rhs;
    std::vector<Expr> nested;
  };
  std::vector<Atom> atoms;
  std::vector<bool> is_or;  // between atoms[i] and atoms[i + 1]
};

namespace {

using Expr = Marker::Expr;
using Problem = Marker::SyntaxProblem;

// The marker variables and the members that hold them.
constexpr std::array<std::pair<std::string_view, std::string InterpreterFacts::*>, 11> kFields = {{
    {"implementation_name", &InterpreterFacts::implementation_name},
    {"implementation_version", &InterpreterFacts::implementation_version},
    {"os_name", &InterpreterFacts::os_name},
    {"platform_machine", &InterpreterFacts::platform_machine},
    {"platform_release", &InterpreterFacts::platform_release},
    {"platform_system", &InterpreterFacts::platform_system},
    {"platform_version", &InterpreterFacts::platform_version},
    {"python_full_version", &InterpreterFacts::python_full_version},
    {"platform_python_implementation", &InterpreterFacts::platform_python_implementation},
    {"python_version", &InterpreterFacts::python_version},
    {"sys_platform", &InterpreterFacts::sys_platform},
}};

// packaging's tokenizer rules, on the part of the source after `pos`.
class Lexer {
 public:
  Lexer(std::string_view source, std::size_t pos) : s_(source), pos_(pos) {}
  std::size_t pos() const { return pos_; }
  void Skip(std::size_t n) { pos_ += n; }

  void SkipWs() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  bool AtWs() const { return pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t'); }
  bool AtChar(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  // `word` as a whole word (\bword\b); consumes it when found.
  bool TakeWord(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word || !AtWordBoundary(s_, pos_) ||
        !AtWordBoundary(s_, pos_ + word.size())) {
      return false;
    }
    pos_ += word.size();
    return true;
  }
  // VARIABLE: a known name, legacy dots turned into underscores.
  std::optional<std::string> TakeVariable() {
    static constexpr std::array<std::string_view, 18> kSpellings = {
        "python_version",
        "python_full_version",
        "os_name",
        "os.name",
        "sys_platform",
        "sys.platform",
        "platform_release",
        "platform_system",
        "platform_version",
        "platform.version",
        "platform_machine",
        "platform.machine",
        "platform_python_implementation",
        "platform.python_implementation",
        "python_implementation",
        "implementation_name",
        "implementation_version",
        "extra"};
    for (std::string_view spelling : kSpellings) {
      if (!TakeWord(spelling)) continue;
      std::string name(spelling);
      for (char& c : name) {
        if (c == '.') c = '_';
      }
      if (name == "python_implementation") name = "platform_python_implementation";
      return name;
    }
    return std::nullopt;
  }

  // QUOTED_STRING: '...' or "..." without the quote inside.
  std::optional<std::string_view> TakeQuoted() {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return std::nullopt;
    std::size_t close = s_.find(s_[pos_], pos_ + 1);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view value = s_.substr(pos_ + 1, close - pos_ - 1);
    pos_ = close + 1;
    return value;
  }

  // OP, longest spelling first as in packaging's rule.
  std::optional<std::string> TakeOp() {
    for (std::string_view op : {"===", "==", "~=", "!=", "<=", ">=", "<", ">"}) {
      if (s_.substr(pos_, op.size()) == op) {
        pos_ += op.size();
        return std::string(op);
      }
    }
    return std::nullopt;
  }

 private:
  std::string_view s_;
  std::size_t pos_;
};

class Parser {
 public:
  Parser(std::string_view source, std::size_t pos) : lex_(source, pos) {}
  std::size_t pos() const { return lex_.pos(); }

  // marker = atom (BOOLOP atom)*
  std::optional<Expr> ParseMarker() {
    Expr expr;
    std::optional<Expr::Atom> atom = ParseAtom();
    if (!atom) return std::nullopt;
    expr.atoms.push_back(std::move(*atom));
    for (;;) {
      bool is_or;
      if (lex_.TakeWord("or")) {
        is_or = true;
      } else if (lex_.TakeWord("and")) {
        is_or = false;
      } else {
        break;
      }
      atom = ParseAtom();
      if (!atom) return std::nullopt;
      expr.is_or.push_back(is_or);
      expr.atoms.push_back(std::move(*atom));
    }
    return expr;
  }

  const Problem& problem() const { return problem_; }

 private:
  // atom = WS? "(" WS? marker WS? ")" WS? | WS? item WS?
  std::optional<Expr::Atom> ParseAtom() {
    lex_.SkipWs();
    Expr::Atom atom;
    if (lex_.AtChar('(')) {
      std::size_t open = lex_.pos();
      lex_.Skip(1);
      lex_.SkipWs();
      std::optional<Expr> inner = ParseMarker();
      if (!inner) return std::nullopt;
      lex_.SkipWs();
      if (!lex_.AtChar(')')) {
        return Fail(
            "Expected matching RIGHT_PARENTHESIS for LEFT_PARENTHESIS, after marker expression",
            open);
      }
      lex_.Skip(1);
      atom.nested.push_back(std::move(*inner));
    } else {
      std::optional<Expr::Operand> lhs = ParseOperand();
      if (!lhs) return std::nullopt;
      lex_.SkipWs();
      std::optional<std::string> op = ParseOp();
      if (!op) return std::nullopt;
      lex_.SkipWs();
      std::optional<Expr::Operand> rhs = ParseOperand();
      if (!rhs) return std::nullopt;
      atom.lhs = std::move(*lhs);
      atom.op = std::move(*op);
      atom.rhs = std::move(*rhs);
    }
    lex_.SkipWs();
    return atom;
  }

  std::optional<Expr::Operand> ParseOperand() {
    if (std::optional<std::string> name = lex_.TakeVariable()) {
      return Expr::Operand{true, std::move(*name)};
    }
    std::size_t start = lex_.pos();
    if (std::optional<std::string_view> value = lex_.TakeQuoted()) {
      // packaging reads the string with ast.literal_eval; without escapes
      // that is the text between the quotes, and real markers have none.
      if (value->find('\\') != std::string_view::npos) {
        return Fail("Backslash escapes in marker strings are not supported", start);
      }
      return Expr::Operand{false, std::string(*value)};
    }
    return Fail("Expected a marker variable or quoted string", start);
  }

  // marker_op = IN | NOT WS IN | OP
  std::optional<std::string> ParseOp() {
    if (lex_.TakeWord("in")) return "in";
    if (lex_.TakeWord("not")) {
      if (!lex_.AtWs()) return Fail("Expected whitespace after 'not'", lex_.pos());
      lex_.SkipWs();
      if (!lex_.TakeWord("in")) return Fail("Expected 'in' after 'not'", lex_.pos());
      return "not in";
    }
    if (std::optional<std::string> op = lex_.TakeOp()) return op;
    return Fail("Expected marker operator, one of <=, <, !=, ==, >=, >, ~=, ===, in, not in",
                lex_.pos());
  }

  std::nullopt_t Fail(std::string message, std::size_t start) {
    problem_ = {std::move(message), start, lex_.pos()};
    return std::nullopt;
  }

  Lexer lex_;
  Problem problem_;
};

std::string FormatAtom(const Expr::Atom& atom, bool parens);

// Operands joined by and/or; a lone atom is printed as itself, which drops
// the parentheses packaging drops.
std::string FormatExpr(const Expr& expr, bool parens) {
  if (expr.atoms.size() == 1) return FormatAtom(expr.atoms[0], parens);
  std::string out = parens ? "(" : "";
  for (std::size_t i = 0; i < expr.atoms.size(); ++i) {
    if (i > 0) out += expr.is_or[i - 1] ? " or " : " and ";
    out += FormatAtom(expr.atoms[i], true);
  }
  if (parens) out += ")";
  return out;
}

std::string FormatOperand(const Expr::Operand& operand) {
  return operand.is_variable ? operand.text : "\"" + operand.text + "\"";
}

std::string FormatAtom(const Expr::Atom& atom, bool parens) {
  if (!atom.nested.empty()) return FormatExpr(atom.nested[0], parens);
  return FormatOperand(atom.lhs) + " " + atom.op + " " + FormatOperand(atom.rhs);
}

// packaging's _normalize_extra_values: only the first comparison of the top
// level has its `extra` value normalised in the printed form (evaluation
// normalises every one).
void NormalizeFirstExtra(Expr& root) {
  Expr::Atom& first = root.atoms[0];
  if (!first.nested.empty()) return;
  if (first.lhs.is_variable && first.lhs.text == "extra" && !first.rhs.is_variable) {
    first.rhs.text = NormalizeName(first.rhs.text);
  } else if (first.rhs.is_variable && first.rhs.text == "extra" && !first.lhs.is_variable) {
    first.lhs.text = NormalizeName(first.lhs.text);
  }
}

bool IsVersionVariable(std::string_view name) {
  return name == "python_version" || name == "python_full_version" ||
         name == "implementation_version" || name == "platform_release";
}

struct Env {
  const InterpreterFacts& facts;
  std::string python_full_version;
  const std::string& extra;
};

const std::string& Resolve(const Env& env, const Expr::Operand& operand) {
  if (!operand.is_variable) return operand.text;
  if (operand.text == "extra") return env.extra;
  if (operand.text == "python_full_version") return env.python_full_version;
  return *env.facts.Get(operand.text);
}

// packaging's _eval_op, with string comparison where a side is no version.
util::Result<bool> Compare(std::string lhs, const std::string& op, std::string rhs,
                           const std::string& variable) {
  if (op == "in") return rhs.find(lhs) != std::string::npos;
  if (op == "not in") return rhs.find(lhs) == std::string::npos;
  if (variable == "extra") {
    lhs = NormalizeName(lhs);
    rhs = NormalizeName(rhs);
  }
  // A comma would make SpecifierSet read several clauses where packaging's
  // Specifier sees an invalid one.
  if (IsVersionVariable(variable) && rhs.find(',') == std::string::npos) {
    util::Result<SpecifierSet> spec = SpecifierSet::Parse(op + rhs);
    util::Result<Version> version = Version::Parse(lhs);
    if (spec && version) return spec->Contains(*version, /*prereleases=*/true);
  }
  if (op == "==") return lhs == rhs;
  if (op == "!=") return lhs != rhs;
  if (op == "<") return lhs < rhs;
  if (op == "<=") return lhs <= rhs;
  if (op == ">") return lhs > rhs;
  if (op == ">=") return lhs >= rhs;
  return util::ValueError("Undefined comparison " + op + " on '" + lhs + "' and '" + rhs + "'");
}

util::Result<bool> EvaluateExpr(const Expr& expr, const Env& env) {
  // Python's any(all(group) for group in or-separated groups), evaluating
  // every comparison as packaging does (so an undefined one always fails).
  bool any = false;
  bool all = true;
  for (std::size_t i = 0; i < expr.atoms.size(); ++i) {
    if (i > 0 && expr.is_or[i - 1]) {
      any = any || all;
      all = true;
    }
    const Expr::Atom& atom = expr.atoms[i];
    util::Result<bool> value =
        atom.nested.empty() ? Compare(Resolve(env, atom.lhs), atom.op, Resolve(env, atom.rhs),
                                      atom.lhs.is_variable ? atom.lhs.text : atom.rhs.text)
                            : EvaluateExpr(atom.nested[0], env);
    if (!value) return value.error();
    all = all && *value;
  }
  return any || all;
}

std::size_t CodePoints(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::variant<Marker, Marker::SyntaxProblem> Marker::ParsePrefix(std::string_view source,
                                                                std::size_t* pos) {
  Parser parser(source, *pos);
  std::optional<Expr> root = parser.ParseMarker();
  if (!root) return parser.problem();
  NormalizeFirstExtra(*root);
  *pos = parser.pos();
  return Marker(std::make_shared<const Expr>(std::move(*root)));
}

util::Result<Marker> Marker::Parse(std::string_view text) {
  std::size_t pos = 0;
  std::variant<Marker, SyntaxProblem> parsed = ParsePrefix(text, &pos);
  SyntaxProblem problem;
  if (Marker* marker = std::get_if<Marker>(&parsed)) {
    if (pos == text.size()) return std::move(*marker);
    problem = {"Expected end of marker expression", pos, pos};
  } else {
    problem = std::get<SyntaxProblem>(std::move(parsed));
  }
  return util::ValueError("Invalid marker '" + std::string(text) + "': " + problem.message +
                          " at position " +
                          std::to_string(CodePoints(text.substr(0, problem.start))));
}

util::Result<bool> Marker::Evaluate(const InterpreterFacts& facts,
                                    const std::set<std::string>& extras) const {
  // packaging appends "local" to the "3.13.0+" of an untagged CPython build
  // so that the value is a PEP 440 version.
  std::string full_version = facts.python_full_version;
  if (!full_version.empty() && full_version.back() == '+') full_version += "local";
  static const std::string kNoExtra;
  if (extras.empty()) return EvaluateExpr(*root_, Env{facts, full_version, kNoExtra});
  for (const std::string& extra : extras) {
    util::Result<bool> value = EvaluateExpr(*root_, Env{facts, full_version, extra});
    if (!value || *value) return value;
  }
  return false;
}

std::string Marker::ToString() const {
  return FormatExpr(*root_, false);
}

const std::string* InterpreterFacts::Get(std::string_view variable) const {
  for (const auto& [name, member] : kFields) {
    if (name == variable) return &(this->*member);
  }
  return nullptr;
}

util::Result<InterpreterFacts> InterpreterFacts::FromJson(const util::Json& json) {
  if (!json.is_object()) return util::ValueError("interpreter facts must be a JSON object");
  InterpreterFacts facts;
  for (const auto& [name, member] : kFields) {
    auto it = json.find(std::string(name));
    if (it == json.end() || !it->is_string()) {
      return util::ValueError("interpreter facts lack the string '" + std::string(name) + "'");
    }
    facts.*member = it->get<std::string>();
  }
  return facts;
}

util::Json InterpreterFacts::ToJson() const {
  util::Json json = util::Json::object();
  for (const auto& [name, member] : kFields) json[std::string(name)] = this->*member;
  return json;
}

namespace {

// packaging.markers.default_environment(), spelled for any Python 3.
constexpr const char* kFactsScript = R"(import json, os, platform, sys
v = sys.implementation.version
iv = "%d.%d.%d" % (v.major, v.minor, v.micro)
if v.releaselevel != "final":
    iv += v.releaselevel[0] + str(v.serial)
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": iv,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
)";

}  // namespace

util::Result<InterpreterFacts> InterpreterFacts::Read(const std::string& python) {
  static std::mutex mutex;
  static std::map<std::string, InterpreterFacts>* cache =
      new std::map<std::string, InterpreterFacts>();  // never destroyed: safe at exit

  std::optional<std::filesystem::path> program = FindPython(python);
  if (!program) return util::NotFoundError("no Python interpreter '" + python + "'");
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::canonical(*program, ec);
  std::string key = ec ? program->string() : resolved.string();
  {
    std::lock_guard lock(mutex);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  // Not under the lock: two threads may both run a new interpreter once,
  // which is harmless, while other interpreters are not held up.
  util::Result<std::string> output = RunPythonScript(*program, kFactsScript);
  if (!output) return output.error();
  util::Result<util::Json> json = util::ParseJson(*output);
  if (!json) {
    return util::ValueError(program->string() + " printed no JSON facts: " + json.error().message);
  }
  util::Result<InterpreterFacts> facts = FromJson(*json);
  if (!facts) return facts.error();
  std::lock_guard lock(mutex);
  cache->emplace(key, *facts);
  return facts;
}

}  // namespace strata::pyinstall
