#include "packaging/sha256_batch.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "util/digest.h"

namespace strata::packaging {
namespace {

std::vector<std::string> Hex(const std::vector<std::string>& inputs) {
  std::vector<std::string_view> views(inputs.begin(), inputs.end());
  std::vector<Sha256Digest> digests(inputs.size());
  Sha256Batch(views, digests);
  std::vector<std::string> hex;
  for (const Sha256Digest& d : digests) hex.push_back(util::ToHex(d.data(), d.size()));
  return hex;
}

std::vector<std::string> Expected(const std::vector<std::string>& inputs) {
  std::vector<std::string> hex;
  for (const std::string& input : inputs) hex.push_back(util::Sha256Hex(input));
  return hex;
}

std::string Random(std::mt19937_64& rng, std::size_t size) {
  std::string s(size, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(Sha256Batch, KnownVectors) {
  EXPECT_EQ(Hex({"", "abc"}),
            (std::vector<std::string>{
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}));
  EXPECT_TRUE(Hex({}).empty());
}

// Every padding case (one or two tail blocks, whole blocks only) in every lane, with more inputs
// than lanes so that lanes are refilled.
TEST(Sha256Batch, EveryLengthAroundTheBlockSize) {
  std::mt19937_64 rng(7);
  std::vector<std::string> inputs;
  for (std::size_t size = 0; size <= 200; ++size) inputs.push_back(Random(rng, size));
  EXPECT_EQ(Hex(inputs), Expected(inputs));
}

TEST(Sha256Batch, ManyFilesOfMixedSizes) {
  std::mt19937_64 rng(11);
  std::vector<std::string> inputs;
  for (int i = 0; i < 100; ++i) inputs.push_back(Random(rng, rng() % 40000));
  EXPECT_EQ(Hex(inputs), Expected(inputs));
}

// A long input among short ones is left to run alone: it must still come out right.
TEST(Sha256Batch, OneLongInputAmongShortOnes) {
  std::mt19937_64 rng(13);
  std::vector<std::string> inputs;
  for (int i = 0; i < 20; ++i) inputs.push_back(Random(rng, 100 + i));
  inputs.insert(inputs.begin() + 5, Random(rng, 300000));
  EXPECT_EQ(Hex(inputs), Expected(inputs));
}

TEST(Sha256Batch, FewAndRepeatedInputs) {
  const std::vector<std::string> one = {std::string(1000, 'x')};
  EXPECT_EQ(Hex(one), Expected(one));
  const std::vector<std::string> same(40, std::string(5000, 'y'));
  EXPECT_EQ(Hex(same), Expected(same));
}

}  // namespace
}  // namespace strata::packaging
