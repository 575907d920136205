// The end of a log file, for error messages that quote what a process
// printed last.
//
// Thread-safety: safe from any thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace strata::util {

// The last `count` lines of `file` without the final newline, read from the
// file's final 64 KiB only (a chatty process may have written a large log);
// "" when the file cannot be read.
std::string FileTail(const std::filesystem::path& file, std::size_t count);

}  // namespace strata::util
