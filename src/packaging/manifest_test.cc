#include "packaging/manifest.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>

#include "packaging/blob_store.h"
#include "packaging/package.h"
#include "util/temp_dir_testing.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;

class PackageTest : public ::testing::Test {
 protected:
  void Write(const fs::path& path, const std::string& content) {
    util::testing::WriteFile(path, content);
  }
  std::string UriOf(const fs::path& root, TopLevel top = TopLevel::kContentsAtRoot) {
    PackageOptions options;
    options.walk.default_excludes = DefaultExcludes();
    options.walk.read_gitignore = true;
    options.top_level = top;
    auto package = PrepareLocalPackage(root, options);
    EXPECT_TRUE(package) << (package ? "" : package.error().message);
    return package ? package->manifest.Uri() : "";
  }
  util::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

TEST_F(PackageTest, UriShape) {
  Write(dir_ / "a" / "main.py", "print(1)\n");
  std::string uri = UriOf(dir_ / "a");
  ASSERT_EQ(uri.size(), std::string("gcs://_strata_pkg_").size() + 32 + 4);
  EXPECT_TRUE(uri.starts_with("gcs://_strata_pkg_"));
  EXPECT_TRUE(uri.ends_with(".zip"));
}

TEST_F(PackageTest, SameContentSameIdentityAnywhere) {
  for (const char* root : {"one", "two/nested"}) {
    Write(dir_ / root / "main.py", "print(1)\n");
    Write(dir_ / root / "pkg" / "util.py", "x = 1\n");
    fs::create_directories(dir_ / root / "empty");
  }
  fs::last_write_time(dir_ / "two/nested/main.py",
                      fs::file_time_type::clock::now() - std::chrono::hours(5));
  EXPECT_EQ(UriOf(dir_ / "one"), UriOf(dir_ / "two" / "nested"));
}

TEST_F(PackageTest, AnyChangeChangesIdentity) {
  fs::path root = dir_ / "p";
  Write(root / "main.py", "print(1)\n");
  std::string base = UriOf(root);
  Write(root / "main.py", "print(2)\n");
  std::string edited = UriOf(root);
  EXPECT_NE(base, edited);
  fs::rename(root / "main.py", root / "app.py");
  std::string renamed = UriOf(root);
  EXPECT_NE(edited, renamed);
  fs::permissions(root / "app.py", fs::perms::owner_exec, fs::perm_options::add);
  std::string executable = UriOf(root);
  EXPECT_NE(renamed, executable);
  fs::create_directories(root / "empty_dir");
  std::string with_dir = UriOf(root);
  EXPECT_NE(executable, with_dir);
  fs::remove(root / "empty_dir");
  EXPECT_EQ(UriOf(root), executable);
}

TEST_F(PackageTest, ExcludedFilesDoNotCount) {
  fs::path root = dir_ / "p";
  Write(root / "main.py", "print(1)\n");
  std::string base = UriOf(root);
  Write(root / "__pycache__" / "main.cpython-311.pyc", "junk");
  Write(root / ".git" / "HEAD", "ref");
  EXPECT_EQ(UriOf(root), base);
}

TEST_F(PackageTest, PyModulesTopLevelFolderIsPartOfIdentity) {
  Write(dir_ / "mod_a" / "__init__.py", "");
  Write(dir_ / "mod_b" / "__init__.py", "");
  EXPECT_EQ(UriOf(dir_ / "mod_a"), UriOf(dir_ / "mod_b"));
  EXPECT_NE(UriOf(dir_ / "mod_a", TopLevel::kDirectoryName),
            UriOf(dir_ / "mod_b", TopLevel::kDirectoryName));
}

TEST_F(PackageTest, SizeLimitNamesLargestFilesAndDirectories) {
  fs::path root = dir_ / "p";
  Write(root / "data" / "big.bin", std::string(3000, 'x'));
  Write(root / "data" / "mid.bin", std::string(2000, 'x'));
  Write(root / "small.txt", "hi");
  PackageOptions options;
  options.max_bytes = 4096;
  auto package = PrepareLocalPackage(root, options);
  ASSERT_FALSE(package);
  EXPECT_EQ(package.error().kind, util::ErrorKind::kValueError);
  const std::string& message = package.error().message;
  EXPECT_TRUE(message.starts_with("Package size (0.00MiB) exceeds the maximum size of 0.00MiB."))
      << message;
  EXPECT_LT(message.find("data/big.bin"), message.find("data/mid.bin"));
  EXPECT_NE(message.find("; largest directories: data/ (0.00MiB)."), std::string::npos) << message;
  EXPECT_NE(message.find("'excludes'"), std::string::npos);
}

TEST_F(PackageTest, LargeFilesAreWarned) {
  fs::path root = dir_ / "p";
  Write(root / "big.bin", std::string(kLargeFileWarningBytes, 'x'));
  Write(root / "small.bin", std::string(10, 'x'));
  PackageOptions options;
  auto package = PrepareLocalPackage(root, options);
  ASSERT_TRUE(package);
  ASSERT_EQ(package->warnings.size(), 1u);
  EXPECT_TRUE(package->warnings[0].starts_with("File big.bin is very large (10.00MiB)."));
}

TEST_F(PackageTest, MaxPackageBytesFromEnvironment) {
  setenv("STRATA_MAX_PACKAGE_SIZE", "1234", 1);
  EXPECT_EQ(*MaxPackageBytesFromEnvironment(), 1234u);
  setenv("STRATA_MAX_PACKAGE_SIZE", "12k", 1);
  auto bad = MaxPackageBytesFromEnvironment();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("STRATA_MAX_PACKAGE_SIZE"), std::string::npos);
  unsetenv("STRATA_MAX_PACKAGE_SIZE");
  EXPECT_EQ(*MaxPackageBytesFromEnvironment(), kDefaultMaxPackageBytes);
}

