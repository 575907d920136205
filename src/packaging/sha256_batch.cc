#include "packaging/sha256_batch.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

// GCC 12 takes the undefined pass-through operand inside AVX-512 intrinsics for an uninitialized
// variable (GCC bug 105593); the warning points into the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#define STRATA_AVX512 __attribute__((target("avx512f,avx512bw")))
#define STRATA_SHA_NI __attribute__((target("sha,sse4.1")))

namespace strata::packaging {
namespace {

constexpr std::size_t kLanes = 16;
// A lockstep step costs about as much as 8 blocks hashed with SHA-NI, so with 8 or fewer inputs
// in flight one SHA-NI stream per input is as fast.
constexpr std::size_t kMaxStragglers = 8;

constexpr std::uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

void OpenSslSha256(std::string_view input, Sha256Digest& digest) {
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr);
}

// XOR of three values (ternary-logic truth table 0x96).
STRATA_AVX512 inline __m512i Xor3(__m512i a, __m512i b, __m512i c) {
  return _mm512_ternarylogic_epi32(a, b, c, 0x96);
}

// One 64-byte block for each lane: state[j] holds word j of the 16 lanes' states.
STRATA_AVX512 void Compress16(__m512i state[8], const unsigned char* const blocks[kLanes]) {
  // Transpose the 16x16 matrix of 32-bit words so that w[i] holds word i of every lane.
  __m512i r[kLanes];
  __m512i t[kLanes];
  for (std::size_t l = 0; l < kLanes; ++l) r[l] = _mm512_loadu_si512(blocks[l]);
  for (std::size_t i = 0; i < kLanes; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (std::size_t i = 0; i < kLanes; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  const __m512i big_endian =
      _mm512_broadcast_i32x4(_mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3));
  __m512i w[16];
  for (std::size_t i = 0; i < 4; ++i) {
    const __m512i ab_lo = _mm512_shuffle_i32x4(r[i], r[4 + i], 0x44);
    const __m512i ab_hi = _mm512_shuffle_i32x4(r[i], r[4 + i], 0xEE);
    const __m512i cd_lo = _mm512_shuffle_i32x4(r[8 + i], r[12 + i], 0x44);
    const __m512i cd_hi = _mm512_shuffle_i32x4(r[8 + i], r[12 + i], 0xEE);
    w[i] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(ab_lo, cd_lo, 0x88), big_endian);
    w[4 + i] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(ab_lo, cd_lo, 0xDD), big_endian);
    w[8 + i] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(ab_hi, cd_hi, 0x88), big_endian);
    w[12 + i] = _mm512_shuffle_epi8(_mm512_shuffle_i32x4(ab_hi, cd_hi, 0xDD), big_endian);
  }

  __m512i a = state[0], b = state[1], c = state[2], d = state[3];
  __m512i e = state[4], f = state[5], g = state[6], h = state[7];
  for (std::size_t i = 0; i < 64; ++i) {
    if (i >= 16) {
      const __m512i w15 = w[(i - 15) & 15];
      const __m512i w2 = w[(i - 2) & 15];
      const __m512i s0 =
          Xor3(_mm512_ror_epi32(w15, 7), _mm512_ror_epi32(w15, 18), _mm512_srli_epi32(w15, 3));
      const __m512i s1 =
          Xor3(_mm512_ror_epi32(w2, 17), _mm512_ror_epi32(w2, 19), _mm512_srli_epi32(w2, 10));
      w[i & 15] =
          _mm512_add_epi32(_mm512_add_epi32(w[i & 15], s0), _mm512_add_epi32(w[(i - 7) & 15], s1));
    }
    const __m512i s1 =
        Xor3(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25));
    const __m512i choose = _mm512_ternarylogic_epi32(e, f, g, 0xCA);  // e ? f : g
    const __m512i t1 = _mm512_add_epi32(
        _mm512_add_epi32(h, s1),
        _mm512_add_epi32(
            choose, _mm512_add_epi32(w[i & 15], _mm512_set1_epi32(static_cast<int>(kRound[i])))));
    const __m512i s0 =
        Xor3(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22));
    const __m512i majority = _mm512_ternarylogic_epi32(a, b, c, 0xE8);
    h = g;
    g = f;
    f = e;
    e = _mm512_add_epi32(d, t1);
    d = c;
    c = b;
    b = a;
    a = _mm512_add_epi32(t1, _mm512_add_epi32(s0, majority));
  }
  state[0] = _mm512_add_epi32(state[0], a);
  state[1] = _mm512_add_epi32(state[1], b);
  state[2] = _mm512_add_epi32(state[2], c);
  state[3] = _mm512_add_epi32(state[3], d);
  state[4] = _mm512_add_epi32(state[4], e);
  state[5] = _mm512_add_epi32(state[5], f);
  state[6] = _mm512_add_epi32(state[6], g);
  state[7] = _mm512_add_epi32(state[7], h);
}

