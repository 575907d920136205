// Tests of the package tree walk, including a comparison with real git on generated trees.
#include "packaging/tree_walk.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "util/scoped_env_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;

using util::testing::TempDir;

void WriteFile(const fs::path& file, const std::string& content = "x", bool executable = false) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
  if (executable) fs::permissions(file, fs::perms::owner_exec, fs::perm_options::add);
}

WalkOptions Options(std::vector<std::string> default_excludes = {}, bool read_gitignore = true,
                    bool read_rayignore = true) {
  WalkOptions options;
  options.default_excludes = std::move(default_excludes);
  options.read_gitignore = read_gitignore;
  options.read_rayignore = read_rayignore;
  return options;
}

// Entry paths, directories with a trailing '/', in the walk's order.
std::vector<std::string> Names(const std::vector<PackageEntry>& entries) {
  std::vector<std::string> names;
  for (const PackageEntry& entry : entries) {
    names.push_back(entry.type == EntryType::kDirectory ? entry.path + "/" : entry.path);
  }
  return names;
}

std::vector<std::string> Walk(const fs::path& root, const std::vector<std::string>& excludes = {},
                              const WalkOptions& options = Options()) {
  auto entries = WalkPackageTree(root, excludes, options);
  if (!entries) {
    ADD_FAILURE() << entries.error().ToString();
    return {};
  }
  return Names(*entries);
}

using Strings = std::vector<std::string>;

TEST(TreeWalkTest, FilesAreSortedBytewiseWithSizeSourceAndExecutableBit) {
  TempDir dir;
  const fs::path root = dir.path() / "pkg";
  WriteFile(root / "b.txt", "abc");
  WriteFile(root / "a" / "c.sh", "#!/bin/sh\n", true);
  WriteFile(root / "a" / "b" / "d", "");
  WriteFile(root / "a-b");
  WriteFile(root / "A");
  WriteFile(root / "_u");
  WriteFile(root / "\xC3\xA9");

  auto entries = WalkPackageTree(root, {}, Options());
  ASSERT_TRUE(entries) << entries.error().ToString();
  EXPECT_EQ(Names(*entries), (Strings{"A", "_u", "a-b", "a/b/d", "a/c.sh", "b.txt", "\xC3\xA9"}));
  for (const PackageEntry& entry : *entries) {
    EXPECT_EQ(entry.type, EntryType::kFile);
    EXPECT_EQ(entry.source, root / entry.path);
    EXPECT_EQ(entry.size, fs::file_size(root / entry.path)) << entry.path;
    EXPECT_EQ(entry.executable, entry.path == "a/c.sh") << entry.path;
  }
  EXPECT_EQ((*entries)[5].size, 3u);

  // Other spellings of the same root give the same package paths.
  EXPECT_EQ(Walk(root / ""), Names(*entries));
  EXPECT_EQ(Walk(root / "."), Names(*entries));
  EXPECT_EQ(Walk(root / "a" / ".."), Names(*entries));
}

TEST(TreeWalkTest, EmptyDirectoriesAreListed) {
  TempDir dir;
  const fs::path root = dir.path();
  fs::create_directories(root / "empty");
  fs::create_directories(root / "nested" / "empty2");
  WriteFile(root / "only_excluded" / "x.log");
  WriteFile(root / "only_excluded" / "sub" / "y.log");
  WriteFile(root / "full" / "f");
  fs::create_directories(root / "skipped" / "inner");
  WriteFile(root / "gitignored" / "a.tmp");
  WriteFile(root / "gitignored" / ".gitignore", "*.tmp\n");
  WriteFile(root / "logs" / "a.tmp");
  WriteFile(root / ".gitignore", "logs/*.tmp\n");

  EXPECT_EQ(Walk(root, {"*.log", "skipped"}),
            (Strings{".gitignore", "empty/", "full/f", "gitignored/.gitignore", "logs/",
                     "nested/empty2/", "only_excluded/sub/"}));
  // A root without included entries gives an empty package.
  TempDir empty;
  EXPECT_EQ(Walk(empty.path()), Strings{});
}