TEST_F(PackageTest, CreatePackageArchiveMatchesTheTwoStepPath) {
  fs::path root = dir_ / "p";
  for (int i = 0; i < 50; ++i)
    Write(root / ("d" + std::to_string(i % 5)) / ("f" + std::to_string(i)),
          std::string(i * 100, 'a' + i % 26));
  PackageOptions options;
  auto prepared = PrepareLocalPackage(root, options);
  ASSERT_TRUE(prepared);
  ASSERT_TRUE(WritePackageArchive(*prepared, dir_ / "two_step.zip").ok());
  auto created = CreatePackageArchive(root, options, dir_ / "at_once.zip");
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->manifest.Uri(), prepared->manifest.Uri());
  std::ifstream a(dir_ / "two_step.zip", std::ios::binary),
      b(dir_ / "at_once.zip", std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(a)), {}),
            std::string((std::istreambuf_iterator<char>(b)), {}));
  options.max_bytes = 10;
  EXPECT_FALSE(CreatePackageArchive(root, options, dir_ / "too_big.zip"));
  EXPECT_FALSE(fs::exists(dir_ / "too_big.zip"));
}

TEST(Manifest, JsonRoundTripAndValidation) {
  std::string sha(64, 'a');
  auto manifest = Manifest::FromEntries(
      {{"a.py", EntryType::kFile, true, 3, sha}, {"empty", EntryType::kDirectory}});
  ASSERT_TRUE(manifest);
  auto back = Manifest::FromJson(manifest->ToJson());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->digest(), manifest->digest());
  EXPECT_EQ(back->entries()[0].executable, true);
  EXPECT_FALSE(Manifest::FromEntries(
      {{"b", EntryType::kFile, false, 1, sha}, {"a", EntryType::kFile, false, 1, sha}}));
  EXPECT_FALSE(Manifest::FromEntries({{"a", EntryType::kFile, false, 1, "xyz"}}));
  EXPECT_FALSE(Manifest::FromEntries({{"/abs", EntryType::kDirectory}}));
  EXPECT_FALSE(
      Manifest::FromJson(util::Json::parse(R"({"entries": [{"path": "a", "type": "link"}]})")));
}

