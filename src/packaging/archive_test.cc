#include "packaging/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packaging/unpack.h"
#include "util/temp_dir_testing.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;

using util::testing::TempDir;

using util::testing::ReadFile;
using util::testing::WriteFile;

// Every file and directory below `root`, sorted by path, as the tree walk
// would list them.
std::vector<PackageEntry> EntriesOf(const fs::path& root) {
  std::vector<PackageEntry> entries;
  for (const auto& de : fs::recursive_directory_iterator(root)) {
    PackageEntry e;
    e.path = de.path().lexically_relative(root).generic_string();
    if (de.is_directory()) {
      e.type = EntryType::kDirectory;
    } else {
      e.source = de.path();
      e.size = de.file_size();
      e.executable =
          (fs::status(de.path()).permissions() & fs::perms::owner_exec) != fs::perms::none;
    }
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const PackageEntry& a, const PackageEntry& b) { return a.path < b.path; });
  return entries;
}

fs::path MakeTree(const fs::path& root) {
  WriteFile(root / "a.txt", "hello\n");
  WriteFile(root / "run.sh", "#!/bin/sh\necho hi\n", 0755);
  WriteFile(root / "pkg" / "__init__.py", "");
  WriteFile(root / "pkg" / "mod.py", std::string(100000, 'x'));
  fs::create_directories(root / "empty");
  return root;
}

bool HaveTool(const char* name) {
  return std::system(("command -v " + std::string(name) + " > /dev/null 2>&1").c_str()) == 0;
}

int Shell(const std::string& command) {
  return std::system((command + " > /dev/null 2>&1").c_str());
}

std::uint32_t Le32(const std::string& b, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}
std::uint16_t Le16(const std::string& b, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(b[at]) |
                                    (static_cast<unsigned char>(b[at + 1]) << 8));
}

struct CentralEntry {
  std::string name;
  std::uint16_t time, date, extra_len, flags;
  std::uint32_t unix_mode;
  std::uint32_t local_offset;
};

// Parses the central directory of a zip without comment or zip64.
std::vector<CentralEntry> ParseCentral(const std::string& zip) {
  std::vector<CentralEntry> out;
  const std::size_t eocd = zip.size() - 22;
  EXPECT_EQ(Le32(zip, eocd), 0x06054b50u);
  const std::uint16_t count = Le16(zip, eocd + 10);
  std::size_t at = Le32(zip, eocd + 16);
  for (int i = 0; i < count; ++i) {
    EXPECT_EQ(Le32(zip, at), 0x02014b50u);
    CentralEntry e;
    e.flags = Le16(zip, at + 8);
    e.time = Le16(zip, at + 12);
    e.date = Le16(zip, at + 14);
    const std::uint16_t name_len = Le16(zip, at + 28);
    e.extra_len = Le16(zip, at + 30);
    const std::uint16_t comment_len = Le16(zip, at + 32);
    e.unix_mode = Le32(zip, at + 38) >> 16;
    e.local_offset = Le32(zip, at + 42);
    e.name = zip.substr(at + 46, name_len);
    out.push_back(e);
    at += 46 + name_len + e.extra_len + comment_len;
  }
  return out;
}

std::vector<std::string> TempLeftovers(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& de : fs::directory_iterator(dir)) {
    if (de.path().filename().string().find(".tmp-") != std::string::npos) {
      out.push_back(de.path().filename().string());
    }
  }
  return out;
}

TEST(WriteZip, SameEntriesTwiceGiveIdenticalBytes) {
  TempDir tmp;
  auto entries = EntriesOf(MakeTree(tmp.path() / "src"));
  for (ZipMethod method : {ZipMethod::kStored, ZipMethod::kDeflate}) {
    ZipOptions options;
    options.method = method;
    ASSERT_TRUE(WriteZip(entries, tmp.path() / "one.zip", options));
    ASSERT_TRUE(WriteZip(entries, tmp.path() / "two.zip", options));
    EXPECT_EQ(ReadFile(tmp.path() / "one.zip"), ReadFile(tmp.path() / "two.zip"));
  }
}

