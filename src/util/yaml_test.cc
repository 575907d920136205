#include "util/yaml.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "util/pyjson.h"
#include "util/pystring.h"

// Expected values come from PyYAML 6 (yaml.safe_load) on CPython 3.11; where
// Python keys are not strings, from json.dumps of its result.

namespace strata::util {
namespace {

// repr() of what LoadYaml returns, or "ERR: <message>".
std::string Repr(std::string_view text) {
  Result<Json> loaded = LoadYaml(text);
  if (!loaded) {
    EXPECT_EQ(loaded.error().kind, ErrorKind::kValueError);
    return "ERR: " + loaded.error().message;
  }
  return PyRepr(*loaded);
}

// "<type> <repr>" of the value of `v: <scalar>`.
std::string Scalar(const std::string& scalar) {
  Result<Json> loaded = LoadYaml("v: " + scalar);
  if (!loaded) return "ERR: " + loaded.error().message;
  const Json& value = (*loaded)["v"];
  return std::string(PyTypeName(value)) + " " + PyRepr(value);
}

TEST(LoadYaml, ImplicitResolution) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      // null
      {"~", "NoneType None"},
      {"null", "NoneType None"},
      {"Null", "NoneType None"},
      {"NULL", "NoneType None"},
      {"", "NoneType None"},
      {"nUll", "str 'nUll'"},
      // bool
      {"yes", "bool True"},
      {"Yes", "bool True"},
      {"YES", "bool True"},
      {"yEs", "str 'yEs'"},
      {"no", "bool False"},
      {"No", "bool False"},
      {"NO", "bool False"},
      {"nO", "str 'nO'"},
      {"true", "bool True"},
      {"True", "bool True"},
      {"TRUE", "bool True"},
      {"tRUE", "str 'tRUE'"},
      {"false", "bool False"},
      {"on", "bool True"},
      {"On", "bool True"},
      {"off", "bool False"},
      {"Off", "bool False"},
      {"OFF", "bool False"},
      {"oFF", "str 'oFF'"},
      {"y", "str 'y'"},
      {"n", "str 'n'"},
      // int
      {"0", "int 0"},
      {"-0", "int 0"},
      {"+0", "int 0"},
      {"42", "int 42"},
      {"-17", "int -17"},
      {"+12_", "int 12"},
      {"1_000", "int 1000"},
      {"1__0", "int 10"},
      {"1_", "int 1"},
      {"0755", "int 493"},
      {"0_7_7", "int 63"},
      {"00", "int 0"},
      {"0_", "int 0"},
      {"08", "str '08'"},
      {"07_8", "str '07_8'"},
      {"0o17", "str '0o17'"},
      {"0x1F", "int 31"},
      {"-0x1F", "int -31"},
      {"0x", "str '0x'"},
      {"0b101", "int 5"},
      {"+0b1_1", "int 3"},
      {"0b", "str '0b'"},
      {"0b2", "str '0b2'"},
      {"1:30", "int 90"},
      {"-1:30", "int -90"},
      {"190:20:30", "int 685230"},
      {"1:5:7", "int 3907"},
      {"1:60", "str '1:60'"},
      {"18446744073709551615", "int 18446744073709551615"},
      {"-9223372036854775808", "int -9223372036854775808"},
      // float
      {"1.5", "float 1.5"},
      {"1.", "float 1.0"},
      {"0.", "float 0.0"},
      {".5", "float 0.5"},
      {"-.5", "str '-.5'"},
      {"09.5", "float 9.5"},
      {"1.0e+3", "float 1000.0"},
      {"1.5E+3", "float 1500.0"},
      {"+1.5e-3", "float 0.0015"},
      {"1.e-3", "float 0.001"},
      {"1.0e3", "str '1.0e3'"},
      {"1e3", "str '1e3'"},
      {"1e-3", "str '1e-3'"},
      {"12e03", "str '12e03'"},
      {"685.230_15e+03", "float 685230.15"},
      {"685_230.15", "float 685230.15"},
      {"1_2.3_4", "float 12.34"},
      {"1:30.5", "float 90.5"},
      {"190:20:30.15", "float 685230.15"},
      {"-0.0", "float -0.0"},
      {"1.8e+308", "float inf"},
      {"-1.0e-400", "float -0.0"},
      {".inf", "float inf"},
      {".Inf", "float inf"},
      {"+.inf", "float inf"},
      {"-.inf", "float -inf"},
      {".NaN", "float nan"},
      {".nAn", "str '.nAn'"},
      // strings
      {"_1", "str '_1'"},
      {"+", "str '+'"},
      {"\"yes\"", "str 'yes'"},
      {"'1'", "str '1'"},
      {"\"~\"", "str '~'"},
      {"hello world", "str 'hello world'"},
      {"1.2.3", "str '1.2.3'"},
      {"requests==2.31", "str 'requests==2.31'"},
  };
  for (const auto& [scalar, expected] : cases) {
    EXPECT_EQ(Scalar(scalar), expected) << "scalar: " << scalar;
  }
}