TEST_F(PackageTest, BlobStoreUploadsOnlyMissingFiles) {
  fs::path root = dir_ / "project";
  for (int i = 0; i < 20; ++i)
    Write(root / ("file" + std::to_string(i) + ".py"), "content " + std::to_string(i));
  auto store = BlobStore::Open(dir_ / "store");
  ASSERT_TRUE(store);
  auto upload = [&](const LocalPackage& package) {
    std::vector<std::string> missing = store->MissingBlobs(package.manifest);
    for (const std::string& sha : missing) {
      for (const PackageEntry& e : package.entries) {
        if (e.type == EntryType::kFile && *Sha256File(e.source) == sha) {
          EXPECT_TRUE(store->PutBlobFromFile(sha, e.source).ok());
          break;
        }
      }
    }
    auto uri = store->CommitPackage(package.manifest);
    EXPECT_TRUE(uri) << (uri ? "" : uri.error().message);
    return missing.size();
  };
  PackageOptions options;
  auto first = PrepareLocalPackage(root, options);
  ASSERT_TRUE(first);
  EXPECT_EQ(upload(*first), 20u);
  Write(root / "file7.py", "edited");
  auto second = PrepareLocalPackage(root, options);
  ASSERT_TRUE(second);
  EXPECT_EQ(upload(*second), 1u);
  EXPECT_NE(first->manifest.Uri(), second->manifest.Uri());
  // The assembled archive has the same bytes as the one written locally.
  ASSERT_TRUE(WritePackageArchive(*second, dir_ / "local.zip").ok());
  auto stored = store->PackagePath(second->manifest.PackageName());
  ASSERT_TRUE(stored);
  std::ifstream a(dir_ / "local.zip", std::ios::binary), b(*stored, std::ios::binary);
  std::string bytes_a((std::istreambuf_iterator<char>(a)), {}),
      bytes_b((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(bytes_a, bytes_b);
}

TEST_F(PackageTest, BlobStoreRejectsBadInput) {
  auto store = BlobStore::Open(dir_ / "store");
  ASSERT_TRUE(store);
  std::string wrong(64, '0');
  util::Status mismatch = store->PutBlob(wrong, "hello");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().kind, util::ErrorKind::kValueError);
  EXPECT_FALSE(store->HasBlob(wrong));
  EXPECT_TRUE(fs::is_empty(dir_ / "store" / "tmp"));
  EXPECT_FALSE(store->PutBlob("../../etc", "x").ok());
  EXPECT_FALSE(store->PutPackageArchive("../escape", dir_ / "nothing").ok());
  auto manifest = Manifest::FromEntries({{"a", EntryType::kFile, false, 1, std::string(64, 'b')}});
  ASSERT_TRUE(manifest);
  auto commit = store->CommitPackage(*manifest);
  ASSERT_FALSE(commit);
  EXPECT_EQ(commit.error().kind, util::ErrorKind::kNotFound);
  EXPECT_FALSE(store->HasPackage(manifest->PackageName()));
}

TEST_F(PackageTest, BlobStoreListPackagesSortedWithSizeAndTime) {
  auto store = BlobStore::Open(dir_ / "store");
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->ListPackages().empty());
  Write(dir_ / "b.zip", std::string(300, 'b'));
  Write(dir_ / "a.whl", std::string(7, 'a'));
  ASSERT_TRUE(store->PutPackageArchive("b.zip", dir_ / "b.zip").ok());
  ASSERT_TRUE(store->PutPackageArchive("a.whl", dir_ / "a.whl").ok());
  Write(dir_ / "project" / "main.py", "print(1)\n");
  auto package = PrepareLocalPackage(dir_ / "project", {});
  ASSERT_TRUE(package);
  ASSERT_TRUE(store->PutBlob(package->manifest.entries()[0].sha256, "print(1)\n").ok());
  auto uri = store->CommitPackage(package->manifest);
  ASSERT_TRUE(uri) << uri.error().message;
  // Neither a directory nor a symbolic link is a package.
  fs::path packages = dir_ / "store" / "packages";
  fs::create_directories(packages / "a_dir.zip");
  fs::create_symlink(packages / "b.zip", packages / "link.zip");
  auto old = fs::file_time_type::clock::now() - std::chrono::hours(3);
  fs::last_write_time(packages / "b.zip", old);

  std::vector<BlobStore::PackageInfo> listed = store->ListPackages();
  ASSERT_EQ(listed.size(), 3u);
  std::string committed = package->manifest.PackageName();
  EXPECT_EQ(listed[0].name, committed);  // "_strata_pkg_..." sorts before lowercase
  EXPECT_EQ(listed[1].name, "a.whl");
  EXPECT_EQ(listed[2].name, "b.zip");
  EXPECT_EQ(listed[0].size, fs::file_size(packages / committed));
  EXPECT_EQ(listed[1].size, 7u);
  EXPECT_EQ(listed[2].size, 300u);
  EXPECT_EQ(listed[2].modified, old);
  EXPECT_GT(listed[1].modified, old);
}