// One input in a lane: its whole 64-byte blocks read in place, then its padded tail.
struct Lane {
  bool busy = false;
  std::size_t input = 0;
  const unsigned char* next = nullptr;  // The lane's next block.
  std::size_t left = 0;                 // Blocks left before the tail (or in it, once in_tail).
  bool in_tail = false;
  std::size_t tail_blocks = 0;
  // The last partial block, the 0x80 marker, zeros and the bit length: one or two blocks.
  alignas(64) unsigned char tail[128];

  void Start(std::size_t index, std::string_view data) {
    const std::size_t whole = data.size() / 64;
    const std::size_t rest = data.size() % 64;
    busy = true;
    input = index;
    next = reinterpret_cast<const unsigned char*>(data.data());
    left = whole;
    in_tail = false;
    tail_blocks = rest + 9 <= 64 ? 1 : 2;
    std::memset(tail, 0, sizeof tail);
    if (rest > 0) std::memcpy(tail, data.data() + whole * 64, rest);
    tail[rest] = 0x80;
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    unsigned char* end = tail + 64 * tail_blocks;
    for (int i = 0; i < 8; ++i) end[-1 - i] = static_cast<unsigned char>(bits >> (8 * i));
    if (left == 0) EnterTail();
  }

  void EnterTail() {
    next = tail;
    left = tail_blocks;
    in_tail = true;
  }
};

// Continues one SHA-256 stream: `state` holds words a..h, `data` whole 64-byte blocks.
STRATA_SHA_NI void CompressShaNi(std::uint32_t state[8], const unsigned char* data,
                                 std::size_t blocks) {
  const __m128i big_endian = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  // The rounds instruction wants the state as (a, b, e, f) and (c, d, g, h).
  __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);
  __m128i hgfe =
      _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
  __m128i abef = _mm_alignr_epi8(dcba, hgfe, 8);
  __m128i cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);
  for (; blocks > 0; --blocks, data += 64) {
    const __m128i abef_before = abef;
    const __m128i cdgh_before = cdgh;
    __m128i w[4];
    for (std::size_t i = 0; i < 4; ++i) {
      w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * i)),
                              big_endian);
    }
    for (std::size_t r = 0; r < 16; ++r) {
      if (r >= 4) {
        // w[r] from w[r-4], w[r-3], w[r-2] and w[r-1], kept in w[r % 4].
        __m128i next = _mm_sha256msg1_epu32(w[r & 3], w[(r - 3) & 3]);
        next = _mm_add_epi32(next, _mm_alignr_epi8(w[(r - 1) & 3], w[(r - 2) & 3], 4));
        w[r & 3] = _mm_sha256msg2_epu32(next, w[(r - 1) & 3]);
      }
      __m128i x = _mm_add_epi32(w[r & 3],
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(&kRound[4 * r])));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, x);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(x, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_before);
    cdgh = _mm_add_epi32(cdgh, cdgh_before);
  }
  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));
}

