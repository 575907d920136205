// Reading log files: the end of one, for error messages that quote what a
// process printed last, and pieces of one that is still growing, for log
// streams.
//
// Thread-safety: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace strata::util {

// The last `count` lines of `file` without the final newline, read from the
// file's final 64 KiB only (a chatty process may have written a large log);
// "" when the file cannot be read.
std::string FileTail(const std::filesystem::path& file, std::size_t count);

// Up to `limit` bytes of `file` from byte `offset`; "" when there are none or
// the file cannot be read.
std::string FileChunk(const std::filesystem::path& file, std::uint64_t offset, std::size_t limit);

// The whole file; "" when it cannot be read.
std::string FileText(const std::filesystem::path& file);

}  // namespace strata::util
