#include "packaging/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <system_error>
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

class Walker {
 public:
  Walker(fs::path root, const WalkOptions& options) : root_(std::move(root)), options_(options) {}

  // Takes ownership of `root_fd`.
  util::Status Run(int root_fd, IgnoreRules base_rules) {
    struct stat st {};
    if (::fstat(root_fd, &st) != 0) {
      const int error = errno;
      ::close(root_fd);
      return util::IOError("cannot stat directory " + root_.string() + ": " + ErrnoMessage(error));
    }
    vetoes_ = std::move(base_rules);
    ancestors_.push_back({st.st_dev, st.st_ino});
    std::size_t included = 0;
    return WalkDirectory(root_fd, included);
  }

  std::vector<PackageEntry> TakeEntries() { return std::move(entries_); }

  // The defaults and the runtime env's `excludes` veto a path whatever the
  // ignore files say (Ray skips a path that any source matches), so a
  // whitelisting `.gitignore` ("*", "!*/") cannot pull `.git/` back in.
  bool Excluded(bool is_dir) const {
    return vetoes_.IsExcluded(relative_, is_dir) || stack_.Excludes(relative_, is_dir);
  }

 private:
  struct Child {
    std::string name;
    unsigned char type;  // d_type
  };

  std::string Display() const { return (root_ / relative_).string(); }

  // Walks the directory open as `fd` (taken over) whose package path is relative_. Adds one
  // to `included` of the parent when it succeeds (the directory is then either listed as empty
  // or has included content).
  util::Status WalkDirectory(int fd, std::size_t& parent_included) {
    DIR* raw = ::fdopendir(fd);
    if (raw == nullptr) {
      const int error = errno;
      ::close(fd);
      return util::IOError("cannot read directory " + Display() + ": " + ErrnoMessage(error));
    }
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
      return util::IOError("cannot read directory " + Display() + ": " + ErrnoMessage(error));
    }

    const std::size_t depth = stack_.depth();
    util::Status status;
    if (options_.read_gitignore && has_gitignore) status = LoadIgnoreFile(dir_fd, kGitignore);
    if (status.ok() && options_.read_rayignore && has_rayignore) {
      status = LoadIgnoreFile(dir_fd, kRayignore);
    }

    std::size_t included = 0;
    const std::size_t own_length = relative_.size();
    for (std::size_t i = 0; status.ok() && i < children.size(); ++i) {
      if (own_length != 0) relative_ += '/';
      relative_ += children[i].name;
      status = VisitChild(dir_fd, children[i], included);
      relative_.resize(own_length);
    }
    while (stack_.depth() > depth) stack_.Pop();
    if (!status.ok()) return status;

    if (included == 0 && !relative_.empty()) {
      PackageEntry entry;
      entry.path = relative_;
      entry.type = EntryType::kDirectory;
      entries_.push_back(std::move(entry));
    }
    ++parent_included;
    return util::Status::Ok();
  }

  util::Status LoadIgnoreFile(int dir_fd, const char* name) {
    // O_NOFOLLOW: git does not read an ignore file that is a symbolic link. O_NONBLOCK: a
    // FIFO of that name must not hang the walk.
    const int fd = ::openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const int error = errno;
      if (error == ELOOP || error == ENOENT) return util::Status::Ok();
      return util::IOError("cannot read " + Display() + "/" + name + ": " + ErrnoMessage(error));
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
        return util::IOError("cannot read " + Display() + "/" + name + ": " + ErrnoMessage(error));
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    content.resize(done);
    stack_.Push(IgnoreRules::FromFileContent(content, relative_));
    return util::Status::Ok();
  }

  // Visits the child whose package path is relative_.
  util::Status VisitChild(int dir_fd, const Child& child, std::size_t& included) {
    const char* name = child.name.c_str();
    struct stat st {};
    bool have_stat = false;
    unsigned char type = child.type;
    if (type == DT_UNKNOWN) {
      if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return StatError();
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
        if (Excluded(false)) return util::Status::Ok();
        if (error == ENOENT || error == ENOTDIR) {
          return util::NotFoundError("symbolic link " + Display() + " is dangling");
        }
        if (error == ELOOP) {
          return util::ValueError("symbolic link " + Display() + " is part of a link cycle");
        }
        return util::IOError("cannot follow symbolic link " + Display() + ": " +
                             ErrnoMessage(error));
      }
      have_stat = true;
      type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : DT_UNKNOWN;
    }

    if (type == DT_REG) {
      if (Excluded(false)) return util::Status::Ok();
      if (!have_stat && ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return StatError();
      }
      if (!S_ISREG(st.st_mode)) return util::Status::Ok();  // replaced while walking
      PackageEntry entry;
      entry.path = relative_;
      entry.type = EntryType::kFile;
      if (via_link) {
        std::error_code error;
        entry.source = fs::canonical(root_ / relative_, error);
        if (error) {
          return util::IOError("cannot resolve symbolic link " + Display() + ": " +
                               error.message());
        }
      } else {
        entry.source = root_ / relative_;
      }
      entry.size = static_cast<std::uint64_t>(st.st_size);
      entry.executable = (st.st_mode & S_IXUSR) != 0;
      entries_.push_back(std::move(entry));
      ++included;
      return util::Status::Ok();
    }

    if (type == DT_DIR) {
      if (Excluded(true)) return util::Status::Ok();
      if (via_link) {
        for (const DirId& ancestor : ancestors_) {
          if (ancestor.dev == st.st_dev && ancestor.ino == st.st_ino) {
            return util::ValueError("symbolic link " + Display() +
                                    " points to one of its parent directories (a link cycle)");
          }
        }
      }
      const int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (via_link ? 0 : O_NOFOLLOW);
      const int fd = ::openat(dir_fd, name, flags);
      if (fd < 0) {
        const int error = errno;
        return util::IOError("cannot open directory " + Display() + ": " + ErrnoMessage(error));
      }
      if (!via_link && ::fstat(fd, &st) != 0) {
        const int error = errno;
        ::close(fd);
        return util::IOError("cannot stat directory " + Display() + ": " + ErrnoMessage(error));
      }
      ancestors_.push_back({st.st_dev, st.st_ino});
      util::Status status = WalkDirectory(fd, included);
      ancestors_.pop_back();
      return status;
    }

    return util::Status::Ok();  // sockets, FIFOs, devices: not packaged
  }

  util::Status StatError() const {
    const int error = errno;
    return util::IOError("cannot stat " + Display() + ": " + ErrnoMessage(error));
  }

  fs::path root_;
  const WalkOptions& options_;
  IgnoreRules vetoes_;
  IgnoreStack stack_;
  std::vector<DirId> ancestors_;  // the directories being walked, root first
  std::string relative_;          // package path of the entry being visited
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

  Walker walker(absolute, options);
  util::Status status = walker.Run(fd, std::move(base_rules));
  if (!status.ok()) return std::move(status).error();
  std::vector<PackageEntry> entries = walker.TakeEntries();
  std::sort(entries.begin(), entries.end(),
            [](const PackageEntry& a, const PackageEntry& b) { return a.path < b.path; });
  return entries;
}

}  // namespace strata::packaging