TEST(TreeWalkTest, DefaultExcludesApplyAtAnyDepth) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / ".git" / "config");
  WriteFile(root / ".venv" / "bin" / "python");
  WriteFile(root / "venv" / "x");
  WriteFile(root / "a" / "__pycache__" / "m.pyc");
  WriteFile(root / "a" / "venv");
  WriteFile(root / "a" / "venv.py");
  WriteFile(root / "keep.py");
  const WalkOptions options = Options(DefaultExcludes());
  EXPECT_EQ(Walk(root, {}, options), (Strings{"a/venv.py", "keep.py"}));
  // `excludes` sits above the defaults, so it can re-include one of them.
  EXPECT_EQ(Walk(root, {"!venv"}, options), (Strings{"a/venv", "a/venv.py", "keep.py", "venv/x"}));
}

TEST(TreeWalkTest, ExcludesAreGitignorePatternsRelativeToTheRoot) {
  TempDir dir;
  const fs::path root = dir.path();
  for (const char* file : {"a.log", "sub/b.log", "build/out.o", "sub/build/keep.o", "data/tmp/x",
                           "data/a/b/tmp/y", "data/a/tmpx/z", "tmp/w", "main.py"}) {
    WriteFile(root / file);
  }
  EXPECT_EQ(Walk(root, {"*.log", "/build", "data/**/tmp"}),
            (Strings{"data/a/b/", "data/a/tmpx/z", "main.py", "sub/build/keep.o", "tmp/w"}));
  // Comments, blank items, negations and trailing spaces behave as in a .gitignore line.
  EXPECT_EQ(Walk(root, {"# just a comment", "", "*.log  ", "!a.log", "/data/", "/tmp", "sub"}),
            (Strings{"a.log", "build/out.o", "main.py"}));
}

TEST(TreeWalkTest, NestedGitignoreAndRayignorePrecedence) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / ".gitignore", "*.txt\n!keep.txt\n");
  WriteFile(root / "sub" / ".gitignore", "!*.txt\nkeep.txt\nother.txt\n!third.txt\n");
  WriteFile(root / "sub" / ".rayignore", "!other.txt\nthird.txt\n");
  for (const char* file : {"a.txt", "keep.txt", "sub/a.txt", "sub/keep.txt", "sub/other.txt",
                           "sub/third.txt", "sub/deep/x.txt"}) {
    WriteFile(root / file);
  }
  // Deeper files override shallower ones; `.rayignore` overrides the `.gitignore` next to it.
  EXPECT_EQ(Walk(root), (Strings{".gitignore", "keep.txt", "sub/.gitignore", "sub/.rayignore",
                                 "sub/a.txt", "sub/deep/x.txt", "sub/other.txt"}));
  // Without .gitignore files only the .rayignore is left.
  EXPECT_EQ(Walk(root, {}, Options({}, false, true)),
            (Strings{".gitignore", "a.txt", "keep.txt", "sub/.gitignore", "sub/.rayignore",
                     "sub/a.txt", "sub/deep/x.txt", "sub/keep.txt", "sub/other.txt"}));
  EXPECT_EQ(Walk(root, {}, Options({}, true, false)),
            (Strings{".gitignore", "keep.txt", "sub/.gitignore", "sub/.rayignore", "sub/a.txt",
                     "sub/deep/x.txt", "sub/third.txt"}));
  // `excludes` vetoes: a .gitignore negation cannot bring back what the runtime env excludes.
  EXPECT_EQ(Walk(root, {"*.gitignore", "keep.txt"}),
            (Strings{"sub/.rayignore", "sub/a.txt", "sub/deep/x.txt", "sub/other.txt"}));
}

TEST(TreeWalkTest, WhitelistingGitignoreCannotReincludeDefaults) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / ".gitignore", "*\n!*/\n!*.py\n");
  WriteFile(root / "main.py");
  WriteFile(root / ".git" / "objects" / "ab" / "cd.py");
  WriteFile(root / "__pycache__" / "x.py");
  EXPECT_EQ(Walk(root, {}, Options(DefaultExcludes())), (Strings{"main.py"}));
}

TEST(TreeWalkTest, IgnoreFilesApplyOnlyToTheirSubtree) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / "a" / ".gitignore", "/x\ny/\n*.o\n");
  for (const char* file : {"x", "a/x", "a/b/x", "y/f", "a/y/f", "a/b/y/f", "m.o", "a/m.o"}) {
    WriteFile(root / file);
  }
  EXPECT_EQ(Walk(root), (Strings{"a/.gitignore", "a/b/x", "m.o", "x", "y/f"}));
}

