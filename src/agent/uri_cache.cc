#include "agent/uri_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>
#include <utility>

#include "util/clock.h"
#include "util/digest.h"
#include "util/log.h"
#include "util/pyjson.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kStateFile = ".state.json";
constexpr std::string_view kStateTemp = ".state.json.tmp";
constexpr std::string_view kStateLock = ".state.lock";
constexpr std::string_view kLockSuffix = ".lock";
constexpr std::string_view kCreateSuffix = ".create";
constexpr int kStateVersion = 1;
constexpr std::uint64_t kGiB = 1024ull * 1024 * 1024;
constexpr std::uint64_t kDefaultGiB = 10;

std::string ErrnoText() {
  return std::strerror(errno);
}

util::Error Unavailable(std::string message) {
  return {util::ErrorKind::kUnavailable, std::move(message)};
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

fs::path WithSuffix(const fs::path& path, std::string_view suffix) {
  return path.parent_path() / (path.filename().string() + std::string(suffix));
}

int OpenLockFile(const fs::path& path, bool create) {
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0644);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// flock(op | LOCK_NB); false when someone else holds a conflicting lock (or on errors).
bool TryLock(int fd, int op) {
  int rc;
  do {
    rc = ::flock(fd, op | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  return rc == 0;
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// True if `fd` is still the file at `path` (not unlinked or replaced since it was opened).
bool StillLinked(int fd, const fs::path& path) {
  struct stat by_fd {};
  struct stat by_path {};
  return ::fstat(fd, &by_fd) == 0 && ::stat(path.c_str(), &by_path) == 0 &&
         by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

// The exclusive lock on <root>/.state.lock for one read-modify-write.
class StateLock {
 public:
  static util::Result<StateLock> Take(const fs::path& root) {
    fs::path path = root / kStateLock;
    int fd = OpenLockFile(path, /*create=*/true);
    if (fd < 0) return util::IOError("cannot open " + path.string() + ": " + ErrnoText());
    int rc;
    do {
      rc = ::flock(fd, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      std::string message = "cannot lock " + path.string() + ": " + ErrnoText();
      ::close(fd);
      return util::IOError(std::move(message));
    }
    return StateLock(fd);
  }
  StateLock(StateLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  StateLock& operator=(StateLock&&) = delete;
  ~StateLock() { CloseFd(fd_); }

 private:
  explicit StateLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// The name up to its first '.' after position 0: the sibling group a name belongs to.
std::string Stem(std::string_view name) {
  std::size_t dot = name.find('.', 1);
  return std::string(name.substr(0, dot));
}

std::string Sanitize(std::string_view text, std::size_t max_length) {
  std::string out;
  for (char c : text) {
    if (out.size() == max_length) break;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    out.push_back(ok ? c : '_');
  }
  return out;
}

std::string UniqueSuffix() {
  static std::atomic<std::uint64_t> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

// Removes a file or tree, ignoring errors (logged at debug level).
void RemoveQuietly(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) util::LogDebug("cannot remove " + path.string() + ": " + ec.message());
}

bool IsDirectory(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(fs::symlink_status(path, ec));
}

bool Exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

fs::path NormalizedAbsolute(const fs::path& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) abs = path;
  abs = abs.lexically_normal();
  if (!abs.has_filename() && abs.has_relative_path()) abs = abs.parent_path();
  return abs;
}

std::string Describe(std::uint64_t bytes) {
  std::ostringstream out;
  out.precision(3);
  out << static_cast<double>(bytes) / (1024.0 * 1024.0) << " MiB";
  return out.str();
}

}  // namespace

std::uint64_t DirectorySizeBytes(const fs::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return 0;
  std::uint64_t total = static_cast<std::uint64_t>(st.st_blocks) * 512;
  if (!S_ISDIR(st.st_mode)) return total;
  std::set<std::pair<dev_t, ino_t>> linked;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat entry {};
    if (::lstat(it->path().c_str(), &entry) != 0) continue;
    if (!S_ISDIR(entry.st_mode) && entry.st_nlink > 1 &&
        !linked.emplace(entry.st_dev, entry.st_ino).second) {
      continue;
    }
    total += static_cast<std::uint64_t>(entry.st_blocks) * 512;
  }
  return total;
}

// ---------------------------------------------------------------- Ref, Builder

UriCache::Ref::Ref(Ref&& other) noexcept
    : cache_(std::exchange(other.cache_, nullptr)),
      uri_(std::move(other.uri_)),
      dir_(std::move(other.dir_)) {}

UriCache::Ref& UriCache::Ref::operator=(Ref&& other) noexcept {
  if (this != &other) {
    Release();
    cache_ = std::exchange(other.cache_, nullptr);
    uri_ = std::move(other.uri_);
    dir_ = std::move(other.dir_);
  }
  return *this;
}

void UriCache::Ref::Release() {
  if (cache_ == nullptr) return;
  UriCache* cache = std::exchange(cache_, nullptr);
  cache->MarkUnused(uri_);
}

UriCache::Builder::Builder(Builder&& other) noexcept
    : uri_(std::move(other.uri_)),
      staging_dir_(std::move(other.staging_dir_)),
      final_dir_(std::move(other.final_dir_)),
      lock_path_(std::move(other.lock_path_)),
      lock_fd_(std::exchange(other.lock_fd_, -1)) {}

UriCache::Builder& UriCache::Builder::operator=(Builder&& other) noexcept {
  if (this != &other) {
    Reset();
    uri_ = std::move(other.uri_);
    staging_dir_ = std::move(other.staging_dir_);
    final_dir_ = std::move(other.final_dir_);
    lock_path_ = std::move(other.lock_path_);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
  }
  return *this;
}

void UriCache::Builder::Reset() {
  if (lock_fd_ < 0) return;
  // The staging directory and its scratch siblings, then the lock. The lock
  // file stays (RemoveLeftovers() removes it when free): unlinking it here
  // would let a waiter that does not re-check the path lock a dead file.
  RemoveQuietly(staging_dir_);
  std::string prefix = staging_dir_.filename().string() + ".";
  std::error_code ec;
  for (const auto& child : fs::directory_iterator(staging_dir_.parent_path(), ec)) {
    if (child.path().filename().string().starts_with(prefix)) RemoveQuietly(child.path());
  }
  CloseFd(lock_fd_);
}

// ---------------------------------------------------------------- UriCache

UriCache::UriCache(std::string kind, fs::path root, std::uint64_t max_bytes, Deleter deleter)
    : kind_(std::move(kind)),
      root_(NormalizedAbsolute(root)),
      max_bytes_(max_bytes),
      deleter_(std::move(deleter)) {}

UriCache::~UriCache() {
  std::lock_guard lock(mutex_);
  for (auto& [uri, local] : local_) {
    util::LogWarning("runtime_env " + kind_ + " cache destroyed while " + uri + " is referenced");
    CloseFd(local.lock_fd);
  }
}

std::uint64_t UriCache::MaxBytesFromEnvironment(std::string_view kind) {
  std::string name = "STRATA_RUNTIME_ENV_";
  for (char c : kind) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    name.push_back(alnum ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : '_');
  }
  name += "_CACHE_SIZE_GB";
  const std::uint64_t fallback = kDefaultGiB * kGiB;
  const char* raw = std::getenv(name.c_str());
  if (raw == nullptr) return fallback;
  std::string text(raw);
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
  text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
  char* end = nullptr;
  errno = 0;
  double gib = text.empty() ? NAN : std::strtod(text.c_str(), &end);
  bool valid = !text.empty() && end == text.c_str() + text.size() && !std::isnan(gib) && gib >= 0;
  // strtod accepts hexadecimal floats, Python's float() does not.
  if (valid && text.find_first_of("xX") != std::string::npos) valid = false;
  if (!valid) {
    util::LogWarning("Ignoring " + name + "=" + raw + ": not a non-negative number of GiB; using " +
                     std::to_string(kDefaultGiB));
    return fallback;
  }
  double bytes = gib * static_cast<double>(kGiB);
  if (bytes >= 18446744073709551615.0) return UINT64_MAX;
  return static_cast<std::uint64_t>(bytes);
}

void UriCache::SetClockForTesting(std::function<std::int64_t()> now_ms) {
  std::lock_guard lock(mutex_);
  clock_ = std::move(now_ms);
}

std::int64_t UriCache::NowMs() const {
  if (clock_) return clock_();
  return util::WallClockMs();
}

fs::path UriCache::DirFor(const std::string& uri) const {
  return root_ / (Sanitize(uri, 80) + "-" + util::Sha256Hex(uri).substr(0, 16));
}

// ---------------------------------------------------------------- state file

util::Result<std::map<std::string, UriCache::Entry>> UriCache::MergedState() const {
  fs::path path = root_ / kStateFile;
  std::map<std::string, Entry> entries;
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::stringstream buffer;
    buffer << in.rdbuf();
    // Our own file: plain nlohmann parsing (util::ParseJson's Python
    // compatibility is not needed and costs much more).
    std::optional<util::Json> parsed;
    std::string parse_error;
    try {
      parsed = util::Json::parse(buffer.str());
    } catch (const util::Json::exception& e) {
      parse_error = e.what();
    }
    auto corrupt = [&](const std::string& why) {
      util::LogWarning("Ignoring the runtime_env " + kind_ + " cache state " + path.string() +
                       ": " + why);
    };
    if (!parsed) {
      corrupt(parse_error);
    } else if (!parsed->is_object() || !(*parsed)["version"].is_number_integer() ||
               (*parsed)["version"].get<std::int64_t>() != kStateVersion ||
               !(*parsed)["entries"].is_object()) {
      corrupt("not a version " + std::to_string(kStateVersion) + " state");
    } else {
      for (const auto& [uri, value] : (*parsed)["entries"].items()) {
        bool ok = value.is_object() && value.contains("dir") && value["dir"].is_string() &&
                  value.contains("size_bytes") && value["size_bytes"].is_number_unsigned() &&
                  value.contains("created_ms") && value["created_ms"].is_number_integer() &&
                  value.contains("last_used_ms") && value["last_used_ms"].is_number_integer();
        std::string name = ok ? value["dir"].get<std::string>() : "";
        if (!ok || name.empty() || name.starts_with('.') || name.find('/') != std::string::npos ||
            name.find('\0') != std::string::npos) {
          corrupt("invalid entry for " + uri);
          continue;
        }
        entries[uri] = Entry{name, value["size_bytes"].get<std::uint64_t>(),
                             value["created_ms"].get<std::int64_t>(),
                             value["last_used_ms"].get<std::int64_t>()};
      }
    }
  } else if (Exists(path)) {
    return util::IOError("cannot read " + path.string() + ": " + ErrnoText());
  }
  // Entries this process references stay (another process cannot have
  // deleted them; a lost or corrupt file can have).
  for (const auto& [uri, local] : local_) {
    auto mine = entries_.find(uri);
    if (local.refs == 0 || mine == entries_.end()) continue;
    auto [it, inserted] = entries.try_emplace(uri, mine->second);
    if (!inserted) {
      it->second.last_used_ms = std::max(it->second.last_used_ms, mine->second.last_used_ms);
    } else if (!IsDirectory(root_ / mine->second.name)) {
      entries.erase(it);
    }
  }
  return entries;
}

void UriCache::SyncLocked() {
  auto merged = MergedState();
  if (!merged) {
    util::LogWarning(merged.error().ToString());
    return;
  }
  entries_ = std::move(*merged);
}

util::Status UriCache::SaveLocked() {
  util::Json entries = util::Json::object();
  for (const auto& [uri, e] : entries_) {
    entries[uri] = util::Json{{"dir", e.name},
                              {"size_bytes", e.size},
                              {"created_ms", e.created_ms},
                              {"last_used_ms", e.last_used_ms}};
  }
  util::Json state = {{"version", kStateVersion}, {"kind", kind_}, {"entries", entries}};
  std::string text = state.dump(1) + "\n";
  fs::path temp = root_ / kStateTemp;
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return util::IOError("cannot write " + temp.string());
  }
  std::error_code ec;
  fs::rename(temp, root_ / kStateFile, ec);
  if (ec) {
    return util::IOError("cannot replace " + (root_ / kStateFile).string() + ": " + ec.message());
  }
  return {};
}

// ---------------------------------------------------------------- operations

util::Status UriCache::Open() {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return util::IOError("cannot create " + root_.string() + ": " + ec.message());
  TrashBin bin{this, {}};
  std::vector<Trash>& trash = bin.items;
  {
    std::lock_guard lock(mutex_);
    auto state_lock = StateLock::Take(root_);
    if (!state_lock) return std::move(state_lock).error();
    SyncLocked();
    std::vector<std::string> vanished;
    for (const auto& [uri, e] : entries_) {
      if (!IsDirectory(root_ / e.name) && local_.count(uri) == 0) vanished.push_back(uri);
    }
    for (const std::string& uri : vanished) {
      util::LogInfo("runtime_env " + kind_ + " cache: dropping " + uri + ", its directory " +
                    (root_ / entries_[uri].name).string() + " vanished");
      DeleteLocked(uri, trash);
    }
    RemoveLeftoversLocked();
    EvictLocked(max_bytes_, trash);
    if (auto saved = SaveLocked(); !saved) return saved;
  }
  return {};
}

util::Status UriCache::RemoveLeftovers() {
  std::lock_guard lock(mutex_);
  auto state_lock = StateLock::Take(root_);
  if (!state_lock) return std::move(state_lock).error();
  SyncLocked();
  RemoveLeftoversLocked();
  return {};
}

void UriCache::RemoveLeftoversLocked() {
  std::set<std::string> entry_names;
  for (const auto& [uri, e] : entries_) entry_names.insert(e.name);
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& child : fs::directory_iterator(root_, ec)) {
    std::string name = child.path().filename().string();
    if (!name.starts_with(".state")) names.push_back(std::move(name));  // state file, temp, lock
  }
  if (ec) util::LogWarning("cannot list " + root_.string() + ": " + ec.message());

  // Which lock files someone holds. The free ones stay locked by us until
  // the end, so that nobody starts using them during the sweep.
  std::set<std::string> protected_stems;
  std::vector<std::string> protected_prefixes;
  std::map<std::string, int> free_locks;  // name -> fd holding LOCK_EX
  for (const std::string& name : names) {
    if (!EndsWith(name, kLockSuffix)) continue;
    int fd = OpenLockFile(root_ / name, /*create=*/false);
    if (fd < 0) continue;
    if (TryLock(fd, LOCK_EX)) {
      free_locks[name] = fd;
      continue;
    }
    ::close(fd);
    std::string locked = name.substr(0, name.size() - kLockSuffix.size());
    protected_stems.insert(Stem(locked));
    if (EndsWith(locked, kCreateSuffix)) {
      protected_prefixes.push_back(".tmp-" +
                                   locked.substr(0, locked.size() - kCreateSuffix.size()));
    }
  }

  for (const std::string& name : names) {
    std::string stem = Stem(name);
    bool keep = entry_names.count(name) != 0 || entry_names.count(stem) != 0 ||
                (EndsWith(name, kLockSuffix) &&
                 entry_names.count(name.substr(0, name.size() - kLockSuffix.size())) != 0) ||
                protected_stems.count(stem) != 0 ||
                std::any_of(protected_prefixes.begin(), protected_prefixes.end(),
                            [&](const std::string& prefix) { return name.starts_with(prefix); });
    if (keep) continue;
    fs::path path = root_ / name;
    if (EndsWith(name, kLockSuffix)) {
      ::unlink(path.c_str());  // held by us (free_locks) or unopenable
    } else {
      util::LogInfo("runtime_env " + kind_ + " cache: removing leftover " + path.string());
      RemoveQuietly(path);
    }
  }
  for (auto& [name, fd] : free_locks) ::close(fd);
}

util::Result<UriCache::Ref> UriCache::RefLocked(const std::string& uri) {
  const Entry& e = entries_.at(uri);
  fs::path dir = root_ / e.name;
  Local& local = local_[uri];
  if (local.refs == 0) {
    fs::path lock_path = WithSuffix(dir, kLockSuffix);
    int fd = OpenLockFile(lock_path, /*create=*/true);
    if (fd < 0 || !TryLock(fd, LOCK_SH)) {
      std::string why = fd < 0 ? ErrnoText() : "it is being deleted";
      if (fd >= 0) ::close(fd);
      local_.erase(uri);
      return Unavailable("cannot reference " + uri + " (" + lock_path.string() + "): " + why);
    }
    local.lock_fd = fd;
  }
  ++local.refs;
  return Ref(this, uri, dir);
}

std::optional<UriCache::Ref> UriCache::Acquire(const std::string& uri) {
  TrashBin bin{this, {}};
  std::vector<Trash>& trash = bin.items;
  std::optional<Ref> ref;
  {
    std::lock_guard lock(mutex_);
    auto state_lock = StateLock::Take(root_);
    if (!state_lock) {
      util::LogWarning(state_lock.error().ToString());
      return std::nullopt;
    }
    SyncLocked();
    auto it = entries_.find(uri);
    if (it == entries_.end()) return std::nullopt;
    if (!IsDirectory(root_ / it->second.name)) {
      util::LogWarning("runtime_env " + kind_ + " cache: the directory of " + uri + ", " +
                       (root_ / it->second.name).string() + ", vanished");
      if (local_.count(uri) == 0) DeleteLocked(uri, trash);
    } else if (auto made = RefLocked(uri); !made) {
      util::LogInfo(made.error().ToString());
    } else {
      it->second.last_used_ms = NowMs();
      ref = std::move(*made);
    }
    if (auto saved = SaveLocked(); !saved) util::LogWarning(saved.error().ToString());
  }
  return ref;
}

util::Result<UriCache::Ref> UriCache::Insert(const std::string& uri, const fs::path& dir,
                                             std::uint64_t size) {
  fs::path normal = NormalizedAbsolute(dir);
  std::string name = normal.filename().string();
  if (normal.parent_path() != root_ || name.empty() || name.starts_with('.') ||
      EndsWith(name, kLockSuffix)) {
    return util::ValueError("cannot cache " + uri + " at " + dir.string() +
                            ": entries must be directories directly under " + root_.string() +
                            " whose name neither starts with '.' nor ends with \".lock\"");
  }
  TrashBin bin{this, {}};
  std::vector<Trash>& trash = bin.items;
  util::Result<Ref> result = util::Error{};
  {
    std::lock_guard lock(mutex_);
    auto state_lock = StateLock::Take(root_);
    if (!state_lock) return std::move(state_lock).error();
    SyncLocked();
    if (!IsDirectory(normal)) {
      return util::NotFoundError("cannot cache " + uri + ": " + normal.string() +
                                 " is not a directory");
    }
    for (const auto& [other, e] : entries_) {
      if (e.name == name && other != uri) {
        return util::ValueError("cannot cache " + uri + " at " + normal.string() +
                                ": the directory holds " + other);
      }
    }
    std::int64_t now = NowMs();
    auto it = entries_.find(uri);
    if (it != entries_.end() && it->second.name != name) {
      if (IsDirectory(root_ / it->second.name)) {
        return util::ValueError(uri + " is already cached at " +
                                (root_ / it->second.name).string());
      }
      if (local_.count(uri) != 0 || DeleteLocked(uri, trash) != DeleteResult::kDeleted) {
        return Unavailable("cannot replace the record of " + uri + ": it is in use");
      }
      it = entries_.end();
    }
    if (it == entries_.end()) {
      it = entries_.emplace(uri, Entry{name, size, now, now}).first;
    } else {
      it->second.size = size;
      it->second.last_used_ms = now;
    }
    result = RefLocked(uri);
    if (!result) {
      entries_.erase(uri);
      return result;
    }
    EvictLocked(max_bytes_, trash);
    if (auto saved = SaveLocked(); !saved) util::LogWarning(saved.error().ToString());
  }
  return result;
}

util::Result<std::variant<UriCache::Ref, UriCache::Builder>> UriCache::AcquireOrBeginCreate(
    const std::string& uri, std::optional<std::chrono::steady_clock::time_point> deadline) {
  const fs::path final_dir = DirFor(uri);
  const fs::path staging = root_ / (".tmp-" + final_dir.filename().string());
  const fs::path lock_path = WithSuffix(final_dir, ".create.lock");
  auto wait = std::chrono::milliseconds(5);
  while (true) {
    if (auto ref = Acquire(uri)) return std::variant<Ref, Builder>(std::move(*ref));
    int fd = OpenLockFile(lock_path, /*create=*/true);
    if (fd < 0) return util::IOError("cannot open " + lock_path.string() + ": " + ErrnoText());
    if (TryLock(fd, LOCK_EX)) {
      if (!StillLinked(fd, lock_path)) {  // removed by a finished creator or a leftover sweep
        ::close(fd);
        continue;
      }
      Builder builder;
      builder.uri_ = uri;
      builder.staging_dir_ = staging;
      builder.final_dir_ = final_dir;
      builder.lock_path_ = lock_path;
      builder.lock_fd_ = fd;
      // The previous creator may have published while we waited.
      if (auto ref = Acquire(uri)) return std::variant<Ref, Builder>(std::move(*ref));
      // Leftovers of a creator that died, then a fresh staging directory.
      std::string prefix = staging.filename().string();
      std::error_code ec;
      for (const auto& child : fs::directory_iterator(root_, ec)) {
        if (child.path().filename().string().starts_with(prefix)) RemoveQuietly(child.path());
      }
      if (!fs::create_directory(staging, ec) || ec) {
        return util::IOError("cannot create " + staging.string() + ": " +
                             (ec ? ec.message() : std::string("it exists")));
      }
      return std::variant<Ref, Builder>(std::move(builder));
    }
    ::close(fd);
    if (deadline && std::chrono::steady_clock::now() >= *deadline) {
      return util::Error{util::ErrorKind::kTimeout,
                         "timed out waiting for another process to create " + uri};
    }
    std::this_thread::sleep_for(wait);
    wait = std::min(wait * 2, std::chrono::milliseconds(100));
  }
}

util::Result<UriCache::Ref> UriCache::Publish(Builder builder) {
  if (!builder) return util::ValueError("Publish() of an empty Builder");
  if (builder.staging_dir_.parent_path() != root_) {
    return util::ValueError("Publish() of a Builder of another cache");
  }
  const std::string& uri = builder.uri_;
  std::uint64_t size = DirectorySizeBytes(builder.staging_dir_);
  TrashBin bin{this, {}};
  std::vector<Trash>& trash = bin.items;
  util::Result<Ref> result = util::Error{};
  {
    std::lock_guard lock(mutex_);
    auto state_lock = StateLock::Take(root_);
    if (!state_lock) return std::move(state_lock).error();
    SyncLocked();
    auto it = entries_.find(uri);
    if (it != entries_.end() && !IsDirectory(root_ / it->second.name) && local_.count(uri) == 0) {
      DeleteLocked(uri, trash);  // a record whose directory vanished
      it = entries_.find(uri);
    }
    if (it != entries_.end()) {  // inserted by hand meanwhile: keep that one
      result = RefLocked(uri);
      if (result) it->second.last_used_ms = NowMs();
    } else {
      const fs::path& target = builder.final_dir_;
      for (const auto& [other, e] : entries_) {
        if (e.name == target.filename().string()) {
          return util::ValueError("cannot publish " + uri + ": " + target.string() + " holds " +
                                  other);
        }
      }
      if (Exists(target)) {
        // Not an entry: a leftover, unless someone still holds its lock.
        entries_[uri] = Entry{target.filename().string(), 0, 0, 0};
        DeleteResult deleted = DeleteLocked(uri, trash);
        entries_.erase(uri);
        if (deleted != DeleteResult::kDeleted) {
          return Unavailable("cannot publish " + uri + ": " + target.string() +
                             " exists and is in use");
        }
      }
      std::error_code ec;
      fs::rename(builder.staging_dir_, target, ec);
      if (ec) {
        return util::IOError("cannot publish " + uri + ": renaming " +
                             builder.staging_dir_.string() + " to " + target.string() + ": " +
                             ec.message());
      }
      std::int64_t now = NowMs();
      entries_[uri] = Entry{target.filename().string(), size, now, now};
      result = RefLocked(uri);
      if (!result) entries_.erase(uri);
    }
    if (result) EvictLocked(max_bytes_, trash);
    if (auto saved = SaveLocked(); !saved) util::LogWarning(saved.error().ToString());
  }
  builder.Reset();
  return result;
}

void UriCache::MarkUnused(const std::string& uri) {
  TrashBin bin{this, {}};
  std::vector<Trash>& trash = bin.items;
  {
    std::lock_guard lock(mutex_);
    auto local = local_.find(uri);
    if (local == local_.end()) return;
    if (--local->second.refs > 0) return;
    CloseFd(local->second.lock_fd);
    local_.erase(local);
    auto state_lock = StateLock::Take(root_);
    if (!state_lock) {
      util::LogWarning(state_lock.error().ToString());
      return;
    }
    SyncLocked();
    if (auto it = entries_.find(uri); it != entries_.end()) it->second.last_used_ms = NowMs();
    EvictLocked(max_bytes_, trash);
    if (auto saved = SaveLocked(); !saved) util::LogWarning(saved.error().ToString());
  }
}

UriCache::DeleteResult UriCache::DeleteLocked(const std::string& uri, std::vector<Trash>& trash) {
  const Entry entry = entries_.at(uri);
  const fs::path dir = root_ / entry.name;
  const fs::path lock_path = WithSuffix(dir, kLockSuffix);
  int fd = OpenLockFile(lock_path, /*create=*/true);
  if (fd < 0) {
    util::LogWarning("cannot open " + lock_path.string() + ": " + ErrnoText());
    return DeleteResult::kFailed;
  }
  if (!TryLock(fd, LOCK_EX)) {
    ::close(fd);
    return DeleteResult::kInUse;
  }
  entries_.erase(uri);
  if (!Exists(dir)) {
    ::unlink(lock_path.c_str());
    ::close(fd);
    return DeleteResult::kDeleted;
  }
  // Move it out of the way under the locks (so its name is free at once) and
  // delete the files later, without locks, keeping the moved lock held.
  fs::path moved = root_ / (".trash-" + Sanitize(entry.name, 100) + "-" + UniqueSuffix());
  std::error_code ec;
  fs::rename(dir, moved, ec);
  if (!ec) {
    fs::path moved_lock = WithSuffix(moved, kLockSuffix);
    if (::rename(lock_path.c_str(), moved_lock.c_str()) != 0) ::unlink(lock_path.c_str());
    trash.push_back(Trash{uri, moved, moved_lock, fd, entry.size});
    return DeleteResult::kDeleted;
  }
  util::LogWarning("cannot move " + dir.string() + " to " + moved.string() + " (" + ec.message() +
                   "); deleting it in place");
  trash.push_back(Trash{uri, dir, lock_path, fd, entry.size});
  return DeleteResult::kDeleted;
}

std::vector<std::string> UriCache::EvictLocked(std::uint64_t limit, std::vector<Trash>& trash) {
  std::uint64_t total = 0;
  std::vector<std::pair<const std::string*, const Entry*>> order;
  for (const auto& [uri, e] : entries_) {
    total += e.size;
    order.emplace_back(&uri, &e);
  }
  std::vector<std::string> evicted;
  if (total <= limit) return evicted;
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->last_used_ms, a.second->created_ms, *a.first) <
           std::tie(b.second->last_used_ms, b.second->created_ms, *b.first);
  });
  std::vector<std::pair<std::string, std::uint64_t>> candidates;
  for (const auto& [uri, e] : order) candidates.emplace_back(*uri, e->size);
  for (const auto& [uri, size] : candidates) {
    if (total <= limit) break;
    if (local_.count(uri) != 0) continue;
    switch (DeleteLocked(uri, trash)) {
      case DeleteResult::kDeleted:
        total -= size;
        evicted.push_back(uri);
        break;
      case DeleteResult::kInUse:
        util::LogDebug("runtime_env " + kind_ + " cache: not evicting " + uri +
                       ", in use by another process");
        break;
      case DeleteResult::kFailed:
        break;
    }
  }
  return evicted;
}

