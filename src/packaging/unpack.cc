#include "packaging/unpack.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "packaging/archive.h"

namespace strata::packaging {

using util::Error;
using util::Result;
using util::Status;

namespace {

constexpr std::string_view kMacOsDir = "__MACOSX";
constexpr int kMaxSymlinkHops = 40;  // Linux's MAXSYMLINKS.

std::string Quote(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

Error ErrnoError(const std::string& what, const std::filesystem::path& p, int err) {
  return util::IOError(what + " " + Quote(p) + ": " + std::strerror(err));
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string Join(const std::vector<std::string>& comps, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += '/';
    out += comps[i];
  }
  return out;
}

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> comps;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    comps.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return comps;
}

Error UnsafeEntry(const std::filesystem::path& archive, const std::string& entry,
                  const std::string& why) {
  return util::ValueError("refusing to unpack archive " + Quote(archive) + ": entry '" + entry +
                          "' " + why);
}

Error TooManyEntries(const std::filesystem::path& archive, const std::string& entry,
                     std::uint64_t limit) {
  return UnsafeEntry(archive, entry,
                     "exceeds the limit of " + std::to_string(limit) + " entries (max_entries)");
}

Error DeclaredTooLarge(const std::filesystem::path& archive, const std::string& entry,
                       std::uint64_t total, std::uint64_t limit) {
  return UnsafeEntry(archive, entry,
                     "brings the declared size to " + std::to_string(total) +
                         " bytes, above the limit of " + std::to_string(limit) +
                         " (max_total_bytes)");
}

// A zip lists every entry and size in its central directory, so the limits on
// declared sizes and entry counts can be checked before anything is written
// (cheap: the seekable reader skips data by seeking). Tars would have to be
// decompressed twice; for them the extractor's running checks suffice.
Status PrecheckZip(const std::filesystem::path& archive, const UnpackOptions& options) {
  auto reader = ArchiveReader::Open(archive);
  if (!reader) return reader.error();
  std::uint64_t entries = 0;
  std::uint64_t declared = 0;
  while (true) {
    auto next = reader->Next();
    if (!next) return next.error();
    if (!next->has_value()) return Status::Ok();
    const ArchiveEntryInfo& info = **next;
    if (++entries > options.max_entries) {
      return TooManyEntries(archive, info.path, options.max_entries);
    }
    if (info.type == ArchiveEntryType::kFile && info.size) {
      declared += *info.size;
      if (declared > options.max_total_bytes) {
        return DeclaredTooLarge(archive, info.path, declared, options.max_total_bytes);
      }
    }
  }
}

enum class Resolution { kInside, kOutside, kLoop };

// Follows `target` from directory `at` (components below the final root) as
// the kernel would, expanding the archive's own symlinks (`links`: path ->
// target). Lexical ".." is exact here because every directory on the way is a
// real one: any symlink in the tree is one of `links` and is expanded first.
Resolution Resolve(std::vector<std::string>& at, std::string_view target,
                   const std::unordered_map<std::string, std::string>& links, int& hops) {
  if (target.starts_with('/')) return Resolution::kOutside;
  for (std::string& comp : Split(target)) {
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      if (at.empty()) return Resolution::kOutside;
      at.pop_back();
      continue;
    }
    at.push_back(std::move(comp));
    if (links.empty()) continue;
    auto it = links.find(Join(at, at.size()));
    if (it == links.end()) continue;
    if (--hops < 0) return Resolution::kLoop;
    at.pop_back();
    if (auto r = Resolve(at, it->second, links, hops); r != Resolution::kInside) return r;
  }
  return Resolution::kInside;
}

struct PendingSymlink {
  std::string raw;  // Name as stored, for messages.
  std::vector<std::string> comps;
  std::string target;
};

// Extracts entries below `root_fd` (the temporary directory). Never follows a
// symlink: directories are walked component by component with O_NOFOLLOW.
class Extractor {
 public:
  Extractor(const std::filesystem::path& archive, int root_fd, const UnpackOptions& options)
      : archive_(archive), root_fd_(root_fd), options_(options) {}