void StoreDigest(const std::uint32_t state[8], Sha256Digest& digest) {
  for (std::size_t j = 0; j < 8; ++j) {
    for (std::size_t k = 0; k < 4; ++k) {
      digest[4 * j + k] = static_cast<unsigned char>(state[j] >> (24 - 8 * k));
    }
  }
}

STRATA_AVX512 void Sha256Lockstep(std::span<const std::string_view> inputs,
                                  std::span<Sha256Digest> digests) {
  // Longest first, so that lanes run out of work at about the same time.
  std::vector<std::size_t> order(inputs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    return inputs[x].size() > inputs[y].size();
  });
  std::vector<Lane> lanes(kLanes);
  alignas(64) static constexpr unsigned char kIdle[64] = {};
  __m512i state[8];
  for (std::size_t j = 0; j < 8; ++j) state[j] = _mm512_set1_epi32(static_cast<int>(kInitial[j]));
  std::size_t started = 0;
  std::size_t busy = 0;
  for (Lane& lane : lanes) {
    if (started == order.size()) break;
    lane.Start(order[started], inputs[order[started]]);
    ++started;
    ++busy;
  }
  alignas(64) std::uint32_t words[8][kLanes];
  // Lanes are refilled while inputs wait, so the loop ends only once the last ones are in flight.
  while (busy > kMaxStragglers) {
    const unsigned char* blocks[kLanes];
    for (std::size_t l = 0; l < kLanes; ++l) blocks[l] = lanes[l].busy ? lanes[l].next : kIdle;
    Compress16(state, blocks);
    bool stored = false;
    __mmask16 restart = 0;
    for (std::size_t l = 0; l < kLanes; ++l) {
      Lane& lane = lanes[l];
      if (!lane.busy) continue;
      lane.next += 64;
      if (--lane.left > 0) continue;
      if (!lane.in_tail) {
        lane.EnterTail();
        continue;
      }
      if (!stored) {
        for (std::size_t j = 0; j < 8; ++j) _mm512_store_si512(words[j], state[j]);
        stored = true;
      }
      std::uint32_t lane_state[8];
      for (std::size_t j = 0; j < 8; ++j) lane_state[j] = words[j][l];
      StoreDigest(lane_state, digests[lane.input]);
      lane.busy = false;
      --busy;
      if (started < order.size()) {
        lane.Start(order[started], inputs[order[started]]);
        ++started;
        ++busy;
        restart = static_cast<__mmask16>(restart | (1u << l));
      }
    }
    for (std::size_t j = 0; restart != 0 && j < 8; ++j) {
      state[j] = _mm512_mask_mov_epi32(state[j], restart,
                                       _mm512_set1_epi32(static_cast<int>(kInitial[j])));
    }
  }
  // The stragglers continue one at a time from where their lanes stand.
  for (std::size_t j = 0; j < 8; ++j) _mm512_store_si512(words[j], state[j]);
  for (std::size_t l = 0; l < kLanes; ++l) {
    Lane& lane = lanes[l];
    if (!lane.busy) continue;
    std::uint32_t lane_state[8];
    for (std::size_t j = 0; j < 8; ++j) lane_state[j] = words[j][l];
    CompressShaNi(lane_state, lane.next, lane.left);
    if (!lane.in_tail) CompressShaNi(lane_state, lane.tail, lane.tail_blocks);
    StoreDigest(lane_state, digests[lane.input]);
  }
}

}  // namespace

void Sha256Batch(std::span<const std::string_view> inputs, std::span<Sha256Digest> digests) {
  static const bool lockstep = __builtin_cpu_supports("avx512f") &&
                               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("sha");
  if (lockstep) {
    Sha256Lockstep(inputs, digests);
    return;
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) OpenSslSha256(inputs[i], digests[i]);
}

}  // namespace strata::packaging