using util::testing::ScopedEnv;

constexpr const char* kOverrideDefaults = "STRATA_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES";
constexpr const char* kIgnoreGitignore = "STRATA_RUNTIME_ENV_IGNORE_GITIGNORE";

TEST(TreeWalkTest, OptionsFromEnvironment) {
  {
    ScopedEnv defaults(kOverrideDefaults, nullptr);
    ScopedEnv gitignore(kIgnoreGitignore, nullptr);
    const WalkOptions options = WalkOptionsFromEnvironment();
    EXPECT_EQ(options.default_excludes, (Strings{".git", ".venv", "venv", "__pycache__"}));
    EXPECT_TRUE(options.read_gitignore);
    EXPECT_TRUE(options.read_rayignore);
  }
  {
    ScopedEnv defaults(kOverrideDefaults, " build , *.tmp,, \tdist\n,  ");
    EXPECT_EQ(WalkOptionsFromEnvironment().default_excludes, (Strings{"build", "*.tmp", "dist"}));
  }
  {
    ScopedEnv defaults(kOverrideDefaults, "");
    EXPECT_EQ(WalkOptionsFromEnvironment().default_excludes, Strings{});
  }
  for (const auto& [value, expected] : std::vector<std::pair<const char*, bool>>{
           {"1", false}, {"0", true}, {"", true}, {"true", true}, {" 1", true}}) {
    ScopedEnv gitignore(kIgnoreGitignore, value);
    EXPECT_EQ(WalkOptionsFromEnvironment().read_gitignore, expected) << "'" << value << "'";
    EXPECT_TRUE(WalkOptionsFromEnvironment().read_rayignore);
  }
}

TEST(TreeWalkTest, EnvironmentDrivesTheWalk) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / ".git" / "HEAD");
  WriteFile(root / "venv" / "y");
  WriteFile(root / "build" / "x");
  WriteFile(root / ".gitignore", "*.log\n");
  WriteFile(root / ".rayignore", "*.bin\n");
  WriteFile(root / "a.log");
  WriteFile(root / "b.bin");
  {
    ScopedEnv defaults(kOverrideDefaults, "build");
    ScopedEnv gitignore(kIgnoreGitignore, "1");
    EXPECT_EQ(Walk(root, {}, WalkOptionsFromEnvironment()),
              (Strings{".git/HEAD", ".gitignore", ".rayignore", "a.log", "venv/y"}));
  }
  {
    ScopedEnv defaults(kOverrideDefaults, nullptr);
    ScopedEnv gitignore(kIgnoreGitignore, nullptr);
    EXPECT_EQ(Walk(root, {}, WalkOptionsFromEnvironment()),
              (Strings{".gitignore", ".rayignore", "build/x"}));
  }
}

TEST(TreeWalkTest, SymbolicLinksAreFollowed) {
  TempDir dir;
  const fs::path root = dir.path() / "pkg";
  const fs::path outside = dir.path() / "outside";
  WriteFile(outside / "real.txt", "12345", true);
  WriteFile(outside / "tree" / "f1", "1");
  WriteFile(outside / "tree" / "sub" / "f2", "22");
  WriteFile(root / "data.bin", "bin");
  fs::create_symlink("../outside/real.txt", root / "link.txt");
  fs::create_symlink("data.bin", root / "alias");
  fs::create_directory_symlink(outside / "tree", root / "linked");

  auto entries = WalkPackageTree(root, {}, Options());
  ASSERT_TRUE(entries) << entries.error().ToString();
  EXPECT_EQ(Names(*entries),
            (Strings{"alias", "data.bin", "link.txt", "linked/f1", "linked/sub/f2"}));
  const PackageEntry& link = (*entries)[2];
  EXPECT_EQ(link.source, fs::canonical(outside / "real.txt"));
  EXPECT_EQ(link.size, 5u);
  EXPECT_TRUE(link.executable);
  EXPECT_EQ((*entries)[0].source, fs::canonical(root / "data.bin"));
  EXPECT_EQ((*entries)[0].size, 3u);
  EXPECT_TRUE(fs::equivalent((*entries)[4].source, outside / "tree" / "sub" / "f2"));
  EXPECT_EQ((*entries)[4].size, 2u);

  // A link to a directory counts as a directory for directory-only patterns.
  EXPECT_EQ(Walk(root, {"linked/", "alias/"}), (Strings{"alias", "data.bin", "link.txt"}));
  EXPECT_EQ(Walk(root, {"sub"}), (Strings{"alias", "data.bin", "link.txt", "linked/f1"}));
}