  Status Run(ArchiveReader& reader) {
    while (true) {
      auto next = reader.Next();
      if (!next) return next.error();
      if (!next->has_value()) break;
      const ArchiveEntryInfo& info = **next;
      if (++entries_ > options_.max_entries) {
        return TooManyEntries(archive_, info.path, options_.max_entries);
      }
      auto comps = Normalize(info.path, info.path, "path");
      if (!comps) return comps.error();
      if (comps->empty()) {
        if (info.type == ArchiveEntryType::kDirectory) continue;  // "./": the root itself.
        return Unsafe(info.path, "has an empty name");
      }
      if (comps->size() == 1 && info.type != ArchiveEntryType::kDirectory) {
        top_level_file_ = true;
      } else {
        top_level_dirs_.insert(comps->front());
      }
      if (auto s = CheckNotThroughSymlink(info.path, *comps); !s) return s;
      Status s;
      switch (info.type) {
        case ArchiveEntryType::kDirectory: {
          auto dir = Dir(*comps, comps->size(), info.path);
          if (!dir) s = dir.error();
          break;
        }
        case ArchiveEntryType::kFile:
          s = ExtractFile(reader, info, *comps);
          break;
        case ArchiveEntryType::kSymlink:
          s = AddSymlink(info, std::move(*comps));
          break;
        case ArchiveEntryType::kHardlink:
          s = ExtractHardlink(info, *comps);
          break;
        case ArchiveEntryType::kCharDevice:
        case ArchiveEntryType::kBlockDevice:
          return Unsafe(info.path, "is a device file");
        case ArchiveEntryType::kFifo:
          return Unsafe(info.path, "is a FIFO");
        case ArchiveEntryType::kSocket:
          return Unsafe(info.path, "is a socket");
        case ArchiveEntryType::kOther:
          return Unsafe(info.path, "has an unsupported file type");
      }
      if (!s) return s;
    }
    return Finish();
  }

  // The directory (below the root) that becomes the destination: empty
  // unless the top level is stripped.
  const std::string& new_root() const { return new_root_; }

 private:
  Error Unsafe(const std::string& entry, const std::string& why) const {
    return UnsafeEntry(archive_, entry, why);
  }

  // Components of `path` (the entry's name or hardlink target) without "" and
  // ".": tars often store "./a/b".
  Result<std::vector<std::string>> Normalize(const std::string& entry, const std::string& path,
                                             const char* what) const {
    if (path.starts_with('/')) return Unsafe(entry, std::string("has an absolute ") + what);
    std::vector<std::string> comps;
    for (std::string& comp : Split(path)) {
      if (comp.empty() || comp == ".") continue;
      if (comp == "..") return Unsafe(entry, std::string("has a '..' component in its ") + what);
      comps.push_back(std::move(comp));
    }
    return comps;
  }

  Status CheckNotThroughSymlink(const std::string& raw, const std::vector<std::string>& comps) {
    if (symlink_paths_.empty()) return Status::Ok();
    for (std::size_t n = 1; n <= comps.size(); ++n) {
      std::string prefix = Join(comps, n);
      if (symlink_paths_.contains(prefix)) {
        return Unsafe(raw, n == comps.size()
                               ? "replaces the symlink '" + prefix + "'"
                               : "would be written through the symlink '" + prefix + "'");
      }
    }
    return Status::Ok();
  }

  // Opens directory comps[0, n) below the root, creating missing components.
  Result<Fd> OpenDir(const std::vector<std::string>& comps, std::size_t n, const std::string& raw,
                     bool create) {
    Fd cur(::dup(root_fd_));
    if (!cur.valid()) return ErrnoError("cannot dup directory of", archive_, errno);
    for (std::size_t i = 0; i < n; ++i) {
      const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
      int fd = ::openat(cur.get(), comps[i].c_str(), flags);
      if (fd < 0 && errno == ENOENT && create) {
        if (::mkdirat(cur.get(), comps[i].c_str(), 0755) != 0 && errno != EEXIST) {
          return ErrnoError("cannot create directory '" + Join(comps, i + 1) + "' for", archive_,
                            errno);
        }
        fd = ::openat(cur.get(), comps[i].c_str(), flags);
        // Exact modes whatever the umask, so every unpacker sees the same tree.
        if (fd >= 0) ::fchmod(fd, 0755);
      }
      if (fd < 0) {
        if (errno == ENOTDIR || errno == ELOOP || errno == ENOENT) {
          return Unsafe(raw,
                        "needs '" + Join(comps, i + 1) + "' to be a directory, which it is not");
        }
        return ErrnoError("cannot open directory '" + Join(comps, i + 1) + "' for", archive_,
                          errno);
      }
      cur = Fd(fd);
    }
    return cur;
  }

