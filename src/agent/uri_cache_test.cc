#include "agent/uri_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "util/pyjson.h"
#include "util/temp_dir_testing.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using util::ErrorKind;

using util::testing::TempDir;

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Creates DirFor(uri) with one file and inserts it with `size`.
UriCache::Ref Make(UriCache& cache, const std::string& uri, std::uint64_t size) {
  fs::path dir = cache.DirFor(uri);
  fs::create_directories(dir);
  WriteFile(dir / "file.txt", uri);
  auto ref = cache.Insert(uri, dir, size);
  if (!ref) ADD_FAILURE() << ref.error().ToString();
  return ref ? std::move(*ref) : UriCache::Ref();
}

std::vector<std::string> Uris(const UriCache& cache) {
  std::vector<std::string> uris;
  for (const auto& e : cache.Entries()) uris.push_back(e.uri);
  std::sort(uris.begin(), uris.end());
  return uris;
}

std::set<std::string> Listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& child : fs::directory_iterator(dir)) {
    names.insert(child.path().filename().string());
  }
  return names;
}

struct FakeClock {
  std::atomic<std::int64_t> now{1'000'000};
  void Attach(UriCache& cache) {
    cache.SetClockForTesting([this] { return now.load(); });
  }
  void Tick() { now += 1000; }
};

// Each test gets a fresh root.
class UriCacheTest : public ::testing::Test {
 protected:
  fs::path root() const { return tmp_.path() / "runtime_resources" / "pip"; }
  TempDir tmp_;
};

TEST_F(UriCacheTest, DirForIsStableFilesystemSafeAndDistinct) {
  UriCache cache("pip", root(), 100);
  fs::path a = cache.DirFor("gcs://_strata_pkg_abc.zip");
  EXPECT_EQ(a, cache.DirFor("gcs://_strata_pkg_abc.zip"));
  EXPECT_EQ(a.parent_path(), root());
  std::string name = a.filename().string();
  EXPECT_TRUE(name.starts_with("gcs____strata_pkg_abc_zip-")) << name;
  EXPECT_EQ(
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"),
      std::string::npos);
  // Same sanitized text, different URIs.
  EXPECT_NE(cache.DirFor("pip://a.b"), cache.DirFor("pip://a_b"));
  EXPECT_LE(cache.DirFor(std::string(1000, 'x')).filename().string().size(), 97u);
  EXPECT_FALSE(cache.DirFor("../../etc").filename().string().starts_with("."));
}

TEST_F(UriCacheTest, EvictsLeastRecentlyUsedFirst) {
  UriCache cache("pip", root(), 300);
  FakeClock clock;
  clock.Attach(cache);
  ASSERT_TRUE(cache.Open());
  for (const char* uri : {"pip://a", "pip://b", "pip://c"}) {
    Make(cache, uri, 100);  // released at once; 300 <= cap
    clock.Tick();
  }
  // Use order: b, a, c  =>  b is now the least recently used.
  for (const char* uri : {"pip://b", "pip://a", "pip://c"}) {
    ASSERT_TRUE(cache.Acquire(uri).has_value());
    clock.Tick();
  }
  Make(cache, "pip://d", 100);
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://a", "pip://c", "pip://d"}));
  EXPECT_FALSE(fs::exists(cache.DirFor("pip://b")));
  clock.Tick();
  Make(cache, "pip://e", 150);  // needs two evictions: a, then c
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://d", "pip://e"}));
  EXPECT_EQ(cache.TotalBytes(), 250u);

  // Entries() lists least recently used first.
  auto entries = cache.Entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].uri, "pip://d");
  EXPECT_EQ(entries[0].size, 100u);
  EXPECT_EQ(entries[0].dir, cache.DirFor("pip://d"));
  EXPECT_EQ(entries[0].local_refs, 0);
  EXPECT_FALSE(entries[0].in_use_elsewhere);
}