TEST(TreeWalkTest, LinkCycleIsAValueError) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / "a" / "f");
  fs::create_directory_symlink("..", root / "a" / "loop");
  auto result = WalkPackageTree(root, {}, Options());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, util::ErrorKind::kValueError);
  EXPECT_NE(result.error().message.find("a/loop"), std::string::npos) << result.error().message;

  // Excluded, the link is never followed.
  EXPECT_EQ(Walk(root, {"loop"}), (Strings{"a/f"}));

  // A link to the directory holding it, and links that point at each other.
  TempDir self;
  fs::create_directory_symlink(".", self.path() / "me");
  result = WalkPackageTree(self.path(), {}, Options());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, util::ErrorKind::kValueError);
  EXPECT_NE(result.error().message.find("me"), std::string::npos);

  TempDir mutual;
  fs::create_symlink("l2", mutual.path() / "l1");
  fs::create_symlink("l1", mutual.path() / "l2");
  result = WalkPackageTree(mutual.path(), {}, Options());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, util::ErrorKind::kValueError);
  // Whichever of the two links the walk meets first is named.
  const std::string& message = result.error().message;
  EXPECT_TRUE(message.find("/l1") != std::string::npos || message.find("/l2") != std::string::npos)
      << message;
}

TEST(TreeWalkTest, DanglingLinkIsAnError) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / "f");
  fs::create_symlink("missing", root / "broken");
  auto result = WalkPackageTree(root, {}, Options());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, util::ErrorKind::kNotFound);
  EXPECT_NE(result.error().message.find("broken"), std::string::npos) << result.error().message;
  EXPECT_EQ(Walk(root, {"broken"}), (Strings{"f"}));
}

TEST(TreeWalkTest, RootMustBeAnExistingDirectory) {
  TempDir dir;
  for (const fs::path& root : {dir.path() / "missing", dir.path() / "file"}) {
    if (root.filename() == "file") WriteFile(root);
    auto result = WalkPackageTree(root, {}, Options());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().kind, util::ErrorKind::kValueError);
    EXPECT_NE(result.error().message.find(root.string()), std::string::npos)
        << result.error().message;
  }
  // A link to a directory is a fine root.
  WriteFile(dir.path() / "real" / "f");
  fs::create_directory_symlink(dir.path() / "real", dir.path() / "root_link");
  EXPECT_EQ(Walk(dir.path() / "root_link"), (Strings{"f"}));
}

TEST(TreeWalkTest, ExcludedDirectoriesAreNotEntered) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / "keep");
  // Would fail the walk if it were entered (the dangling link even when running as root).
  WriteFile(root / "skipped" / "f");
  fs::create_symlink("missing", root / "skipped" / "broken");
  fs::permissions(root / "skipped", fs::perms::none);
  EXPECT_EQ(Walk(root, {"skipped/"}), (Strings{"keep"}));
  if (::geteuid() != 0) {
    auto result = WalkPackageTree(root, {}, Options());
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().kind, util::ErrorKind::kIOError);
    EXPECT_NE(result.error().message.find("skipped"), std::string::npos);
  }
  fs::permissions(root / "skipped", fs::perms::owner_all);
}

TEST(TreeWalkTest, IgnoreFileThatIsASymlinkIsNotRead) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(dir.path() / "patterns", "x\n");
  fs::create_directories(root / "pkg");
  fs::create_symlink("../patterns", root / "pkg" / ".gitignore");
  WriteFile(root / "pkg" / "x");
  // As git does; the link itself is still packaged.
  EXPECT_EQ(Walk(root / "pkg"), (Strings{".gitignore", "x"}));
}

