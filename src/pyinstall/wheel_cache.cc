#include "pyinstall/wheel_cache.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <utility>

#include "packaging/unpack.h"
#include "pyinstall/hashes.h"
#include "pyinstall/requirement.h"
#include "pyinstall/wheel_tags.h"

namespace strata::pyinstall {
namespace {

namespace fs = std::filesystem;
using util::Result;
using util::Status;

constexpr int kManifestFormat = 1;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Strip(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

util::Error Corruption(std::string message) {
  return {util::ErrorKind::kCorruption, std::move(message)};
}

util::Error ErrnoError(const std::string& what, const fs::path& p, int err) {
  return util::IOError(what + " '" + p.string() + "': " + std::strerror(err));
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

// flock(LOCK_EX) for the object's lifetime; the lock belongs to the open file
// description, so it excludes other threads of this process too.
Result<Fd> LockFile(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoError("cannot open lock file", path, errno);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return ErrnoError("cannot lock", path, errno);
  }
  return fd;
}

class RemoveOnExit {
 public:
  explicit RemoveOnExit(fs::path path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;

 private:
  fs::path path_;
};

bool IsLowerHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<std::string> ReadSmallFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::NotFoundError("cannot read '" + path.string() + "'");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Status WriteFileAtomically(const fs::path& path, const std::string& content) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) return util::IOError("cannot write '" + tmp.string() + "'");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("cannot rename", tmp, errno);
  return Status::Ok();
}

// The email-header lines of a WHEEL file: "Key: value", first value wins like
// email.message's get().
std::optional<std::string> HeaderValue(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (Lower(Strip(line.substr(0, colon))) != Lower(key)) continue;
    return std::string(Strip(line.substr(colon + 1)));
  }
  return std::nullopt;
}

struct SourceWheel {
  std::string filename;
  std::string name;
  std::string version;
};

Result<SourceWheel> ParseSourceName(std::string_view filename) {
  auto parsed = WheelFilename::Parse(filename);
  if (!parsed) return parsed.error();
  std::string_view stem = filename.substr(0, filename.size() - 4);
  const auto first = stem.find('-');
  const auto second = stem.find('-', first + 1);
  return SourceWheel{std::string(filename), parsed->name,
                     std::string(stem.substr(first + 1, second - first - 1))};
}

// Describes the unpacked tree at `files_dir` the way pip's parse_wheel checks
// a wheel: one .dist-info directory named after the project, a WHEEL with a
// 1.x Wheel-Version, and a RECORD.
Result<UnpackedWheel> Describe(const fs::path& files_dir, const SourceWheel& source) {
  UnpackedWheel wheel;
  wheel.name = source.name;
  wheel.version = source.version;
  std::vector<std::string> info_dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(files_dir, ec)) {
    const std::string top = entry.path().filename().string();
    if (entry.is_directory() && top.ends_with(".dist-info")) info_dirs.push_back(top);
  }
  if (ec) return util::IOError("cannot list '" + files_dir.string() + "': " + ec.message());
  if (info_dirs.empty()) {
    return util::ValueError(source.filename +
                            " is not a valid wheel: .dist-info directory not found");
  }
  if (info_dirs.size() > 1) {
    std::sort(info_dirs.begin(), info_dirs.end());
    std::string names;
    for (const auto& d : info_dirs) names += (names.empty() ? "" : ", ") + d;
    return util::ValueError(
        source.filename + " is not a valid wheel: multiple .dist-info directories found: " + names);
  }
  wheel.dist_info = info_dirs.front();
  if (!NormalizeName(wheel.dist_info).starts_with(source.name)) {
    return util::ValueError(source.filename + " is not a valid wheel: .dist-info directory '" +
                            wheel.dist_info + "' does not start with '" + source.name + "'");
  }

  auto wheel_text = ReadSmallFile(files_dir / wheel.dist_info / "WHEEL");
  if (!wheel_text) {
    return util::ValueError(source.filename + " is not a valid wheel: missing " + wheel.dist_info +
                            "/WHEEL");
  }
  auto wheel_version = HeaderValue(*wheel_text, "Wheel-Version");
  if (!wheel_version) {
    return util::ValueError(source.filename +
                            " is not a valid wheel: WHEEL is missing Wheel-Version");
  }
  const std::string major = wheel_version->substr(0, wheel_version->find('.'));
  if (major != "1") {
    return util::ValueError(source.filename + "'s Wheel-Version (" + *wheel_version +
                            ") is not compatible with this installer");
  }
  wheel.wheel_version = *wheel_version;
  wheel.root_is_purelib = Lower(HeaderValue(*wheel_text, "Root-Is-Purelib").value_or("")) == "true";

