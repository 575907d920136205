#include "packaging/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

namespace strata::packaging {

using util::Error;
using util::ErrorKind;
using util::Result;
using util::Status;

namespace {

// Why a hand-written zip writer rather than libarchive's: libarchive 3.6
// always adds "UT" (mtime) and "ux" (uid/gid) extra fields, derives the DOS
// timestamp through localtime() (so the bytes depend on TZ), and streams every
// entry with a data descriptor. Writing the format with zlib's deflate (and libdeflate's fast
// CRC-32) gives full control of every byte, writes no data descriptors (like Python's zipfile on a
// seekable file) and needs one read of each file: a local header, which carries the CRC, is
// completed once its data has been read.

constexpr std::uint32_t kMax32 = 0xFFFFFFFFu;
constexpr std::uint16_t kMax16 = 0xFFFFu;
constexpr std::uint16_t kDosTime = 0;                        // 00:00:00
constexpr std::uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01
constexpr std::uint16_t kVersionDefault = 20;                // 2.0: deflate, directories
constexpr std::uint16_t kVersionZip64 = 45;                  // 4.5: zip64 extensions
constexpr std::uint16_t kFlagUtf8 = 0x0800;
constexpr std::uint16_t kMethodStored = 0;
constexpr std::uint16_t kMethodDeflate = 8;
constexpr std::size_t kBufferSize = 1 << 20;
constexpr std::size_t kDeflateInputSize = 256 << 10;

Error Corruption(std::string message) {
  return {ErrorKind::kCorruption, std::move(message)};
}

std::string Quote(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

Error ErrnoError(const std::string& what, const std::filesystem::path& p, int err) {
  return util::IOError(what + " " + Quote(p) + ": " + std::strerror(err));
}

void Put16(std::string& b, std::uint16_t v) {
  b.push_back(static_cast<char>(v & 0xFF));
  b.push_back(static_cast<char>(v >> 8));
}
void Put32(std::string& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void Put64(std::string& b, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint32_t Clamp32(std::uint64_t v) {
  return v >= kMax32 ? kMax32 : static_cast<std::uint32_t>(v);
}

// Paths are relative, "/"-separated, without empty, "." or ".." components.
bool IsValidEntryPath(std::string_view path) {
  if (path.empty() || path.find('\0') != std::string_view::npos) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = path.find('/', start);
    std::string_view comp =
        path.substr(start, slash == std::string_view::npos ? path.npos : slash - start);
    if (comp.empty() || comp == "." || comp == "..") return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// One central-directory record, kept in memory until Finish().
struct Record {
  std::string name;
  std::uint16_t flags = 0;
  std::uint16_t method = kMethodStored;
  std::uint32_t crc = 0;
  std::uint64_t compressed = 0;
  std::uint64_t uncompressed = 0;
  std::uint64_t offset = 0;
  std::uint32_t unix_mode = 0;  // Type and permission bits.
  bool zip64_local = false;     // Local header carries a zip64 extra field.
};

std::size_t LocalHeaderSize(const Record& r) {
  return 30 + r.name.size() + (r.zip64_local ? 20 : 0);
}

std::string LocalHeader(const Record& r) {
  std::string h;
  h.reserve(LocalHeaderSize(r));
  Put32(h, 0x04034b50);
  Put16(h, r.zip64_local ? kVersionZip64 : kVersionDefault);
  Put16(h, r.flags);
  Put16(h, r.method);
  Put16(h, kDosTime);
  Put16(h, kDosDate);
  Put32(h, r.crc);
  Put32(h, r.zip64_local ? kMax32 : static_cast<std::uint32_t>(r.compressed));
  Put32(h, r.zip64_local ? kMax32 : static_cast<std::uint32_t>(r.uncompressed));
  Put16(h, static_cast<std::uint16_t>(r.name.size()));
  Put16(h, r.zip64_local ? 20 : 0);
  h += r.name;
  if (r.zip64_local) {
    Put16(h, 0x0001);
    Put16(h, 16);
    Put64(h, r.uncompressed);
    Put64(h, r.compressed);
  }
  return h;
}

void AppendCentralRecord(std::string& cd, const Record& r) {
  std::string extra;
  if (r.uncompressed >= kMax32) Put64(extra, r.uncompressed);
  if (r.compressed >= kMax32) Put64(extra, r.compressed);
  if (r.offset >= kMax32) Put64(extra, r.offset);
  std::string zip64;
  if (!extra.empty()) {
    Put16(zip64, 0x0001);
    Put16(zip64, static_cast<std::uint16_t>(extra.size()));
    zip64 += extra;
  }
  const bool is_zip64 = !zip64.empty() || r.zip64_local;
  const std::uint16_t version = is_zip64 ? kVersionZip64 : kVersionDefault;
  Put32(cd, 0x02014b50);
  Put16(cd, static_cast<std::uint16_t>((3 << 8) | version));  // Made by Unix.
  Put16(cd, version);
  Put16(cd, r.flags);
  Put16(cd, r.method);
  Put16(cd, kDosTime);
  Put16(cd, kDosDate);
  Put32(cd, r.crc);
  Put32(cd, Clamp32(r.compressed));
  Put32(cd, Clamp32(r.uncompressed));
  Put16(cd, static_cast<std::uint16_t>(r.name.size()));
  Put16(cd, static_cast<std::uint16_t>(zip64.size()));
  Put16(cd, 0);  // Comment length.
  Put16(cd, 0);  // Disk number.
  Put16(cd, 0);  // Internal attributes.
  const std::uint32_t dos_dir = S_ISDIR(r.unix_mode) ? 0x10 : 0;
  Put32(cd, (r.unix_mode << 16) | dos_dir);
  Put32(cd, Clamp32(r.offset));
  cd += r.name;
  cd += zip64;
}

// The central directory of `records` followed by the end records, for a file
// whose local entries end at `cd_offset`.
std::string CentralDirectory(const std::vector<Record>& records, std::uint64_t cd_offset) {
  std::string out;
  for (const Record& r : records) AppendCentralRecord(out, r);
  const std::uint64_t cd_size = out.size();
  const std::uint64_t count = records.size();
  if (count >= kMax16 || cd_size >= kMax32 || cd_offset >= kMax32) {
    const std::uint64_t zip64_eocd = cd_offset + cd_size;
    Put32(out, 0x06064b50);
    Put64(out, 44);  // Size of the rest of this record.
    Put16(out, (3 << 8) | kVersionZip64);
    Put16(out, kVersionZip64);
    Put32(out, 0);
    Put32(out, 0);
    Put64(out, count);
    Put64(out, count);
    Put64(out, cd_size);
    Put64(out, cd_offset);
    Put32(out, 0x07064b50);  // Locator.
    Put32(out, 0);
    Put64(out, zip64_eocd);
    Put32(out, 1);
  }
  Put32(out, 0x06054b50);
  Put16(out, 0);
  Put16(out, 0);
  Put16(out, static_cast<std::uint16_t>(std::min<std::uint64_t>(count, kMax16)));
  Put16(out, static_cast<std::uint16_t>(std::min<std::uint64_t>(count, kMax16)));
  Put32(out, Clamp32(cd_size));
  Put32(out, Clamp32(cd_offset));
  Put16(out, 0);
  return out;
}

Record DirectoryRecord(std::string name) {
  Record r;
  r.name = std::move(name);
  r.flags = IsAscii(r.name) ? 0 : kFlagUtf8;
  r.unix_mode = S_IFDIR | 0755;
  return r;
}

Record FileRecord(std::string name, const PackageEntry& entry) {
  Record r;
  r.name = std::move(name);
  r.flags = IsAscii(r.name) ? 0 : kFlagUtf8;
  r.unix_mode = S_IFREG | (entry.executable ? 0755 : 0644);
  r.uncompressed = entry.size;
  return r;
}

Status ReadFull(int fd, char* data, std::size_t n, const std::filesystem::path& p,
                std::size_t* got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = ::read(fd, data + *got, n - *got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", p, errno);
    }
    if (r == 0) break;
    *got += static_cast<std::size_t>(r);
  }
  return Status::Ok();
}

Status WriteAllAt(int fd, const char* data, std::size_t n, std::uint64_t offset,
                  const std::filesystem::path& out) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", out, errno);
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return Status::Ok();
}

Status Shrunk(const PackageEntry& entry) {
  return util::IOError(Quote(entry.source) + " shrank while it was being archived");
}

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Opens a listed file after checking that it still is a regular file of the
// listed size.
Result<int> OpenListedFile(const PackageEntry& entry) {
  int fd = ::open(entry.source.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", entry.source, errno);
  FdCloser closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("cannot stat", entry.source, errno);
  if (!S_ISREG(st.st_mode)) {
    return util::ValueError("package entry '" + entry.path +
                            "' is not a regular file: " + Quote(entry.source));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size != entry.size) {
    return util::IOError(Quote(entry.source) + " changed since it was listed (" +
                         std::to_string(entry.size) + " -> " + std::to_string(size) + " bytes)");
  }
  return closer.release();
}

// A zip of stored entries, laid out before anything is read: each entry's
// offset follows from the sizes of those before it. Worker threads take runs
// of consecutive entries, read each run's files into one buffer behind their
// headers and write it with one pwrite; a file larger than a run is streamed
// through the buffer, its header (which carries the CRC) written last.
class StoredZip {
 public:
  StoredZip(int fd, std::filesystem::path out, ContentObserver* observer)
      : fd_(fd), out_(std::move(out)), observer_(observer) {}

  void AddDirectory(std::string name) { Add(DirectoryRecord(std::move(name)), nullptr, 0); }

  void AddFile(std::string name, const PackageEntry& entry, std::size_t index) {
    Record r = FileRecord(std::move(name), entry);
    r.compressed = entry.size;
    r.zip64_local = entry.size >= kMax32;
    Add(std::move(r), &entry, index);
  }

  Status Write(unsigned threads) {
    std::atomic<std::size_t> next{0};
    std::mutex mu;
    std::size_t failed_run = runs_.size();  // The first failing run, for a stable error.
    std::optional<Error> error;
    auto work = [&] {
      std::unique_ptr<char[]> buffer(new char[kRunSize]);
      std::vector<ContentObserver::File> files;
      for (std::size_t i = next++; i < runs_.size(); i = next++) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (error) return;
        }
        Status s = WriteRun(runs_[i], buffer.get(), files);
        if (!s) {
          std::lock_guard<std::mutex> lock(mu);
          if (i < failed_run) {
            failed_run = i;
            error = std::move(s).error();
          }
          return;
        }
      }
    };
    unsigned count = threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
    count =
        static_cast<unsigned>(std::min<std::size_t>(count, std::max<std::size_t>(1, runs_.size())));
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < count; ++t) pool.emplace_back(work);
    work();
    for (std::thread& thread : pool) thread.join();
    if (error) return std::move(*error);
    const std::string tail = CentralDirectory(records_, size_);
    return WriteAllAt(fd_, tail.data(), tail.size(), size_, out_);
  }

 private:
  // Entries [begin, end) occupying [offset, offset + size) of the file.
  struct Run {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
  };
  struct Source {
    const PackageEntry* entry = nullptr;  // nullptr for a directory.
    std::size_t index = 0;                // In WriteZip's `entries`, for the observer.
  };
  // Large enough that syscalls are few and that an observer sees dozens of
  // files at once, small enough to stay in cache while the data is
  // checksummed, digested and written.
  static constexpr std::size_t kRunSize = 1 << 20;

  void Add(Record r, const PackageEntry* entry, std::size_t index) {
    r.offset = size_;
    const std::uint64_t n = LocalHeaderSize(r) + r.compressed;
    if (runs_.empty() || runs_.back().size + n > kRunSize) {
      runs_.push_back({records_.size(), records_.size(), size_, 0});
    }
    runs_.back().end++;
    runs_.back().size += n;
    size_ += n;
    records_.push_back(std::move(r));
    sources_.push_back({entry, index});
  }

  Status WriteRun(const Run& run, char* buffer, std::vector<ContentObserver::File>& files) {
    if (run.size > kRunSize) return StreamFile(records_[run.begin], sources_[run.begin], buffer);
    files.clear();
    for (std::size_t i = run.begin; i < run.end; ++i) {
      Record& r = records_[i];
      char* at = buffer + (r.offset - run.offset);
      if (const PackageEntry* entry = sources_[i].entry) {
        char* data = at + LocalHeaderSize(r);
        auto fd = OpenListedFile(*entry);
        if (!fd) return std::move(fd).error();
        FdCloser closer(*fd);
        std::size_t got = 0;
        if (auto s = ReadFull(*fd, data, r.uncompressed, entry->source, &got); !s) return s;
        if (got < r.uncompressed) return Shrunk(*entry);
        r.crc = entry->crc32 ? *entry->crc32 : libdeflate_crc32(0, data, got);
        files.push_back({sources_[i].index, {data, got}});
      }
      const std::string header = LocalHeader(r);
      std::memcpy(at, header.data(), header.size());
    }
    if (observer_ && !files.empty()) observer_->Files(files);
    return WriteAllAt(fd_, buffer, run.size, run.offset, out_);
  }

  Status StreamFile(Record& r, const Source& source, char* buffer) {
    const PackageEntry& entry = *source.entry;
    auto fd = OpenListedFile(entry);
    if (!fd) return std::move(fd).error();
    FdCloser closer(*fd);
    ::posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    std::uint64_t at = r.offset + LocalHeaderSize(r);
    std::uint32_t crc = 0;
    for (std::uint64_t remaining = r.uncompressed; remaining > 0;) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, kRunSize));
      std::size_t got = 0;
      if (auto s = ReadFull(*fd, buffer, want, entry.source, &got); !s) return s;
      if (got < want) return Shrunk(entry);
      if (!entry.crc32) crc = libdeflate_crc32(crc, buffer, got);
      if (observer_) observer_->Update(source.index, {buffer, got});
      if (auto s = WriteAllAt(fd_, buffer, got, at, out_); !s) return s;
      at += got;
      remaining -= got;
    }
    if (observer_) observer_->Finish(source.index);
    r.crc = entry.crc32.value_or(crc);
    const std::string header = LocalHeader(r);
    return WriteAllAt(fd_, header.data(), header.size(), r.offset, out_);
  }

  int fd_;
  std::filesystem::path out_;
  ContentObserver* observer_;
  std::vector<Record> records_;
  std::vector<Source> sources_;
  std::vector<Run> runs_;
  std::uint64_t size_ = 0;  // Of the local entries so far: where the next one goes.
};