TEST(WriteZip, MtimesModesAndTimezoneDoNotChangeBytes) {
  TempDir tmp;
  auto first = EntriesOf(MakeTree(tmp.path() / "first"));
  auto second = EntriesOf(MakeTree(tmp.path() / "second"));
  // Different mtimes, non-exec permission bits and timezone: same bytes.
  struct utimbuf old_time {
    1000000000, 1000000000
  };
  for (const auto& e : second) {
    if (e.type == EntryType::kFile) ::utime(e.source.c_str(), &old_time);
  }
  ::chmod((tmp.path() / "second" / "a.txt").c_str(), 0600);
  ::utime((tmp.path() / "second" / "pkg").c_str(), &old_time);
  ASSERT_TRUE(WriteZip(first, tmp.path() / "first.zip"));
  const char* old_tz = std::getenv("TZ");
  std::string saved = old_tz != nullptr ? old_tz : "";
  ::setenv("TZ", "America/Los_Angeles", 1);
  ::tzset();
  ASSERT_TRUE(WriteZip(second, tmp.path() / "second.zip"));
  if (old_tz != nullptr) {
    ::setenv("TZ", saved.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
  EXPECT_EQ(ReadFile(tmp.path() / "first.zip"), ReadFile(tmp.path() / "second.zip"));
}

TEST(WriteZip, FixedTimestampsModesAndNoExtraFields) {
  TempDir tmp;
  auto entries = EntriesOf(MakeTree(tmp.path() / "src"));
  ASSERT_TRUE(WriteZip(entries, tmp.path() / "out.zip"));
  const std::string zip = ReadFile(tmp.path() / "out.zip");
  auto central = ParseCentral(zip);
  ASSERT_EQ(central.size(), entries.size());
  for (std::size_t i = 0; i < central.size(); ++i) {
    const CentralEntry& c = central[i];
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.time, 0);
    EXPECT_EQ(c.date, (1 << 5) | 1);  // 1980-01-01
    EXPECT_EQ(c.extra_len, 0);
    EXPECT_EQ(c.flags, 0);
    EXPECT_EQ(Le16(zip, c.local_offset + 28), 0) << "local extra field";
    EXPECT_EQ(Le16(zip, c.local_offset + 10), 0) << "local time";
    EXPECT_EQ(Le16(zip, c.local_offset + 6) & 0x8, 0) << "data descriptor flag";
    if (entries[i].type == EntryType::kDirectory) {
      EXPECT_EQ(c.name, entries[i].path + "/");
      EXPECT_EQ(c.unix_mode, static_cast<std::uint32_t>(S_IFDIR | 0755));
    } else {
      EXPECT_EQ(c.name, entries[i].path);
      EXPECT_EQ(c.unix_mode,
                static_cast<std::uint32_t>(S_IFREG | (entries[i].executable ? 0755 : 0644)));
    }
  }
}

TEST(WriteZip, ToolsAcceptTheOutput) {
  const bool python = HaveTool("python3");
  const bool unzip = HaveTool("unzip");
  if (!python && !unzip) GTEST_SKIP() << "neither python3 nor unzip installed";
  TempDir tmp;
  auto entries = EntriesOf(MakeTree(tmp.path() / "src"));
  // A file larger than the writer's buffer, so its header is written after its data.
  std::string big(3 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : big) c = static_cast<char>(rng());
  WriteFile(tmp.path() / "big" / "big.bin", big);
  auto big_entries = EntriesOf(tmp.path() / "big");
  entries.insert(entries.end(), big_entries.begin(), big_entries.end());
  for (ZipMethod method : {ZipMethod::kStored, ZipMethod::kDeflate}) {
    ZipOptions options;
    options.method = method;
    options.top_level_dir = "mod";
    const fs::path out = tmp.path() / "out.zip";
    ASSERT_TRUE(WriteZip(entries, out, options));
    if (python) {
      EXPECT_EQ(Shell("python3 -m zipfile -t '" + out.string() + "'"), 0);
    }
    if (unzip) {
      EXPECT_EQ(Shell("unzip -t '" + out.string() + "'"), 0);
    }
    if (python) {
      EXPECT_EQ(Shell("python3 -c \"import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); "
                      "assert z.read('mod/big.bin')==open(sys.argv[2],'rb').read()\" '" +
                      out.string() + "' '" + (tmp.path() / "big" / "big.bin").string() + "'"),
                0);
    }
  }
}

// Records what a ContentObserver is shown, per entry index.
class RecordingObserver final : public ContentObserver {
 public:
  void Files(std::span<const File> files) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const File& f : files) {
      content_[f.index] += f.content;
      ++reports_[f.index];
    }
  }
  void Update(std::size_t index, std::string_view block) override {
    std::lock_guard<std::mutex> lock(mu_);
    content_[index] += block;
  }
  void Finish(std::size_t index) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++reports_[index];
  }

  std::map<std::size_t, std::string> content_;
  std::map<std::size_t, int> reports_;

 private:
  std::mutex mu_;
};