void UriCache::EmptyTrash(std::vector<Trash>& trash) const {
  for (Trash& t : trash) {
    std::uint64_t freed = t.size;
    if (deleter_) {
      freed = deleter_(t.dir);
    } else {
      RemoveQuietly(t.dir);
    }
    ::unlink(t.lock_path.c_str());
    CloseFd(t.lock_fd);
    util::LogInfo("runtime_env " + kind_ + " cache: deleted " + t.uri + " (" + Describe(freed) +
                  ")");
  }
  trash.clear();
}

std::vector<std::string> UriCache::EvictTo(std::uint64_t limit) {
  TrashBin bin{this, {}};
  std::vector<Trash>& trash = bin.items;
  std::vector<std::string> evicted;
  {
    std::lock_guard lock(mutex_);
    auto state_lock = StateLock::Take(root_);
    if (!state_lock) {
      util::LogWarning(state_lock.error().ToString());
      return evicted;
    }
    SyncLocked();
    evicted = EvictLocked(limit, trash);
    if (!evicted.empty()) {
      if (auto saved = SaveLocked(); !saved) util::LogWarning(saved.error().ToString());
    }
  }
  return evicted;
}

std::vector<std::string> UriCache::EvictIfNeeded() {
  return EvictTo(max_bytes_);
}

