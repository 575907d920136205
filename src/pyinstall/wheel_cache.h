// The global cache of unpacked wheels: each wheel is unpacked once, keyed by
// the SHA-256 of its bytes, and environments hardlink its files
// (wheel_install.h).
//
// Layout under the cache root:
//
//   <root>/
//     <sha256[0:2]>/
//       <sha256>/                 one published entry, immutable once renamed
//         files/                  the wheel's entries, unpacked safely
//         |                       (packaging/unpack.h: no absolute or ".."
//         |                       paths, no writing through symlinks; files
//         |                       0644, or 0755 when the zip marks any
//         |                       execute bit)
//         manifest.json           what installs need without reading the zip:
//                                 {"format": 1, "name", "version",
//                                  "wheel_version": "1.0",
//                                  "root_is_purelib": true,
//                                  "dist_info": "demo-1.0.dist-info",
//                                  "files": [[path, size, executable], ...],
//                                  "record": [[path, hash, size], ...]}
//       <sha256>.lock             flock(2) serialising builders of the entry
//                                 across threads and processes; left in place
//       .<sha256>.tmp-XXXXXX/     an entry being built, renamed to <sha256>/
//                                 when complete; ones left by a dead process
//                                 are removed by the next builder
//
// Unlike pip, which writes a zip's symlink entry as a regular file holding the
// target, the unpacker creates symlinks (checked to stay inside the tree);
// installs link them as symlinks.
//
// The wheel's contents live under files/ rather than next to manifest.json so
// that no wheel path can collide with the cache's own file.
//
// Files in an entry are shared by every environment that hardlinks them:
// nothing may ever open them for writing. Installs replace, never modify.
//
// Thread-safety: UnpackedWheelCache is immutable after construction; Get may
// run concurrently from any number of threads and processes on one root.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace strata::pyinstall {

// One row of a RECORD file (PEP 376 CSV): the path as written, the
// "sha256=<urlsafe b64>" hash and the size, both possibly empty.
struct RecordRow {
  std::string path;
  std::string hash;
  std::string size;
  friend bool operator==(const RecordRow&, const RecordRow&) = default;
};

// Parses RECORD text like Python's csv.reader (default dialect: ',' between
// fields, '"' quoting with "" as an escaped quote). Blank lines are skipped;
// rows with fewer than three fields are padded with empty ones, extra fields
// are dropped. ValueError for an unterminated quote.
util::Result<std::vector<RecordRow>> ParseRecord(std::string_view text);
// One RECORD line as csv.writer writes it (quoting only fields holding ',',
// '"', '\r' or '\n'), ending in "\r\n" like csv.writer's default.
std::string FormatRecordRow(const RecordRow& row);

struct UnpackedWheelFile {
  std::string path;  // relative to files/, '/'-separated, as in the wheel
  std::uint64_t size = 0;
  bool executable = false;
};

// A published cache entry (or, for tests, any directory with that layout).
struct UnpackedWheel {
  std::filesystem::path dir;  // <root>/<ab>/<sha256>
  std::string name;           // from the file name, PEP 503 normalised
  std::string version;        // from the file name, as written
  std::string wheel_version;  // WHEEL's Wheel-Version, e.g. "1.0"
  bool root_is_purelib = true;
  std::string dist_info;                 // "demo-1.0.dist-info" as it appears in the wheel
  std::vector<UnpackedWheelFile> files;  // regular files (and symlinks), sorted
  std::vector<RecordRow> record;         // the wheel's RECORD, file order

  std::filesystem::path files_dir() const { return dir / "files"; }
};

class UnpackedWheelCache {
 public:
  explicit UnpackedWheelCache(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }

  // The entry for the wheel at `wheel` (its file name must be a valid wheel
  // name) whose SHA-256 must be `sha256` (64 hex digits, any case). A
  // published entry is returned without reading the wheel; otherwise the
  // wheel is hashed, then unpacked and described in a temporary directory,
  // which is renamed into place. The wheel must not change during the call.
  // Errors, with nothing left in the cache: ValueError (bad name or digest,
  // unsafe entry, no or several .dist-info directories, a .dist-info not
  // named after the project, Wheel-Version not 1.x, no WHEEL or RECORD),
  // Corruption (digest mismatch, corrupt or truncated zip), NotFound, IOError.
  util::Result<UnpackedWheel> Get(const std::filesystem::path& wheel,
                                  std::string_view sha256) const;
  // The same for a wheel held in memory; `filename` is its base name.
  util::Result<UnpackedWheel> GetFromBytes(std::string_view filename, std::string_view bytes,
                                           std::string_view sha256) const;

  // The entry directory for `sha256` (lowercase), whether or not it exists.
  std::filesystem::path EntryDir(std::string_view sha256) const;

  // Reads a published entry's manifest.json. NotFound when there is none.
  static util::Result<UnpackedWheel> Load(const std::filesystem::path& entry_dir);

 private:
  struct Source;
  util::Result<UnpackedWheel> GetImpl(const Source& source, std::string_view sha256) const;

  std::filesystem::path root_;
};

}  // namespace strata::pyinstall
