// yaml.safe_load for runtime_env files. Ray reads runtime_env YAML with
// PyYAML, whose YAML 1.1 resolver decides which plain scalars are numbers,
// booleans or null ("yes" is True, "1e3" is a string, "0755" is 493). The
// parsing is yaml-cpp's; typing follows PyYAML's SafeLoader so that a file
// means the same thing to Strata as to Ray.
//
// Thread-safety: pure function; safe to call concurrently.
#pragma once

#include <string_view>

#include "util/pyjson.h"
#include "util/result.h"

namespace strata::util {

// yaml.safe_load(text) for a single document, as Json:
//  - mappings become objects in document order; a repeated key keeps its
//    first position and its last value; "<<" merge keys are expanded as
//    PyYAML does;
//  - plain scalars are typed by PyYAML's implicit resolvers: null (~, null,
//    Null, NULL, empty), bool (yes/no/true/false/on/off in lower, Capitalised
//    and UPPER case), int (decimal, 0x hex, 0 octal, 0b binary, base-60
//    "1:30", "_" separators, sign), float (1.5, 1., .5, 1.0e+3 -- the exponent
//    needs a dot and a sign --, .inf, -.inf, .nan, "1:30.5");
//  - quoted and block scalars are strings; explicit !!str, !!int, !!float,
//    !!bool, !!null, !!seq and !!map tags are honoured;
//  - an empty stream is null.
// Mapping keys that are not strings become the key json.dumps would write
// (1 -> "1", True -> "true", None -> "null", 1.5 -> "1.5"), after Python's
// dict has merged equal keys (1, 1.0 and True are one key).
//
// Never throws. Every error is a ValueError. yaml-cpp's syntax errors keep
// its message: "error at line 2, column 5: illegal map value" (1-based).
// Also errors, where Python would return a value JSON cannot hold: sequence
// or mapping keys, recursive aliases, !!binary/!!set/!!omap/!!pairs and
// unknown tags, integers outside [-2^63, 2^64), two keys that json.dumps
// would both write as the same string (1 and "1"), and more than one
// document. Input that PyYAML's reader rejects (invalid UTF-8, control
// characters) is rejected too.
//
// Deliberate difference: timestamps (2001-12-14) stay strings; PyYAML
// returns datetime objects, which have no JSON form.
Result<Json> LoadYaml(std::string_view text);

}  // namespace strata::util
