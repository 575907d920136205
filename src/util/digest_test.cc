#include "util/digest.h"

#include <gtest/gtest.h>

namespace strata::util {
namespace {

TEST(Digest, KnownVectors) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  const unsigned char bytes[] = {0x00, 0xab, 0xff};
  EXPECT_EQ(ToHex(bytes, 3), "00abff");
}

}  // namespace
}  // namespace strata::util