// Enough files for many runs of the stored writer, and one file larger than a run.
TEST(WriteZip, BytesDoNotDependOnThreadsAndObserverSeesEveryFileOnce) {
  TempDir tmp;
  const fs::path src = MakeTree(tmp.path() / "src");
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    std::string data(rng() % 20000, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    WriteFile(src / ("d" + std::to_string(i % 7)) / ("f" + std::to_string(i)), data);
  }
  WriteFile(src / "large.bin", std::string(3 << 20, 'L'));
  const auto entries = EntriesOf(src);
  for (ZipMethod method : {ZipMethod::kStored, ZipMethod::kDeflate}) {
    std::string first;
    for (unsigned threads : {1u, 3u}) {
      SCOPED_TRACE(std::to_string(threads) + " threads");
      RecordingObserver observer;
      ZipOptions options;
      options.method = method;
      options.threads = threads;
      options.observer = &observer;
      const fs::path out = tmp.path() / "out.zip";
      ASSERT_TRUE(WriteZip(entries, out, options));
      const std::string bytes = ReadFile(out);
      if (first.empty()) first = bytes;
      EXPECT_EQ(bytes, first);
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].type != EntryType::kFile) {
          EXPECT_EQ(observer.reports_.count(i), 0u) << entries[i].path;
          continue;
        }
        EXPECT_EQ(observer.reports_[i], 1) << entries[i].path;
        EXPECT_EQ(observer.content_[i], ReadFile(entries[i].source)) << entries[i].path;
      }
    }
    if (HaveTool("python3")) {
      EXPECT_EQ(Shell("python3 -m zipfile -t '" + (tmp.path() / "out.zip").string() + "'"), 0);
    }
  }
}

TEST(WriteZip, EmptyZipIsValid) {
  TempDir tmp;
  const fs::path out = tmp.path() / "empty.zip";
  ASSERT_TRUE(WriteZip({}, out));
  EXPECT_EQ(fs::file_size(out), 22u);
  auto listed = ListArchive(out);
  ASSERT_TRUE(listed) << listed.error().ToString();
  EXPECT_TRUE(listed->empty());
  if (HaveTool("python3")) {
    EXPECT_EQ(Shell("python3 -m zipfile -t '" + out.string() + "'"), 0);
  }
}

TEST(WriteZip, TopLevelFolderPrefixesEveryEntry) {
  TempDir tmp;
  auto entries = EntriesOf(MakeTree(tmp.path() / "src"));
  ZipOptions options;
  options.top_level_dir = "my_module";
  ASSERT_TRUE(WriteZip(entries, tmp.path() / "out.zip", options));
  auto listed = ListArchive(tmp.path() / "out.zip");
  ASSERT_TRUE(listed) << listed.error().ToString();
  ASSERT_EQ(listed->size(), entries.size() + 1);
  EXPECT_EQ((*listed)[0].path, "my_module/");
  EXPECT_EQ((*listed)[0].type, ArchiveEntryType::kDirectory);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    EXPECT_TRUE((*listed)[i + 1].path.starts_with("my_module/" + entries[i].path));
  }
  options.top_level_dir = "a/b";
  EXPECT_FALSE(WriteZip(entries, tmp.path() / "bad.zip", options));
  options.top_level_dir = "..";
  EXPECT_FALSE(WriteZip(entries, tmp.path() / "bad.zip", options));
}

