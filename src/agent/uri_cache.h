// UriCache: the node's cache of created resources of one kind ("working_dir",
// "py_modules", "pip", "uv", ...): unpacked packages, virtualenvs. Each
// resource is named by a URI ("gcs://_strata_pkg_<hex>.zip", "pip://<hash>")
// and lives in one directory under the kind's root.
//
// Differences from Ray's URICache (ray-runtime-env.md §3.5):
//   * eviction is least-recently-used first (Ray: arbitrary), of entries that
//     nobody references, while the kind's total exceeds its cap;
//   * the state survives restarts (a JSON file per kind);
//   * several processes may share one root (`strata run` processes and a
//     daemon on one STRATA_HOME): references held by other processes are file
//     locks, and the state file is a read-modify-write under a lock.
//
// On-disk layout under `root` (e.g. $STRATA_HOME/runtime_resources/pip):
//
//   .state.json          {"version": 1, "kind": "pip", "entries": {"<uri>":
//                          {"dir": "<name>", "size_bytes": N, "created_ms": T,
//                           "last_used_ms": T}, ...}}  (ms since the Unix epoch)
//                        written to .state.json.tmp and renamed into place
//                        after each change
//   .state.lock          flock(LOCK_EX) around every read-modify-write of
//                        .state.json, merged with what other processes wrote
//                        (re-read before write); entry locks below are only
//                        taken exclusively, created and unlinked under it
//   <name>/              an entry, <name> = DirFor(uri).filename()
//   <name>.lock          the entry's reference lock: every process using the
//                        entry holds LOCK_SH on it for as long as it does;
//                        deletion takes LOCK_EX|LOCK_NB and skips the entry
//                        ("in use by another process") when that fails
//   <name>.create.lock   creation lock: LOCK_EX by the one creator of <name>
//                        (single flight across threads and processes)
//   .tmp-<name>*         staging directory of a creation in progress and the
//                        creator's scratch siblings (e.g. ".tmp-<name>.download")
//   .trash-<name>-<n>/   an evicted entry being deleted, with its .lock held
//
// Leftovers. RemoveLeftovers() (run by Open()) removes every name under root
// that is not an entry of the state (nor its .lock, nor "<entry>.<suffix>")
// and is not protected by a lock that someone holds:
//   * a held "<S>.lock" protects the names whose stem is stem(S), where
//     stem(x) = x up to its first '.' after position 0 (so a held
//     "<name>.create.lock" protects "<name>" and "<name>.*");
//   * a held "<name>.create.lock" also protects every name starting with
//     ".tmp-<name>".
// So a build that crashed in any process is cleaned up at the next start-up
// while a build running in another process is left alone, provided it holds
// its creation lock (Builder does). Unheld lock files are removed too, under
// LOCK_EX; whoever locks a lock file must therefore check, once it holds the
// lock, that the path still names the file it locked (Builder does). Entries
// whose directory vanished are dropped from the state by Open().
//
// Thread-safety: every method may be called concurrently (one mutex guards
// the in-memory state; file locks order processes). Ref and Builder objects
// are not themselves synchronized: use each from one thread at a time. The
// cache must outlive its Refs and Builders.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "util/result.h"

namespace strata::agent {

// Allocated bytes (st_blocks * 512) of a tree, the root included, symlinks
// not followed, each hard-linked inode counted once. 0 if `dir` is absent.
std::uint64_t DirectorySizeBytes(const std::filesystem::path& dir);

class UriCache {
 public:
  // Removes the files of an entry and returns the bytes it freed. Called with
  // the entry's directory after it was moved to a .trash-* name, with no
  // cache lock held. Default: remove_all, returning the recorded size.
  using Deleter = std::function<std::uint64_t(const std::filesystem::path& dir)>;

  // `root` = the kind's directory; `max_bytes` = the cap (see
  // MaxBytesFromEnvironment). Touches nothing on disk: call Open().
  UriCache(std::string kind, std::filesystem::path root, std::uint64_t max_bytes,
           Deleter deleter = nullptr);
  ~UriCache();
  UriCache(const UriCache&) = delete;
  UriCache& operator=(const UriCache&) = delete;