std::vector<std::string> UriCache::GarbageCollect(std::uint64_t target_bytes) {
  return EvictTo(target_bytes);
}

util::Status UriCache::Remove(const std::string& uri) {
  TrashBin bin{this, {}};
  std::vector<Trash>& trash = bin.items;
  {
    std::lock_guard lock(mutex_);
    if (local_.count(uri) != 0) {
      return Unavailable("cannot remove " + uri + " from the runtime_env " + kind_ +
                         " cache: it is in use by this process");
    }
    auto state_lock = StateLock::Take(root_);
    if (!state_lock) return std::move(state_lock).error();
    SyncLocked();
    if (entries_.count(uri) == 0) {
      return util::NotFoundError(uri + " is not in the runtime_env " + kind_ + " cache");
    }
    switch (DeleteLocked(uri, trash)) {
      case DeleteResult::kDeleted:
        break;
      case DeleteResult::kInUse:
        return Unavailable("cannot remove " + uri + " from the runtime_env " + kind_ +
                           " cache: it is in use by another process");
      case DeleteResult::kFailed:
        return util::IOError("cannot remove " + uri + ": its lock file cannot be opened");
    }
    if (auto saved = SaveLocked(); !saved) util::LogWarning(saved.error().ToString());
  }
  return {};
}

