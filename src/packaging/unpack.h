// Safe, atomic and cached unpacking of (untrusted) package archives.
//
// Layout around a destination <base>/<name>:
//
//   <base>/
//     <name>/               the unpacked tree; appears at once (rename) and is
//                           then reused as is: an existing <name>/ is a cache hit
//     <name>.lock           flock(2) file serialising unpackers of <name> across
//                           threads and processes (the kernel releases it if
//                           a holder dies); left in place, because deleting
//                           it would race with waiting unpackers
//     .<name>.tmp-XXXXXX/   extraction in progress, renamed to <name> when
//                           complete and removed on failure; ones left by a
//                           crashed process are removed by the next unpacker
//
// The archive itself is never modified or deleted.
//
// Safety policy (any violation fails the whole unpack, names the archive and
// the entry, and leaves neither <name>/ nor a temporary directory):
//   * entry names must be relative and free of ".." ("./" and empty
//     components are ignored);
//   * regular files, directories, symlinks and hardlinks only: device files,
//     FIFOs and sockets are rejected;
//   * symlinks must be relative, and their target, resolved inside the final
//     tree (after stripping, following the archive's other symlinks), must
//     stay inside it; they are created after every other entry, and no entry
//     may be written through a symlink, so extraction never leaves the
//     temporary directory (every path is walked with O_NOFOLLOW);
//   * hardlinks must name a regular file extracted earlier from the archive;
//   * declared sizes are summed (for zips from the central directory before
//     anything is written, for tars as headers arrive) and actual bytes are
//     counted while writing (zip bombs' headers lie): either passing
//     max_total_bytes fails; so does an entry count above max_entries;
//   * corrupt or truncated archives (bad CRC, short data, missing central
//     directory) fail.
// Files are created 0644, or 0755 when the archive marks any execute bit;
// directories 0755; owners, timestamps and other mode bits are not restored.
//
// Thread-safety: UnpackArchive may run concurrently in any number of threads
// and processes, for the same or different destinations.
#pragma once

#include <cstdint>
#include <filesystem>

#include "util/result.h"

namespace strata::packaging {

// kYes applies Ray's rule: if every entry lies under one top-level directory
// (a second top-level directory named "__MACOSX" aside), that directory's
// children become the top level and "__MACOSX" is dropped. Any top-level
// file, or two top-level directories besides "__MACOSX", keep the archive's
// layout as is.
enum class StripTopLevel { kNo, kYes };

struct UnpackOptions {
  StripTopLevel strip_top_level = StripTopLevel::kNo;
  std::uint64_t max_total_bytes = std::uint64_t{10} << 30;  // 10 GiB
  std::uint64_t max_entries = 1'000'000;
};

// Unpacks `archive` (any format ArchiveReader reads) into directory `dest`
// and returns `dest`; if `dest` already exists, returns it without reading the
// archive. Missing parents of `dest` are created. Errors: NotFound (archive
// missing), ValueError (unsupported type, unsafe entry, limit exceeded, `dest`
// not a directory), Corruption (bad magic, corrupt or truncated), IOError.
util::Result<std::filesystem::path> UnpackArchive(const std::filesystem::path& archive,
                                                  const std::filesystem::path& dest,
                                                  const UnpackOptions& options = {});

}  // namespace strata::packaging