TEST(WriteZip, ExecutableBitSurvivesRoundTrip) {
  TempDir tmp;
  auto entries = EntriesOf(MakeTree(tmp.path() / "src"));
  ASSERT_TRUE(WriteZip(entries, tmp.path() / "out.zip"));
  auto listed = ListArchive(tmp.path() / "out.zip");
  ASSERT_TRUE(listed);
  for (const auto& e : *listed) {
    if (e.path == "run.sh") {
      EXPECT_EQ(e.mode, 0755u);
    }
    if (e.path == "a.txt") {
      EXPECT_EQ(e.mode, 0644u);
    }
  }
  auto dest = UnpackArchive(tmp.path() / "out.zip", tmp.path() / "out");
  ASSERT_TRUE(dest) << dest.error().ToString();
  EXPECT_EQ(fs::status(*dest / "run.sh").permissions() & fs::perms::all, fs::perms(0755));
  EXPECT_EQ(fs::status(*dest / "a.txt").permissions() & fs::perms::all, fs::perms(0644));
}

TEST(WriteZip, RoundTripThroughUnpackForBothMethods) {
  TempDir tmp;
  const fs::path src = MakeTree(tmp.path() / "src");
  WriteFile(src / "d\xc3\xa9j\xc3\xa0" / "caf\xc3\xa9.txt", "utf-8 names");
  auto entries = EntriesOf(src);
  for (ZipMethod method : {ZipMethod::kStored, ZipMethod::kDeflate}) {
    ZipOptions options;
    options.method = method;
    const std::string tag = method == ZipMethod::kStored ? "stored" : "deflate";
    ASSERT_TRUE(WriteZip(entries, tmp.path() / (tag + ".zip"), options));
    auto dest = UnpackArchive(tmp.path() / (tag + ".zip"), tmp.path() / tag);
    ASSERT_TRUE(dest) << dest.error().ToString();
    for (const auto& e : entries) {
      SCOPED_TRACE(e.path);
      if (e.type == EntryType::kDirectory) {
        EXPECT_TRUE(fs::is_directory(*dest / e.path));
      } else {
        EXPECT_EQ(ReadFile(*dest / e.path), ReadFile(e.source));
      }
    }
  }
}

TEST(WriteZip, ManyEntriesUseZip64EndRecords) {
  TempDir tmp;
  std::vector<PackageEntry> entries;
  for (int i = 0; i < 70000; ++i) {
    PackageEntry e;
    e.path = "d" + std::to_string(i);
    e.type = EntryType::kDirectory;
    entries.push_back(e);
  }
  const fs::path out = tmp.path() / "many.zip";
  ASSERT_TRUE(WriteZip(entries, out));
  auto listed = ListArchive(out);
  ASSERT_TRUE(listed) << listed.error().ToString();
  EXPECT_EQ(listed->size(), 70000u);
  if (HaveTool("python3")) {
    EXPECT_EQ(Shell("python3 -c \"import zipfile,sys; "
                    "assert len(zipfile.ZipFile(sys.argv[1]).namelist())==70000\" '" +
                    out.string() + "'"),
              0);
  }
}

TEST(WriteZip, InvalidEntriesFailAndLeaveNothing) {
  TempDir tmp;
  auto good = EntriesOf(MakeTree(tmp.path() / "src"));
  const fs::path out = tmp.path() / "out.zip";
  for (const std::string bad : {"/abs", "../x", "a/../b", "a//b", "./a", "a/", ""}) {
    SCOPED_TRACE(bad);
    auto entries = good;
    entries[0].path = bad;
    auto s = WriteZip(entries, out);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, util::ErrorKind::kValueError);
  }
  auto dup = good;
  dup.push_back(good.back());
  EXPECT_FALSE(WriteZip(dup, out));
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(TempLeftovers(tmp.path()).empty());
}