  // OpenDir with creation, caching the last directory: consecutive entries
  // usually share their parent. The fd stays valid until the next call.
  Result<int> Dir(const std::vector<std::string>& comps, std::size_t n, const std::string& raw) {
    if (n == 0) return root_fd_;
    std::string key = Join(comps, n);
    if (cached_fd_.valid() && key == cached_key_) return cached_fd_.get();
    cached_fd_.Reset();
    auto fd = OpenDir(comps, n, raw, /*create=*/true);
    if (!fd) return fd.error();
    cached_fd_ = std::move(*fd);
    cached_key_ = std::move(key);
    return cached_fd_.get();
  }

  Status CountBytes(const ArchiveEntryInfo& info, std::uint64_t n) {
    actual_bytes_ += n;
    if (actual_bytes_ > options_.max_total_bytes) {
      return Unsafe(info.path, "expands beyond the limit of " +
                                   std::to_string(options_.max_total_bytes) +
                                   " bytes in total (max_total_bytes); its header declared " +
                                   (info.size ? std::to_string(*info.size) : "no") + " bytes");
    }
    return Status::Ok();
  }

  Status ExtractFile(ArchiveReader& reader, const ArchiveEntryInfo& info,
                     const std::vector<std::string>& comps) {
    if (info.size) {
      declared_bytes_ += *info.size;
      if (declared_bytes_ > options_.max_total_bytes) {
        return DeclaredTooLarge(archive_, info.path, declared_bytes_, options_.max_total_bytes);
      }
    }
    auto parent = Dir(comps, comps.size() - 1, info.path);
    if (!parent) return parent.error();
    const mode_t mode = (info.mode & 0111) != 0 ? 0755 : 0644;
    Fd fd(::openat(*parent, comps.back().c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd.valid()) {
      if (errno == EISDIR || errno == ELOOP) return Unsafe(info.path, "conflicts with a directory");
      return ErrnoError("cannot create '" + info.path + "' from", archive_, errno);
    }
    if (::fchmod(fd.get(), mode) != 0) {
      return ErrnoError("cannot chmod '" + info.path + "' from", archive_, errno);
    }
    std::uint64_t end = 0;
    auto s = reader.ReadData([&](std::uint64_t offset, std::string_view block) -> Status {
      if (auto c = CountBytes(info, block.size()); !c) return c;
      std::size_t done = 0;
      while (done < block.size()) {
        ssize_t w = ::pwrite(fd.get(), block.data() + done, block.size() - done,
                             static_cast<off_t>(offset + done));
        if (w < 0) {
          if (errno == EINTR) continue;
          return ErrnoError("cannot write '" + info.path + "' from", archive_, errno);
        }
        done += static_cast<std::size_t>(w);
      }
      end = std::max(end, offset + block.size());
      return Status::Ok();
    });
    if (!s) return s;
    // A sparse entry may end in a hole.
    if (info.size && *info.size > end &&
        ::ftruncate(fd.get(), static_cast<off_t>(*info.size)) != 0) {
      return ErrnoError("cannot extend '" + info.path + "' from", archive_, errno);
    }
    return Status::Ok();
  }

  Status AddSymlink(const ArchiveEntryInfo& info, std::vector<std::string> comps) {
    const std::string& target = info.link_target;
    if (target.empty()) return Unsafe(info.path, "is a symlink without a target");
    if (target.starts_with('/')) {
      return Unsafe(info.path, "is a symlink to the absolute path '" + target + "'");
    }
    // Early, clearer failure for the plain case; Finish() checks again from
    // the final root and through other symlinks.
    std::vector<std::string> at(comps.begin(), comps.end() - 1);
    int hops = kMaxSymlinkHops;
    if (Resolve(at, target, {}, hops) != Resolution::kInside) {
      return Unsafe(info.path, "is a symlink to '" + target + "', outside the destination");
    }
    symlink_paths_.insert(Join(comps, comps.size()));
    pending_symlinks_.push_back({info.path, std::move(comps), target});
    return Status::Ok();
  }

  Status ExtractHardlink(const ArchiveEntryInfo& info, const std::vector<std::string>& comps) {
    auto target = Normalize(info.path, info.link_target, "hardlink target");
    if (!target) return target.error();
    if (target->empty()) return Unsafe(info.path, "is a hardlink without a target");
    if (symlink_paths_.contains(Join(*target, target->size()))) {
      return Unsafe(info.path, "is a hardlink to the symlink '" + info.link_target + "'");
    }
    auto target_dir = OpenDir(*target, target->size() - 1, info.path, /*create=*/false);
    if (!target_dir) {
      return Unsafe(info.path, "is a hardlink to '" + info.link_target +
                                   "', which is not a file extracted before it");
    }
    struct stat st {};
    if (::fstatat(target_dir->get(), target->back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode)) {
      return Unsafe(info.path, "is a hardlink to '" + info.link_target +
                                   "', which is not a file extracted before it");
    }
    auto parent = Dir(comps, comps.size() - 1, info.path);
    if (!parent) return parent.error();
    if (::linkat(target_dir->get(), target->back().c_str(), *parent, comps.back().c_str(), 0) !=
        0) {
      if (errno == EEXIST) return Unsafe(info.path, "conflicts with an earlier entry");
      return ErrnoError("cannot create hardlink '" + info.path + "' from", archive_, errno);
    }
    return Status::Ok();
  }

  // Decides stripping, checks symlinks against the final root, creates them.
  Status Finish() {
    std::set<std::string> dirs = top_level_dirs_;
    dirs.erase(std::string(kMacOsDir));
    const bool strip =
        options_.strip_top_level == StripTopLevel::kYes && !top_level_file_ && dirs.size() == 1;
    if (strip) new_root_ = *dirs.begin();
    const std::size_t skip = strip ? 1 : 0;

    std::unordered_map<std::string, std::string> links;
    std::vector<const PendingSymlink*> kept;
    for (const PendingSymlink& link : pending_symlinks_) {
      if (strip && link.comps.front() != new_root_) continue;  // Under __MACOSX: dropped.
      std::vector<std::string> rel(link.comps.begin() + static_cast<std::ptrdiff_t>(skip),
                                   link.comps.end());
      links.emplace(Join(rel, rel.size()), link.target);
      kept.push_back(&link);
    }
    for (const PendingSymlink* link : kept) {
      std::vector<std::string> at(link->comps.begin() + static_cast<std::ptrdiff_t>(skip),
                                  link->comps.end() - 1);
      int hops = kMaxSymlinkHops;
      switch (Resolve(at, link->target, links, hops)) {
        case Resolution::kInside:
          break;
        case Resolution::kOutside:
          return Unsafe(link->raw, "is a symlink to '" + link->target +
                                       "', which leads outside the destination");
        case Resolution::kLoop:
          return Unsafe(link->raw, "is a symlink to '" + link->target + "', which loops");
      }
    }
    for (const PendingSymlink* link : kept) {
      auto parent = Dir(link->comps, link->comps.size() - 1, link->raw);
      if (!parent) return parent.error();
      if (::symlinkat(link->target.c_str(), *parent, link->comps.back().c_str()) != 0) {
        if (errno == EEXIST) return Unsafe(link->raw, "conflicts with another entry");
        return ErrnoError("cannot create symlink '" + link->raw + "' from", archive_, errno);
      }
    }
    return Status::Ok();
  }

  const std::filesystem::path& archive_;
  int root_fd_;
  const UnpackOptions& options_;
  std::uint64_t entries_ = 0;
  std::uint64_t declared_bytes_ = 0;
  std::uint64_t actual_bytes_ = 0;
  bool top_level_file_ = false;
  std::set<std::string> top_level_dirs_;
  std::unordered_set<std::string> symlink_paths_;
  std::vector<PendingSymlink> pending_symlinks_;
  std::string cached_key_;
  Fd cached_fd_;
  std::string new_root_;
};

// Holds flock(LOCK_EX) on `path` for its lifetime. flock locks belong to the
// open file description, so separate open()s exclude threads of one process
// as well as other processes.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::filesystem::path& path) {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoError("cannot open lock file", path, errno);
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return ErrnoError("cannot lock", path, errno);
    }
    return FileLock(std::move(fd));
  }

 private:
  explicit FileLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;  // Closing it releases the lock.
};