TEST(TreeWalkTest, LargeTreeWalksFast) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / ".gitignore", "*.tmp\n/d1*/sub/\n");
  std::size_t expected = 1;
  for (int d = 0; d < 60; ++d) {
    const fs::path sub = root / ("d" + std::to_string(d)) / "sub";
    fs::create_directories(sub);
    for (int f = 0; f < 100; ++f) {
      const bool tmp = f % 10 == 0;
      std::ofstream(sub / ("file" + std::to_string(f) + (tmp ? ".tmp" : ".py"))) << f;
      if (!tmp && !(d >= 10 && d < 20) && d != 1) ++expected;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  auto entries = WalkPackageTree(root, {"__pycache__"}, Options(DefaultExcludes()));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(entries) << entries.error().ToString();
  // Plus the 11 directories whose only subdirectory was excluded.
  EXPECT_EQ(entries->size(), expected + 11);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 2000);
}

TEST(TreeWalkTest, ThreadCountDoesNotChangeTheResult) {
  TempDir dir;
  const fs::path root = dir.path();
  WriteFile(root / ".gitignore", "*.log\n!keep.log\n");
  for (int d = 0; d < 20; ++d) {
    const fs::path sub = root / ("d" + std::to_string(d));
    // Every other directory has its own rules, each layered over the root's.
    if (d % 2 == 0) WriteFile(sub / ".gitignore", "x*\n!x1*\n");
    if (d % 3 == 0) WriteFile(sub / ".rayignore", "*.py\n");
    for (int f = 0; f < 5; ++f) {
      WriteFile(sub / "deep" / ("x" + std::to_string(f) + ".py"));
      WriteFile(sub / ("x" + std::to_string(f) + ".log"));
    }
    WriteFile(sub / "keep.log");
    fs::create_directories(sub / "empty" / "inner");
  }
  // More subdirectories than the walk keeps queued at once.
  for (int d = 0; d < 300; ++d) {
    WriteFile(root / "wide" / std::to_string(d) / (d % 2 == 0 ? "a.py" : "a.log"));
  }
  WalkOptions one = Options(DefaultExcludes());
  one.threads = 1;
  const Strings expected = Walk(root, {"d1*"}, one);
  ASSERT_FALSE(expected.empty());
  for (unsigned threads : {2u, 7u}) {
    WalkOptions many = one;
    many.threads = threads;
    EXPECT_EQ(Walk(root, {"d1*"}, many), expected) << threads << " threads";
  }
}

// ---------------------------------------------------------------------------------------------
// Comparison with git: `git ls-files --others --exclude-standard` lists exactly the untracked,
// not ignored files, which must be the walker's files when only .gitignore files are in play.

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// Runs git in `repo` isolated from the machine's and the user's configuration (no system or
// global config, HOME and XDG_CONFIG_HOME in a temp dir, so no core.excludesFile). Returns
// stdout, or nothing if git fails.
std::optional<std::string> RunGit(const fs::path& repo, const fs::path& home,
                                  const std::string& arguments) {
  const std::string command =
      "cd " + ShellQuote(repo.string()) +
      " && env -u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE -u GIT_OBJECT_DIRECTORY"
      " -u GIT_CEILING_DIRECTORIES HOME=" +
      ShellQuote(home.string()) + " XDG_CONFIG_HOME=" + ShellQuote((home / "xdg").string()) +
      " GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=" + ShellQuote((home / "gitconfig").string()) +
      " git -c user.email=test@example.com -c user.name=test " + arguments + " 2>" +
      ShellQuote((home / "stderr").string());
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string output;
  char buffer[4096];
  for (std::size_t got; (got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    output.append(buffer, got);
  }
  if (::pclose(pipe) != 0) return std::nullopt;
  return output;
}

bool GitAvailable() {
  return std::system("git --version >/dev/null 2>&1") == 0;
}

// The untracked, not ignored files of `repo` according to git, sorted.
std::optional<Strings> GitUntrackedFiles(const fs::path& repo, const fs::path& home) {
  WriteFile(home / "gitconfig", "");
  if (!RunGit(repo, home, "init -q .")) return std::nullopt;
  auto output = RunGit(repo, home, "ls-files -z --others --exclude-standard");
  if (!output) return std::nullopt;
  Strings files;
  std::istringstream stream(*output);
  for (std::string line; std::getline(stream, line, '\0');) files.push_back(line);
  std::sort(files.begin(), files.end());
  return files;
}

// The walker's files as git would see them: no `excludes`, no defaults but `.git`, and only
// .gitignore files. `.git` is dropped from the result because git never lists its own
// repository, while for the walker it is an ordinary default exclude that a `!pattern` in a
// .gitignore may override.
Strings WalkerFiles(const fs::path& root) {
  auto entries = WalkPackageTree(root, {}, Options({".git"}, true, false));
  if (!entries) {
    ADD_FAILURE() << entries.error().ToString();
    return {};
  }
  Strings files;
  for (const PackageEntry& entry : *entries) {
    if (entry.type == EntryType::kFile && entry.path.rfind(".git/", 0) != 0) {
      files.push_back(entry.path);
    }
  }
  return files;
}

std::string DescribeIgnoreFiles(const fs::path& root) {
  std::string text;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().filename() != ".gitignore") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    text += "--- " + fs::relative(entry.path(), root).string() + "\n" + content.str() + "\n";
  }
  return text;
}