class BlobStoreGcTest : public PackageTest {
 protected:
  void SetUp() override {
    auto store = BlobStore::Open(dir_ / "store");
    ASSERT_TRUE(store);
    store_.emplace(std::move(store).value());
  }
  // Stores `content` as a blob and returns its digest.
  std::string Blob(const std::string& content) {
    Write(dir_ / "scratch", content);
    std::string sha = *Sha256File(dir_ / "scratch");
    EXPECT_TRUE(store_->PutBlob(sha, content).ok());
    return sha;
  }
  // Uploads and commits a directory holding `files`; returns the package.
  LocalPackage Commit(const std::string& name, const std::vector<std::string>& files) {
    for (size_t i = 0; i < files.size(); ++i)
      Write(dir_ / name / ("f" + std::to_string(i)), files[i]);
    auto package = PrepareLocalPackage(dir_ / name, {});
    EXPECT_TRUE(package);
    for (const PackageEntry& e : package->entries)
      EXPECT_TRUE(store_->PutBlobFromFile(*Sha256File(e.source), e.source).ok());
    EXPECT_TRUE(store_->CommitPackage(package->manifest));
    return *package;
  }
  fs::path BlobFile(const std::string& sha) const {
    return dir_ / "store" / "blobs" / sha.substr(0, 2) / sha;
  }
  // Makes every blob look written two hours ago.
  void AgeAllBlobs() {
    for (const auto& entry : fs::recursive_directory_iterator(dir_ / "store" / "blobs")) {
      if (entry.is_regular_file()) fs::last_write_time(entry.path(), Ago(std::chrono::hours(2)));
    }
  }
  static fs::file_time_type Ago(std::chrono::seconds age) {
    return fs::file_time_type::clock::now() - age;
  }
  std::optional<BlobStore> store_;
};