  // STRATA_RUNTIME_ENV_<KIND>_CACHE_SIZE_GB (kind upper-cased, other
  // characters than letters and digits as '_'): float GiB, default 10; "inf"
  // means no cap. Invalid or negative values log a warning and give 10 GiB.
  static std::uint64_t MaxBytesFromEnvironment(std::string_view kind);

  // Creates root, loads the state, drops entries whose directory vanished,
  // removes leftovers and evicts down to the cap.
  util::Status Open();
  // See "Leftovers" above.
  util::Status RemoveLeftovers();

  // A reference held by this process on one entry: while any Ref of the
  // entry lives, this process holds LOCK_SH on <name>.lock and the entry is
  // never evicted or removed. Destroying or Release()-ing the last Ref marks
  // the entry used now and unused, then evicts down to the cap.
  class Ref {
   public:
    Ref() = default;
    Ref(Ref&& other) noexcept;
    Ref& operator=(Ref&& other) noexcept;
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref() { Release(); }

    explicit operator bool() const { return cache_ != nullptr; }
    const std::string& uri() const { return uri_; }
    const std::filesystem::path& dir() const { return dir_; }
    void Release();

   private:
    friend class UriCache;
    Ref(UriCache* cache, std::string uri, std::filesystem::path dir)
        : cache_(cache), uri_(std::move(uri)), dir_(std::move(dir)) {}
    UriCache* cache_ = nullptr;
    std::string uri_;
    std::filesystem::path dir_;
  };

  // Creation of one entry: holds the creation lock of DirFor(uri) and an
  // empty staging directory. Build into staging_dir() (scratch space may go
  // next to it, named staging_dir() + ".<suffix>"), then Publish(). If
  // dropped unpublished, it removes staging_dir() and its ".*" siblings and
  // releases the lock (the next creator then starts afresh).
  class Builder {
   public:
    Builder() = default;
    Builder(Builder&& other) noexcept;
    Builder& operator=(Builder&& other) noexcept;
    Builder(const Builder&) = delete;
    Builder& operator=(const Builder&) = delete;
    ~Builder() { Reset(); }

    explicit operator bool() const { return lock_fd_ >= 0; }
    const std::string& uri() const { return uri_; }
    // <root>/.tmp-<name>: an empty directory when handed out.
    const std::filesystem::path& staging_dir() const { return staging_dir_; }
    // Where Publish() renames it: DirFor(uri).
    const std::filesystem::path& final_dir() const { return final_dir_; }
    void Reset();

   private:
    friend class UriCache;
    std::string uri_;
    std::filesystem::path staging_dir_, final_dir_, lock_path_;
    int lock_fd_ = -1;
  };

  // If present: marks it used now and returns a Ref; else nullopt (also when
  // it is being deleted, or on I/O errors, which are logged).
  std::optional<Ref> Acquire(const std::string& uri);

  // Single flight: a Ref if the entry exists, else a Builder once no other
  // thread or process is creating it (waiting for that one, polling, until
  // `deadline`: kTimeout error). When the other creator publishes, the
  // waiter gets a Ref; when it fails, the waiter gets the Builder. Leftovers
  // of a creator that died (".tmp-<name>*") are removed first.
  util::Result<std::variant<Ref, Builder>> AcquireOrBeginCreate(
      const std::string& uri,
      std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);
  // Renames builder.staging_dir() to final_dir(), records the entry with its
  // DirectorySizeBytes, evicts down to the cap and returns a Ref. If the URI
  // is already cached (published through Insert()), returns a Ref to it and
  // discards the build.
  util::Result<Ref> Publish(Builder builder);