// Returns how many files git lists.
std::size_t ExpectSameFilesAsGit(const fs::path& root, const fs::path& home) {
  const Strings ours = WalkerFiles(root);
  const auto git = GitUntrackedFiles(root, home);
  if (!git) {
    ADD_FAILURE() << "git failed in " << root;
    return 0;
  }
  if (ours != *git) {
    std::string diff;
    std::set<std::string> our_set(ours.begin(), ours.end());
    std::set<std::string> git_set(git->begin(), git->end());
    for (const auto& path : ours) {
      if (!git_set.count(path)) diff += "  only walker: '" + path + "'\n";
    }
    for (const auto& path : *git) {
      if (!our_set.count(path)) diff += "  only git:    '" + path + "'\n";
    }
    ADD_FAILURE() << "walker and git differ in " << root << ":\n"
                  << diff << DescribeIgnoreFiles(root);
  }
  return git->size();
}

TEST(TreeWalkGitTest, HandWrittenTreeMatchesGit) {
  if (!GitAvailable()) GTEST_SKIP() << "git not installed";
  TempDir dir;
  const fs::path root = dir.path() / "repo";
  const fs::path home = dir.path() / "home";
  fs::create_directories(home);
  WriteFile(root / ".gitignore",
            "# comment\n"
            "*.log\n"
            "!keep.log\n"
            "build/\n"
            "!build/keep.txt\n"    // cannot re-include below an excluded directory
            "/top.txt\n"           // anchored
            "doc/frotz/\n"         // anchored, directory only
            "**/generated\n"       // leading **
            "cache/**\n"           // trailing **
            "!cache/**/\n"         // ... directories back, files stay out
            "a/**/z.txt\n"         // middle **
            "trail.txt   \n"       // trailing spaces dropped
            "space\\ \n"           // escaped trailing space kept
            "\\#hash\n"            // escaped comment character
            "\\!bang\n"            // escaped negation
            "star\\*\n"            // escaped wildcard
            "[0-9]*.dat\n"         // bracket range
            "[!a-c]?.cfg\n"        // negated bracket, question mark
            "[[:upper:]]*.md\r\n"  // POSIX class, CRLF line
            "only_dir/\n"
            "foo**/bar\n");  // git's `**` right after the literal prefix
  WriteFile(root / "sub" / ".gitignore",
            "!*.log\n"  // deeper file re-includes
            "/local\n"  // anchored to sub/
            "frotz/\n");
  WriteFile(root / "sub" / "deeper" / ".gitignore", "*.log\n!important.log\n");
  const Strings files = {"a.log",
                         "keep.log",
                         "x/b.log",
                         "build/out.o",
                         "build/keep.txt",
                         "x/build/y",
                         "top.txt",
                         "x/top.txt",
                         "doc/frotz/f",
                         "x/doc/frotz/f",
                         "doc/frotz.txt",
                         "generated",
                         "p/q/generated",
                         "cache/f",
                         "cache/d/f",
                         "a/z.txt",
                         "a/b/c/z.txt",
                         "b/a/z.txt",
                         "trail.txt",
                         "space ",
                         "space",
                         "#hash",
                         "!bang",
                         "bang",
                         "star*",
                         "stars",
                         "1.dat",
                         "x.dat",
                         "dx.cfg",
                         "ax.cfg",
                         "dxy.cfg",
                         "Readme.md",
                         "readme.md",
                         "only_dir",
                         "x/only_dir/f",
                         "sub/a.log",
                         "sub/local",
                         "sub/x/local",
                         "sub/frotz/f",
                         "sub/deeper/a.log",
                         "sub/deeper/important.log",
                         "ok.txt",
                         "foobar",
                         "fooz/bar",
                         "fooa__bar"};
  for (const std::string& file : files) {
    WriteFile(root / file);
  }
  EXPECT_GT(ExpectSameFilesAsGit(root, home), 0u);

  // Spot checks, so that agreeing with a broken git setup would not pass unnoticed.
  const Strings walked = WalkerFiles(root);
  auto has = [&walked](const std::string& path) {
    return std::find(walked.begin(), walked.end(), path) != walked.end();
  };
  for (const char* path :
       {"keep.log", "x/top.txt", "x/doc/frotz/f", "doc/frotz.txt", "space", "bang", "stars",
        "x.dat", "ax.cfg", "readme.md", "only_dir", "sub/a.log", "sub/x/local",
        "sub/deeper/important.log", "b/a/z.txt", "ok.txt", "fooa__bar"}) {
    EXPECT_TRUE(has(path)) << path;
  }
  for (const char* path :
       {"a.log",       "build/keep.txt", "x/build/y",        "top.txt",   "doc/frotz/f",
        "generated",   "p/q/generated",  "cache/f",          "cache/d/f", "a/z.txt",
        "a/b/c/z.txt", "trail.txt",      "space ",           "#hash",     "!bang",
        "star*",       "1.dat",          "dx.cfg",           "Readme.md", "x/only_dir/f",
        "sub/local",   "sub/frotz/f",    "sub/deeper/a.log", "foobar",    "fooz/bar"}) {
    EXPECT_FALSE(has(path)) << path;
  }
}