TEST_F(UriCacheTest, ReferencedEntriesAreNeverEvictedAndReleaseEvicts) {
  UriCache cache("pip", root(), 150);
  FakeClock clock;
  clock.Attach(cache);
  ASSERT_TRUE(cache.Open());
  UriCache::Ref a = Make(cache, "pip://a", 100);
  clock.Tick();
  UriCache::Ref b = Make(cache, "pip://b", 100);
  clock.Tick();
  UriCache::Ref c = Make(cache, "pip://c", 100);
  EXPECT_EQ(cache.TotalBytes(), 300u);  // over the cap: all referenced
  EXPECT_TRUE(cache.EvictIfNeeded().empty());
  EXPECT_TRUE(cache.GarbageCollect(0).empty());
  EXPECT_EQ(cache.Entries().size(), 3u);
  EXPECT_EQ(cache.Remove("pip://a").error().kind, ErrorKind::kUnavailable);

  // Releasing c (used last) makes it the only candidate: evicted although newest.
  clock.Tick();
  c.Release();
  EXPECT_FALSE(c);
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://a", "pip://b"}));
  clock.Tick();
  a.Release();  // 200 > 150 and a is the only unreferenced entry: evicted
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://b"}));
  clock.Tick();
  b.Release();  // 100 <= 150
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://b"}));
  EXPECT_TRUE(fs::exists(cache.DirFor("pip://b") / "file.txt"));
}

TEST_F(UriCacheTest, CapZeroDeletesOnLastRelease) {
  UriCache cache("pip", root(), 0);
  ASSERT_TRUE(cache.Open());
  UriCache::Ref first = Make(cache, "pip://x", 10);
  auto second = cache.Acquire("pip://x");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->dir(), cache.DirFor("pip://x"));
  EXPECT_EQ(cache.Entries().at(0).local_refs, 2);
  first = UriCache::Ref();  // move-assign releases
  EXPECT_TRUE(fs::exists(cache.DirFor("pip://x")));
  second.reset();
  EXPECT_FALSE(fs::exists(cache.DirFor("pip://x")));
  EXPECT_TRUE(cache.Entries().empty());
  EXPECT_FALSE(cache.Acquire("pip://x").has_value());
  // Nothing left behind but the state files.
  EXPECT_EQ(Listing(root()), (std::set<std::string>{".state.json", ".state.lock"}));
}

TEST_F(UriCacheTest, RefsAreMovable) {
  UriCache cache("pip", root(), 0);
  ASSERT_TRUE(cache.Open());
  UriCache::Ref a = Make(cache, "pip://x", 10);
  UriCache::Ref b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move)
  ASSERT_TRUE(b);
  EXPECT_EQ(b.uri(), "pip://x");
  std::vector<UriCache::Ref> held;
  held.push_back(std::move(b));
  EXPECT_TRUE(fs::exists(cache.DirFor("pip://x")));
  held.clear();
  EXPECT_FALSE(fs::exists(cache.DirFor("pip://x")));
}

TEST_F(UriCacheTest, StateSurvivesRestart) {
  {
    UriCache cache("pip", root(), 1000);
    FakeClock clock;
    clock.Attach(cache);
    ASSERT_TRUE(cache.Open());
    Make(cache, "pip://old", 100);
    clock.Tick();
    Make(cache, "pip://new", 200);
  }
  auto state = util::ParseJson([&] {
    std::ifstream in(root() / ".state.json");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }());
  ASSERT_TRUE(state) << state.error().message;
  EXPECT_EQ((*state)["version"], 1);
  EXPECT_EQ((*state)["kind"], "pip");
  EXPECT_EQ((*state)["entries"]["pip://new"]["size_bytes"], 200);
  EXPECT_EQ((*state)["entries"]["pip://new"]["dir"],
            UriCache("pip", root(), 0).DirFor("pip://new").filename().string());

  UriCache reopened("pip", root(), 250);  // a lower cap: Open evicts the LRU one
  ASSERT_TRUE(reopened.Open());
  auto entries = reopened.Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].uri, "pip://new");
  EXPECT_EQ(entries[0].size, 200u);
  EXPECT_EQ(entries[0].created_ms, 1'001'000);
  EXPECT_EQ(entries[0].last_used_ms, 1'001'000);
  EXPECT_FALSE(fs::exists(reopened.DirFor("pip://old")));
  auto ref = reopened.Acquire("pip://new");
  ASSERT_TRUE(ref.has_value());
  EXPECT_TRUE(fs::exists(ref->dir() / "file.txt"));
}