  // Records an entry whose directory the caller already published; `dir`
  // must be a direct child of root whose name does not start with '.'.
  // Re-inserting a URI at its recorded directory updates its size. Evicts
  // down to the cap. Prefer AcquireOrBeginCreate + Publish: a directory
  // renamed into place by hand is a leftover for other processes until it
  // is inserted.
  util::Result<Ref> Insert(const std::string& uri, const std::filesystem::path& dir,
                           std::uint64_t size);

  // <root>/<name>: the URI with every character outside [A-Za-z0-9_-] as
  // '_', cut to 80 characters, then '-' and 16 hex of its SHA-256. Stable.
  std::filesystem::path DirFor(const std::string& uri) const;

  // Evict unreferenced entries, least recently used first (ties: older
  // creation, then URI), skipping those in use by another process, while the
  // total exceeds max_bytes() (resp. `target_bytes`). Return the evicted URIs.
  std::vector<std::string> EvictIfNeeded();
  std::vector<std::string> GarbageCollect(std::uint64_t target_bytes);

  // Deletes one entry now. kNotFound if absent; kUnavailable if referenced
  // by this process or in use by another process.
  util::Status Remove(const std::string& uri);

  struct EntryInfo {
    std::string uri;
    std::filesystem::path dir;
    std::uint64_t size = 0;
    int local_refs = 0;  // Refs alive in this process
    // Another process holds a reference. Only known when local_refs == 0
    // (this process's own lock hides the others'); false otherwise.
    bool in_use_elsewhere = false;
    std::int64_t created_ms = 0;
    std::int64_t last_used_ms = 0;
  };
  // All entries of the shared state, least recently used first.
  std::vector<EntryInfo> Entries() const;
  // Sum of the recorded sizes of all entries (of every process).
  std::uint64_t TotalBytes() const;

  const std::string& kind() const { return kind_; }
  const std::filesystem::path& root() const { return root_; }
  std::uint64_t max_bytes() const { return max_bytes_; }

  // Milliseconds since the epoch used for created/last used; for tests.
  void SetClockForTesting(std::function<std::int64_t()> now_ms);

 private:
  struct Entry {
    std::string name;  // directory name under root
    std::uint64_t size = 0;
    std::int64_t created_ms = 0;
    std::int64_t last_used_ms = 0;
  };
  struct Local {
    int refs = 0;
    int lock_fd = -1;  // LOCK_SH on <name>.lock
  };
  struct Trash {
    std::string uri;
    std::filesystem::path dir, lock_path;
    int lock_fd = -1;  // LOCK_EX on lock_path
    std::uint64_t size = 0;
  };
  // Deletes its items when destroyed: declare it before locking mutex_ so
  // that the files go after the locks are released, on every return path.
  struct TrashBin {
    const UriCache* cache;
    std::vector<Trash> items;
    ~TrashBin() { cache->EmptyTrash(items); }
  };
  enum class DeleteResult { kDeleted, kInUse, kFailed };

  void MarkUnused(const std::string& uri);
  std::int64_t NowMs() const;
  // All below: mutex_ held; *Locked ones also hold .state.lock.
  util::Result<std::map<std::string, Entry>> MergedState() const;
  void SyncLocked();
  util::Status SaveLocked();
  util::Result<Ref> RefLocked(const std::string& uri);
  DeleteResult DeleteLocked(const std::string& uri, std::vector<Trash>& trash);
  std::vector<std::string> EvictLocked(std::uint64_t limit, std::vector<Trash>& trash);
  void RemoveLeftoversLocked();
  void EmptyTrash(std::vector<Trash>& trash) const;
  std::vector<std::string> EvictTo(std::uint64_t limit);

  const std::string kind_;
  const std::filesystem::path root_;
  const std::uint64_t max_bytes_;
  const Deleter deleter_;

  mutable std::mutex mutex_;
  std::function<std::int64_t()> clock_;   // guarded by mutex_
  std::map<std::string, Entry> entries_;  // last view of .state.json, guarded by mutex_
  std::map<std::string, Local> local_;    // guarded by mutex_
};

}  // namespace strata::agent
