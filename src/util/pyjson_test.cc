#include "util/pyjson.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

// Every expected string below was produced by CPython 3.11 (json.dumps with
// sort_keys=True, json.loads, repr, str, ==) on the same input.

namespace strata::util {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Parses JSON that the test expects to be valid.
Json J(std::string_view text) {
  Result<Json> parsed = ParseJson(text);
  EXPECT_TRUE(parsed.has_value()) << text << ": " << parsed.error().message;
  return parsed ? *parsed : Json();
}

// The error message ParseJson gives, or "<ok>".
std::string ParseError(std::string_view text) {
  Result<Json> parsed = ParseJson(text);
  if (parsed) return "<ok>";
  EXPECT_EQ(parsed.error().kind, ErrorKind::kValueError);
  return parsed.error().message;
}

// ---------------------------------------------------------------------------
// DumpsSorted

TEST(DumpsSorted, Scalars) {
  EXPECT_EQ(DumpsSorted(Json(nullptr)), "null");
  EXPECT_EQ(DumpsSorted(Json(true)), "true");
  EXPECT_EQ(DumpsSorted(Json(false)), "false");
  EXPECT_EQ(DumpsSorted(Json(0)), "0");
  EXPECT_EQ(DumpsSorted(Json(-1)), "-1");
  EXPECT_EQ(DumpsSorted(Json(123456789012345678)), "123456789012345678");
  EXPECT_EQ(DumpsSorted(Json(std::numeric_limits<uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(DumpsSorted(Json(std::numeric_limits<int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(DumpsSorted(Json("")), "\"\"");
  EXPECT_EQ(DumpsSorted(Json::array()), "[]");
  EXPECT_EQ(DumpsSorted(Json::object()), "{}");
}

TEST(DumpsSorted, FloatsAsPythonRepr) {
  const std::vector<std::pair<double, std::string>> cases = {
      {0.1, "0.1"},
      {1.0 / 3, "0.3333333333333333"},
      {2.0 / 3, "0.6666666666666666"},
      {1e22, "1e+22"},
      {1e23, "1e+23"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {-0.0, "-0.0"},
      {0.0, "0.0"},
      {1.0, "1.0"},
      {100.0, "100.0"},
      {-2.5, "-2.5"},
      {1e16, "1e+16"},
      {1.5e16, "1.5e+16"},
      {1e15, "1000000000000000.0"},
      {9999999999999998.0, "9999999999999998.0"},
      {12345678901234567.0, "1.2345678901234568e+16"},
      {123456789.123, "123456789.123"},
      {1e-4, "0.0001"},
      {0.00012345, "0.00012345"},
      {1e-5, "1e-05"},
      {2.5e-5, "2.5e-05"},
      {1.2345e-7, "1.2345e-07"},
      {1e100, "1e+100"},
      {-1.5e-300, "-1.5e-300"},
      {4.35, "4.35"},
      {2.675, "2.675"},
      {9223372036854775808.0, "9.223372036854776e+18"},
      {kNaN, "NaN"},
      {kInf, "Infinity"},
      {-kInf, "-Infinity"},
  };
  for (const auto& [value, expected] : cases) {
    EXPECT_EQ(DumpsSorted(Json(value)), expected) << "value " << value;
  }
}

TEST(DumpsSorted, EnsureAsciiEscapes) {
  // Python: json.dumps("\u00e9\U0001F600\x00\x1f\x7f\b\f\n\r\t\"\\/")
  const std::string s =
      "\xC3\xA9\xF0\x9F\x98\x80" + std::string(1, '\0') + "\x1f\x7f\b\f\n\r\t\"\\/";
  EXPECT_EQ(DumpsSorted(Json(s)), R"("\u00e9\ud83d\ude00\u0000\u001f\u007f\b\f\n\r\t\"\\/")");
  EXPECT_EQ(DumpsSorted(Json("\xC2\x80\xC2\x85\xC2\x9F\xC2\xA0\xC2\xAD\xC3\xBF")),
            R"("\u0080\u0085\u009f\u00a0\u00ad\u00ff")");
  EXPECT_EQ(DumpsSorted(Json("\xEF\xBB\xBF\xEF\xBF\xBF\xE2\x80\xA8")), R"("\ufeff\uffff\u2028")");
  // U+E0001, U+10FFFF, U+20000 as surrogate pairs.
  EXPECT_EQ(DumpsSorted(Json("\xF3\xA0\x80\x81\xF4\x8F\xBF\xBF\xF0\xA0\x80\x80")),
            R"("\udb40\udc01\udbff\udfff\ud840\udc00")");
  EXPECT_EQ(DumpsSorted(Json("plain ASCII ~ text")), R"("plain ASCII ~ text")");
}

TEST(DumpsSorted, BytesThatAreNotUtf8) {
  // A stray byte prints as U+FFFD; an encoded surrogate prints as itself.
  EXPECT_EQ(DumpsSorted(Json("a\xFF"
                             "b")),
            R"("a\ufffdb")");
  EXPECT_EQ(DumpsSorted(Json("\xED\xA0\x80")), R"("\ud800")");
  EXPECT_EQ(DumpsSorted(Json("\xE4\xB8")), R"("\ufffd\ufffd")");
}

TEST(DumpsSorted, SortsKeysAtEveryLevel) {
  Json value = Json::object();
  value["b"] = 1;
  value["a"] = Json::array({1, 2.5, Json::object({{"d", nullptr}, {"c", true}})});
  value["\xC3\xA9"] = "x";
  value[""] = Json::object();
  EXPECT_EQ(DumpsSorted(value),
            R"({"": {}, "a": [1, 2.5, {"c": true, "d": null}], "b": 1, "\u00e9": "x"})");
}

TEST(DumpsSorted, SortsByCodePoint) {
  // {"é":1,"z":2,"😀":3,"\uffff":4,"A":5,"a":6,"":7}
  const Json value =
      J("{\"\xC3\xA9\":1,\"z\":2,\"\xF0\x9F\x98\x80\":3,\"\\uffff\":4,"
        "\"A\":5,\"a\":6,\"\":7}");
  EXPECT_EQ(DumpsSorted(value),
            R"({"": 7, "A": 5, "a": 6, "z": 2, "\u00e9": 1, "\uffff": 4, "\ud83d\ude00": 3})");
}

TEST(DumpsSorted, DoesNotReorderTheInput) {
  const Json value = J(R"({"b": 1, "a": 2})");
  EXPECT_EQ(DumpsSorted(value), R"({"a": 2, "b": 1})");
  EXPECT_EQ(value.begin().key(), "b");
}

TEST(DumpsSorted, BinaryAsListOfBytes) {
  EXPECT_EQ(DumpsSorted(Json::binary({0, 7, 255})), "[0, 7, 255]");
}

// ---------------------------------------------------------------------------
// ParseJson

TEST(ParseJson, Scalars) {
  EXPECT_TRUE(J("null").is_null());
  EXPECT_EQ(J("true"), Json(true));
  EXPECT_EQ(J("false"), Json(false));
  EXPECT_EQ(J(" \t\r\n\"x\"\n"), Json("x"));

  const Json zero = J("0");
  EXPECT_TRUE(zero.is_number_unsigned());
  const Json negative_zero = J("-0");  // an int: Python has no -0 int
  EXPECT_TRUE(negative_zero.is_number_unsigned());
  EXPECT_EQ(negative_zero.get<uint64_t>(), 0u);
  EXPECT_EQ(J("-5").get<int64_t>(), -5);
  EXPECT_TRUE(J("-5").is_number_integer());
  EXPECT_EQ(J("18446744073709551615").get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(J("-9223372036854775808").get<int64_t>(), std::numeric_limits<int64_t>::min());
}

TEST(ParseJson, Floats) {
  EXPECT_TRUE(J("1.0").is_number_float());
  EXPECT_TRUE(J("1e2").is_number_float());
  EXPECT_EQ(J("1E2").get<double>(), 100.0);
  EXPECT_EQ(J("1e-2").get<double>(), 0.01);
  EXPECT_EQ(J("123.456e2").get<double>(), 12345.6);
  EXPECT_EQ(J("0.1").get<double>(), 0.1);
  EXPECT_EQ(J("5e-324").get<double>(), 5e-324);
  const double negative_zero = J("-0.0").get<double>();
  EXPECT_EQ(negative_zero, 0.0);
  EXPECT_TRUE(std::signbit(negative_zero));
  // float() overflows to inf and underflows to zero instead of failing.
  EXPECT_EQ(J("1e400").get<double>(), kInf);
  EXPECT_EQ(J("-1e400").get<double>(), -kInf);
  EXPECT_EQ(J("1.7976931348623159e308").get<double>(), kInf);
  EXPECT_EQ(J("1e-400").get<double>(), 0.0);
  EXPECT_TRUE(std::signbit(J("-1e-400").get<double>()));
  EXPECT_EQ(J("2.4703282292062328e-324").get<double>(), 5e-324);
  EXPECT_EQ(J("0.000000000000000000000000000000001e-300").get<double>(), 0.0);
}

TEST(ParseJson, NanAndInfinity) {
  EXPECT_TRUE(std::isnan(J("NaN").get<double>()));
  EXPECT_EQ(J("Infinity").get<double>(), kInf);
  EXPECT_EQ(J("-Infinity").get<double>(), -kInf);
  EXPECT_EQ(DumpsSorted(J("[NaN, Infinity, -Infinity]")), "[NaN, Infinity, -Infinity]");
}

TEST(ParseJson, StringEscapes) {
  EXPECT_EQ(J(R"("\"\\\/\b\f\n\r\t")"), Json("\"\\/\b\f\n\r\t"));
  EXPECT_EQ(J(R"("\u00e9\u00E9")"), Json("\xC3\xA9\xC3\xA9"));
  EXPECT_EQ(J(R"("\ud83d\ude00")"), Json("\xF0\x9F\x98\x80"));
  EXPECT_EQ(J(R"("\uD83D\uDE00")"), Json("\xF0\x9F\x98\x80"));
  EXPECT_EQ(J(R"("\ud800\udc00")"), Json("\xF0\x90\x80\x80"));
  EXPECT_EQ(J(R"("\u0000")"), Json(std::string(1, '\0')));
  EXPECT_EQ(J("\"\xC3\xA9\xF0\x9F\x98\x80\x7f\""), Json("\xC3\xA9\xF0\x9F\x98\x80\x7f"));
}

TEST(ParseJson, KeepsInsertionOrder) {
  const Json value = J(R"({"z": 1, "a": {"y": 2, "b": 3}})");
  EXPECT_EQ(PyRepr(value), "{'z': 1, 'a': {'y': 2, 'b': 3}}");
}

TEST(ParseJson, DuplicateKeysLastValueFirstPosition) {
  EXPECT_EQ(PyRepr(J(R"({"a":1,"a":2,"b":3})")), "{'a': 2, 'b': 3}");
  EXPECT_EQ(PyRepr(J(R"({"b":1,"a":2,"b":3})")), "{'b': 3, 'a': 2}");
}

TEST(ParseJson, DuplicateKeysInLargeObject) {
  // More keys than the linear-scan threshold, so the hash index is used.
  std::string text = "{";
  for (int i = 0; i < 40; ++i)
    text += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
  text += "\"k3\": \"three\", \"k39\": \"last\", \"k0\": null}";
  const Json value = J(text);
  ASSERT_EQ(value.size(), 40u);
  auto it = value.begin();
  EXPECT_EQ(it.key(), "k0");
  EXPECT_TRUE(it.value().is_null());
  EXPECT_EQ(value["k3"], Json("three"));
  EXPECT_EQ(value["k39"], Json("last"));
  EXPECT_EQ(value.get_ref<const Json::object_t&>().back().first, "k39");
}

TEST(ParseJson, ErrorsMatchPython) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "Expecting value: line 1 column 1 (char 0)"},
      {" ", "Expecting value: line 1 column 2 (char 1)"},
      {"  \n ", "Expecting value: line 2 column 2 (char 4)"},
      {"x", "Expecting value: line 1 column 1 (char 0)"},
      {"{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"},
      {"[", "Expecting value: line 1 column 2 (char 1)"},
      {"[1", "Expecting ',' delimiter: line 1 column 3 (char 2)"},
      {"[1,", "Expecting value: line 1 column 4 (char 3)"},
      {"[1,]", "Expecting value: line 1 column 4 (char 3)"},
      {"[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)"},
      {R"({"a")", "Expecting ':' delimiter: line 1 column 5 (char 4)"},
      {R"({"a":)", "Expecting value: line 1 column 6 (char 5)"},
      {R"({"a":1)", "Expecting ',' delimiter: line 1 column 7 (char 6)"},
      {R"({"a":1,)", "Expecting property name enclosed in double quotes: line 1 column 8 (char 7)"},
      {R"({"a":1,})",
       "Expecting property name enclosed in double quotes: line 1 column 8 (char 7)"},
      {"{a:1}", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"},
      {R"({"a" 1})", "Expecting ':' delimiter: line 1 column 6 (char 5)"},
      {R"({"a":1 "b":2})", "Expecting ',' delimiter: line 1 column 8 (char 7)"},
      {R"({"a":{"b":[1,{"c":}]}})", "Expecting value: line 1 column 19 (char 18)"},
      {"[1,\n2,\nx]", "Expecting value: line 3 column 1 (char 7)"},
      {"01", "Extra data: line 1 column 2 (char 1)"},
      {"00", "Extra data: line 1 column 2 (char 1)"},
      {"-01", "Extra data: line 1 column 3 (char 2)"},
      {"1.", "Extra data: line 1 column 2 (char 1)"},
      {"1.e5", "Extra data: line 1 column 2 (char 1)"},
      {"1e", "Extra data: line 1 column 2 (char 1)"},
      {"1e+", "Extra data: line 1 column 2 (char 1)"},
      {"1.5e", "Extra data: line 1 column 4 (char 3)"},
      {"1.0e+", "Extra data: line 1 column 4 (char 3)"},
      {"0x10", "Extra data: line 1 column 2 (char 1)"},
      {"1 2", "Extra data: line 1 column 3 (char 2)"},
      {"[] ]", "Extra data: line 1 column 4 (char 3)"},
      {"nulll", "Extra data: line 1 column 5 (char 4)"},
      {"truex", "Extra data: line 1 column 5 (char 4)"},
      {"[1]\n\n  x", "Extra data: line 3 column 3 (char 7)"},
      {"{\"a\":1}\n{\"b\":2}", "Extra data: line 2 column 1 (char 8)"},
      {"-", "Expecting value: line 1 column 1 (char 0)"},
      {"-a", "Expecting value: line 1 column 1 (char 0)"},
      {"--1", "Expecting value: line 1 column 1 (char 0)"},
      {"+1", "Expecting value: line 1 column 1 (char 0)"},
      {".5", "Expecting value: line 1 column 1 (char 0)"},
      {"nul", "Expecting value: line 1 column 1 (char 0)"},
      {"tru", "Expecting value: line 1 column 1 (char 0)"},
      {"nan", "Expecting value: line 1 column 1 (char 0)"},
      {"-Inf", "Expecting value: line 1 column 1 (char 0)"},
      {"infinity", "Expecting value: line 1 column 1 (char 0)"},
      {"\xC2\xA0"
       "1",
       "Expecting value: line 1 column 1 (char 0)"},
      {"\f1", "Expecting value: line 1 column 1 (char 0)"},
      {"\"abc", "Unterminated string starting at: line 1 column 1 (char 0)"},
      {"\"a\\", "Unterminated string starting at: line 1 column 1 (char 0)"},
      {"\"a\\\"", "Unterminated string starting at: line 1 column 1 (char 0)"},
      {R"("\x")", "Invalid \\escape: line 1 column 2 (char 1)"},
      {R"("\U00e9")", "Invalid \\escape: line 1 column 2 (char 1)"},
      {R"("\u12")", "Invalid \\uXXXX escape: line 1 column 3 (char 2)"},
      {"\"\\u12\"   ", "Invalid \\uXXXX escape: line 1 column 3 (char 2)"},
      {R"("\u12g4")", "Invalid \\uXXXX escape: line 1 column 3 (char 2)"},
      {R"("\ud800\uzzzz")", "Invalid \\uXXXX escape: line 1 column 9 (char 8)"},
      {"\"a\x01"
       "b\"",
       "Invalid control character at: line 1 column 3 (char 2)"},
      {"\"a\nb\"", "Invalid control character at: line 1 column 3 (char 2)"},
      {"\"a\tb\"", "Invalid control character at: line 1 column 3 (char 2)"},
      {"\xEF\xBB\xBF"
       "1",
       "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"},
  };
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(ParseError(text), expected) << "input: " << text;
  }
}

TEST(ParseJson, ErrorPositionsCountCodePoints) {
  // Python counts characters, not UTF-8 bytes.
  EXPECT_EQ(ParseError("\"\xC3\xA9\" x"), "Extra data: line 1 column 5 (char 4)");
  EXPECT_EQ(ParseError("\"\xF0\x9F\x98\x80\" x"), "Extra data: line 1 column 5 (char 4)");
  EXPECT_EQ(ParseError("\n\n   \"\xC3\xA9\xC3\xA9\\q\""),
            "Invalid \\escape: line 3 column 7 (char 8)");
  EXPECT_EQ(ParseError("\"\\u\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\""),
            "Invalid \\uXXXX escape: line 1 column 3 (char 2)");
}

TEST(ParseJson, InvalidUtf8) {
  EXPECT_EQ(ParseError("\xFF"),
            "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte");
  EXPECT_EQ(ParseError("\"\xC3\xA9\xFF\""),
            "'utf-8' codec can't decode byte 0xff in position 3: invalid start byte");
  EXPECT_EQ(ParseError("[1, \"\xF0\x9F\x98\"]"),
            "'utf-8' codec can't decode bytes in position 5-7: invalid continuation byte");
  EXPECT_EQ(ParseError("\"\xED\xA0\x80\""),
            "'utf-8' codec can't decode byte 0xed in position 1: invalid continuation byte");
}

TEST(ParseJson, DeliberateDifferences) {
  // Python returns a str holding a lone surrogate and an unbounded int.
  EXPECT_EQ(ParseError(R"("\ud800")"),
            "Unpaired surrogate \\ud800 cannot be represented in UTF-8: line 1 column 2 (char 1)");
  EXPECT_EQ(ParseError(R"(["ok", "\udfff"])"),
            "Unpaired surrogate \\udfff cannot be represented in UTF-8: line 1 column 9 (char 8)");
  EXPECT_EQ(ParseError(R"("\ud800\u0041")"),
            "Unpaired surrogate \\ud800 cannot be represented in UTF-8: line 1 column 2 (char 1)");
  EXPECT_EQ(ParseError("18446744073709551616"),
            "Integer does not fit in 64 bits: line 1 column 1 (char 0)");
  EXPECT_EQ(ParseError("[-9223372036854775809]"),
            "Integer does not fit in 64 bits: line 1 column 2 (char 1)");
}

TEST(ParseJson, NestingLimit) {
  const auto nested = [](int depth, char open, char close) {
    return std::string(depth, open) + std::string(depth, close);
  };
  EXPECT_EQ(ParseError(nested(990, '[', ']')), "<ok>");
  EXPECT_EQ(ParseError(nested(991, '[', ']')),
            "maximum recursion depth exceeded while decoding a JSON array from a unicode string");
  EXPECT_EQ(ParseError(nested(100000, '[', ']')),
            "maximum recursion depth exceeded while decoding a JSON array from a unicode string");
  std::string objects;
  for (int i = 0; i < 991; ++i) objects += "{\"a\":";
  objects += "1" + std::string(991, '}');
  EXPECT_EQ(ParseError(objects),
            "maximum recursion depth exceeded while decoding a JSON object from a unicode string");
}

TEST(ParseJson, RoundTripsThroughDumps) {
  const std::string text =
      R"({"pip": ["requests==2.31", "numpy"], "env_vars": {"B": "2", "A": "1"}, )"
      R"("config": {"setup_timeout_seconds": 600, "eager_install": true}, "x": -1.5e-07})";
  EXPECT_EQ(DumpsSorted(J(text)),
            R"({"config": {"eager_install": true, "setup_timeout_seconds": 600}, )"
            R"("env_vars": {"A": "1", "B": "2"}, "pip": ["requests==2.31", "numpy"], )"
            R"("x": -1.5e-07})");
}

// ---------------------------------------------------------------------------
// PyRepr / PyStr

TEST(PyRepr, Containers) {
  Json value = Json::object();
  value["b"] = Json::array({1, 2.5, nullptr, true, false, kNaN, kInf, -kInf, -0.0, Json::object()});
  value["a"] = Json::object({{"x", Json::array()}});
  value[""] = "";
  EXPECT_EQ(PyRepr(value),
            "{'b': [1, 2.5, None, True, False, nan, inf, -inf, -0.0, {}], 'a': {'x': []}, '': ''}");
  EXPECT_EQ(PyRepr(J(R"({"a": 1, "b": [1, 2.5]})")), "{'a': 1, 'b': [1, 2.5]}");
  EXPECT_EQ(PyRepr(Json(std::numeric_limits<uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(PyRepr(Json(1e16)), "1e+16");
  EXPECT_EQ(PyRepr(Json(100.0)), "100.0");
}

TEST(PyRepr, StringQuoting) {
  EXPECT_EQ(PyRepr(Json("it's")), R"("it's")");
  EXPECT_EQ(PyRepr(Json("say \"hi\"")), R"('say "hi"')");
  EXPECT_EQ(PyRepr(Json("both ' and \"")), R"('both \' and "')");
  EXPECT_EQ(PyRepr(Json("back\\slash")), R"('back\\slash')");
  EXPECT_EQ(PyRepr(Json("")), "''");
}

TEST(PyRepr, StringEscapes) {
  EXPECT_EQ(PyRepr(Json("a\nb\rc\td")), R"('a\nb\rc\td')");
  EXPECT_EQ(PyRepr(Json(std::string(1, '\0'))), R"('\x00')");
  EXPECT_EQ(PyRepr(Json("\x01\x1f\x7f")), R"('\x01\x1f\x7f')");
  // U+0080 U+0085 U+009F U+00A0 are not printable, ¡ and é and ÿ are; the
  // soft hyphen U+00AD is a format character.
  EXPECT_EQ(PyRepr(Json("\xC2\x80\xC2\x85\xC2\x9F\xC2\xA0\xC2\xA1\xC2\xAD\xC3\xA9\xC3\xBF")),
            "'\\x80\\x85\\x9f\\xa0\xC2\xA1\\xad\xC3\xA9\xC3\xBF'");
  // Unassigned U+0378, combining U+0301 (printable), Hebrew alef, zero-width
  // space, line separator, ideographic space, private use, BOM, U+FFFD, U+FFFF.
  EXPECT_EQ(PyRepr(Json("\xCD\xB8\xCC\x81\xD7\x90\xE2\x80\x8B\xE2\x80\xA8\xE3\x80\x80\xEE\x80\x80"
                        "\xEF\xBB\xBF\xEF\xBF\xBD\xEF\xBF\xBF")),
            "'\\u0378\xCC\x81\xD7\x90\\u200b\\u2028\\u3000\\ue000\\ufeff\xEF\xBF\xBD\\uffff'");
  // Emoji and CJK extension B are printable; tags and plane 16 are not.
  EXPECT_EQ(PyRepr(Json("\xF0\x9F\x98\x80\xF3\xA0\x80\x81\xF4\x8F\xBF\xBF\xF0\xA0\x80\x80")),
            "'\xF0\x9F\x98\x80\\U000e0001\\U0010ffff\xF0\xA0\x80\x80'");
}

TEST(PyRepr, BytesThatAreNotUtf8) {
  EXPECT_EQ(PyRepr(Json("a\xFF")), "'a\xEF\xBF\xBD'");
  EXPECT_EQ(PyRepr(Json("\xED\xA0\x80")), R"('\ud800')");
}

TEST(PyRepr, Binary) {
  EXPECT_EQ(PyRepr(Json::binary({'a', 0, '\'', 0xFF})), R"(b"a\x00'\xff")");
}

TEST(PyStr, StringsAsIsOthersAsRepr) {
  EXPECT_EQ(PyStr(Json("it's \"x\"\n")), "it's \"x\"\n");
  EXPECT_EQ(PyStr(J(R"(["a", {"b": "c"}])")), "['a', {'b': 'c'}]");
  EXPECT_EQ(PyStr(Json(1.0)), "1.0");
  EXPECT_EQ(PyStr(Json(true)), "True");
  EXPECT_EQ(PyStr(Json(nullptr)), "None");
  EXPECT_EQ(PyStr(Json(kNaN)), "nan");
  EXPECT_EQ(PyStr(Json(-kInf)), "-inf");
}

// ---------------------------------------------------------------------------
// Type names

TEST(PyTypeName, AllTypes) {
  EXPECT_EQ(PyTypeName(Json(nullptr)), "NoneType");
  EXPECT_EQ(PyTypeName(Json(false)), "bool");
  EXPECT_EQ(PyTypeName(Json(1)), "int");
  EXPECT_EQ(PyTypeName(Json(-1)), "int");
  EXPECT_EQ(PyTypeName(J("18446744073709551615")), "int");
  EXPECT_EQ(PyTypeName(Json(1.0)), "float");
  EXPECT_EQ(PyTypeName(J("1e3")), "float");
  EXPECT_EQ(PyTypeName(Json("x")), "str");
  EXPECT_EQ(PyTypeName(Json::array()), "list");
  EXPECT_EQ(PyTypeName(Json::object()), "dict");
  EXPECT_EQ(PyTypeName(Json::binary({})), "bytes");
}

TEST(PyTypeRepr, ClassForm) {
  EXPECT_EQ(PyTypeRepr(Json(1)), "<class 'int'>");
  EXPECT_EQ(PyTypeRepr(Json(nullptr)), "<class 'NoneType'>");
  EXPECT_EQ(PyTypeRepr(J("{}")), "<class 'dict'>");
  EXPECT_EQ(PyTypeRepr(J("[]")), "<class 'list'>");
  EXPECT_EQ(PyTypeRepr(J("\"\"")), "<class 'str'>");
  EXPECT_EQ(PyTypeRepr(J("true")), "<class 'bool'>");
  EXPECT_EQ(PyTypeRepr(J("0.5")), "<class 'float'>");
}

// ---------------------------------------------------------------------------
// PyEqual

TEST(PyEqual, NumbersAcrossTypes) {
  EXPECT_TRUE(PyEqual(Json(1), Json(1.0)));
  EXPECT_TRUE(PyEqual(Json(true), Json(1)));
  EXPECT_TRUE(PyEqual(Json(true), Json(1.0)));
  EXPECT_TRUE(PyEqual(Json(false), Json(0)));
  EXPECT_TRUE(PyEqual(Json(false), Json(0.0)));
  EXPECT_TRUE(PyEqual(Json(0), Json(-0.0)));
  EXPECT_TRUE(PyEqual(J("-0"), J("0")));
  EXPECT_TRUE(PyEqual(J("5"), Json(int64_t{5})));  // unsigned vs signed storage
  EXPECT_FALSE(PyEqual(Json(true), Json(2)));
  EXPECT_FALSE(PyEqual(Json(1), Json(1.5)));
  EXPECT_FALSE(PyEqual(Json(-1), Json(std::numeric_limits<uint64_t>::max())));
  // Exact comparison, not through double: 2**53 + 1 != 2.0**53.
  EXPECT_FALSE(PyEqual(J("9007199254740993"), Json(9007199254740992.0)));
  EXPECT_TRUE(PyEqual(J("9007199254740992"), Json(9007199254740992.0)));
  EXPECT_FALSE(PyEqual(J("18446744073709551615"), Json(18446744073709551616.0)));
  EXPECT_TRUE(PyEqual(J("-9223372036854775808"), Json(-9223372036854775808.0)));
  EXPECT_FALSE(PyEqual(Json(1), Json(kInf)));
  EXPECT_TRUE(PyEqual(Json(kInf), J("Infinity")));
}

TEST(PyEqual, NaN) {
  // json.loads returns one shared NaN object and list/dict comparison
  // checks identity first: [nan] == [nan] but nan != nan.
  EXPECT_FALSE(PyEqual(J("NaN"), J("NaN")));
  EXPECT_TRUE(PyEqual(J("[NaN, {\"a\": NaN}]"), J("[NaN, {\"a\": NaN}]")));
  EXPECT_FALSE(PyEqual(J("[NaN]"), J("[1.0]")));
}

TEST(PyEqual, OtherTypes) {
  EXPECT_TRUE(PyEqual(Json(nullptr), Json(nullptr)));
  EXPECT_FALSE(PyEqual(Json(nullptr), Json(false)));
  EXPECT_FALSE(PyEqual(Json("1"), Json(1)));
  EXPECT_FALSE(PyEqual(Json(""), Json(0)));
  EXPECT_FALSE(PyEqual(J("[]"), J("{}")));
  EXPECT_TRUE(PyEqual(Json("\xC3\xA9"), J(R"("\u00e9")")));
  EXPECT_FALSE(PyEqual(Json("a"), Json("A")));
}

TEST(PyEqual, Containers) {
  EXPECT_TRUE(PyEqual(J("[1, 2]"), J("[1.0, 2.0]")));
  EXPECT_FALSE(PyEqual(J("[1, 2]"), J("[2, 1]")));
  EXPECT_FALSE(PyEqual(J("[1, 2]"), J("[1, 2, 3]")));
  EXPECT_TRUE(PyEqual(J(R"({"a": 1, "b": [true]})"), J(R"({"b": [1], "a": 1.0})")));
  EXPECT_FALSE(PyEqual(J(R"({"a": 1})"), J(R"({"a": 1, "b": 2})")));
  EXPECT_FALSE(PyEqual(J(R"({"a": 1})"), J(R"({"b": 1})")));
  EXPECT_FALSE(PyEqual(J(R"({"a": {"x": 1}})"), J(R"({"a": {"x": 2}})")));

  // Big dicts use a hash index; order still must not matter.
  Json a = Json::object();
  Json b = Json::object();
  for (int i = 0; i < 50; ++i) {
    a["k" + std::to_string(i)] = i;
    b["k" + std::to_string(49 - i)] = 49 - i;
  }
  EXPECT_TRUE(PyEqual(a, b));
  b["k7"] = "seven";
  EXPECT_FALSE(PyEqual(a, b));
}

// ---------------------------------------------------------------------------
// PyTruthy

TEST(PyTruthy, FalseValues) {
  for (const Json& value : {Json(nullptr), Json(false), Json(0), J("-0"), Json(0.0), Json(-0.0),
                            Json(""), Json::array(), Json::object()}) {
    EXPECT_FALSE(PyTruthy(value)) << DumpsSorted(value);
  }
}

TEST(PyTruthy, TrueValues) {
  for (const Json& value : {Json(true), Json(1), Json(-1), Json(0.5), Json(kNaN), Json(-kInf),
                            Json(" "), Json("0"), Json("False"), J("[0]"), J(R"({"": null})")}) {
    EXPECT_TRUE(PyTruthy(value)) << DumpsSorted(value);
  }
}

// ---------------------------------------------------------------------------
// ParsePyFloat

TEST(ParsePyFloat, AcceptsWhatFloatAccepts) {
  EXPECT_EQ(ParsePyFloat("1.5"), 1.5);
  EXPECT_EQ(ParsePyFloat(" \t-2.5e-3\n"), -0.0025);
  EXPECT_EQ(ParsePyFloat("+1e3"), 1000.0);
  EXPECT_EQ(ParsePyFloat(".5"), 0.5);
  EXPECT_EQ(ParsePyFloat("5."), 5.0);
  EXPECT_EQ(ParsePyFloat("007.50"), 7.5);
  EXPECT_EQ(ParsePyFloat("1E+2"), 100.0);
  EXPECT_EQ(ParsePyFloat("inf"), kInf);
  EXPECT_EQ(ParsePyFloat("-Infinity"), -kInf);
  EXPECT_TRUE(std::isnan(*ParsePyFloat("NaN")));
  EXPECT_EQ(ParsePyFloat("1e400"), kInf);
  EXPECT_EQ(ParsePyFloat("-1e400"), -kInf);
  EXPECT_TRUE(std::signbit(*ParsePyFloat("-1e-400")));
}

TEST(ParsePyFloat, RejectsOtherText) {
  for (std::string_view text : {"", " ", "e5", ".", "-", "1e", "1e+", "1_0", "0x10", "1.5f", "--1",
                                "+-1", "in", "nan(1)", "1 2"}) {
    EXPECT_FALSE(ParsePyFloat(text).has_value()) << text;
  }
}

TEST(ParseJson, InvalidUtf8MessagesMatchUnicodeDecodeError) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\x80", "byte 0x80 in position 1: invalid start byte"},
      {"\xC0\x80", "byte 0xc0 in position 0: invalid start byte"},
      {"\xC1\xBF", "byte 0xc1 in position 0: invalid start byte"},
      {"\xC2", "byte 0xc2 in position 0: unexpected end of data"},
      {"\xC2"
       "A",
       "byte 0xc2 in position 0: invalid continuation byte"},
      {"\xE4"
       "A",
       "byte 0xe4 in position 0: invalid continuation byte"},
      {"\xE4\xB8"
       "A",
       "bytes in position 0-1: invalid continuation byte"},
      {"\xE4\xB8", "bytes in position 0-1: unexpected end of data"},
      {"\xED\xA0\x80", "byte 0xed in position 0: invalid continuation byte"},
      {"\xE0\x80\x80", "byte 0xe0 in position 0: invalid continuation byte"},
      {"\xF0\x9F\x98", "bytes in position 0-2: unexpected end of data"},
      {"\xF0\x9F\x98"
       "A",
       "bytes in position 0-2: invalid continuation byte"},
      {"\xF4\x90\x80\x80", "byte 0xf4 in position 0: invalid continuation byte"},
      {"\xF0\x80\x80\x80", "byte 0xf0 in position 0: invalid continuation byte"},
      {"\xF5\x80", "byte 0xf5 in position 0: invalid start byte"},
  };
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(ParseError(text), "'utf-8' codec can't decode " + expected);
  }
  // The edges of the valid ranges: U+D7FF, U+0800, U+10FFFF.
  EXPECT_EQ(J("\"\xED\x9F\xBF\xE0\xA0\x80\xF4\x8F\xBF\xBF\""),
            Json("\xED\x9F\xBF\xE0\xA0\x80\xF4\x8F\xBF\xBF"));
}

}  // namespace
}  // namespace strata::util
