#include "packaging/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "packaging/ignore.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;

constexpr const char* kGitignore = ".gitignore";
constexpr const char* kRayignore = ".rayignore";

std::string ErrnoMessage(int error) {
  return std::generic_category().message(error);
}

struct DirCloser {
  void operator()(DIR* dir) const { ::closedir(dir); }
};
using DirHandle = std::unique_ptr<DIR, DirCloser>;

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

struct DirId {
  dev_t dev;
  ino_t ino;
};

// How many directories a walk may keep open in its queue: an eighth of the descriptor limit
// (the rest is for the directories being walked and the caller), at most 128.
std::size_t MaxQueued() {
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 16;
  return static_cast<std::size_t>(std::min<rlim_t>(limit.rlim_cur / 8, 128));
}

// A directory waiting to be walked.
struct DirTask {
  DirTask(int fd, std::string relative, IgnoreStack ignores, std::vector<DirId> ancestors)
      : fd(fd),
        relative(std::move(relative)),
        ignores(std::move(ignores)),
        ancestors(std::move(ancestors)) {}
  DirTask(DirTask&& other) noexcept
      : fd(std::exchange(other.fd, -1)),
        relative(std::move(other.relative)),
        ignores(std::move(other.ignores)),
        ancestors(std::move(other.ancestors)) {}
  DirTask& operator=(DirTask&&) = delete;
  ~DirTask() {
    if (fd >= 0) ::close(fd);
  }

  int fd;                        // open on the directory; owned
  std::string relative;          // its package path, "" for the root
  IgnoreStack ignores;           // the ignore files of its ancestors
  std::vector<DirId> ancestors;  // the directories from the root down to it, itself included
};

// Walks directories on several threads at once: a directory's listing, ignore files and
// verdicts depend only on its ancestors, so each one is a task of its own; the entries are
// sorted at the end, so the order in which tasks finish does not matter.
class Walker {
 public:
  Walker(fs::path root, const WalkOptions& options, IgnoreRules vetoes)
      : root_(std::move(root)), options_(options), vetoes_(std::move(vetoes)) {}