TEST(WriteZip, IoFailuresRemoveTheTemporaryAndKeepTheOldFile) {
  TempDir tmp;
  auto entries = EntriesOf(MakeTree(tmp.path() / "src"));
  const fs::path out = tmp.path() / "out.zip";
  WriteFile(out, "previous");

  auto missing = entries;
  missing.back().source = tmp.path() / "nope";
  auto s = WriteZip(missing, out);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, util::ErrorKind::kIOError);

  auto changed = entries;
  for (auto& e : changed) {
    if (e.type == EntryType::kFile) e.size += 1;
  }
  s = WriteZip(changed, out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("changed"), std::string::npos) << s.error().message;

  EXPECT_EQ(ReadFile(out), "previous");
  EXPECT_TRUE(TempLeftovers(tmp.path()).empty());
  EXPECT_FALSE(WriteZip(entries, tmp.path() / "no-such-dir" / "out.zip"));

  ZipOptions durable;
  durable.durability = Durability::kFsync;
  ASSERT_TRUE(WriteZip(entries, out, durable));  // Replaces the old file.
  EXPECT_TRUE(ListArchive(out));
  EXPECT_EQ(fs::status(out).permissions() & fs::perms::all, fs::perms(0644));
}

// Writes a tar with libarchive, compressed by `filter` (ARCHIVE_FILTER_*).
void MakeTar(const fs::path& out, int filter,
             const std::vector<std::pair<std::string, std::string>>& files) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter(a, filter);
  ASSERT_EQ(archive_write_open_filename(a, out.c_str()), ARCHIVE_OK);
  for (const auto& [name, data] : files) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    ASSERT_EQ(archive_write_header(a, e), ARCHIVE_OK);
    ASSERT_EQ(archive_write_data(a, data.data(), data.size()),
              static_cast<la_ssize_t>(data.size()));
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

TEST(ArchiveReader, ReadsEveryFormat) {
  TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> files = {
      {"dir/a.txt", "alpha"}, {"b.txt", std::string(70000, 'b')}};
  const std::vector<std::tuple<std::string, int, ArchiveFormat>> cases = {
      {"x.tar.gz", ARCHIVE_FILTER_GZIP, ArchiveFormat::kTarGz},
      {"x.tgz", ARCHIVE_FILTER_GZIP, ArchiveFormat::kTarGz},
      {"x.tar.xz", ARCHIVE_FILTER_XZ, ArchiveFormat::kTarXz},
      {"x.tar.bz2", ARCHIVE_FILTER_BZIP2, ArchiveFormat::kTarBz2},
  };
  for (const auto& [name, filter, format] : cases) {
    SCOPED_TRACE(name);
    MakeTar(tmp.path() / name, filter, files);
    auto reader = ArchiveReader::Open(tmp.path() / name);
    ASSERT_TRUE(reader) << reader.error().ToString();
    EXPECT_EQ(reader->format(), format);
    for (const auto& [path, data] : files) {
      auto next = reader->Next();
      ASSERT_TRUE(next && next->has_value());
      EXPECT_EQ((*next)->path, path);
      EXPECT_EQ((*next)->type, ArchiveEntryType::kFile);
      EXPECT_EQ((*next)->size, data.size());
      std::string got;
      ASSERT_TRUE(reader->ReadData([&](std::uint64_t offset, std::string_view block) {
        EXPECT_EQ(offset, got.size());
        got += block;
        return util::Status::Ok();
      }));
      EXPECT_EQ(got, data);
    }
    auto end = reader->Next();
    ASSERT_TRUE(end);
    EXPECT_FALSE(end->has_value());
  }
  // .whl and .jar are zips.
  TempDir src;
  WriteFile(src.path() / "m" / "__init__.py", "x = 1\n");
  for (const char* name : {"pkg-1.0-py3-none-any.whl", "lib.jar", "UPPER.ZIP"}) {
    ASSERT_TRUE(WriteZip(EntriesOf(src.path()), tmp.path() / name));
    auto listed = ListArchive(tmp.path() / name);
    ASSERT_TRUE(listed) << listed.error().ToString();
    EXPECT_EQ(listed->size(), 2u);
  }
}

