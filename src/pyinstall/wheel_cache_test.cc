#include "pyinstall/wheel_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "pyinstall/reference_python_testing.h"
#include "pyinstall/wheel_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

namespace fs = std::filesystem;
using testing::MakeWheel;
using testing::WheelSpec;
using util::testing::ReadFile;
using util::testing::TempDir;
using util::testing::WriteFile;

WheelSpec DemoSpec() {
  WheelSpec spec;
  spec.files = {
      {"demo/__init__.py", "VALUE = 1\n"},
      {"demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"},
      {"demo-1.0.data/scripts/tool", "#!python\nprint(1)\n"},
  };
  spec.executable = {"demo-1.0.data/scripts/tool"};
  return spec;
}

// Everything in `root` except lock files, as relative paths.
std::vector<std::string> CacheListing(const fs::path& root) {
  std::vector<std::string> out;
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().extension() == ".lock") continue;
    out.push_back(e.path().lexically_relative(root).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

ino_t Inode(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_ino;
}

TEST(RecordTest, ParsesLikeCsvReader) {
  auto rows = ParseRecord("a/b.py,sha256=abc,12\r\n\"we,ird\"\"name\",,\nshort\n\nx,y,z,extra\n");
  ASSERT_TRUE(rows) << rows.error().message;
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[0], (RecordRow{"a/b.py", "sha256=abc", "12"}));
  EXPECT_EQ((*rows)[1], (RecordRow{"we,ird\"name", "", ""}));
  EXPECT_EQ((*rows)[2], (RecordRow{"short", "", ""}));
  EXPECT_EQ((*rows)[3], (RecordRow{"x", "y", "z"}));
  EXPECT_EQ(FormatRecordRow({"we,ird\"name", "", ""}), "\"we,ird\"\"name\",,\r\n");
  EXPECT_FALSE(ParseRecord("\"open"));
}

TEST(WheelCacheTest, UnpacksOnceAndDescribesTheWheel) {
  TempDir dir;
  const fs::path wheel = MakeWheel(dir.path(), DemoSpec());
  const std::string sha = testing::FileSha256(wheel);
  UnpackedWheelCache cache(dir.path() / "cache");
  auto got = cache.Get(wheel, sha);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->dir, dir.path() / "cache" / sha.substr(0, 2) / sha);
  EXPECT_EQ(got->name, "demo");
  EXPECT_EQ(got->version, "1.0");
  EXPECT_EQ(got->wheel_version, "1.0");
  EXPECT_TRUE(got->root_is_purelib);
  EXPECT_EQ(got->dist_info, "demo-1.0.dist-info");
  ASSERT_EQ(got->files.size(), 5u);
  EXPECT_EQ(got->files[0].path, "demo-1.0.data/scripts/tool");
  EXPECT_TRUE(got->files[0].executable);
  EXPECT_EQ(got->files[3].path, "demo-1.0.dist-info/WHEEL");
  EXPECT_FALSE(got->files[3].executable);
  EXPECT_EQ(got->record.size(), 5u);
  EXPECT_EQ(ReadFile(got->files_dir() / "demo/__init__.py"), "VALUE = 1\n");
  EXPECT_EQ(CacheListing(dir.path() / "cache").size(), 2u + 1 + 1 + 9);

  // A hit neither reads the wheel nor rebuilds the entry.
  const ino_t before = Inode(got->files_dir() / "demo/__init__.py");
  fs::remove(wheel);
  auto again = cache.Get(wheel, sha);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(Inode(again->files_dir() / "demo/__init__.py"), before);
  EXPECT_EQ(again->record, got->record);
  EXPECT_EQ(again->files.size(), got->files.size());
}

TEST(WheelCacheTest, GetFromBytesMatchesGet) {
  TempDir dir;
  const fs::path wheel = MakeWheel(dir.path(), DemoSpec());
  const std::string bytes = ReadFile(wheel);
  const std::string sha = util::Sha256Hex(bytes);
  UnpackedWheelCache cache(dir.path() / "cache");
  std::string upper = sha;
  for (char& c : upper) c = static_cast<char>(std::toupper(c));
  auto got = cache.GetFromBytes(wheel.filename().string(), bytes, upper);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->dir, cache.EntryDir(sha));
  EXPECT_FALSE(fs::exists(got->files_dir() / wheel.filename()));
  EXPECT_FALSE(fs::exists(got->files_dir() / "files.lock"));
  auto loaded = UnpackedWheelCache::Load(got->dir);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->files.size(), 5u);
}

TEST(WheelCacheTest, RejectsDigestMismatchLeavingNothing) {
  TempDir dir;
  const fs::path wheel = MakeWheel(dir.path(), DemoSpec());
  UnpackedWheelCache cache(dir.path() / "cache");
  const std::string wrong(64, 'a');
  auto got = cache.Get(wheel, wrong);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, util::ErrorKind::kCorruption);
  EXPECT_NE(got.error().message.find("Expected sha256 " + wrong), std::string::npos)
      << got.error().message;
  EXPECT_EQ(CacheListing(dir.path() / "cache"), std::vector<std::string>{"aa"});
  EXPECT_FALSE(cache.Get(wheel, "abc"));
}