TEST_F(BlobStoreGcTest, RemovesOnlyOldUnreferencedBlobs) {
  LocalPackage kept = Commit("kept", {"shared", "only kept"});
  std::string orphan = Blob("orphan");
  AgeAllBlobs();
  std::string young_orphan = Blob("young orphan");  // an upload not committed yet

  auto removed = store_->CollectBlobs(Ago(std::chrono::hours(1)));
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, 1u);
  EXPECT_FALSE(store_->HasBlob(orphan));
  EXPECT_TRUE(store_->HasBlob(young_orphan));
  EXPECT_TRUE(store_->MissingBlobs(kept.manifest).empty());

  // Once the package is deleted its blobs go too, except one that another
  // package still shares.
  LocalPackage other = Commit("other", {"shared"});
  ASSERT_TRUE(store_->DeletePackage(kept.manifest.PackageName()).ok());
  AgeAllBlobs();
  removed = store_->CollectBlobs(Ago(std::chrono::hours(1)));
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, 2u);  // "only kept" and the young orphan, now old
  EXPECT_TRUE(store_->MissingBlobs(other.manifest).empty());
  EXPECT_TRUE(store_->HasPackage(other.manifest.PackageName()));
  removed = store_->CollectBlobs(fs::file_time_type::clock::now());
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, 0u);
}

TEST_F(BlobStoreGcTest, LeavesFilesItDidNotWrite) {
  std::string sha = Blob("orphan");
  fs::path blobs = dir_ / "store" / "blobs";
  Write(blobs / sha.substr(0, 2) / "notes.txt", "mine");
  Write(blobs / "ab" / sha, "misplaced");  // a digest under the wrong prefix
  Write(blobs / "README", "top");
  fs::create_symlink(BlobFile(sha), blobs / sha.substr(0, 2) / std::string(64, 'f'));
  AgeAllBlobs();
  auto removed = store_->CollectBlobs(fs::file_time_type::clock::now());
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, 1u);
  EXPECT_FALSE(fs::exists(BlobFile(sha)));
  EXPECT_TRUE(fs::exists(blobs / sha.substr(0, 2) / "notes.txt"));
  EXPECT_TRUE(fs::exists(blobs / "ab" / sha));
  EXPECT_TRUE(fs::exists(blobs / "README"));
  EXPECT_TRUE(fs::is_symlink(blobs / sha.substr(0, 2) / std::string(64, 'f')));
}

TEST_F(BlobStoreGcTest, BlobsReusedByAnUploadInFlightAreKept) {
  LocalPackage first = Commit("first", {"reused"});
  ASSERT_TRUE(store_->DeletePackage(first.manifest.PackageName()).ok());
  AgeAllBlobs();
  // A new upload of the same content finds the blob present and will not
  // send it; the collection running before its commit must keep it.
  Write(dir_ / "second" / "f0", "reused");
  auto second = PrepareLocalPackage(dir_ / "second", {});
  ASSERT_TRUE(second);
  EXPECT_TRUE(store_->MissingBlobs(second->manifest).empty());
  auto removed = store_->CollectBlobs(Ago(std::chrono::hours(1)));
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, 0u);
  EXPECT_TRUE(store_->CommitPackage(second->manifest));
}

TEST_F(BlobStoreGcTest, UnreadableManifestFailsWithoutRemovingAnything) {
  std::string orphan = Blob("orphan");
  AgeAllBlobs();
  fs::path manifests = dir_ / "store" / "manifests";
  for (const std::string& bad :
       {std::string("{\"entries\": [tru"),
        std::string(R"({"entries": [{"path": "a", "type": "link"}]})"), std::string("[]")}) {
    Write(manifests / "_strata_pkg_bad.zip.json", bad);
    auto removed = store_->CollectBlobs(fs::file_time_type::clock::now());
    ASSERT_FALSE(removed) << bad;
    EXPECT_EQ(removed.error().kind, util::ErrorKind::kCorruption);
    EXPECT_NE(removed.error().message.find((manifests / "_strata_pkg_bad.zip.json").string()),
              std::string::npos)
        << removed.error().message;
    EXPECT_TRUE(store_->HasBlob(orphan));
  }
  // Files that are not manifests are not read.
  fs::remove(manifests / "_strata_pkg_bad.zip.json");
  Write(manifests / "notes.txt", "not json");
  auto removed = store_->CollectBlobs(fs::file_time_type::clock::now());
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(*removed, 1u);
}

}  // namespace
}  // namespace strata::packaging