  auto record_text = ReadSmallFile(files_dir / wheel.dist_info / "RECORD");
  if (!record_text) {
    return util::ValueError(source.filename + " is not a valid wheel: missing " + wheel.dist_info +
                            "/RECORD");
  }
  auto record = ParseRecord(*record_text);
  if (!record) return record.error();
  wheel.record = std::move(*record);

  for (fs::recursive_directory_iterator it(files_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) return ErrnoError("cannot stat", it->path(), errno);
    if (S_ISDIR(st.st_mode)) continue;
    wheel.files.push_back({it->path().lexically_relative(files_dir).generic_string(),
                           static_cast<std::uint64_t>(st.st_size),
                           S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0});
  }
  if (ec) return util::IOError("cannot walk '" + files_dir.string() + "': " + ec.message());
  std::sort(wheel.files.begin(), wheel.files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return wheel;
}

std::string ManifestJson(const UnpackedWheel& wheel) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : wheel.files) files.push_back({f.path, f.size, f.executable});
  nlohmann::json record = nlohmann::json::array();
  for (const auto& r : wheel.record) record.push_back({r.path, r.hash, r.size});
  nlohmann::json manifest = {{"format", kManifestFormat},
                             {"name", wheel.name},
                             {"version", wheel.version},
                             {"wheel_version", wheel.wheel_version},
                             {"root_is_purelib", wheel.root_is_purelib},
                             {"dist_info", wheel.dist_info},
                             {"files", std::move(files)},
                             {"record", std::move(record)}};
  return manifest.dump();
}

bool IsTempName(const std::string& candidate, const std::string& prefix) {
  return candidate.size() == prefix.size() + 6 && candidate.starts_with(prefix);
}

}  // namespace

Result<std::vector<RecordRow>> ParseRecord(std::string_view text) {
  std::vector<RecordRow> rows;
  std::vector<std::string> fields;
  std::string field;
  bool in_quotes = false;
  bool any = false;  // whether the current line has content
  auto end_row = [&]() {
    if (any) {
      fields.push_back(std::move(field));
      fields.resize(std::max<std::size_t>(fields.size(), 3));
      rows.push_back({std::move(fields[0]), std::move(fields[1]), std::move(fields[2])});
    }
    fields.clear();
    field.clear();
    any = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      in_quotes = true;
      any = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
    } else {
      field += c;
      any = true;
    }
  }
  if (in_quotes) return util::ValueError("RECORD: unexpected end of data inside a quoted field");
  end_row();
  return rows;
}

std::string FormatRecordRow(const RecordRow& row) {
  auto quote = [](const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
      if (c == '"') out += '"';
      out += c;
    }
    return out + "\"";
  };
  return quote(row.path) + "," + quote(row.hash) + "," + quote(row.size) + "\r\n";
}

struct UnpackedWheelCache::Source {
  SourceWheel name;
  const fs::path* path = nullptr;           // a wheel on disk, or
  const std::string_view* bytes = nullptr;  // one in memory
};

UnpackedWheelCache::UnpackedWheelCache(fs::path root) : root_(std::move(root)) {}