// Result<bool>: whether `p` is a directory (following symlinks); an error if
// it exists as something else.
Result<bool> ExistingDirectory(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoError("cannot stat", p, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return util::ValueError("unpack destination " + Quote(p) + " exists and is not a directory");
  }
  return true;
}

bool IsTempName(const std::string& candidate, const std::string& prefix) {
  return candidate.size() == prefix.size() + 6 && candidate.starts_with(prefix);
}

// Only lock holders create temporaries for this destination, so any present
// while we hold the lock belongs to a process that died.
void RemoveStaleTemps(const std::filesystem::path& parent, const std::string& prefix) {
  std::error_code ec;
  std::vector<std::filesystem::path> stale;
  for (std::filesystem::directory_iterator it(parent, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (IsTempName(it->path().filename().string(), prefix)) stale.push_back(it->path());
  }
  for (const auto& p : stale) std::filesystem::remove_all(p, ec);
}

// Removes the temporary directory on every return: after a failure all of
// it, after publishing what stripping left behind (e.g. __MACOSX).
class TempDirGuard {
 public:
  explicit TempDirGuard(std::filesystem::path path) : path_(std::move(path)) {}
  ~TempDirGuard() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  TempDirGuard(const TempDirGuard&) = delete;
  TempDirGuard& operator=(const TempDirGuard&) = delete;

 private:
  std::filesystem::path path_;
};

}  // namespace