TEST(LoadYaml, FlowSequenceOfScalars) {
  EXPECT_EQ(Repr("k: [1, 2.5, -3, .5, 1_000, 0x_1F, 017, +1, -0.0, 1.0e+3, 1e3, '1e3', null, Yes, "
                 "~]"),
            "{'k': [1, 2.5, -3, 0.5, 1000, 31, 15, 1, -0.0, 1000.0, '1e3', '1e3', None, True, "
            "None]}");
  EXPECT_EQ(Repr("- 1:60\n- 1:59\n- 1:5\n- 1:05\n- 1::5\n- 1:5:\n- :5"),
            "['1:60', 119, 65, 65, '1::5', {'65': None}, ':5']");
}

TEST(LoadYaml, EmptyDocuments) {
  EXPECT_EQ(Repr(""), "None");
  EXPECT_EQ(Repr("# only a comment\n"), "None");
  EXPECT_EQ(Repr("---\n"), "None");
  EXPECT_EQ(Repr("~"), "None");
}

TEST(LoadYaml, TypicalRuntimeEnv) {
  const std::string text =
      "# runtime_env\n"
      "working_dir: .\n"
      "pip:\n"
      "  - requests==2.31\n"
      "  - 'numpy>=1'\n"
      "env_vars:\n"
      "  B: '2'\n"
      "  A: yes\n"
      "config: {setup_timeout_seconds: 600, eager_install: true}\n";
  Result<Json> loaded = LoadYaml(text);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(PyRepr(*loaded),
            "{'working_dir': '.', 'pip': ['requests==2.31', 'numpy>=1'], 'env_vars': {'B': '2', "
            "'A': True}, 'config': {'setup_timeout_seconds': 600, 'eager_install': True}}");
  EXPECT_EQ(DumpsSorted(*loaded),
            R"({"config": {"eager_install": true, "setup_timeout_seconds": 600}, )"
            R"("env_vars": {"A": true, "B": "2"}, "pip": ["requests==2.31", "numpy>=1"], )"
            R"("working_dir": "."})");
}

TEST(LoadYaml, Collections) {
  EXPECT_EQ(Repr("a:\n  - b\n  -\n  - ~\n  - \"\""), "{'a': ['b', None, None, '']}");
  EXPECT_EQ(Repr("? a\n: 1\n? b\n"), "{'a': 1, 'b': None}");
  EXPECT_EQ(Repr("- [a, [b, [c, [d]]]]\n- {a: {b: {c: {}}}}"),
            "[['a', ['b', ['c', ['d']]]], {'a': {'b': {'c': {}}}}]");
  EXPECT_EQ(Repr("- 1\n- - 2\n  - 3"), "[1, [2, 3]]");
  EXPECT_EQ(Repr("z: 1\na: 2\nm: 3"), "{'z': 1, 'a': 2, 'm': 3}");
}

TEST(LoadYaml, DuplicateKeysLastValueFirstPosition) {
  EXPECT_EQ(Repr("a: 1\nb: 3\na: 2"), "{'a': 2, 'b': 3}");
  EXPECT_EQ(Repr("{a: 1, a: 2}"), "{'a': 2}");
}

