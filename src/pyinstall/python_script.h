// Running a short script in a target Python interpreter, to read facts
// about it (marker values, wheel tags, venv layout) once per interpreter.
//
// RunPythonScript runs `program -I [-S] -c script` with stdin from
// /dev/null and no descriptors but 0-2, reads stdout and stderr separately
// (both drained together, so a chatty stderr cannot block the child), kills
// the child after `timeout`, and returns stdout. Errors: the program cannot
// be started ("cannot run ..."), it timed out ("... did not answer within N
// s"), or it exited non-zero ("... failed to run its facts script (status
// N): <stderr>").
//
// Thread-safety: safe to call concurrently (posix_spawn, no global state).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace strata::pyinstall {

// The interpreter `python` names, absolute and lexically normal: itself when
// it has a slash, else the first executable of that name on PATH; nullopt
// when there is none. Symbolic links are kept (the name an interpreter is
// run by shows in a venv).
std::optional<std::filesystem::path> FindPython(const std::string& python);

enum class SiteImport { kImport, kSkip };  // kSkip: `-S`, no site module

util::Result<std::string> RunPythonScript(
    const std::filesystem::path& program, std::string_view script,
    SiteImport site = SiteImport::kImport,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

}  // namespace strata::pyinstall
