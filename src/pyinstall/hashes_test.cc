#include "pyinstall/hashes.h"

#include <gtest/gtest.h>

#include <string>

#include "util/digest.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall {
namespace {

const std::string kData = "wheel bytes";

TEST(AllowedHashes, AcceptsStrongHashOptionsOnly) {
  AllowedHashes hashes;
  EXPECT_TRUE(hashes.AddOption("sha256:" + util::Sha256Hex(kData)));
  util::Status weak = hashes.AddOption("md5:d41d8cd98f00b204e9800998ecf8427e");
  ASSERT_FALSE(weak);
  EXPECT_EQ(weak.error().message, "Allowed hash algorithms for --hash are sha256, sha384, sha512.");
  util::Status no_colon = hashes.AddOption("sha256");
  ASSERT_FALSE(no_colon);
  EXPECT_NE(no_colon.error().message.find("must be a hash name followed by a value"),
            std::string::npos);
  EXPECT_FALSE(hashes.AddOption("sha256:abc"));                      // too short
  EXPECT_FALSE(hashes.AddOption("sha256:" + std::string(64, 'g')));  // not hex
  EXPECT_TRUE(hashes.AddOption("sha256:" + std::string(64, 'A')));   // uppercase is hex
  EXPECT_TRUE(hashes.Allows("sha256", std::string(64, 'a')));
  EXPECT_EQ(hashes.allowed().at("sha256").size(), 2u);
}

TEST(AllowedHashes, LinkHashesKeepPipsAlgorithmsOnly) {
  AllowedHashes hashes;
  hashes.AddLinkHashes({{"sha256", "AB"}, {"blake2b", "cd"}, {"md5", "ef"}});
  EXPECT_TRUE(hashes.Allows("sha256", "ab"));
  EXPECT_TRUE(hashes.Allows("md5", "ef"));
  EXPECT_FALSE(hashes.allowed().contains("blake2b"));
}

TEST(AllowedHashes, IntersectsLikePip) {
  AllowedHashes options;
  ASSERT_TRUE(options.AddOption("sha256:" + std::string(64, 'a')));
  ASSERT_TRUE(options.AddOption("sha256:" + std::string(64, 'b')));
  AllowedHashes link;
  link.AddLinkHashes({{"sha256", std::string(64, 'b')}});
  AllowedHashes both = options.Intersect(link);
  EXPECT_EQ(both.allowed().at("sha256"), (std::set<std::string>{std::string(64, 'b')}));
  EXPECT_EQ(options.Intersect(AllowedHashes()).allowed(), options.allowed());
  EXPECT_EQ(AllowedHashes().Intersect(link).allowed(), link.allowed());
  AllowedHashes other;
  other.AddLinkHashes({{"sha256", std::string(64, 'c')}});
  AllowedHashes none = options.Intersect(other);
  EXPECT_FALSE(none.empty());  // an algorithm with no digest left: nothing passes
  HashVerifier verifier(none);
  verifier.Update(kData);
  EXPECT_FALSE(verifier.Finish("x.whl"));
}

TEST(HashVerifier, PassesWhenAnyAlgorithmMatchesAcrossChunks) {
  AllowedHashes hashes;
  ASSERT_TRUE(hashes.AddOption("sha256:" + util::Sha256Hex(kData)));
  ASSERT_TRUE(hashes.AddOption("sha512:" + std::string(128, '0')));  // wrong, but sha256 matches
  HashVerifier verifier(hashes);
  verifier.Update("wheel ");
  verifier.Update("");
  verifier.Update("bytes");
  EXPECT_TRUE(verifier.Finish("demo-1.0-py3-none-any.whl"));
  EXPECT_EQ(verifier.digests().at("sha256"), util::Sha256Hex(kData));
  EXPECT_EQ(verifier.digests().at("sha512").size(), 128u);
}

TEST(HashVerifier, EmptyAllowedChecksNothing) {
  HashVerifier verifier{AllowedHashes()};
  verifier.Update(kData);
  EXPECT_TRUE(verifier.Finish("x.whl"));
}

TEST(HashVerifier, MismatchMessageNamesFileExpectedAndGot) {
  AllowedHashes hashes;
  ASSERT_TRUE(hashes.AddOption("sha256:" + std::string(64, 'a')));
  ASSERT_TRUE(hashes.AddOption("sha256:" + std::string(64, 'b')));
  HashVerifier verifier(hashes);
  verifier.Update(kData);
  util::Status status = verifier.Finish("demo-1.0-py3-none-any.whl");
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().kind, util::ErrorKind::kCorruption);
  EXPECT_EQ(status.error().message,
            "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have "
            "updated the package versions, please update the hashes. Otherwise, examine the "
            "package contents carefully; someone may have tampered with them.\n"
            "    demo-1.0-py3-none-any.whl:\n"
            "        Expected sha256 " +
                std::string(64, 'a') + "\n        Expected     or " + std::string(64, 'b') +
                "\n             Got        " + util::Sha256Hex(kData));
}

TEST(HashVerifier, KnownDigestsOfEveryAlgorithm) {
  // Python: hashlib.new(name, b"abc").hexdigest()
  AllowedHashes hashes;
  hashes.AddLinkHashes({
      {"md5", "900150983cd24fb0d6963f7d28e17f72"},
      {"sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"},
      {"sha224", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
      {"sha384",
       "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca1"
       "34c825a7"},
  });
  HashVerifier verifier(hashes);
  verifier.Update("abc");
  EXPECT_TRUE(verifier.Finish("abc"));
  for (const auto& [name, expected] : hashes.allowed()) {
    EXPECT_EQ(verifier.digests().at(name), *expected.begin()) << name;
  }
}

TEST(VerifyFile, ReadsLargeFilesInChunks) {
  util::testing::TempDir dir;
  std::string big(200000, 'x');
  util::testing::WriteFile(dir.path() / "big.whl", big);
  AllowedHashes hashes;
  ASSERT_TRUE(hashes.AddOption("sha256:" + util::Sha256Hex(big)));
  EXPECT_TRUE(VerifyFile(dir.path() / "big.whl", hashes));
  util::testing::WriteFile(dir.path() / "big.whl", big + "y");
  util::Status status = VerifyFile(dir.path() / "big.whl", hashes);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().message.find("    big.whl:\n"), std::string::npos);
  util::Status missing = VerifyFile(dir.path() / "missing.whl", hashes);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, util::ErrorKind::kIOError);
}

}  // namespace
}  // namespace strata::pyinstall