TEST(LoadYaml, ScalarStyles) {
  EXPECT_EQ(
      Repr("a: |\n  line1\n  line2\nb: >-\n  folded\n  text\nc: |+\n  keep\n\nd: x\n  y\n\n  z"),
      "{'a': 'line1\\nline2\\n', 'b': 'folded text', 'c': 'keep\\n\\n', 'd': 'x y\\nz'}");
  EXPECT_EQ(Repr("a: 'it''s'"), "{'a': \"it's\"}");
  EXPECT_EQ(Repr("- \"\xC3\xA9\xF0\x9F\x98\x80\"\n- \xC3\xA9\xF0\x9F\x98\x80"),
            "['\xC3\xA9\xF0\x9F\x98\x80', '\xC3\xA9\xF0\x9F\x98\x80']");
}

TEST(LoadYaml, DoubleQuotedEscapes) {
  // \N and \_ are U+0085 and U+00A0 (yaml-cpp emits them as Latin-1 bytes,
  // which LoadYaml re-encodes).
  Result<Json> loaded = LoadYaml("- \"\\x41\\N\\_\\L\\P\\e\\0\\a\\/\\ \\t\\u00e9\\U0001F600\"");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(PyRepr(*loaded),
            "['A\\x85\\xa0\\u2028\\u2029\\x1b\\x00\\x07/ \\t\xC3\xA9\xF0\x9F\x98\x80']");
  EXPECT_EQ(DumpsSorted(*loaded),
            R"(["A\u0085\u00a0\u2028\u2029\u001b\u0000\u0007/ \t\u00e9\ud83d\ude00"])");
  EXPECT_TRUE(CheckUtf8((*loaded)[0].get<std::string>()).ok());
}

TEST(LoadYaml, ExplicitTags) {
  EXPECT_EQ(Repr("x: !!float 1e3\ny: !!float 1_000\nz: !!float inf\nw: !!float -.INF\n"
                 "v: !!float 1:30\nu: !!float \"2.5\""),
            "{'x': 1000.0, 'y': 1000.0, 'z': inf, 'w': -inf, 'v': 90.0, 'u': 2.5}");
  EXPECT_EQ(Repr("x: !!int 0b1_0\ny: !!int 0x_F\nz: !!int 1:30\nw: !!int -0o17\n"
                 "v: !!int \" 12 \"\nu: !!int \"-0x10\"\nt: !!int 017"),
            "{'x': 2, 'y': 15, 'z': 90, 'w': -15, 'v': 12, 'u': -16, 't': 15}");
  EXPECT_EQ(Repr("x: !!bool TRUE\ny: !!bool Off\n"), "{'x': True, 'y': False}");
  EXPECT_EQ(Repr("x: !!null \"\"\ny: !!str null\nz: !!str 1.5\nw: !!str\nv: !!null x"),
            "{'x': None, 'y': 'null', 'z': '1.5', 'w': '', 'v': None}");
  EXPECT_EQ(Repr("- !!float .NaN\n- .nan\n- -.Inf"), "[nan, nan, -inf]");
  EXPECT_EQ(Repr("!!str 12"), "'12'");
  EXPECT_EQ(Repr("! 12"), "'12'");
  EXPECT_EQ(Repr("!!map {a: !!seq [1]}"), "{'a': [1]}");
}

TEST(LoadYaml, ExplicitTagErrors) {
  EXPECT_EQ(Repr("!!int abc"),
            "ERR: error at line 1, column 1: invalid literal for int() with base 10: 'abc'");
  EXPECT_EQ(Repr("v: 0x_"),
            "ERR: error at line 1, column 4: invalid literal for int() with base 16: ''");
  EXPECT_EQ(Repr("!!bool maybe"), "ERR: error at line 1, column 1: invalid boolean 'maybe'");
  EXPECT_EQ(Repr("!!float abc"),
            "ERR: error at line 1, column 1: could not convert string to float: 'abc'");
  EXPECT_EQ(Repr("!foo 12"),
            "ERR: error at line 1, column 1: could not determine a constructor for the tag '!foo'");
  EXPECT_EQ(Repr("- !!python/tuple [1, 2]"),
            "ERR: error at line 1, column 3: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/tuple'");
  EXPECT_EQ(Repr("!!str [1]"),
            "ERR: error at line 1, column 1: expected a scalar node, but found sequence");
  EXPECT_EQ(Repr("!!map [1]"),
            "ERR: error at line 1, column 1: expected a mapping node, but found sequence");
  EXPECT_EQ(Repr("!!seq {a: 1}"),
            "ERR: error at line 1, column 1: expected a sequence node, but found mapping");
  EXPECT_EQ(Repr("a: !!str\nb: !!int\n"),
            "ERR: error at line 2, column 4: string index out of range");
  EXPECT_EQ(Repr("v: ="),
            "ERR: error at line 1, column 4: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:value'");
  EXPECT_EQ(Repr("v: <<"),
            "ERR: error at line 1, column 4: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:merge'");
}