std::vector<UriCache::EntryInfo> UriCache::Entries() const {
  std::lock_guard lock(mutex_);
  std::vector<EntryInfo> infos;
  auto state_lock = StateLock::Take(root_);
  if (!state_lock) {
    util::LogWarning(state_lock.error().ToString());
    return infos;
  }
  auto merged = MergedState();
  if (!merged) {
    util::LogWarning(merged.error().ToString());
    return infos;
  }
  for (const auto& [uri, e] : *merged) {
    EntryInfo info;
    info.uri = uri;
    info.dir = root_ / e.name;
    info.size = e.size;
    info.created_ms = e.created_ms;
    info.last_used_ms = e.last_used_ms;
    if (auto local = local_.find(uri); local != local_.end()) {
      info.local_refs = local->second.refs;
    } else {
      // Probing with LOCK_EX is safe under the state lock: every other
      // taker of entry locks holds it too.
      int fd = OpenLockFile(WithSuffix(info.dir, kLockSuffix), /*create=*/false);
      if (fd >= 0) {
        info.in_use_elsewhere = !TryLock(fd, LOCK_EX);
        ::close(fd);
      }
    }
    infos.push_back(std::move(info));
  }
  std::sort(infos.begin(), infos.end(), [](const EntryInfo& a, const EntryInfo& b) {
    return std::tie(a.last_used_ms, a.created_ms, a.uri) <
           std::tie(b.last_used_ms, b.created_ms, b.uri);
  });
  return infos;
}

std::uint64_t UriCache::TotalBytes() const {
  std::lock_guard lock(mutex_);
  // .state.json is replaced by rename: reading it needs no lock.
  auto merged = MergedState();
  if (!merged) {
    util::LogWarning(merged.error().ToString());
    return 0;
  }
  std::uint64_t total = 0;
  for (const auto& [uri, e] : *merged) total += e.size;
  return total;
}

}  // namespace strata::agent