// A zip of deflated entries, written in order through a buffer: a file's
// compressed size is known only once it is compressed, so its header is
// patched afterwards (in the buffer, or with pwrite).
class DeflatedZip {
 public:
  DeflatedZip(int fd, std::filesystem::path out, ContentObserver* observer)
      : fd_(fd), out_(std::move(out)), observer_(observer), buf_(new char[kBufferSize]) {}
  ~DeflatedZip() {
    if (zstream_ready_) deflateEnd(&zs_);
  }

  Status AddDirectory(std::string name) {
    Record r = DirectoryRecord(std::move(name));
    r.offset = Position();
    if (auto s = Append(LocalHeader(r)); !s) return s;
    records_.push_back(std::move(r));
    return Status::Ok();
  }

  Status AddFile(std::string name, const PackageEntry& entry, std::size_t index) {
    auto fd = OpenListedFile(entry);
    if (!fd) return std::move(fd).error();
    FdCloser closer(*fd);
    ::posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    Record r = FileRecord(std::move(name), entry);
    r.offset = Position();
    r.method = kMethodDeflate;
    if (auto s = InitDeflate(); !s) return s;
    // Decided before compressing, from the worst case, because the header
    // is written first and must keep its length when patched.
    r.zip64_local = entry.size >= kMax32 || deflateBound(&zs_, entry.size) >= kMax32;
    if (auto s = Append(LocalHeader(r)); !s) return s;
    const std::uint64_t data_start = Position();
    if (auto s = CopyDeflated(*fd, entry, index, &r.crc); !s) return s;
    r.compressed = Position() - data_start;
    if (!r.zip64_local && r.compressed >= kMax32) {
      return util::IOError("compressed data of " + Quote(entry.source) + " exceeds 4 GiB");
    }
    if (auto p = PatchAt(r.offset, LocalHeader(r)); !p) return p;
    records_.push_back(std::move(r));
    return Status::Ok();
  }

