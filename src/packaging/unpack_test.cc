#include "packaging/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "packaging/archive.h"
#include "util/temp_dir_testing.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;
using util::ErrorKind;

using util::testing::TempDir;

using util::testing::ReadFile;
using util::testing::WriteFile;

fs::perms Perms(const fs::path& p) {
  return fs::symlink_status(p).permissions() & fs::perms::all;
}

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
      e.executable = (Perms(de.path()) & fs::perms::owner_exec) != fs::perms::none;
    }
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const PackageEntry& a, const PackageEntry& b) { return a.path < b.path; });
  return entries;
}

// Names in `dir`, sorted.
std::set<std::string> Listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& de : fs::directory_iterator(dir)) names.insert(de.path().filename().string());
  return names;
}

// --- Hand-written zips, for entries no honest writer produces. ---

struct RawEntry {
  std::string name;
  std::string data;
  std::uint32_t unix_mode = S_IFREG | 0644;
  bool deflate = false;
  std::optional<std::uint32_t> declared_size;  // Lie about the uncompressed size.
  bool unix_made = true;                       // False: made by MS-DOS, no Unix mode.
};

void Put16(std::string& b, std::uint32_t v) {
  b.push_back(static_cast<char>(v & 0xFF));
  b.push_back(static_cast<char>((v >> 8) & 0xFF));
}
void Put32(std::string& b, std::uint32_t v) {
  Put16(b, v & 0xFFFF);
  Put16(b, v >> 16);
}

std::string RawDeflate(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string BuildZip(const std::vector<RawEntry>& entries) {
  std::string zip, central;
  for (const RawEntry& e : entries) {
    const std::string payload = e.deflate ? RawDeflate(e.data) : e.data;
    const auto crc = static_cast<std::uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(e.data.data()), static_cast<uInt>(e.data.size())));
    const std::uint32_t usize = e.declared_size.value_or(static_cast<std::uint32_t>(e.data.size()));
    const auto offset = static_cast<std::uint32_t>(zip.size());
    auto common = [&](std::string& b) {
      Put16(b, 20);
      Put16(b, 0);
      Put16(b, e.deflate ? 8 : 0);
      Put16(b, 0);
      Put16(b, 0x21);
      Put32(b, crc);
      Put32(b, static_cast<std::uint32_t>(payload.size()));
      Put32(b, usize);
      Put16(b, static_cast<std::uint32_t>(e.name.size()));
      Put16(b, 0);
    };
    Put32(zip, 0x04034b50);
    common(zip);
    zip += e.name;
    zip += payload;
    Put32(central, 0x02014b50);
    Put16(central, e.unix_made ? (3 << 8) | 20 : 20);
    common(central);
    Put16(central, 0);
    Put16(central, 0);
    Put16(central, 0);
    const bool dir = e.name.ends_with("/");
    Put32(central, e.unix_made ? e.unix_mode << 16 : (dir ? 0x10 : 0x20));
    Put32(central, offset);
    central += e.name;
  }
  const auto cd_offset = static_cast<std::uint32_t>(zip.size());
  zip += central;
  Put32(zip, 0x06054b50);
  Put16(zip, 0);
  Put16(zip, 0);
  Put16(zip, static_cast<std::uint32_t>(entries.size()));
  Put16(zip, static_cast<std::uint32_t>(entries.size()));
  Put32(zip, static_cast<std::uint32_t>(central.size()));
  Put32(zip, cd_offset);
  Put16(zip, 0);
  return zip;
}

// --- Tars through libarchive's writer. ---

struct TarItem {
  std::string name;
  int type = AE_IFREG;
  std::string data;
  std::string link;  // Symlink target.
  std::string hardlink;
  mode_t perm = 0644;
};

