// data/random.h — a tiny, fully specified PRNG for the data layer.
//   SplitMix64: 64-bit state, one add + mix per draw (Steele, Lea & Flood 2014).
//   below(n): unbiased integer in [0, n) (Lemire's multiply-shift with rejection).
//   shuffle(): Fisher–Yates driven by below().
// Why our own: std::shuffle and std::uniform_int_distribution are implementation-defined, and the
// data order must be identical across compilers and standard libraries (invariant 5: same seed ⇒
// same numbers). data/ may not include core/, so core's rng is not an option here.
// Tests: tests/data/test_loader.cpp
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>

namespace st::data {

class SplitMix64 {
public:
    explicit SplitMix64(uint64_t seed) : state_(seed) {}

    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    // Unbiased integer in [0, n); n > 0.
    uint64_t below(uint64_t n) {
        unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
        uint64_t low = static_cast<uint64_t>(m);
        if (low < n) {
            const uint64_t threshold = (0 - n) % n;
            while (low < threshold) {
                m = static_cast<unsigned __int128>(next()) * n;
                low = static_cast<uint64_t>(m);
            }
        }
        return static_cast<uint64_t>(m >> 64);
    }

    // Uniform double in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    // Standard normal via Box–Muller (one value per call; simple and portable).
    double normal() {
        double u1 = uniform();
        const double u2 = uniform();
        if (u1 < 1e-300) u1 = 1e-300;
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }

private:
    uint64_t state_;
};

// Derives an independent stream seed from (seed, a, b) so that e.g. the split shuffle, the
// synthetic prototypes and each epoch's order never share a stream.
inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
    SplitMix64 g(seed ^ (a * 0xd1b54a32d192ed03ULL));
    g.next();
    SplitMix64 h(g.next() ^ (b * 0x8cb92ba72f3d8dd7ULL));
    return h.next();
}

// Fisher–Yates over [first, first + n).
template <typename T>
void shuffle(T* first, int64_t n, SplitMix64& rng) {
    for (int64_t i = n - 1; i > 0; --i) {
        const int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
        std::swap(first[i], first[j]);
    }
}

}  // namespace st::data