  Status Finish() {
    if (auto s = Append(CentralDirectory(records_, Position())); !s) return s;
    return Flush();
  }

 private:
  std::uint64_t Position() const { return flushed_ + buf_len_; }

  Status Flush() {
    const std::size_t n = std::exchange(buf_len_, 0);
    if (auto s = WriteAllAt(fd_, buf_.get(), n, flushed_, out_); !s) return s;
    flushed_ += n;
    return Status::Ok();
  }

  Status Append(std::string_view bytes) {
    if (buf_len_ + bytes.size() > kBufferSize) {
      if (auto s = Flush(); !s) return s;
      if (bytes.size() > kBufferSize) {
        if (auto s = WriteAllAt(fd_, bytes.data(), bytes.size(), flushed_, out_); !s) return s;
        flushed_ += bytes.size();
        return Status::Ok();
      }
    }
    std::memcpy(buf_.get() + buf_len_, bytes.data(), bytes.size());
    buf_len_ += bytes.size();
    return Status::Ok();
  }

  // Overwrites bytes at absolute `offset`, on disk and/or still in the buffer.
  Status PatchAt(std::uint64_t offset, std::string_view bytes) {
    std::size_t on_disk = 0;
    if (offset < flushed_) {
      on_disk = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), flushed_ - offset));
      if (auto s = WriteAllAt(fd_, bytes.data(), on_disk, offset, out_); !s) return s;
    }
    if (on_disk < bytes.size()) {
      std::memcpy(buf_.get() + (offset + on_disk - flushed_), bytes.data() + on_disk,
                  bytes.size() - on_disk);
    }
    return Status::Ok();
  }

  Status CopyDeflated(int fd, const PackageEntry& entry, std::size_t index, std::uint32_t* crc) {
    if (!input_) input_.reset(new char[kDeflateInputSize]);
    std::uint32_t c = 0;
    std::uint64_t remaining = entry.size;
    while (true) {
      std::size_t got = 0;
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(remaining, kDeflateInputSize));
      if (want > 0) {
        if (auto s = ReadFull(fd, input_.get(), want, entry.source, &got); !s) return s;
        if (got < want) return Shrunk(entry);
        c = libdeflate_crc32(c, input_.get(), got);
        if (observer_) observer_->Update(index, {input_.get(), got});
        remaining -= got;
      }
      const int flush = remaining == 0 ? Z_FINISH : Z_NO_FLUSH;
      zs_.next_in = reinterpret_cast<Bytef*>(input_.get());
      zs_.avail_in = static_cast<uInt>(got);
      int rc = Z_OK;
      do {
        if (buf_len_ == kBufferSize) {
          if (auto s = Flush(); !s) return s;
        }
        zs_.next_out = reinterpret_cast<Bytef*>(buf_.get() + buf_len_);
        zs_.avail_out = static_cast<uInt>(kBufferSize - buf_len_);
        const std::size_t before = zs_.avail_out;
        rc = deflate(&zs_, flush);
        if (rc == Z_STREAM_ERROR) return util::IOError("deflate failed for " + Quote(entry.source));
        buf_len_ += before - zs_.avail_out;
      } while (zs_.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
      if (flush == Z_FINISH) break;
    }
    if (observer_) observer_->Finish(index);
    *crc = c;
    return Status::Ok();
  }

  Status InitDeflate() {
    if (zstream_ready_) {
      if (deflateReset(&zs_) != Z_OK) return util::IOError("deflateReset failed");
      return Status::Ok();
    }
    zs_ = z_stream{};
    // Raw deflate (negative window bits): zip stores no zlib header.
    if (deflateInit2(&zs_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
      return util::IOError("deflateInit2 failed");
    }
    zstream_ready_ = true;
    return Status::Ok();
  }

  int fd_;
  std::filesystem::path out_;
  ContentObserver* observer_;
  std::unique_ptr<char[]> buf_;
  std::size_t buf_len_ = 0;
  std::uint64_t flushed_ = 0;  // Bytes written to fd_, i.e. the buffer's file offset.
  std::unique_ptr<char[]> input_;
  z_stream zs_{};
  bool zstream_ready_ = false;
  std::vector<Record> records_;
};