void MakeTar(const fs::path& out, const std::vector<TarItem>& items,
             int filter = ARCHIVE_FILTER_GZIP) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter(a, filter);
  ASSERT_EQ(archive_write_open_filename(a, out.c_str()), ARCHIVE_OK);
  for (const TarItem& item : items) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, item.name.c_str());
    archive_entry_set_filetype(e, static_cast<unsigned>(item.type));
    archive_entry_set_perm(e, item.perm);
    if (!item.link.empty()) archive_entry_set_symlink(e, item.link.c_str());
    if (!item.hardlink.empty()) archive_entry_set_hardlink(e, item.hardlink.c_str());
    if (item.type == AE_IFCHR || item.type == AE_IFBLK) archive_entry_set_rdev(e, makedev(1, 3));
    archive_entry_set_size(e, static_cast<la_int64_t>(item.data.size()));
    ASSERT_GE(archive_write_header(a, e), ARCHIVE_WARN) << archive_error_string(a);
    if (!item.data.empty()) {
      ASSERT_EQ(archive_write_data(a, item.data.data(), item.data.size()),
                static_cast<la_ssize_t>(item.data.size()));
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

class UnpackTest : public ::testing::Test {
 protected:
  fs::path base() const { return tmp_.path(); }
  fs::path dest() const { return tmp_.path() / "out"; }
  fs::path outside() const { return tmp_.path() / "outside"; }

  fs::path WriteZipBytes(const std::string& name, const std::vector<RawEntry>& entries) {
    WriteFile(base() / name, BuildZip(entries));
    return base() / name;
  }

  // Unpacks `archive`, expecting an error of `kind` that names the archive
  // and contains `needle`, and leaving nothing: no dest, no temporaries,
  // nothing outside.
  void ExpectRejected(const fs::path& archive, const std::string& needle,
                      ErrorKind kind = ErrorKind::kValueError, UnpackOptions options = {}) {
    fs::create_directories(outside());
    auto before = Listing(base());
    before.erase("out.lock");
    auto r = UnpackArchive(archive, dest(), options);
    ASSERT_FALSE(r) << "unpacked " << archive;
    EXPECT_EQ(r.error().kind, kind) << r.error().ToString();
    EXPECT_NE(r.error().message.find(archive.filename().string()), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
    auto after = Listing(base());
    after.erase("out.lock");
    EXPECT_EQ(after, before) << "left something behind";
    EXPECT_TRUE(fs::is_empty(outside()));
  }

  TempDir tmp_;
};

// A tree with a little of everything; returns its entries.
std::vector<PackageEntry> MakeTree(const fs::path& root) {
  WriteFile(root / "a.txt", "alpha\n");
  WriteFile(root / "bin" / "tool", "#!/bin/sh\n", 0755);
  WriteFile(root / "pkg" / "deep" / "x.py", std::string(300000, 'x'));
  fs::create_directories(root / "empty");
  return EntriesOf(root);
}

void ExpectTree(const fs::path& dest) {
  EXPECT_EQ(ReadFile(dest / "a.txt"), "alpha\n");
  EXPECT_EQ(ReadFile(dest / "bin" / "tool"), "#!/bin/sh\n");
  EXPECT_EQ(ReadFile(dest / "pkg" / "deep" / "x.py"), std::string(300000, 'x'));
  EXPECT_TRUE(fs::is_directory(dest / "empty"));
  EXPECT_EQ(Perms(dest / "a.txt"), fs::perms(0644));
  EXPECT_EQ(Perms(dest / "bin" / "tool"), fs::perms(0755));
  EXPECT_EQ(Perms(dest / "bin"), fs::perms(0755));
  EXPECT_EQ(Perms(dest), fs::perms(0755));
}

TEST_F(UnpackTest, ZipRoundTrip) {
  auto entries = MakeTree(base() / "src");
  ASSERT_TRUE(WriteZip(entries, base() / "pkg.zip"));
  auto r = UnpackArchive(base() / "pkg.zip", dest());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, dest());
  ExpectTree(dest());
  EXPECT_EQ(Listing(base()), (std::set<std::string>{"src", "pkg.zip", "out", "out.lock"}));
}

TEST_F(UnpackTest, TarFormatsWithDotSlashNamesAndLinks) {
  const std::vector<TarItem> items = {
      {.name = "./", .type = AE_IFDIR, .perm = 0755},
      {.name = "./a.txt", .data = "alpha\n"},
      {.name = "./bin/tool", .data = "#!/bin/sh\n", .perm = 0775},
      {.name = "./pkg/deep/x.py", .data = std::string(300000, 'x')},
      {.name = "./empty/", .type = AE_IFDIR, .perm = 0700},
      {.name = "./pkg/link.py", .type = AE_IFLNK, .link = "deep/x.py"},
      {.name = "./hard.txt", .hardlink = "./a.txt"},
  };
  const std::vector<std::pair<std::string, int>> formats = {{"p.tar.gz", ARCHIVE_FILTER_GZIP},
                                                            {"p.tgz", ARCHIVE_FILTER_GZIP},
                                                            {"p.tar.xz", ARCHIVE_FILTER_XZ},
                                                            {"p.tar.bz2", ARCHIVE_FILTER_BZIP2}};
  for (const auto& [name, filter] : formats) {
    SCOPED_TRACE(name);
    MakeTar(base() / name, items, filter);
    const fs::path out = base() / (name + ".d");
    auto r = UnpackArchive(base() / name, out);
    ASSERT_TRUE(r) << r.error().ToString();
    ExpectTree(out);
    EXPECT_EQ(fs::read_symlink(out / "pkg" / "link.py"), "deep/x.py");
    EXPECT_EQ(ReadFile(out / "pkg" / "link.py"), std::string(300000, 'x'));
    EXPECT_TRUE(fs::equivalent(out / "hard.txt", out / "a.txt"));
  }
}

TEST_F(UnpackTest, WindowsZipWithoutUnixModes) {
  auto zip = WriteZipBytes("win.zip", {{.name = "dir/", .unix_made = false},
                                       {.name = "dir/f.txt", .data = "x", .unix_made = false}});
  auto r = UnpackArchive(zip, dest());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(ReadFile(dest() / "dir" / "f.txt"), "x");
  EXPECT_EQ(Perms(dest() / "dir" / "f.txt"), fs::perms(0644));
}

TEST_F(UnpackTest, ExistingDestinationIsReused) {
  ASSERT_TRUE(WriteZip(MakeTree(base() / "src"), base() / "pkg.zip"));
  ASSERT_TRUE(UnpackArchive(base() / "pkg.zip", dest()));
  WriteFile(dest() / "marker", "kept");
  fs::remove(base() / "pkg.zip");  // Ray deletes archives once unpacked.
  auto r = UnpackArchive(base() / "pkg.zip", dest());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(ReadFile(dest() / "marker"), "kept");
  // Trailing slash: same destination.
  r = UnpackArchive(base() / "pkg.zip", dest().string() + "/");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, dest());
}