TEST(LoadYaml, ValuesJsonCannotHold) {
  EXPECT_EQ(Repr("!!binary aGVsbG8="),
            "ERR: error at line 1, column 1: cannot represent a value tagged "
            "'tag:yaml.org,2002:binary' as JSON");
  EXPECT_EQ(Repr("- !!set {a, b}"),
            "ERR: error at line 1, column 3: cannot represent a value tagged "
            "'tag:yaml.org,2002:set' as JSON");
  EXPECT_EQ(Repr("!!omap [a: 1]"),
            "ERR: error at line 1, column 1: cannot represent a value tagged "
            "'tag:yaml.org,2002:omap' as JSON");
  EXPECT_EQ(Repr("v: 18446744073709551616"),
            "ERR: error at line 1, column 4: integer 18446744073709551616 does not fit in 64 bits");
  EXPECT_EQ(Repr("v: -9223372036854775809"),
            "ERR: error at line 1, column 4: integer -9223372036854775809 does not fit in 64 bits");
  EXPECT_EQ(Repr("- 0x10000000000000000"),
            "ERR: error at line 1, column 3: integer 0x10000000000000000 does not fit in 64 bits");
  EXPECT_EQ(Repr("- 5124095576030432:0:0"),
            "ERR: error at line 1, column 3: integer 5124095576030432:0:0 does not fit in 64 bits");
}

TEST(LoadYaml, TimestampsStayStrings) {
  // PyYAML returns datetime.date / datetime.datetime here.
  EXPECT_EQ(Repr("v: 2001-12-14"), "{'v': '2001-12-14'}");
  EXPECT_EQ(Repr("v: !!timestamp 2001-12-14t21:59:43.10-05:00"),
            "{'v': '2001-12-14t21:59:43.10-05:00'}");
}

TEST(LoadYaml, Aliases) {
  EXPECT_EQ(Repr("a: &x 1\nb: *x\nc: &y [1, *x]\nd: *y"),
            "{'a': 1, 'b': 1, 'c': [1, 1], 'd': [1, 1]}");
  EXPECT_EQ(Repr("&a [*a]"),
            "ERR: error at line 1, column 1: recursive aliases cannot be represented as JSON");
  EXPECT_EQ(Repr("&a {x: *a}"),
            "ERR: error at line 1, column 1: recursive aliases cannot be represented as JSON");
  EXPECT_EQ(Repr("a: *unknown"),
            "ERR: error at line 1, column 4: the referenced anchor is not defined");
}

TEST(LoadYaml, AliasExpansionIsBounded) {
  // Ten references per level over nine levels would be 10^9 values.
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    const std::string prev = "*a" + std::to_string(i - 1);
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) text += (j ? ", " : "") + prev;
    text += "]\n";
  }
  const std::string result = Repr(text);
  EXPECT_NE(result.find("document expands to too many values through aliases"), std::string::npos)
      << result.substr(0, 200);
}

TEST(LoadYaml, MergeExpansionIsBounded) {
  std::string text = "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10}\n";
  for (int i = 1; i <= 9; ++i) {
    const std::string prev = "*m" + std::to_string(i - 1);
    text += "m" + std::to_string(i) + ": &m" + std::to_string(i) + " {<<: [";
    for (int j = 0; j < 10; ++j) text += (j ? ", " : "") + prev;
    text += "]}\n";
  }
  const std::string result = Repr(text);
  EXPECT_NE(result.find("document expands to too many values through aliases"), std::string::npos)
      << result.substr(0, 200);
}