// libarchive converts names between the archive's charset and the current
// locale's; in the default "C" locale it cannot represent UTF-8 names and
// drops them. uselocale() switches to C.UTF-8 for the calling thread only,
// around each libarchive call (libarchive caches the charset on first use).
class Utf8LocaleScope {
 public:
  Utf8LocaleScope() {
    static const locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (utf8 != static_cast<locale_t>(0)) previous_ = uselocale(utf8);
  }
  ~Utf8LocaleScope() {
    if (previous_ != static_cast<locale_t>(0)) uselocale(previous_);
  }
  Utf8LocaleScope(const Utf8LocaleScope&) = delete;
  Utf8LocaleScope& operator=(const Utf8LocaleScope&) = delete;

 private:
  locale_t previous_ = static_cast<locale_t>(0);
};

const char* FirstNonNull(const char* a, const char* b) {
  return a != nullptr ? a : b;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Status WriteStored(int fd, const std::filesystem::path& out,
                   const std::vector<PackageEntry>& entries, const std::string& prefix,
                   const ZipOptions& options) {
  StoredZip zip(fd, out, options.observer);
  if (!prefix.empty()) zip.AddDirectory(prefix);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const PackageEntry& e = entries[i];
    if (e.type == EntryType::kDirectory) {
      zip.AddDirectory(prefix + e.path + "/");
    } else {
      zip.AddFile(prefix + e.path, e, i);
    }
  }
  return zip.Write(options.threads);
}