TEST(DetectArchiveFormat, ChecksExtensionAndMagic) {
  TempDir tmp;
  WriteFile(tmp.path() / "x.rar", "Rar!");
  auto r = DetectArchiveFormat(tmp.path() / "x.rar");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, util::ErrorKind::kValueError);

  r = DetectArchiveFormat(tmp.path() / "missing.zip");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, util::ErrorKind::kNotFound);

  // A gzip stream named .zip, a zip named .tar.gz, an empty file.
  MakeTar(tmp.path() / "real.tar.gz", ARCHIVE_FILTER_GZIP, {{"a", "b"}});
  fs::copy_file(tmp.path() / "real.tar.gz", tmp.path() / "fake.zip");
  ASSERT_TRUE(WriteZip({}, tmp.path() / "real.zip"));
  fs::copy_file(tmp.path() / "real.zip", tmp.path() / "fake.tar.gz");
  WriteFile(tmp.path() / "empty.tar.xz", "");
  for (const char* name : {"fake.zip", "fake.tar.gz", "empty.tar.xz"}) {
    SCOPED_TRACE(name);
    r = DetectArchiveFormat(tmp.path() / name);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, util::ErrorKind::kCorruption);
    EXPECT_NE(r.error().message.find(name), std::string::npos);
  }
  r = DetectArchiveFormat(tmp.path() / "real.tar.gz");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, ArchiveFormat::kTarGz);
}

TEST(ListArchive, BadCrcIsCorruption) {
  TempDir tmp;
  WriteFile(tmp.path() / "src" / "f.txt", "some content that will be damaged");
  const fs::path out = tmp.path() / "out.zip";
  ASSERT_TRUE(WriteZip(EntriesOf(tmp.path() / "src"), out));
  std::string bytes = ReadFile(out);
  bytes[30 + 5 + 3] ^= 0x20;  // Inside f.txt's data, after its 30-byte header and name.
  WriteFile(out, bytes);
  auto listed = ListArchive(out);
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().kind, util::ErrorKind::kCorruption);
  EXPECT_NE(listed.error().message.find("f.txt"), std::string::npos) << listed.error().message;
}

// Measures archiving + SHA-256 of the result, stored vs deflate. Disabled by
// default (it writes 100 MiB); run with --gtest_also_run_disabled_tests on an
// optimised build, with TMPDIR=/dev/shm to leave the disk out.
TEST(WriteZip, DISABLED_Throughput) {
  TempDir tmp;
  constexpr int kFiles = 5000;
  constexpr std::size_t kFileSize = (100 << 20) / kFiles;
  std::mt19937_64 rng(1);
  std::string data(kFileSize, '\0');
  for (int i = 0; i < kFiles; ++i) {
    // Half random, half text-like, so deflate has something to do.
    for (std::size_t j = 0; j < kFileSize / 2; j += 8) {
      std::uint64_t v = rng();
      std::memcpy(&data[j], &v, 8);
    }
    for (std::size_t j = kFileSize / 2; j < kFileSize; ++j) data[j] = "abcdefgh\n"[j % 9];
    WriteFile(tmp.path() / "src" / ("d" + std::to_string(i % 50)) / ("f" + std::to_string(i)),
              data);
  }
  auto entries = EntriesOf(tmp.path() / "src");
  for (ZipMethod method : {ZipMethod::kStored, ZipMethod::kDeflate}) {
    ZipOptions options;
    options.method = method;
    const fs::path out = tmp.path() / "out.zip";
    const auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(WriteZip(entries, out, options));
    const auto written = std::chrono::steady_clock::now();
    const std::string bytes = ReadFile(out);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
    const auto hashed = std::chrono::steady_clock::now();
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    std::printf("%s: %zu bytes, write %.0f ms, sha256 %.0f ms\n",
                method == ZipMethod::kStored ? "stored" : "deflate", bytes.size(),
                ms(written - start), ms(hashed - written));
    auto dest = UnpackArchive(out, tmp.path() / (method == ZipMethod::kStored ? "u1" : "u2"));
    const auto unpacked = std::chrono::steady_clock::now();
    ASSERT_TRUE(dest);
    std::printf("  unpack %.0f ms\n", ms(unpacked - hashed));
  }
}

}  // namespace
}  // namespace strata::packaging