TEST(LoadYaml, MergeKeys) {
  EXPECT_EQ(Repr("a: &A {x: 1, y: 2}\nb:\n  <<: *A\n  y: 3\n  z: 4"),
            "{'a': {'x': 1, 'y': 2}, 'b': {'x': 1, 'y': 3, 'z': 4}}");
  EXPECT_EQ(Repr("a: &A {x: 1, y: 2}\nb:\n  y: 3\n  <<: *A\n  z: 4"),
            "{'a': {'x': 1, 'y': 2}, 'b': {'x': 1, 'y': 3, 'z': 4}}");
  // In a list, earlier mappings win.
  EXPECT_EQ(
      Repr("a: &A {x: 1, y: 2}\nc: &C {x: 5, w: 6}\nb:\n  <<: [*A, *C]\n  z: 4"),
      "{'a': {'x': 1, 'y': 2}, 'c': {'x': 5, 'w': 6}, 'b': {'x': 1, 'w': 6, 'y': 2, 'z': 4}}");
  // Across repeated "<<" keys, later ones win.
  EXPECT_EQ(Repr("a: &A {x: 1}\nc: &C {x: 5}\nb:\n  <<: *A\n  <<: *C"),
            "{'a': {'x': 1}, 'c': {'x': 5}, 'b': {'x': 5}}");
  EXPECT_EQ(Repr("b:\n  <<: {x: 1, <<: {y: 2, x: 0}}"), "{'b': {'y': 2, 'x': 1}}");
  EXPECT_EQ(Repr("!!merge <<: {a: 1}"), "{'a': 1}");
  EXPECT_EQ(Repr("b:\n  '<<': {x: 1}"), "{'b': {'<<': {'x': 1}}}");
  EXPECT_EQ(Repr("=: 1"), "{'=': 1}");
}

TEST(LoadYaml, MergeKeyErrors) {
  EXPECT_EQ(Repr("b:\n  <<: 1"),
            "ERR: error at line 2, column 7: while constructing a mapping: expected a mapping or "
            "list of mappings for merging, but found scalar");
  EXPECT_EQ(Repr("b:\n  <<: [1]"),
            "ERR: error at line 2, column 8: while constructing a mapping: expected a mapping for "
            "merging, but found scalar");
  EXPECT_EQ(Repr("&a {<<: *a}"),
            "ERR: error at line 1, column 1: recursive aliases cannot be represented as JSON");
}

TEST(LoadYaml, NonStringKeys) {
  // Python merges equal keys (1 == 1.0 == True) and json.dumps writes them as
  // "1", "true", "null", "1.5", "Infinity", "NaN".
  EXPECT_EQ(Repr("1: a\n0x10: b\nyes: c\n~: d\n1.5: e\n.inf: f\n.nan: g\nfalse: h\n"
                 "2001-01-01: i"),
            "{'1': 'c', '16': 'b', 'null': 'd', '1.5': 'e', 'Infinity': 'f', 'NaN': 'g', "
            "'false': 'h', '2001-01-01': 'i'}");
  EXPECT_EQ(Repr("1: a\n1.0: b\ntrue: c"), "{'1': 'c'}");
  EXPECT_EQ(Repr("0.5: a\n.5: b\n1.0: c\n1: d"), "{'0.5': 'b', '1.0': 'd'}");
  EXPECT_EQ(Repr("0: a\n00: b\n-0: c\n0.0: d\nno: e"), "{'0': 'e'}");
  EXPECT_EQ(Repr("~: a\nnull: b"), "{'null': 'b'}");
  EXPECT_EQ(Repr(".inf: a\n-.inf: b"), "{'Infinity': 'a', '-Infinity': 'b'}");
  EXPECT_EQ(Repr("!!int 1: x"), "{'1': 'x'}");
  EXPECT_EQ(Repr("? !!str 1\n: x"), "{'1': 'x'}");
  EXPECT_EQ(DumpsSorted(*LoadYaml("2: b\n10: a")), R"({"10": "a", "2": "b"})");
}