TEST_F(UnpackTest, DestinationThatIsAFile) {
  ASSERT_TRUE(WriteZip(MakeTree(base() / "src"), base() / "pkg.zip"));
  WriteFile(dest(), "not a dir");
  auto r = UnpackArchive(base() / "pkg.zip", dest());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kValueError);
}

TEST_F(UnpackTest, MissingArchiveAndUnsupportedType) {
  ExpectRejected(base() / "missing.zip", "does not exist", ErrorKind::kNotFound);
  WriteFile(base() / "x.rar", "Rar!\x1a\x07");
  ExpectRejected(base() / "x.rar", "unsupported", ErrorKind::kValueError);
}

TEST_F(UnpackTest, CreatesMissingParents) {
  ASSERT_TRUE(WriteZip(MakeTree(base() / "src"), base() / "pkg.zip"));
  auto r = UnpackArchive(base() / "pkg.zip", base() / "a" / "b" / "pkg");
  ASSERT_TRUE(r) << r.error().ToString();
  ExpectTree(*r);
}

TEST_F(UnpackTest, RejectsAbsolutePaths) {
  const std::string evil = (outside() / "evil.txt").string();
  ExpectRejected(WriteZipBytes("abs.zip", {{.name = "ok.txt", .data = "fine"},
                                           {.name = evil, .data = "pwned"}}),
                 evil);
  MakeTar(base() / "abs.tar.gz", {{.name = "ok.txt", .data = "fine"}, {.name = evil, .data = "x"}});
  ExpectRejected(base() / "abs.tar.gz", "absolute");
}

TEST_F(UnpackTest, RejectsDotDot) {
  ExpectRejected(WriteZipBytes("up.zip", {{.name = "ok.txt", .data = "fine"},
                                          {.name = "../outside/evil.txt", .data = "pwned"}}),
                 "../outside/evil.txt");
  ExpectRejected(WriteZipBytes("up2.zip", {{.name = "a/../../outside/evil.txt", .data = "x"}}),
                 "'..'");
  MakeTar(base() / "up.tar.xz", {{.name = "./../outside/evil.txt", .data = "x"}},
          ARCHIVE_FILTER_XZ);
  ExpectRejected(base() / "up.tar.xz", "./../outside/evil.txt");
}