Result<std::filesystem::path> UnpackArchive(const std::filesystem::path& archive,
                                            const std::filesystem::path& dest_in,
                                            const UnpackOptions& options) {
  std::filesystem::path dest = dest_in.lexically_normal();
  if (!dest.has_filename()) dest = dest.parent_path();
  const std::string name = dest.filename().string();
  if (name.empty() || name == "." || name == "..") {
    return util::ValueError("invalid unpack destination " + Quote(dest_in));
  }
  // Published trees are complete (they appear by rename), so an existing one
  // is reused without waiting for the lock.
  auto exists = ExistingDirectory(dest);
  if (!exists) return exists.error();
  if (*exists) return dest;

  const std::filesystem::path parent = dest.has_parent_path() ? dest.parent_path() : ".";
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) return util::IOError("cannot create " + Quote(parent) + ": " + ec.message());
  auto lock = FileLock::Acquire(std::filesystem::path(dest.string() + ".lock"));
  if (!lock) return lock.error();
  exists = ExistingDirectory(dest);  // Another unpacker may have finished meanwhile.
  if (!exists) return exists.error();
  if (*exists) return dest;

  auto reader = ArchiveReader::Open(archive);
  if (!reader) return reader.error();
  if (reader->format() == ArchiveFormat::kZip) {
    if (auto s = PrecheckZip(archive, options); !s) return s.error();
  }

  const std::string prefix = "." + name + ".tmp-";
  RemoveStaleTemps(parent, prefix);
  std::string tmpl = (parent / (prefix + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return ErrnoError("cannot create a temporary directory next to", dest, errno);
  }
  const std::filesystem::path tmp = tmpl;
  TempDirGuard guard(tmp);
  Fd root(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) return ErrnoError("cannot open", tmp, errno);
  // mkdtemp creates 0700; the published tree is 0755 like its directories.
  if (::fchmod(root.get(), 0755) != 0) return ErrnoError("cannot chmod", tmp, errno);

  std::filesystem::path source = tmp;
  {
    Extractor extractor(archive, root.get(), options);
    if (auto s = extractor.Run(*reader); !s) return s.error();
    if (!extractor.new_root().empty()) source = tmp / extractor.new_root();
  }
  root.Reset();

  if (::renameat2(AT_FDCWD, source.c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    // Filesystems without RENAME_NOREPLACE: the lock already excludes other
    // unpackers, so a plain rename is safe.
    if (err == EINVAL) err = ::rename(source.c_str(), dest.c_str()) == 0 ? 0 : errno;
    if (err == EEXIST || err == ENOTEMPTY) {
      // Published by someone not using the lock; it is complete all the same.
      auto now = ExistingDirectory(dest);
      if (now && *now) return dest;
    }
    if (err != 0) return ErrnoError("cannot rename " + Quote(source) + " to", dest, err);
  }
  return dest;
}

}  // namespace strata::packaging