TEST(WheelCacheTest, RejectsTruncatedWheelLeavingNothing) {
  TempDir dir;
  const fs::path wheel = MakeWheel(dir.path(), DemoSpec());
  std::string bytes = ReadFile(wheel);
  bytes.resize(bytes.size() / 2);
  WriteFile(wheel, bytes);
  UnpackedWheelCache cache(dir.path() / "cache");
  const std::string sha = util::Sha256Hex(bytes);
  auto got = cache.Get(wheel, sha);
  ASSERT_FALSE(got);
  EXPECT_EQ(CacheListing(dir.path() / "cache"), std::vector<std::string>{sha.substr(0, 2)});

  // Corrupt data with an intact directory: flip bytes in the middle.
  const fs::path good = MakeWheel(dir.path(), DemoSpec());
  std::string corrupt = ReadFile(good);
  for (std::size_t i = 40; i < 60; ++i) corrupt[i] = static_cast<char>(~corrupt[i]);
  WriteFile(good, corrupt);
  const std::string corrupt_sha = util::Sha256Hex(corrupt);
  EXPECT_FALSE(cache.Get(good, corrupt_sha));
  EXPECT_FALSE(fs::exists(cache.EntryDir(corrupt_sha)));
}

TEST(WheelCacheTest, RejectsInvalidWheels) {
  TempDir dir;
  UnpackedWheelCache cache(dir.path() / "cache");
  auto expect_rejected = [&](const WheelSpec& spec, const std::string& needle) {
    const fs::path wheel = MakeWheel(dir.path(), spec);
    const std::string sha = testing::FileSha256(wheel);
    auto got = cache.Get(wheel, sha);
    ASSERT_FALSE(got) << needle;
    EXPECT_EQ(got.error().kind, util::ErrorKind::kValueError);
    EXPECT_NE(got.error().message.find(needle), std::string::npos) << got.error().message;
    EXPECT_FALSE(fs::exists(cache.EntryDir(sha)));
    fs::remove(wheel);
  };
  WheelSpec v2 = DemoSpec();
  v2.wheel_metadata = "Wheel-Version: 2.0\nRoot-Is-Purelib: true\n";
  expect_rejected(v2, "Wheel-Version (2.0)");
  WheelSpec no_version = DemoSpec();
  no_version.wheel_metadata = "Root-Is-Purelib: true\n";
  expect_rejected(no_version, "missing Wheel-Version");
  WheelSpec wrong_name = DemoSpec();
  wrong_name.dist_info = "other-1.0.dist-info";
  wrong_name.files.erase("demo-1.0.dist-info/METADATA");
  expect_rejected(wrong_name, "does not start with 'demo'");
  WheelSpec two = DemoSpec();
  two.files["extra-1.0.dist-info/METADATA"] = "x";
  expect_rejected(two, "multiple .dist-info directories");
  WheelSpec no_record = DemoSpec();
  no_record.write_record = false;
  expect_rejected(no_record, "RECORD");
  EXPECT_FALSE(cache.Get(dir.path() / "not-a-wheel.zip", std::string(64, '0')));
}

TEST(WheelCacheTest, RejectsUnsafePaths) {
  const std::string python = testing::ReferencePython();
  if (python.empty()) GTEST_SKIP() << "no python";
  TempDir dir;
  UnpackedWheelCache cache(dir.path() / "cache");
  for (const std::string evil : {"../evil.py", "/abs/evil.py"}) {
    const fs::path wheel = dir.path() / "demo-1.0-py3-none-any.whl";
    fs::remove(wheel);
    const std::string script =
        "import zipfile,sys\n"
        "z = zipfile.ZipFile(sys.argv[1], 'w')\n"
        "z.writestr('demo-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\n')\n"
        "z.writestr('demo-1.0.dist-info/RECORD', '')\n"
        "z.writestr(sys.argv[2], 'x')\n";
    WriteFile(dir.path() / "mk.py", script);
    ASSERT_EQ(std::system((python + " " + (dir.path() / "mk.py").string() + " " + wheel.string() +
                           " " + evil)
                              .c_str()),
              0);
    const std::string sha = testing::FileSha256(wheel);
    auto got = cache.Get(wheel, sha);
    ASSERT_FALSE(got) << evil;
    EXPECT_EQ(got.error().kind, util::ErrorKind::kValueError) << got.error().message;
    EXPECT_EQ(CacheListing(dir.path() / "cache"), std::vector<std::string>{sha.substr(0, 2)});
    fs::remove_all(dir.path() / "cache");
  }
}

TEST(WheelCacheTest, ConcurrentThreadsUnpackOnce) {
  TempDir dir;
  const fs::path wheel = MakeWheel(dir.path(), DemoSpec());
  const std::string sha = testing::FileSha256(wheel);
  UnpackedWheelCache cache(dir.path() / "cache");
  // A second builder could not publish (renaming onto a non-empty entry
  // fails), so four successes mean one unpack.
  std::vector<util::Result<UnpackedWheel>> results(4, util::NotFoundError("unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { results[i] = cache.Get(wheel, sha); });
  }
  for (auto& t : threads) t.join();
  for (auto& r : results) {
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->dir, cache.EntryDir(sha));
  }
  const auto listing = CacheListing(dir.path() / "cache");
  EXPECT_EQ(
      std::count_if(listing.begin(), listing.end(),
                    [](const std::string& p) { return p.find(".tmp-") != std::string::npos; }),
      0);
}

TEST(WheelCacheTest, ConcurrentProcessesUnpackOnce) {
  TempDir dir;
  const fs::path wheel = MakeWheel(dir.path(), DemoSpec());
  const std::string sha = testing::FileSha256(wheel);
  UnpackedWheelCache cache(dir.path() / "cache");
  std::vector<pid_t> children;
  for (int i = 0; i < 2; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Only async-signal-safe work would be strictly allowed after fork in a
      // threaded process; this test process has no other threads.
      auto got = cache.Get(wheel, sha);
      ::_exit(got && got->dir == cache.EntryDir(sha) ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto got = UnpackedWheelCache::Load(cache.EntryDir(sha));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->files.size(), 5u);
}

}  // namespace
}  // namespace strata::pyinstall
