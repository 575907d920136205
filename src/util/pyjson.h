// Python's view of JSON values. Ray hashes and prints runtime_env values with
// Python's json and repr, so Strata reproduces those spellings byte for byte:
// a runtime_env written by one SDK must hash, compare and print the same in
// the other.
//
// Values are nlohmann::ordered_json because a Python dict keeps insertion
// order and repr() shows it. Strings are UTF-8. Numbers follow json.loads:
// integers stay exact within int64/uint64, everything else is a double.
//
// Thread-safety: pure functions; safe to call concurrently.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace strata::util {

using Json = nlohmann::ordered_json;

// json.dumps(value, sort_keys=True) with default arguments: ", " and ": "
// separators, ensure_ascii (non-ASCII as lowercase \uXXXX, astral characters
// as surrogate pairs), object keys sorted by code point at every level,
// floats as float.__repr__, NaN/Infinity/-Infinity. Bytes that are not UTF-8
// are written as \ufffd (Python strings cannot hold them), except encoded
// surrogates, which come out as the lone \udXXX escape Python would print.
// Binary values are written as a list of byte values; discarded ones as null.
std::string DumpsSorted(const Json& value);

// json.loads(text), where text is UTF-8. Never throws. Errors are ValueErrors
// whose message is Python's, e.g. "Expecting value: line 1 column 1 (char 0)";
// invalid UTF-8 gives the message of Python's UnicodeDecodeError. Duplicate
// keys: the last value wins at the first key's position, as in a dict.
// NaN, Infinity and -Infinity are accepted. Non-negative integers are stored
// unsigned, negative ones signed (nlohmann's own convention).
//
// Deliberate differences from Python, for values JSON cannot carry in UTF-8
// or in 64 bits: a \uXXXX escape that leaves a lone surrogate, and an integer
// outside [-2^63, 2^64), are ValueErrors. Nesting deeper than 990 levels is a
// ValueError carrying Python's RecursionError message.
Result<Json> ParseJson(std::string_view text);

// repr() of the object json.loads would return: {'a': 1, 'b': [1, 2.5]},
// True/False/None, nan/inf/-inf, strings quoted and escaped as str.__repr__
// does (printable non-ASCII kept, per Python 3.11's Unicode 14 tables).
std::string PyRepr(const Json& value);

// str(): strings as they are, anything else as PyRepr.
std::string PyStr(const Json& value);

// type(value).__name__: "NoneType", "bool", "int", "float", "str", "list",
// "dict" (and "bytes" for binary values).
std::string_view PyTypeName(const Json& value);

// f"{type(value)}", e.g. "<class 'int'>".
std::string PyTypeRepr(const Json& value);

// a == b in Python: numbers compare by exact value across bool/int/float
// (True == 1 == 1.0, 2**53 + 1 != 2.0**53), lists in order, dicts regardless
// of order. NaN != NaN at the top level, but NaN inside containers equals NaN:
// json.loads and yaml.safe_load return one shared NaN object and Python's
// container comparison checks identity first ([nan] == [nan] is True).
bool PyEqual(const Json& a, const Json& b);

// bool(value): None, False, 0, 0.0, -0.0, "", [] and {} are false; NaN is true.
bool PyTruthy(const Json& value);

// float(text) for a decimal literal: optional surrounding ASCII whitespace,
// optional sign, then "inf", "infinity" or "nan" in any case, or digits with
// an optional fraction and exponent ("1.", ".5", "1e5", "007.5"). Correctly
// rounded; overflow gives +-inf and underflow +-0.0, as in Python. nullopt
// for anything else (underscores included).
std::optional<double> ParsePyFloat(std::string_view text);

}  // namespace strata::util