TEST_F(UnpackTest, RejectsSymlinkToEtc) {
  MakeTar(base() / "etc.tgz", {{.name = "etc", .type = AE_IFLNK, .link = "/etc"}});
  ExpectRejected(base() / "etc.tgz", "'etc' is a symlink to the absolute path '/etc'");
  ExpectRejected(
      WriteZipBytes("etc.zip", {{.name = "etc", .data = "/etc", .unix_mode = S_IFLNK | 0777}}),
      "/etc");
}

TEST_F(UnpackTest, RejectsEscapingRelativeSymlinks) {
  MakeTar(base() / "rel.tgz", {{.name = "d/l", .type = AE_IFLNK, .link = "../../outside"}});
  ExpectRejected(base() / "rel.tgz", "outside the destination");
  // Each link stays inside on its own; together b resolves to the parent.
  MakeTar(base() / "chain.tgz", {{.name = "a", .type = AE_IFLNK, .link = "."},
                                 {.name = "b", .type = AE_IFLNK, .link = "a/.."},
                                 {.name = "f.txt", .data = "x"}});
  ExpectRejected(base() / "chain.tgz", "'b' is a symlink to 'a/..'");
  MakeTar(base() / "loop.tgz", {{.name = "a", .type = AE_IFLNK, .link = "b"},
                                {.name = "b", .type = AE_IFLNK, .link = "a"}});
  ExpectRejected(base() / "loop.tgz", "which loops");
}

TEST_F(UnpackTest, RejectsFilesWrittenThroughSymlinks) {
  // Through a link that escapes: the link itself is refused.
  MakeTar(base() / "out1.tgz", {{.name = "l", .type = AE_IFLNK, .link = outside().string()},
                                {.name = "l/pwned", .data = "x"}});
  ExpectRejected(base() / "out1.tgz", "'l'");
  // Through a link that stays inside: still refused, writing never follows links.
  MakeTar(base() / "out2.tgz", {{.name = "sub/", .type = AE_IFDIR, .perm = 0755},
                                {.name = "l", .type = AE_IFLNK, .link = "sub"},
                                {.name = "l/f.txt", .data = "x"}});
  ExpectRejected(base() / "out2.tgz", "'l/f.txt' would be written through the symlink 'l'");
  MakeTar(base() / "out3.tgz",
          {{.name = "l", .type = AE_IFLNK, .link = "sub"}, {.name = "l", .data = "x"}});
  ExpectRejected(base() / "out3.tgz", "replaces the symlink");
}

TEST_F(UnpackTest, InternalSymlinksAreKept) {
  MakeTar(base() / "ok.tgz", {{.name = "sub/f.txt", .data = "x"},
                              {.name = "lf", .type = AE_IFLNK, .link = "sub/f.txt"},
                              {.name = "sub/ld", .type = AE_IFLNK, .link = "../sub"},
                              {.name = "chain", .type = AE_IFLNK, .link = "sub/ld/f.txt"}});
  auto r = UnpackArchive(base() / "ok.tgz", dest());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(ReadFile(dest() / "lf"), "x");
  EXPECT_EQ(ReadFile(dest() / "chain"), "x");
  EXPECT_EQ(fs::read_symlink(dest() / "sub" / "ld"), "../sub");
}

TEST_F(UnpackTest, Hardlinks) {
  WriteFile(base() / "secret" / "s", "s");
  MakeTar(base() / "h1.tgz", {{.name = "h", .hardlink = "../secret/s"}});
  ExpectRejected(base() / "h1.tgz", "'..'");
  EXPECT_EQ(fs::hard_link_count(base() / "secret" / "s"), 1u);
  MakeTar(base() / "h2.tgz", {{.name = "h", .hardlink = "/etc/passwd"}});
  ExpectRejected(base() / "h2.tgz", "absolute hardlink target");
  MakeTar(base() / "h3.tgz", {{.name = "h", .hardlink = "later"}, {.name = "later", .data = "x"}});
  ExpectRejected(base() / "h3.tgz", "not a file extracted before it");
  MakeTar(base() / "h4.tgz",
          {{.name = "d/", .type = AE_IFDIR, .perm = 0755}, {.name = "h", .hardlink = "d"}});
  ExpectRejected(base() / "h4.tgz", "not a file extracted before it");
}