TEST_F(UriCacheTest, OpenDropsVanishedDirectoriesAndRemovesLeftovers) {
  std::string kept_name;
  {
    UriCache cache("pip", root(), 1000);
    ASSERT_TRUE(cache.Open());
    Make(cache, "pip://kept", 10);
    Make(cache, "pip://vanished", 10);
    kept_name = cache.DirFor("pip://kept").filename().string();
    fs::remove_all(cache.DirFor("pip://vanished"));
  }
  // Leftovers of crashed builds and deletions, stray files, unheld lock files.
  fs::create_directories(root() / ".tmp-crashed" / "sub");
  fs::create_directories(root() / ".tmp-crashed.download");
  fs::create_directories(root() / "stray");
  WriteFile(root() / "stray.lock", "");
  WriteFile(root() / "gone.create.lock", "");
  fs::create_directories(root() / ".trash-old-1-2");
  WriteFile(root() / ".trash-old-1-2.lock", "");
  WriteFile(root() / (kept_name + ".download"), "an entry's sidecar stays");
  // A build in progress in another process: its creation lock is held.
  fs::create_directories(root() / ".tmp-busy-42");
  fs::create_directories(root() / ".tmp-busy-42.download");
  fs::create_directories(root() / "busy");  // published, not inserted yet
  int busy = ::open((root() / "busy.create.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(busy, 0);
  ASSERT_EQ(::flock(busy, LOCK_EX), 0);

  UriCache cache("pip", root(), 1000);
  ASSERT_TRUE(cache.Open());
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://kept"}));
  EXPECT_EQ(Listing(root()),
            (std::set<std::string>{".state.json", ".state.lock", kept_name, kept_name + ".lock",
                                   kept_name + ".download", ".tmp-busy-42", ".tmp-busy-42.download",
                                   "busy", "busy.create.lock"}));
  ::close(busy);
  ASSERT_TRUE(cache.RemoveLeftovers());
  EXPECT_EQ(Listing(root()), (std::set<std::string>{".state.json", ".state.lock", kept_name,
                                                    kept_name + ".lock", kept_name + ".download"}));
}

TEST_F(UriCacheTest, CorruptStateIsIgnoredAndItsEntriesBecomeLeftovers) {
  {
    UriCache cache("pip", root(), 1000);
    ASSERT_TRUE(cache.Open());
    Make(cache, "pip://a", 10);
  }
  WriteFile(root() / ".state.json", "{not json");
  UriCache cache("pip", root(), 1000);
  ASSERT_TRUE(cache.Open());
  EXPECT_TRUE(cache.Entries().empty());
  EXPECT_FALSE(fs::exists(cache.DirFor("pip://a")));
  Make(cache, "pip://b", 10);
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://b"}));
}

TEST_F(UriCacheTest, InsertValidatesItsDirectory) {
  UriCache cache("pip", root(), 1000);
  ASSERT_TRUE(cache.Open());
  fs::create_directories(tmp_.path() / "elsewhere");
  EXPECT_EQ(cache.Insert("pip://a", tmp_.path() / "elsewhere", 1).error().kind,
            ErrorKind::kValueError);
  fs::create_directories(root() / ".hidden");
  EXPECT_EQ(cache.Insert("pip://a", root() / ".hidden", 1).error().kind, ErrorKind::kValueError);
  EXPECT_EQ(cache.Insert("pip://a", root() / "missing", 1).error().kind, ErrorKind::kNotFound);
  // Trailing slashes and dot segments are fine.
  fs::create_directories(root() / "mine");
  auto ref = cache.Insert("pip://a", root() / "x" / ".." / "mine" / "", 7);
  ASSERT_TRUE(ref) << ref.error().ToString();
  EXPECT_EQ(ref->dir(), root() / "mine");
  // Re-insert at the same place updates the size; elsewhere is refused.
  ASSERT_TRUE(cache.Insert("pip://a", root() / "mine", 9));
  EXPECT_EQ(cache.TotalBytes(), 9u);
  fs::create_directories(root() / "other");
  EXPECT_EQ(cache.Insert("pip://a", root() / "other", 1).error().kind, ErrorKind::kValueError);
  EXPECT_EQ(cache.Insert("pip://b", root() / "mine", 1).error().kind, ErrorKind::kValueError);
  EXPECT_EQ(cache.Entries().at(0).local_refs, 1);  // `ref`; the others were temporaries
}

TEST_F(UriCacheTest, RemoveDeletesUnreferencedEntries) {
  UriCache cache("pip", root(), 1000);
  ASSERT_TRUE(cache.Open());
  EXPECT_EQ(cache.Remove("pip://nope").error().kind, ErrorKind::kNotFound);
  {
    UriCache::Ref ref = Make(cache, "pip://a", 10);
    EXPECT_EQ(cache.Remove("pip://a").error().kind, ErrorKind::kUnavailable);
  }
  EXPECT_TRUE(cache.Remove("pip://a"));
  EXPECT_FALSE(fs::exists(cache.DirFor("pip://a")));
  EXPECT_EQ(Listing(root()), (std::set<std::string>{".state.json", ".state.lock"}));
}

TEST_F(UriCacheTest, CustomDeleterGetsTheMovedDirectory) {
  std::vector<fs::path> deleted;
  UriCache cache("pip", root(), 0, [&](const fs::path& dir) -> std::uint64_t {
    EXPECT_TRUE(fs::exists(dir / "file.txt"));
    deleted.push_back(dir);
    fs::remove_all(dir);
    return 42;
  });
  ASSERT_TRUE(cache.Open());
  Make(cache, "pip://a", 10);
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_TRUE(deleted[0].filename().string().starts_with(".trash-"));
  EXPECT_EQ(deleted[0].parent_path(), root());
}

TEST(MaxBytesFromEnvironmentTest, ParsesFloatGiBWithDefault) {
  constexpr std::uint64_t kGiB = 1ull << 30;
  ::unsetenv("STRATA_RUNTIME_ENV_PIP_CACHE_SIZE_GB");
  EXPECT_EQ(UriCache::MaxBytesFromEnvironment("pip"), 10 * kGiB);
  ::setenv("STRATA_RUNTIME_ENV_PIP_CACHE_SIZE_GB", "0.5", 1);
  EXPECT_EQ(UriCache::MaxBytesFromEnvironment("pip"), kGiB / 2);
  ::setenv("STRATA_RUNTIME_ENV_PIP_CACHE_SIZE_GB", " 2 ", 1);
  EXPECT_EQ(UriCache::MaxBytesFromEnvironment("pip"), 2 * kGiB);
  ::setenv("STRATA_RUNTIME_ENV_PIP_CACHE_SIZE_GB", "0", 1);
  EXPECT_EQ(UriCache::MaxBytesFromEnvironment("pip"), 0u);
  ::setenv("STRATA_RUNTIME_ENV_PIP_CACHE_SIZE_GB", "1e-9", 1);
  EXPECT_EQ(UriCache::MaxBytesFromEnvironment("pip"), 1u);
  ::setenv("STRATA_RUNTIME_ENV_PIP_CACHE_SIZE_GB", "inf", 1);
  EXPECT_EQ(UriCache::MaxBytesFromEnvironment("pip"), UINT64_MAX);
  for (const char* invalid : {"ten", "", "1.5GB", "-1", "nan", "0x10"}) {
    ::setenv("STRATA_RUNTIME_ENV_PIP_CACHE_SIZE_GB", invalid, 1);
    EXPECT_EQ(UriCache::MaxBytesFromEnvironment("pip"), 10 * kGiB) << invalid;
  }
  ::unsetenv("STRATA_RUNTIME_ENV_PIP_CACHE_SIZE_GB");
  ::setenv("STRATA_RUNTIME_ENV_WORKING_DIR_CACHE_SIZE_GB", "1.5", 1);
  EXPECT_EQ(UriCache::MaxBytesFromEnvironment("working_dir"), kGiB + kGiB / 2);
  ::unsetenv("STRATA_RUNTIME_ENV_WORKING_DIR_CACHE_SIZE_GB");
}

TEST(DirectorySizeBytesTest, CountsAllocatedBlocksAndHardLinksOnce) {
  TempDir tmp;
  EXPECT_EQ(DirectorySizeBytes(tmp.path() / "missing"), 0u);
  fs::path dir = tmp.path() / "d";
  fs::create_directories(dir / "sub");
  std::uint64_t empty = DirectorySizeBytes(dir);
  WriteFile(dir / "sub" / "big", std::string(100'000, 'x'));
  std::uint64_t one = DirectorySizeBytes(dir);
  EXPECT_GE(one, empty + 100'000);
  fs::create_hard_link(dir / "sub" / "big", dir / "link");
  fs::create_symlink(dir / "sub" / "big", dir / "symlink");
  std::uint64_t linked = DirectorySizeBytes(dir);
  EXPECT_LT(linked, one + 50'000);  // the hard link is not counted twice
  EXPECT_GE(DirectorySizeBytes(dir / "sub" / "big"), 100'000u);
}

TEST_F(UriCacheTest, BuilderPublishesAtomicallyAndCleansUp) {
  UriCache cache("pip", root(), 1 << 30);
  ASSERT_TRUE(cache.Open());
  {
    auto got = cache.AcquireOrBeginCreate("pip://x");
    ASSERT_TRUE(got);
    ASSERT_TRUE(std::holds_alternative<UriCache::Builder>(*got));
    auto& builder = std::get<UriCache::Builder>(*got);
    EXPECT_EQ(builder.final_dir(), cache.DirFor("pip://x"));
    EXPECT_TRUE(fs::is_empty(builder.staging_dir()));
    WriteFile(builder.staging_dir() / "half", "abandoned");
    fs::create_directories(builder.staging_dir().string() + ".download");
  }  // dropped unpublished
  EXPECT_EQ(Listing(root()),
            (std::set<std::string>{".state.json", ".state.lock",
                                   cache.DirFor("pip://x").filename().string() + ".create.lock"}));
  // A creator that died left its staging directory; a stale final directory too.
  fs::path staging = root() / (".tmp-" + cache.DirFor("pip://x").filename().string());
  fs::create_directories(staging / "junk");
  fs::create_directories(cache.DirFor("pip://x") / "stale");
  auto got = cache.AcquireOrBeginCreate("pip://x");
  ASSERT_TRUE(got);
  auto builder = std::get<UriCache::Builder>(std::move(*got));
  EXPECT_TRUE(fs::is_empty(builder.staging_dir()));
  WriteFile(builder.staging_dir() / "payload", std::string(10'000, 'p'));
  auto ref = cache.Publish(std::move(builder));
  ASSERT_TRUE(ref) << ref.error().ToString();
  EXPECT_EQ(ref->dir(), cache.DirFor("pip://x"));
  EXPECT_TRUE(fs::exists(ref->dir() / "payload"));
  EXPECT_FALSE(fs::exists(ref->dir() / "stale"));
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_GE(cache.TotalBytes(), 10'000u);
  // Now a hit.
  auto again = cache.AcquireOrBeginCreate("pip://x");
  ASSERT_TRUE(again);
  EXPECT_TRUE(std::holds_alternative<UriCache::Ref>(*again));
}

TEST_F(UriCacheTest, CreationIsSingleFlightAcrossThreads) {
  UriCache cache("pip", root(), 1 << 30);
  ASSERT_TRUE(cache.Open());
  std::atomic<int> builds{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto got = cache.AcquireOrBeginCreate("pip://one");
      if (!got) {
        ++errors;
        return;
      }
      UriCache::Ref ref;
      if (auto* builder = std::get_if<UriCache::Builder>(&*got)) {
        ++builds;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        WriteFile(builder->staging_dir() / "payload", "x");
        auto published = cache.Publish(std::move(*builder));
        if (!published) {
          ++errors;
          return;
        }
        ref = std::move(*published);
      } else {
        ref = std::move(std::get<UriCache::Ref>(*got));
      }
      if (!fs::exists(ref.dir() / "payload")) ++errors;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://one"}));
}

TEST_F(UriCacheTest, CreationWaitTimesOut) {
  UriCache cache("pip", root(), 1 << 30);
  ASSERT_TRUE(cache.Open());
  auto first = cache.AcquireOrBeginCreate("pip://slow");
  ASSERT_TRUE(first);
  auto second = cache.AcquireOrBeginCreate(
      "pip://slow", std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, ErrorKind::kTimeout);
}

TEST_F(UriCacheTest, ConcurrentInsertAndAcquireFromEightThreads) {
  UriCache cache("pip", root(), 2000);
  ASSERT_TRUE(cache.Open());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(t);
      for (int i = 0; i < 15; ++i) {
        // Own URIs are inserted, everyone's are acquired.
        std::string mine = "pip://t" + std::to_string(t) + "-" + std::to_string(i % 3);
        std::optional<UriCache::Ref> ref = cache.Acquire(mine);
        if (!ref) {
          fs::path dir = cache.DirFor(mine);
          std::error_code ec;
          fs::create_directories(dir, ec);
          WriteFile(dir / "file.txt", mine);
          auto inserted = cache.Insert(mine, dir, 100);
          if (!inserted) {
            ++failures;
            continue;
          }
          ref = std::move(*inserted);
        }
        std::string other =
            "pip://t" + std::to_string(random() % 8) + "-" + std::to_string(random() % 3);
        std::optional<UriCache::Ref> borrowed = cache.Acquire(other);
        // While referenced, files never vanish.
        if (!fs::exists(ref->dir() / "file.txt")) ++failures;
        if (borrowed && !fs::exists(borrowed->dir() / "file.txt")) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  EXPECT_LE(cache.TotalBytes(), 2000u);
  for (const auto& entry : cache.Entries()) {
    EXPECT_EQ(entry.local_refs, 0);
    EXPECT_TRUE(fs::exists(entry.dir / "file.txt")) << entry.uri;
  }
}

// ---------------------------------------------------------------- processes

// Runs `body` in a child process; its return value is the exit status.
template <class F>
pid_t Spawn(F body) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_F(UriCacheTest, EntryHeldByAnotherProcessIsNotEvicted) {
  UriCache cache("pip", root(), 1 << 30);
  ASSERT_TRUE(cache.Open());
  Make(cache, "pip://held", 100);
  Make(cache, "pip://free", 100);

  int ready[2], done[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(done), 0);
  pid_t child = Spawn([&] {
    ::close(ready[0]);
    ::close(done[1]);
    UriCache other("pip", root(), 1 << 30);
    if (!other.Open()) return 2;
    auto ref = other.Acquire("pip://held");
    if (!ref) return 3;
    char byte = 'r';
    if (::write(ready[1], &byte, 1) != 1) return 4;
    if (::read(done[0], &byte, 1) != 1) return 5;  // hold until told
    return fs::exists(ref->dir() / "file.txt") ? 0 : 6;
  });
  ASSERT_GT(child, 0);
  ::close(ready[1]);
  ::close(done[0]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);

  auto entries = cache.Entries();
  ASSERT_EQ(entries.size(), 2u);
  for (const auto& e : entries) EXPECT_EQ(e.in_use_elsewhere, e.uri == "pip://held") << e.uri;
  EXPECT_EQ(cache.GarbageCollect(0), (std::vector<std::string>{"pip://free"}));
  auto removed = cache.Remove("pip://held");
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(removed.error().message.find("another process"), std::string::npos);
  EXPECT_TRUE(fs::exists(cache.DirFor("pip://held") / "file.txt"));
  // Another cache instance (same process, separate lock) sees the same.
  UriCache restarted("pip", root(), 0);
  ASSERT_TRUE(restarted.Open());
  EXPECT_EQ(Uris(restarted), (std::vector<std::string>{"pip://held"}));

  ASSERT_EQ(::write(done[1], "x", 1), 1);
  EXPECT_EQ(Wait(child), 0);
  ::close(ready[0]);
  ::close(done[1]);
  EXPECT_EQ(cache.GarbageCollect(0), (std::vector<std::string>{"pip://held"}));
  EXPECT_FALSE(fs::exists(cache.DirFor("pip://held")));
}

// Both creation flows, from two processes that each start with Open() (and
// so sweep leftovers while the other one builds).
TEST_F(UriCacheTest, TwoProcessesWritingTheStateLoseNothing) {
  fs::create_directories(root());
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    children.push_back(Spawn([&, p] {
      UriCache cache("pip", root(), 1 << 30);
      if (!cache.Open()) return 2;
      for (int i = 0; i < 20; ++i) {
        std::string uri = "pip://p" + std::to_string(p) + "-" + std::to_string(i);
        auto got = cache.AcquireOrBeginCreate(uri);
        if (!got) return 3;
        auto* builder = std::get_if<UriCache::Builder>(&*got);
        if (builder == nullptr) return 4;
        WriteFile(builder->staging_dir() / "file.txt", uri);
        if (i % 2 == 0) {
          if (!cache.Publish(std::move(*builder))) return 5;
        } else {
          // Publishing by hand under the creation lock, as a caller of Insert does.
          std::error_code ec;
          fs::rename(builder->staging_dir(), builder->final_dir(), ec);
          if (ec) return 6;
          if (!cache.Insert(uri, builder->final_dir(), 10)) return 7;
        }
        if (i % 10 == 0) {
          UriCache restarted("pip", root(), 1 << 30);
          if (!restarted.Open()) return 8;
        }
        // Touch one of the other process's entries too.
        (void)cache.Acquire("pip://p" + std::to_string(1 - p) + "-" + std::to_string(i / 2));
      }
      return 0;
    }));
  }
  for (pid_t child : children) EXPECT_EQ(Wait(child), 0);
  std::ifstream in(root() / ".state.json");
  std::stringstream text;
  text << in.rdbuf();
  auto state = util::ParseJson(text.str());
  ASSERT_TRUE(state) << state.error().message;
  EXPECT_EQ((*state)["entries"].size(), 40u);
  UriCache cache("pip", root(), 1 << 30);
  ASSERT_TRUE(cache.Open());
  auto entries = cache.Entries();
  EXPECT_EQ(entries.size(), 40u);
  for (const auto& entry : entries) {
    EXPECT_TRUE(fs::exists(entry.dir / "file.txt")) << entry.uri;
  }
}

TEST_F(UriCacheTest, CreationIsSingleFlightAcrossProcesses) {
  UriCache cache("pip", root(), 1 << 30);
  ASSERT_TRUE(cache.Open());
  fs::path counter = tmp_.path() / "builds";
  std::vector<pid_t> children;
  for (int p = 0; p < 3; ++p) {
    children.push_back(Spawn([&] {
      UriCache mine("pip", root(), 1 << 30);
      if (!mine.Open()) return 2;
      auto got = mine.AcquireOrBeginCreate("pip://shared");
      if (!got) return 3;
      if (auto* builder = std::get_if<UriCache::Builder>(&*got)) {
        std::ofstream(counter, std::ios::app) << "b";
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        WriteFile(builder->staging_dir() / "payload", "x");
        auto ref = mine.Publish(std::move(*builder));
        if (!ref) return 4;
        return fs::exists(ref->dir() / "payload") ? 0 : 5;
      }
      return fs::exists(std::get<UriCache::Ref>(*got).dir() / "payload") ? 0 : 6;
    }));
  }
  for (pid_t child : children) EXPECT_EQ(Wait(child), 0);
  std::ifstream in(counter);
  std::string builds;
  in >> builds;
  EXPECT_EQ(builds, "b");
  EXPECT_EQ(Uris(cache), (std::vector<std::string>{"pip://shared"}));
}

}  // namespace
}  // namespace strata::agent