fs::path UnpackedWheelCache::EntryDir(std::string_view sha256) const {
  return root_ / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

Result<UnpackedWheel> UnpackedWheelCache::Get(const fs::path& wheel,
                                              std::string_view sha256) const {
  auto name = ParseSourceName(wheel.filename().string());
  if (!name) return name.error();
  Source source{std::move(*name), &wheel, nullptr};
  return GetImpl(source, sha256);
}

Result<UnpackedWheel> UnpackedWheelCache::GetFromBytes(std::string_view filename,
                                                       std::string_view bytes,
                                                       std::string_view sha256) const {
  if (filename.find('/') != std::string_view::npos) {
    return util::ValueError("wheel file name '" + std::string(filename) + "' contains '/'");
  }
  auto name = ParseSourceName(filename);
  if (!name) return name.error();
  Source source{std::move(*name), nullptr, &bytes};
  return GetImpl(source, sha256);
}

Result<UnpackedWheel> UnpackedWheelCache::GetImpl(const Source& source,
                                                  std::string_view sha256_in) const {
  const std::string sha256 = Lower(sha256_in);
  if (!IsLowerHex64(sha256)) {
    return util::ValueError("invalid SHA-256 digest '" + std::string(sha256_in) + "' for " +
                            source.name.filename);
  }
  const fs::path entry = EntryDir(sha256);
  // Published entries are complete (they appear by rename): no lock needed.
  if (auto hit = Load(entry); hit || hit.error().kind != util::ErrorKind::kNotFound) return hit;

  const fs::path parent = entry.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return util::IOError("cannot create '" + parent.string() + "': " + ec.message());
  auto lock = LockFile(parent / (sha256 + ".lock"));
  if (!lock) return lock.error();
  if (auto hit = Load(entry); hit || hit.error().kind != util::ErrorKind::kNotFound) return hit;

  // Only lock holders create temporaries, so any present now were left by a
  // builder that died.
  const std::string prefix = "." + sha256 + ".tmp-";
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    if (IsTempName(it->path().filename().string(), prefix)) {
      std::error_code ignored;
      fs::remove_all(it->path(), ignored);
    }
  }
  std::string tmpl = (parent / (prefix + "XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoError("cannot create", tmpl, errno);
  const fs::path tmp = tmpl;
  RemoveOnExit guard(tmp);
  if (::chmod(tmp.c_str(), 0755) != 0) return ErrnoError("cannot chmod", tmp, errno);

  AllowedHashes allowed;
  if (auto s = allowed.AddOption("sha256:" + sha256); !s) return s.error();
  HashVerifier verifier(allowed);
  fs::path archive;
  if (source.path != nullptr) {
    archive = *source.path;
    Fd fd(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return util::NotFoundError("wheel '" + archive.string() + "' not found");
      return ErrnoError("cannot open", archive, errno);
    }
    std::string buffer(1 << 20, '\0');
    while (true) {
      const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("cannot read", archive, errno);
      if (n == 0) break;
      verifier.Update(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    }
  } else {
    verifier.Update(*source.bytes);
  }
  if (auto s = verifier.Finish(source.name.filename); !s) return s.error();
  if (source.bytes != nullptr) {
    // The archive reader reads files; the copy goes away with the temporary.
    archive = tmp / source.name.filename;
    std::ofstream out(archive, std::ios::binary);
    out.write(source.bytes->data(), static_cast<std::streamsize>(source.bytes->size()));
    out.close();
    if (!out) return util::IOError("cannot write '" + archive.string() + "'");
  }

  const fs::path files = tmp / "files";
  auto unpacked = packaging::UnpackArchive(archive, files);
  if (!unpacked) return unpacked.error();
  fs::remove(tmp / "files.lock", ec);
  if (source.bytes != nullptr) fs::remove(archive, ec);

  auto wheel = Describe(files, source.name);
  if (!wheel) return wheel.error();
  if (auto s = WriteFileAtomically(tmp / "manifest.json", ManifestJson(*wheel)); !s) {
    return s.error();
  }
  if (::rename(tmp.c_str(), entry.c_str()) != 0) return ErrnoError("cannot publish", entry, errno);
  wheel->dir = entry;
  return std::move(*wheel);
}

Result<UnpackedWheel> UnpackedWheelCache::Load(const fs::path& entry_dir) {
  const fs::path path = entry_dir / "manifest.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::NotFoundError("no cached wheel at '" + entry_dir.string() + "'");
  try {
    const nlohmann::json manifest = nlohmann::json::parse(in);
    if (manifest.at("format").get<int>() != kManifestFormat) {
      return Corruption("unknown manifest format in '" + path.string() + "'");
    }
    UnpackedWheel wheel;
    wheel.dir = entry_dir;
    wheel.name = manifest.at("name").get<std::string>();
    wheel.version = manifest.at("version").get<std::string>();
    wheel.wheel_version = manifest.at("wheel_version").get<std::string>();
    wheel.root_is_purelib = manifest.at("root_is_purelib").get<bool>();
    wheel.dist_info = manifest.at("dist_info").get<std::string>();
    for (const auto& f : manifest.at("files")) {
      wheel.files.push_back(
          {f.at(0).get<std::string>(), f.at(1).get<std::uint64_t>(), f.at(2).get<bool>()});
    }
    for (const auto& r : manifest.at("record")) {
      wheel.record.push_back(
          {r.at(0).get<std::string>(), r.at(1).get<std::string>(), r.at(2).get<std::string>()});
    }
    return wheel;
  } catch (const nlohmann::json::exception& e) {
    return Corruption("invalid manifest '" + path.string() + "': " + e.what());
  }
}

}  // namespace strata::pyinstall