// A deterministic generator (the standard distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {  // splitmix64
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::size_t Below(std::size_t n) { return static_cast<std::size_t>(Next() % n); }
  bool Percent(int p) { return Below(100) < static_cast<std::size_t>(p); }
  template <class T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(items.size())];
  }

 private:
  std::uint64_t state_;
};

const Strings kDirNames = {"a",    "b",    "src",   "build", "logs",        "tmp",  "data",
                           "keep", "doc",  "frotz", "deep",  "x y",         "[br]", "#h",
                           "!b",   "foo ", "out",   "Cache", "node_modules"};
const Strings kFileNames = {
    "a.txt", "b.log",    "keep.log", "main.py", "x.o",     "README", "foo ",         "foo",
    "bar",   "#hash",    "!bang",    "a b.txt", "[x].txt", "q?",     "star*",        "back\\slash",
    "1.txt", "Z.md",     "tmp",      "build",   ".hidden", "\ttab",  "\xC3\xA9.txt", "trail  ",
    "x.O",   "keep.txt", "f\\ g",    "c",       "z.txt",   "deep"};
// Hand-picked lines covering the pattern syntax; generated lines naming real entries are added.
const Strings kPatternPool = {
    "*.log",
    "!keep.log",
    "build/",
    "/build",
    "tmp",
    "tmp/",
    "!tmp/",
    "logs/*",
    "!logs/keep/",
    "data/**",
    "!data/**/",
    "**/deep",
    "**/deep/**",
    "a/**/b",
    "src/**/*.o",
    "*.o",
    "!*.O",
    "[abc]*.txt",
    "[!a-m]*",
    "[[:digit:]]*",
    "?.txt",
    "doc/frotz/",
    "frotz/",
    "*/x.o",
    "/*.md",
    "**/keep/",
    "!keep",
    "foo\\ ",
    "foo ",
    "trail\\ \\ ",
    "\\#hash",
    "#hash",
    "\\!bang",
    "!bang",
    "\\[x].txt",
    "q\\?",
    "star\\*",
    "back\\\\slash",
    "*\\\\*",
    "x\\ y/",
    "\\[br]/",
    "[[]br]",
    "!\\#h/",
    "*",
    "!*/",
    "!*.py",
    "/*",
    "!/src",
    "Cache/",
    "out/**",
    "!out/**/keep.txt",
    "**/b/**/c",
    "a**",
    "d**/x",
    "*.txt\t",
    "README\r",
    "  ",
    "",
    "[",
    "foo/**/",
    "!**/keep.txt",
    "deep/",
    "\\!b",
    "[[:upper:]]*",
    "*[[:space:]]*",
    "!a/",
    "a/*/",
    "**/",
    "*/**/*.txt",
    "!*.txt",
};