Status WriteDeflated(int fd, const std::filesystem::path& out,
                     const std::vector<PackageEntry>& entries, const std::string& prefix,
                     const ZipOptions& options) {
  DeflatedZip zip(fd, out, options.observer);
  if (!prefix.empty()) {
    if (auto s = zip.AddDirectory(prefix); !s) return s;
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const PackageEntry& e = entries[i];
    Status s = e.type == EntryType::kDirectory ? zip.AddDirectory(prefix + e.path + "/")
                                               : zip.AddFile(prefix + e.path, e, i);
    if (!s) return s;
  }
  return zip.Finish();
}

}  // namespace

Status WriteZip(const std::vector<PackageEntry>& entries, const std::filesystem::path& out,
                const ZipOptions& options) {
  const std::string& top = options.top_level_dir;
  if (!top.empty() && (top.find('/') != std::string::npos || !IsValidEntryPath(top))) {
    return util::ValueError("invalid top-level folder '" + top + "' for " + Quote(out) +
                            ": must be one path component");
  }
  const std::string prefix = top.empty() ? std::string() : top + "/";
  std::unordered_set<std::string_view> seen;
  seen.reserve(entries.size());
  for (const PackageEntry& e : entries) {
    if (!IsValidEntryPath(e.path)) {
      return util::ValueError("invalid package entry path '" + e.path + "' for " + Quote(out));
    }
    if (prefix.size() + e.path.size() + 1 > kMax16) {
      return util::ValueError("package entry path too long: '" + e.path + "'");
    }
    if (!seen.insert(e.path).second) {
      return util::ValueError("duplicate package entry '" + e.path + "' for " + Quote(out));
    }
  }

  const std::filesystem::path dir = out.has_parent_path() ? out.parent_path() : ".";
  std::string tmpl = (dir / ("." + out.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot create a temporary file next to", out, errno);
  FdCloser closer(fd);
  const std::filesystem::path tmp = tmpl;
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };

  Status written = options.method == ZipMethod::kStored
                       ? WriteStored(fd, out, entries, prefix, options)
                       : WriteDeflated(fd, out, entries, prefix, options);
  if (!written) return fail(std::move(written));
  // mkstemp creates 0600; published archives are ordinary readable files.
  if (::fchmod(fd, 0644) != 0) return fail(ErrnoError("cannot chmod", tmp, errno));
  if (options.durability == Durability::kFsync && ::fsync(fd) != 0) {
    return fail(ErrnoError("cannot fsync", tmp, errno));
  }
  if (::close(closer.release()) != 0) return fail(ErrnoError("cannot close", tmp, errno));
  if (::rename(tmp.c_str(), out.c_str()) != 0) {
    return fail(ErrnoError("cannot rename " + Quote(tmp) + " to", out, errno));
  }
  return Status::Ok();
}

Result<ArchiveFormat> DetectArchiveFormat(const std::filesystem::path& archive) {
  const std::string name = Lower(archive.filename().string());
  ArchiveFormat format;
  if (EndsWith(name, ".zip") || EndsWith(name, ".whl") || EndsWith(name, ".jar")) {
    format = ArchiveFormat::kZip;
  } else if (EndsWith(name, ".tar.gz") || EndsWith(name, ".tgz")) {
    format = ArchiveFormat::kTarGz;
  } else if (EndsWith(name, ".tar.xz")) {
    format = ArchiveFormat::kTarXz;
  } else if (EndsWith(name, ".tar.bz2")) {
    format = ArchiveFormat::kTarBz2;
  } else {
    return util::ValueError("unsupported archive type " + Quote(archive) +
                            ": expected .zip, .whl, .jar, .tar.gz, .tgz, .tar.xz or .tar.bz2");
  }
  int fd = ::open(archive.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return util::NotFoundError("archive " + Quote(archive) + " does not exist");
    }
    return ErrnoError("cannot open archive", archive, errno);
  }
  FdCloser closer(fd);
  std::array<char, 6> magic{};
  std::size_t got = 0;
  if (auto s = ReadFull(fd, magic.data(), magic.size(), archive, &got); !s) return s.error();
  const std::string_view m(magic.data(), got);
  bool ok = false;
  switch (format) {
    case ArchiveFormat::kZip:
      // A local file header, or the end record of an empty zip.
      ok = m.starts_with(std::string_view("PK\x03\x04", 4)) ||
           m.starts_with(std::string_view("PK\x05\x06", 4));
      break;
    case ArchiveFormat::kTarGz:
      ok = m.starts_with("\x1f\x8b");
      break;
    case ArchiveFormat::kTarXz:
      ok = m == std::string_view(
                    "\xfd"
                    "7zXZ\0",
                    6);
      break;
    case ArchiveFormat::kTarBz2:
      ok = m.starts_with("BZh");
      break;
  }
  if (!ok) {
    return Corruption("archive " + Quote(archive) +
                      " does not start with the magic bytes its extension promises");
  }
  return format;
}

