// Wheel file names and their compatibility with a target interpreter, as pip
// decides it through its vendored `packaging` (utils.parse_wheel_filename,
// tags.sys_tags).
//
// WheelFilename: `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`
// (binary distribution format, PEP 427), with compressed tag sets
// ("py2.py3-none-any" is two tags) and the name normalised per PEP 503.
//
// SupportedTags: the tags a CPython interpreter on Linux accepts, most
// preferred first, exactly as `packaging.tags.sys_tags()` lists them there.
// Priority: where a wheel ranks in that list (lower is better), which is how
// pip picks among the wheels of one release.
//
// Thread-safety: value types and pure functions, except TargetFacts::Read,
// which may be called from any thread (its cache is guarded by a mutex).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pyinstall/version.h"
#include "util/result.h"

namespace strata::pyinstall {

// One (interpreter, abi, platform) triple, lowercase: "cp311", "abi3",
// "manylinux_2_17_x86_64".
struct Tag {
  std::string interpreter;
  std::string abi;
  std::string platform;

  std::string ToString() const;  // "cp311-abi3-manylinux_2_17_x86_64"
  friend auto operator<=>(const Tag&, const Tag&) = default;
};

// The optional build tag: a number, then any text ("1", "2_dev" -> {2, "_dev"}).
// Ordered like packaging's tuple (number, suffix).
struct BuildTag {
  std::uint64_t number = 0;
  std::string suffix;
  friend auto operator<=>(const BuildTag&, const BuildTag&) = default;
};

struct WheelFilename {
  std::string name;  // PEP 503 normalised: "typing-extensions"
  Version version;
  std::optional<BuildTag> build;
  std::vector<Tag> tags;  // compressed sets expanded, duplicates dropped, file order

  // ValueError naming `filename` when it does not end in ".whl", does not have
  // 5 or 6 dash-separated parts, has a name that is not made of ASCII letters,
  // digits, '_' and '.' (or contains "__"), an invalid PEP 440 version, or a
  // build tag not starting with a digit. Unlike packaging, an empty or
  // non-ASCII name is rejected.
  static util::Result<WheelFilename> Parse(std::string_view filename);
};

// What tag selection needs to know about an interpreter.
struct TargetFacts {
  std::string implementation = "cp";  // packaging's short name; only "cp" is supported
  int python_major = 3;
  int python_minor = 0;
  // The CPython ABI flags packaging derives: "t" free-threaded, "d" debug,
  // "m" pymalloc (before 3.8), "u" wide unicode (before 3.3), in that order.
  std::string abi_flags;
  // sysconfig.get_platform() with '-'/'.' as '_', and packaging's 32-bit
  // adjustment ("linux_i686" for a 32-bit interpreter on x86_64).
  std::string platform = "linux_x86_64";
  // Whether the interpreter binary has an ABI that manylinux covers
  // (packaging's _have_compatible_abi: armhf and i386 are checked on the ELF
  // header, x86_64/aarch64/ppc64/ppc64le/s390x always are).
  bool manylinux_abi = true;
  std::optional<std::pair<int, int>> glibc;  // (major, minor) when linked to glibc
  std::optional<std::pair<int, int>> musl;   // (major, minor) when linked to musl

  // Runs `python` once (a path, or a name looked up on PATH; no shell) and
  // caches the facts for the process, keyed by the interpreter's path with
  // symlinks resolved; failures are not cached. Two threads asking for a new
  // interpreter at once may both run it. A pyenv shim is keyed as itself, so
  // switching pyenv versions within one process is not seen.
  // NotFound when `python` cannot be found; IOError when it cannot be run or
  // fails; ValueError when it is not CPython on Linux.
  // Not honoured: a `_manylinux` module that vetoes manylinux tags.
  static util::Result<TargetFacts> Read(const std::string& python);
};

// sys_tags() for CPython: cp3X-<abis>-<platforms>, cp3X-abi3-<platforms>,
// cp3X-none-<platforms>, cp3(X-1)..cp32-abi3-<platforms>, then
// py3X/py3/py3(X-1)..py30-none-<platforms>, cp3X-none-any, then
// py3X/py3/py3(X-1)..py30-none-any. That is packaging >= 22 (pip >= 24.1);
// older packaging lacks cp3X-none-any, which is the only difference.
// Platforms: manylinux_2_<glibc>..manylinux_2_5 (2_17 below x86_64/i686) with
// manylinux2014/2010/1 after 2_17/2_12/2_5, musllinux_<major>_<minor..0>,
// then linux_<arch>.
std::vector<Tag> SupportedTags(const TargetFacts& facts);

// The lowest index in `supported` of any of the wheel's tags; nullopt when
// the wheel fits none. Linear in supported.size() * wheel.tags.size().
std::optional<int> Priority(const WheelFilename& wheel, const std::vector<Tag>& supported);

}  // namespace strata::pyinstall