  // Takes ownership of `root_fd`.
  util::Status Run(int root_fd) {
    struct stat st {};
    if (::fstat(root_fd, &st) != 0) {
      const int error = errno;
      ::close(root_fd);
      return util::IOError("cannot stat directory " + root_.string() + ": " + ErrnoMessage(error));
    }
    queue_.emplace_back(root_fd, std::string(), IgnoreStack(),
                        std::vector<DirId>{{st.st_dev, st.st_ino}});
    queued_ = 1;
    pending_ = 1;
    // The first directory alone tells whether there is anything to share out: a tree without
    // subdirectories is not worth a thread.
    Work(/*first_only=*/true);
    const unsigned wanted = options_.threads != 0
                                ? options_.threads
                                : std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < wanted && !queue_.empty(); ++t) {
      helpers.emplace_back([this] { Work(false); });
    }
    Work(false);
    for (std::thread& helper : helpers) helper.join();
    if (error_) return std::move(*error_);
    return util::Status::Ok();
  }

  std::vector<PackageEntry> TakeEntries() { return std::move(entries_); }

 private:
  struct Child {
    std::string name;
    unsigned char type;  // d_type
  };

  // What one task found, handed over under the lock when it is done.
  struct Output {
    std::vector<PackageEntry> entries;
    std::vector<DirTask> subdirectories;
  };

  void Work(bool first_only) {
    Output output;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      ready_.wait(lock, [this] { return !queue_.empty() || pending_ == 0 || error_; });
      if (error_ || queue_.empty()) return;
      // Depth first: the deepest directory queued keeps the number of open directories small.
      DirTask task = std::move(queue_.back());
      queue_.pop_back();
      --queued_;
      lock.unlock();
      util::Status status = WalkDirectory(task, output);
      lock.lock();
      --pending_;
      if (!status.ok()) {
        if (!error_) error_ = std::move(status).error();
      } else {
        for (DirTask& sub : output.subdirectories) queue_.push_back(std::move(sub));
        pending_ += output.subdirectories.size();
        entries_.insert(entries_.end(), std::make_move_iterator(output.entries.begin()),
                        std::make_move_iterator(output.entries.end()));
      }
      output.subdirectories.clear();
      output.entries.clear();
      ready_.notify_all();
      if (first_only) return;
    }
  }

  std::string Display(const std::string& relative) const { return (root_ / relative).string(); }

  // The defaults and the runtime env's `excludes` veto a path whatever the
  // ignore files say (Ray skips a path that any source matches), so a
  // whitelisting `.gitignore` ("*", "!*/") cannot pull `.git/` back in.
  bool Excluded(const IgnoreStack& ignores, const std::string& relative, bool is_dir) const {
    return vetoes_.IsExcluded(relative, is_dir) || ignores.Excludes(relative, is_dir);
  }

  // Walks the directory of `task`: its files go to output.entries, its subdirectories to
  // output.subdirectories (or are walked on the spot, see VisitChild), and itself to
  // output.entries when it contains no included entry (a subdirectory that is walked counts
  // as included: it is listed itself or has content).
  util::Status WalkDirectory(DirTask& task, Output& output) {
    DIR* raw = ::fdopendir(task.fd);
    if (raw == nullptr) {
      const int error = errno;
      return util::IOError("cannot read directory " + Display(task.relative) + ": " +
                           ErrnoMessage(error));
    }
    task.fd = -1;  // now closed with `dir`
    DirHandle dir(raw);
    const int dir_fd = ::dirfd(raw);

    // The whole listing first: the directory's ignore files must be in force before its
    // children are matched.
    std::vector<Child> children;
    bool has_gitignore = false;
    bool has_rayignore = false;
    errno = 0;
    while (const dirent* entry = ::readdir(raw)) {
      const std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      has_gitignore = has_gitignore || name == kGitignore;
      has_rayignore = has_rayignore || name == kRayignore;
      children.push_back({std::string(name), entry->d_type});
      errno = 0;
    }
    if (const int error = errno; error != 0) {
      return util::IOError("cannot read directory " + Display(task.relative) + ": " +
                           ErrnoMessage(error));
    }

    IgnoreStack ignores = task.ignores;
    util::Status status;
    if (options_.read_gitignore && has_gitignore) {
      status = LoadIgnoreFile(dir_fd, kGitignore, task.relative, ignores);
    }
    if (status.ok() && options_.read_rayignore && has_rayignore) {
      status = LoadIgnoreFile(dir_fd, kRayignore, task.relative, ignores);
    }
    if (!status.ok()) return status;

    std::size_t included = 0;
    std::string relative = task.relative;
    const std::size_t own_length = relative.size();
    for (std::size_t i = 0; status.ok() && i < children.size(); ++i) {
      if (own_length != 0) relative += '/';
      relative += children[i].name;
      status = VisitChild(dir_fd, children[i], task, ignores, relative, included, output);
      relative.resize(own_length);
    }
    if (!status.ok()) return status;

    if (included == 0 && !relative.empty()) {
      PackageEntry entry;
      entry.path = std::move(relative);
      entry.type = EntryType::kDirectory;
      output.entries.push_back(std::move(entry));
    }
    return util::Status::Ok();
  }

  // Reads the ignore file `name` of the directory at package path `relative` and puts it on
  // top of `ignores`.
  util::Status LoadIgnoreFile(int dir_fd, const char* name, const std::string& relative,
                              IgnoreStack& ignores) {
    // O_NOFOLLOW: git does not read an ignore file that is a symbolic link. O_NONBLOCK: a
    // FIFO of that name must not hang the walk.
    const int fd = ::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (error == ELOOP || error == ENOENT) return util::Status::Ok();
      return util::IOError("cannot read " + Display(relative) + "/" + name + ": " +
                           ErrnoMessage(error));
    }
    FdCloser closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return util::Status::Ok();
    std::string content;
    content.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < content.size()) {
      const ssize_t got = ::read(fd, content.data() + done, content.size() - done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        const int error = errno;
        return util::IOError("cannot read " + Display(relative) + "/" + name + ": " +
                             ErrnoMessage(error));
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    content.resize(done);
    ignores.Push(IgnoreRules::FromFileContent(content, relative));
    return util::Status::Ok();
  }

  // Visits the child of `parent` whose package path is `relative`.
  util::Status VisitChild(int dir_fd, const Child& child, const DirTask& parent,
                          const IgnoreStack& ignores, const std::string& relative,
                          std::size_t& included, Output& output) {
    const char* name = child.name.c_str();
    struct stat st {};
    bool have_stat = false;
    unsigned char type = child.type;
    if (type == DT_UNKNOWN) {
      if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return StatError(relative);
      have_stat = true;
      type = S_ISREG(st.st_mode)   ? DT_REG
             : S_ISDIR(st.st_mode) ? DT_DIR
             : S_ISLNK(st.st_mode) ? DT_LNK
                                   : DT_UNKNOWN;
    }

    bool via_link = false;
    if (type == DT_LNK) {
      via_link = true;
      if (::fstatat(dir_fd, name, &st, 0) != 0) {
        const int error = errno;
        // An excluded link is never needed, whatever it points to.
        if (Excluded(ignores, relative, false)) return util::Status::Ok();
        if (error == ENOENT || error == ENOTDIR) {
          return util::NotFoundError("symbolic link " + Display(relative) + " is dangling");
        }
        if (error == ELOOP) {
          return util::ValueError("symbolic link " + Display(relative) +
                                  " is part of a link cycle");
        }
        return util::IOError("cannot follow symbolic link " + Display(relative) + ": " +
                             ErrnoMessage(error));
      }
      have_stat = true;
      type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : DT_UNKNOWN;
    }

    if (type == DT_REG) {
      if (Excluded(ignores, relative, false)) return util::Status::Ok();
      if (!have_stat && ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return StatError(relative);
      }
      if (!S_ISREG(st.st_mode)) return util::Status::Ok();  // replaced while walking
      PackageEntry entry;
      entry.path = relative;
      entry.type = EntryType::kFile;
      if (via_link) {
        std::error_code error;
        entry.source = fs::canonical(root_ / relative, error);
        if (error) {
          return util::IOError("cannot resolve symbolic link " + Display(relative) + ": " +
                               error.message());
        }
      } else {
        entry.source = root_ / relative;
      }
      entry.size = static_cast<std::uint64_t>(st.st_size);
      entry.executable = (st.st_mode & S_IXUSR) != 0;
      output.entries.push_back(std::move(entry));
      ++included;
      return util::Status::Ok();
    }

    if (type == DT_DIR) {
      if (Excluded(ignores, relative, true)) return util::Status::Ok();
      if (via_link) {
        for (const DirId& ancestor : parent.ancestors) {
          if (ancestor.dev == st.st_dev && ancestor.ino == st.st_ino) {
            return util::ValueError("symbolic link " + Display(relative) +
                                    " points to one of its parent directories (a link cycle)");
          }
        }
      }
      const int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (via_link ? 0 : O_NOFOLLOW);
      const int fd = ::openat(dir_fd, name, flags);
      if (fd < 0) {
        const int error = errno;
        return util::IOError("cannot open directory " + Display(relative) + ": " +
                             ErrnoMessage(error));
      }
      if (!via_link && ::fstat(fd, &st) != 0) {
        const int error = errno;
        ::close(fd);
        return util::IOError("cannot stat directory " + Display(relative) + ": " +
                             ErrnoMessage(error));
      }
      std::vector<DirId> ancestors = parent.ancestors;
      ancestors.push_back({st.st_dev, st.st_ino});
      DirTask sub(fd, relative, ignores, std::move(ancestors));
      ++included;
      // A queued directory holds a descriptor: past max_queued_ the directory is walked right
      // here, depth first, so a wide tree cannot exhaust the descriptor limit.
      if (queued_.fetch_add(1) < max_queued_) {
        output.subdirectories.push_back(std::move(sub));
        return util::Status::Ok();
      }
      --queued_;
      return WalkDirectory(sub, output);
    }

    return util::Status::Ok();  // sockets, FIFOs, devices: not packaged
  }

  util::Status StatError(const std::string& relative) const {
    const int error = errno;
    return util::IOError("cannot stat " + Display(relative) + ": " + ErrnoMessage(error));
  }

  const fs::path root_;
  const WalkOptions& options_;
  const IgnoreRules vetoes_;

  // Queued directories, or found and about to be: at most max_queued_, few enough that their
  // descriptors stay far below the process's limit.
  const std::size_t max_queued_ = MaxQueued();
  std::atomic<std::size_t> queued_{0};

  std::mutex mu_;
  std::condition_variable ready_;     // a task was queued, or the walk is over
  std::vector<DirTask> queue_;        // directories not yet walked
  std::size_t pending_ = 0;           // queued or being walked
  std::optional<util::Error> error_;  // the first failure; stops the walk
  std::vector<PackageEntry> entries_;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view Strip(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace

std::vector<std::string> DefaultExcludes() {
  return {".git", ".venv", "venv", "__pycache__"};
}

WalkOptions WalkOptionsFromEnvironment() {
  WalkOptions options;
  if (const char* value = std::getenv("STRATA_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES")) {
    options.default_excludes.clear();
    std::string_view rest = value;
    while (true) {
      const std::size_t comma = rest.find(',');
      const std::string_view item = Strip(rest.substr(0, comma));
      if (!item.empty()) options.default_excludes.emplace_back(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (const char* value = std::getenv("STRATA_RUNTIME_ENV_IGNORE_GITIGNORE")) {
    options.read_gitignore = std::string_view(value) != "1";
  }
  return options;
}

util::Result<std::vector<PackageEntry>> WalkPackageTree(const fs::path& root,
                                                        const std::vector<std::string>& excludes,
                                                        const WalkOptions& options) {
  std::error_code error;
  fs::path absolute = fs::absolute(root, error);
  if (error || root.empty()) {
    return util::ValueError("directory " + root.string() + " must be an existing directory");
  }
  // "pkg/" and "pkg/." name the same directory; keep source paths free of those tails.
  while (absolute.has_relative_path() &&
         (absolute.filename().empty() || absolute.filename() == ".")) {
    absolute = absolute.parent_path();
  }

  const int fd = ::open(absolute.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int open_error = errno;
    if (open_error == ENOENT || open_error == ENOTDIR) {
      return util::ValueError("directory " + absolute.string() + " must be an existing directory");
    }
    return util::IOError("cannot open directory " + absolute.string() + ": " +
                         ErrnoMessage(open_error));
  }

  // Defaults before `excludes` in one source, so `excludes: ["!venv"]` can bring a default back.
  IgnoreRules base_rules;
  for (const std::string& pattern : options.default_excludes) base_rules.AddLine(pattern);
  for (const std::string& pattern : excludes) base_rules.AddLine(pattern);

  Walker walker(absolute, options, std::move(base_rules));
  util::Status status = walker.Run(fd);
  if (!status.ok()) return std::move(status).error();
  std::vector<PackageEntry> entries = walker.TakeEntries();
  std::sort(entries.begin(), entries.end(),
            [](const PackageEntry& a, const PackageEntry& b) { return a.path < b.path; });
  return entries;
}

}  // namespace strata::packaging