TEST_F(UnpackTest, RejectsDevicesAndFifos) {
  MakeTar(base() / "chr.tgz", {{.name = "ok", .data = "x"}, {.name = "null", .type = AE_IFCHR}});
  ExpectRejected(base() / "chr.tgz", "'null' is a device file");
  MakeTar(base() / "blk.tgz", {{.name = "sda", .type = AE_IFBLK}});
  ExpectRejected(base() / "blk.tgz", "device file");
  MakeTar(base() / "fifo.tgz", {{.name = "pipe", .type = AE_IFIFO}});
  ExpectRejected(base() / "fifo.tgz", "'pipe' is a FIFO");
  ExpectRejected(WriteZipBytes("dev.zip", {{.name = "null", .unix_mode = S_IFCHR | 0666}}),
                 "'null'");
  ExpectRejected(WriteZipBytes("sock.zip", {{.name = "s", .unix_mode = S_IFSOCK | 0666}}), "'s'");
}

TEST_F(UnpackTest, RejectsDeclaredSizeAboveLimit) {
  MakeTar(base() / "big.tgz", {{.name = "a", .data = std::string(600 << 10, 'a')},
                               {.name = "b", .data = std::string(600 << 10, 'b')}});
  UnpackOptions options;
  options.max_total_bytes = 1 << 20;
  ExpectRejected(base() / "big.tgz", "'b' brings the declared size", ErrorKind::kValueError,
                 options);
  auto zip = WriteZipBytes("big.zip", {{.name = "a", .data = std::string(600 << 10, 'a')},
                                       {.name = "b", .data = std::string(600 << 10, 'b')}});
  ExpectRejected(zip, "'b' brings the declared size", ErrorKind::kValueError, options);
  options.max_total_bytes = 2 << 20;
  EXPECT_TRUE(UnpackArchive(base() / "big.tgz", dest(), options));
}

TEST_F(UnpackTest, RejectsZipBombWithLyingHeaders) {
  // 64 MiB of zeros deflate to ~64 KiB; the headers claim 100 bytes.
  auto zip = WriteZipBytes("bomb.zip", {{.name = "small.txt", .data = "ok"},
                                        {.name = "bomb.bin",
                                         .data = std::string(64 << 20, '\0'),
                                         .deflate = true,
                                         .declared_size = 100}});
  EXPECT_LT(fs::file_size(zip), 1u << 20);
  UnpackOptions options;
  options.max_total_bytes = 8 << 20;
  fs::create_directories(outside());
  auto r = UnpackArchive(zip, dest(), options);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("bomb.bin"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dest()));
  EXPECT_EQ(Listing(base()), (std::set<std::string>{"bomb.zip", "out.lock", "outside"}));
}

TEST_F(UnpackTest, RejectsStoredEntryWithLyingSize) {
  // Stored: 4 MiB of data behind a header that declares 1 byte uncompressed.
  auto zip = WriteZipBytes(
      "z.zip", {{.name = "big.bin", .data = std::string(4 << 20, 'z'), .declared_size = 1}});
  UnpackOptions options;
  options.max_total_bytes = 1 << 20;
  ExpectRejected(zip, "'big.bin'", ErrorKind::kValueError, options);
}

TEST_F(UnpackTest, RejectsTooManyEntries) {
  std::vector<RawEntry> entries;
  for (int i = 0; i < 20; ++i) entries.push_back({.name = "f" + std::to_string(i), .data = "x"});
  auto zip = WriteZipBytes("many.zip", entries);
  UnpackOptions options;
  options.max_entries = 10;
  ExpectRejected(zip, "'f10' exceeds the limit of 10 entries", ErrorKind::kValueError, options);
  options.max_entries = 20;
  EXPECT_TRUE(UnpackArchive(zip, dest(), options));
}

TEST_F(UnpackTest, RejectsTruncatedArchives) {
  ASSERT_TRUE(WriteZip(MakeTree(base() / "src"), base() / "full.zip"));
  std::string bytes = ReadFile(base() / "full.zip");
  WriteFile(base() / "half.zip", bytes.substr(0, bytes.size() / 2));
  ExpectRejected(base() / "half.zip", "corrupt", ErrorKind::kCorruption);
  // Central directory intact, data cut short inside the last entry's body.
  MakeTar(base() / "full.tar.gz", {{.name = "a", .data = std::string(200000, 'a')},
                                   {.name = "b", .data = std::string(200000, 'b')}});
  bytes = ReadFile(base() / "full.tar.gz");
  WriteFile(base() / "half.tar.gz", bytes.substr(0, bytes.size() - 40));
  ExpectRejected(base() / "half.tar.gz", "corrupt", ErrorKind::kCorruption);
}