std::string EscapeForPattern(const std::string& name) {
  std::string escaped;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool trailing_space = c == ' ' && name.find_first_not_of(' ', i) == std::string::npos;
    if (c == '*' || c == '?' || c == '[' || c == '\\' || trailing_space ||
        (i == 0 && (c == '!' || c == '#'))) {
      escaped += '\\';
    }
    escaped += c;
  }
  return escaped;
}

struct GeneratedEntry {
  std::string path;  // relative to the directory being generated
  bool is_dir;
};

// Fills `dir` with random files and subdirectories and maybe a .gitignore mixing pool lines and
// lines naming entries of its subtree. Returns the subtree's entries relative to `dir`.
std::vector<GeneratedEntry> GenerateTree(Rng& rng, const fs::path& dir, int depth) {
  std::vector<GeneratedEntry> entries;
  std::set<std::string> used;
  const std::size_t files = rng.Below(5);
  const std::size_t dirs = depth < 3 ? rng.Below(4) : 0;
  for (std::size_t i = 0; i < files; ++i) {
    const std::string& name = rng.Pick(kFileNames);
    if (!used.insert(name).second) continue;
    WriteFile(dir / name, name);
    entries.push_back({name, false});
  }
  for (std::size_t i = 0; i < dirs; ++i) {
    const std::string& name = rng.Pick(kDirNames);
    if (!used.insert(name).second) continue;
    fs::create_directories(dir / name);
    entries.push_back({name, true});
    for (const GeneratedEntry& child : GenerateTree(rng, dir / name, depth + 1)) {
      entries.push_back({name + "/" + child.path, child.is_dir});
    }
  }
  if (depth == 0 || rng.Percent(40)) {
    std::string content;
    const std::size_t lines = 1 + rng.Below(7);
    for (std::size_t i = 0; i < lines; ++i) {
      std::string line;
      if (entries.empty() || rng.Percent(50)) {
        line = rng.Pick(kPatternPool);
      } else {
        const GeneratedEntry& target = rng.Pick(entries);
        const std::size_t slash = target.path.rfind('/');
        const std::string base = EscapeForPattern(
            slash == std::string::npos ? target.path : target.path.substr(slash + 1));
        const std::size_t first_slash = target.path.find('/');
        switch (rng.Below(7)) {
          case 0:
            line = base;
            break;
          case 1:
            line = "/" + EscapeForPattern(target.path);
            break;
          case 2:
            line = EscapeForPattern(target.path);
            break;
          case 3:
            line = base + (target.is_dir ? "/" : "");
            break;
          case 4:
            line = "**/" + base;
            break;
          case 5:
            line = first_slash == std::string::npos
                       ? "*" + base
                       : EscapeForPattern(target.path.substr(0, first_slash)) + "/**/" + base;
            break;
          default: {
            const std::size_t dot = base.rfind('.');
            line = dot == std::string::npos ? base + "*" : "*" + base.substr(dot);
          }
        }
        if (rng.Percent(30)) line = "!" + line;
        if (rng.Percent(15)) line += "  ";
      }
      content += line + (rng.Percent(10) ? "\r\n" : "\n");
    }
    WriteFile(dir / ".gitignore", content);
  }
  return entries;
}

TEST(TreeWalkGitTest, GeneratedTreesMatchGit) {
  if (!GitAvailable()) GTEST_SKIP() << "git not installed";
  std::size_t listed = 0;
  std::size_t generated = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir dir;
    const fs::path root = dir.path() / "repo";
    const fs::path home = dir.path() / "home";
    fs::create_directories(root);
    fs::create_directories(home);
    Rng rng(seed);
    for (const GeneratedEntry& entry : GenerateTree(rng, root, 0)) generated += !entry.is_dir;
    listed += ExpectSameFilesAsGit(root, home);
  }
  // The generated rules must neither keep nor drop (almost) everything to be a useful test.
  EXPECT_GT(listed, generated / 5);
  EXPECT_LT(listed, generated * 4 / 5);
}

}  // namespace
}  // namespace strata::packaging