struct ArchiveReader::Impl {
  std::filesystem::path path;
  ArchiveFormat format = ArchiveFormat::kZip;
  struct archive* a = nullptr;  // Null for an empty zip, which libarchive rejects.
  std::string current;          // Path of the current entry, for error messages.
  ~Impl() {
    if (a != nullptr) archive_read_free(a);
  }
  Error Fail(const std::string& what) const {
    const char* detail = archive_error_string(a);
    std::string msg = "corrupt archive " + Quote(path) + ": " + what;
    if (!current.empty()) msg += " at entry '" + current + "'";
    if (detail != nullptr) msg += ": " + std::string(detail);
    return Corruption(std::move(msg));
  }
};

ArchiveReader::ArchiveReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArchiveReader::ArchiveReader(ArchiveReader&&) noexcept = default;
ArchiveReader& ArchiveReader::operator=(ArchiveReader&&) noexcept = default;
ArchiveReader::~ArchiveReader() = default;

ArchiveFormat ArchiveReader::format() const {
  return impl_->format;
}

Result<ArchiveReader> ArchiveReader::Open(const std::filesystem::path& archive) {
  auto format = DetectArchiveFormat(archive);
  if (!format) return format.error();
  auto impl = std::make_unique<Impl>();
  impl->path = archive;
  impl->format = *format;
  if (*format == ArchiveFormat::kZip) {
    // A zip that starts with its end record has no entries; check the
    // record's entry counts to be sure.
    int fd = ::open(archive.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("cannot open archive", archive, errno);
    FdCloser closer(fd);
    std::array<char, 22> eocd{};
    std::size_t got = 0;
    if (auto s = ReadFull(fd, eocd.data(), eocd.size(), archive, &got); !s) return s.error();
    const std::string_view head(eocd.data(), got);
    if (head.starts_with(std::string_view("PK\x05\x06", 4))) {
      if (got < eocd.size() || head.substr(8, 4) != std::string_view("\0\0\0\0", 4)) {
        return Corruption("corrupt archive " + Quote(archive) + ": malformed empty zip");
      }
      return ArchiveReader(std::move(impl));
    }
  }
  Utf8LocaleScope locale;
  impl->a = archive_read_new();
  if (impl->a == nullptr) return util::IOError("archive_read_new failed");
  // Only the format the extension and magic named: a .zip is never parsed as
  // a tar. The seekable zip reader trusts the central directory, as Python's
  // zipfile and unzip do, so a truncated zip fails instead of half-extracting.
  int rc = ARCHIVE_OK;
  switch (*format) {
    case ArchiveFormat::kZip:
      rc = archive_read_support_format_zip_seekable(impl->a);
      break;
    case ArchiveFormat::kTarGz:
      rc = archive_read_support_filter_gzip(impl->a);
      break;
    case ArchiveFormat::kTarXz:
      rc = archive_read_support_filter_xz(impl->a);
      break;
    case ArchiveFormat::kTarBz2:
      rc = archive_read_support_filter_bzip2(impl->a);
      break;
  }
  // The filters above may answer ARCHIVE_WARN when they shell out to a
  // program; any failure shows up on open.
  (void)rc;
  if (*format != ArchiveFormat::kZip) archive_read_support_format_tar(impl->a);
  if (archive_read_open_filename(impl->a, archive.c_str(), 256 << 10) != ARCHIVE_OK) {
    return impl->Fail("cannot open");
  }
  return ArchiveReader(std::move(impl));
}

Result<std::optional<ArchiveEntryInfo>> ArchiveReader::Next() {
  if (impl_->a == nullptr) return std::optional<ArchiveEntryInfo>();
  Utf8LocaleScope locale;
  impl_->current.clear();
  struct archive_entry* e = nullptr;
  int rc = archive_read_next_header(impl_->a, &e);
  if (rc == ARCHIVE_EOF) return std::optional<ArchiveEntryInfo>();
  // ARCHIVE_WARN here means e.g. a name that does not convert to the locale's
  // charset; the raw name is still usable.
  if (rc < ARCHIVE_WARN) return impl_->Fail("cannot read entry header");
  ArchiveEntryInfo info;
  const char* name = FirstNonNull(archive_entry_pathname(e), archive_entry_pathname_utf8(e));
  if (name == nullptr) return impl_->Fail("entry without a name");
  info.path = name;
  impl_->current = info.path;
  info.mode = archive_entry_perm(e) & 07777;
  if (archive_entry_size_is_set(e) != 0) {
    info.size = static_cast<std::uint64_t>(std::max<la_int64_t>(archive_entry_size(e), 0));
  }
  if (const char* hard = FirstNonNull(archive_entry_hardlink(e), archive_entry_hardlink_utf8(e));
      hard != nullptr) {
    info.type = ArchiveEntryType::kHardlink;
    info.link_target = hard;
    return std::optional<ArchiveEntryInfo>(std::move(info));
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFREG:
      info.type = ArchiveEntryType::kFile;
      break;
    case AE_IFDIR:
      info.type = ArchiveEntryType::kDirectory;
      break;
    case AE_IFLNK: {
      info.type = ArchiveEntryType::kSymlink;
      const char* target = FirstNonNull(archive_entry_symlink(e), archive_entry_symlink_utf8(e));
      info.link_target = target != nullptr ? target : "";
      break;
    }
    case AE_IFCHR:
      info.type = ArchiveEntryType::kCharDevice;
      break;
    case AE_IFBLK:
      info.type = ArchiveEntryType::kBlockDevice;
      break;
    case AE_IFIFO:
      info.type = ArchiveEntryType::kFifo;
      break;
    case AE_IFSOCK:
      info.type = ArchiveEntryType::kSocket;
      break;
    case 0:
      // Zips written without Unix modes: the trailing "/" is the only hint.
      info.type = EndsWith(info.path, "/") ? ArchiveEntryType::kDirectory : ArchiveEntryType::kFile;
      break;
    default:
      info.type = ArchiveEntryType::kOther;
      break;
  }
  return std::optional<ArchiveEntryInfo>(std::move(info));
}

Status ArchiveReader::ReadData(const DataSink& sink) {
  if (impl_->a == nullptr) return Status::Ok();
  Utf8LocaleScope locale;
  while (true) {
    const void* block = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    int rc = archive_read_data_block(impl_->a, &block, &size, &offset);
    if (rc == ARCHIVE_EOF) return Status::Ok();
    // Unlike for headers, a warning here is a data error (e.g. a bad CRC).
    if (rc != ARCHIVE_OK) return impl_->Fail("cannot read data");
    if (size == 0) continue;
    if (auto s = sink(static_cast<std::uint64_t>(offset),
                      std::string_view(static_cast<const char*>(block), size));
        !s) {
      return s;
    }
  }
}

Result<std::vector<ArchiveEntryInfo>> ListArchive(const std::filesystem::path& archive) {
  auto reader = ArchiveReader::Open(archive);
  if (!reader) return reader.error();
  std::vector<ArchiveEntryInfo> entries;
  while (true) {
    auto next = reader->Next();
    if (!next) return next.error();
    if (!next->has_value()) return entries;
    entries.push_back(std::move(**next));
    if (auto s = reader->ReadData([](std::uint64_t, std::string_view) { return Status::Ok(); });
        !s) {
      return s.error();
    }
  }
}

}  // namespace strata::packaging