TEST_F(UnpackTest, RejectsGarbage) {
  std::string noise(4096, '\0');
  std::mt19937 rng(3);
  for (char& c : noise) c = static_cast<char>(rng());
  WriteFile(base() / "noise.zip", noise);
  ExpectRejected(base() / "noise.zip", "magic", ErrorKind::kCorruption);
  WriteFile(base() / "pk.zip", std::string("PK\x03\x04", 4) + noise);
  ExpectRejected(base() / "pk.zip", "corrupt", ErrorKind::kCorruption);
  WriteFile(base() / "gz.tar.gz", std::string("\x1f\x8b\x08\x00", 4) + noise);
  ExpectRejected(base() / "gz.tar.gz", "corrupt", ErrorKind::kCorruption);
  WriteFile(base() / "empty.tar.gz", "");
  ExpectRejected(base() / "empty.tar.gz", "magic", ErrorKind::kCorruption);
}

TEST_F(UnpackTest, RejectsBadCrc) {
  auto zip = WriteZipBytes("crc.zip", {{.name = "f.txt", .data = "0123456789"}});
  std::string bytes = ReadFile(zip);
  bytes[30 + 5 + 2] = 'X';
  WriteFile(zip, bytes);
  ExpectRejected(zip, "f.txt", ErrorKind::kCorruption);
}

// --- Ray's top-level directory rule. ---

std::set<std::string> UnpackStripped(const fs::path& archive, const fs::path& dest) {
  UnpackOptions options;
  options.strip_top_level = StripTopLevel::kYes;
  auto r = UnpackArchive(archive, dest, options);
  EXPECT_TRUE(r) << r.error().ToString();
  return Listing(dest);
}

TEST_F(UnpackTest, StripSingleTopLevelDirectory) {
  auto zip = WriteZipBytes("one.zip", {{.name = "top/", .unix_mode = S_IFDIR | 0755},
                                       {.name = "top/a.txt", .data = "a"},
                                       {.name = "top/sub/b.txt", .data = "b"}});
  EXPECT_EQ(UnpackStripped(zip, dest()), (std::set<std::string>{"a.txt", "sub"}));
  EXPECT_EQ(ReadFile(dest() / "sub" / "b.txt"), "b");
  EXPECT_EQ(Perms(dest()), fs::perms(0755));
  EXPECT_EQ(Listing(base()), (std::set<std::string>{"one.zip", "out", "out.lock"}));
  // Without kYes the layout is kept.
  auto r = UnpackArchive(zip, base() / "kept");
  ASSERT_TRUE(r);
  EXPECT_EQ(Listing(*r), (std::set<std::string>{"top"}));
}

TEST_F(UnpackTest, StripIgnoresAndDropsMacosx) {
  auto zip = WriteZipBytes("mac.zip", {{.name = "__MACOSX/top/._a.txt", .data = "junk"},
                                       {.name = "top/a.txt", .data = "a"},
                                       {.name = "__MACOSX/._top", .data = "junk"}});
  EXPECT_EQ(UnpackStripped(zip, dest()), (std::set<std::string>{"a.txt"}));
  EXPECT_EQ(Listing(base()), (std::set<std::string>{"mac.zip", "out", "out.lock"}));
}

TEST_F(UnpackTest, NoStripWithTopLevelFileOrTwoDirectories) {
  auto file = WriteZipBytes("file.zip",
                            {{.name = "top/a.txt", .data = "a"}, {.name = ".hidden", .data = "h"}});
  EXPECT_EQ(UnpackStripped(file, base() / "f"), (std::set<std::string>{"top", ".hidden"}));
  auto two = WriteZipBytes("two.zip", {{.name = "one/a.txt", .data = "a"},
                                       {.name = "two/b.txt", .data = "b"},
                                       {.name = "__MACOSX/x", .data = "m"}});
  EXPECT_EQ(UnpackStripped(two, base() / "t"), (std::set<std::string>{"one", "two", "__MACOSX"}));
  auto mac_only = WriteZipBytes("mac.zip", {{.name = "__MACOSX/x", .data = "m"}});
  EXPECT_EQ(UnpackStripped(mac_only, base() / "m"), (std::set<std::string>{"__MACOSX"}));
}