TEST(LoadYaml, KeyErrors) {
  EXPECT_EQ(Repr("1: a\n'1': b"),
            "ERR: error at line 2, column 1: mapping keys 1 and '1' would both be written as the "
            "JSON key \"1\"");
  EXPECT_EQ(Repr("true: a\n'true': b"),
            "ERR: error at line 2, column 1: mapping keys True and 'true' would both be written "
            "as the JSON key \"true\"");
  EXPECT_EQ(Repr("? [1, 2]\n: x"),
            "ERR: error at line 1, column 3: while constructing a mapping: found unhashable key");
  EXPECT_EQ(Repr("? {a: 1}\n: x"),
            "ERR: error at line 1, column 3: while constructing a mapping: found unhashable key");
  EXPECT_EQ(Repr("[a, b]: c"),
            "ERR: error at line 1, column 1: while constructing a mapping: found unhashable key");
}

TEST(LoadYaml, SyntaxErrors) {
  EXPECT_EQ(Repr("a: b: c"), "ERR: error at line 1, column 5: illegal map value");
  EXPECT_EQ(Repr("key: value\n  bad indent: x"),
            "ERR: error at line 2, column 13: illegal map value");
  EXPECT_EQ(Repr("a: [1, 2"), "ERR: error at line 1, column 1: end of sequence flow not found");
  EXPECT_EQ(Repr("{a: 1"), "ERR: error at line 1, column 1: end of map flow not found");
  EXPECT_EQ(Repr("'unterminated"), "ERR: error at line 1, column 14: illegal EOF in scalar");
  EXPECT_EQ(Repr("\t- a"), "ERR: error at line 1, column 2: illegal block entry");
  EXPECT_EQ(Repr("x: \"\\ud800\""), "ERR: error at line 1, column 11: invalid unicode: 55296");
}

TEST(LoadYaml, MoreThanOneDocument) {
  EXPECT_EQ(Repr("--- 1\n--- 2"),
            "ERR: error at line 2, column 5: expected a single document in the stream, but "
            "found another document");
  EXPECT_EQ(Repr("a: 1\n---\n"),
            "ERR: error at line 3, column 1: expected a single document in the stream, but "
            "found another document");
  EXPECT_EQ(Repr("%YAML 1.1\n---\na: 1\n...\n"), "{'a': 1}");
}

TEST(LoadYaml, ReaderChecks) {
  EXPECT_EQ(Repr("x: \x01"),
            "ERR: error at line 1, column 4: unacceptable character #x0001: special characters "
            "are not allowed");
  EXPECT_EQ(Repr("a: 1\n# \xC3\xA9 \x7f"),
            "ERR: error at line 2, column 5: unacceptable character #x007f: special characters "
            "are not allowed");
  EXPECT_EQ(Repr("x: \xC2\x9F"),
            "ERR: error at line 1, column 4: unacceptable character #x009f: special characters "
            "are not allowed");
  EXPECT_EQ(Repr("x: \xEF\xBF\xBE"),
            "ERR: error at line 1, column 4: unacceptable character #xfffe: special characters "
            "are not allowed");
  EXPECT_EQ(Repr("x: \xFF"),
            "ERR: 'utf-8' codec can't decode byte 0xff in position 3: invalid start byte");
  EXPECT_EQ(Repr("\xEF\xBB\xBF"
                 "a: 1"),
            "{'a': 1}");
  EXPECT_EQ(Repr("a: b\r\n"), "{'a': 'b'}");
}

TEST(LoadYaml, NestingLimit) {
  EXPECT_EQ(Repr(std::string(100, '[') + std::string(100, ']')).substr(0, 6), "[[[[[[");
  EXPECT_EQ(Repr(std::string(5000, '[') + std::string(5000, ']')),
            "ERR: error at line 1, column 1: maximum nesting depth exceeded");
  std::string block;
  for (int i = 0; i < 5000; ++i) block += "- ";
  EXPECT_EQ(Repr(block + "x"), "ERR: error at line 1, column 1000: maximum nesting depth exceeded");
}

}  // namespace
}  // namespace strata::util