TEST_F(UnpackTest, StripWorksWithWriterPrefixAndTarDotSlash) {
  auto entries = MakeTree(base() / "src");
  ZipOptions zip_options;
  zip_options.top_level_dir = "my_module";
  ASSERT_TRUE(WriteZip(entries, base() / "mod.zip", zip_options));
  UnpackStripped(base() / "mod.zip", dest());
  ExpectTree(dest());
  MakeTar(base() / "t.tgz", {{.name = "./", .type = AE_IFDIR, .perm = 0755},
                             {.name = "./top/", .type = AE_IFDIR, .perm = 0755},
                             {.name = "./top/a.txt", .data = "a"}});
  EXPECT_EQ(UnpackStripped(base() / "t.tgz", base() / "t"), (std::set<std::string>{"a.txt"}));
}

TEST_F(UnpackTest, SymlinksAreCheckedAgainstTheStrippedRoot) {
  MakeTar(base() / "s.tgz", {{.name = "top/x", .data = "x"},
                             {.name = "top/l", .type = AE_IFLNK, .link = "../top/x"}});
  auto r = UnpackArchive(base() / "s.tgz", base() / "plain");  // Inside without stripping.
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(ReadFile(*r / "top" / "l"), "x");
  UnpackOptions options;
  options.strip_top_level = StripTopLevel::kYes;
  ExpectRejected(base() / "s.tgz", "'top/l' is a symlink to '../top/x', which leads outside",
                 ErrorKind::kValueError, options);
}

// --- Concurrency and crash leftovers. ---

fs::path MakeBigZip(const fs::path& base) {
  for (int i = 0; i < 200; ++i) {
    WriteFile(base / "src" / ("d" + std::to_string(i % 10)) / ("f" + std::to_string(i)),
              std::string(20000 + i, static_cast<char>('a' + i % 26)));
  }
  EXPECT_TRUE(WriteZip(EntriesOf(base / "src"), base / "big.zip"));
  return base / "big.zip";
}

void ExpectBigTree(const fs::path& dest) {
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(ReadFile(dest / ("d" + std::to_string(i % 10)) / ("f" + std::to_string(i))),
              std::string(20000 + i, static_cast<char>('a' + i % 26)));
  }
}

TEST_F(UnpackTest, EightThreadsProduceOneDirectory) {
  const fs::path zip = MakeBigZip(base());
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto r = UnpackArchive(zip, dest());
      ok[t] = r && *r == dest() ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(std::count(ok.begin(), ok.end(), 1), 8);
  EXPECT_EQ(Listing(base()), (std::set<std::string>{"src", "big.zip", "out", "out.lock"}));
  ExpectBigTree(dest());
}

TEST_F(UnpackTest, ThreeProcessesProduceOneDirectory) {
  const fs::path zip = MakeBigZip(base());
  std::vector<pid_t> children;
  for (int i = 0; i < 3; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto r = UnpackArchive(zip, dest());
      ::_exit(r && fs::exists(dest() / "d0" / "f0") ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  EXPECT_EQ(Listing(base()), (std::set<std::string>{"src", "big.zip", "out", "out.lock"}));
  ExpectBigTree(dest());
}

TEST_F(UnpackTest, StaleTemporariesOfThisDestinationAreRemoved) {
  ASSERT_TRUE(WriteZip(MakeTree(base() / "src"), base() / "pkg.zip"));
  WriteFile(base() / ".out.tmp-AbC123" / "half" / "written", "x");  // A crashed unpacker's.
  WriteFile(base() / ".out.tmp-AbC1234" / "f", "x");                // Not one of ours.
  ASSERT_TRUE(UnpackArchive(base() / "pkg.zip", dest()));
  EXPECT_FALSE(fs::exists(base() / ".out.tmp-AbC123"));
  EXPECT_TRUE(fs::exists(base() / ".out.tmp-AbC1234"));
  ExpectTree(dest());
}

}  // namespace
}  // namespace strata::packaging
