// data/idx.h — IDX files (the MNIST container), raw or gzip-compressed.
//   read_idx:  path -> IdxArray; gzip is detected by its 0x1f 0x8b magic, not by the file name.
//   write_idx: IdxArray -> path, raw or gzipped (test fixtures, tools).
// Format: 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 dims, then prod(dims) elements,
// big-endian, row-major. Every malformed file is a std::runtime_error naming the path and what
// was expected (missing, truncated header, bad magic, size mismatch, trailing bytes, bad gzip).
// Tests: tests/data/test_idx.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/large_pages.h"

namespace st::data {

namespace idx_type {
constexpr uint8_t u8 = 0x08;
constexpr uint8_t i8 = 0x09;
constexpr uint8_t i16 = 0x0B;
constexpr uint8_t i32 = 0x0C;
constexpr uint8_t f32 = 0x0D;
constexpr uint8_t f64 = 0x0E;
}  // namespace idx_type

struct IdxArray {
    std::vector<int> dims;       // e.g. {60000, 28, 28}
    uint8_t type = idx_type::u8; // one of idx_type::*
    // prod(dims) elements, row-major, in HOST byte order; on huge pages when large, not zeroed before
    // the file is read into it (data/large_pages.h): MNIST's 47 MB of training images
    std::vector<uint8_t, LargePageAllocator<uint8_t>> data;

    int64_t count() const;       // prod(dims)
};

// Bytes per element for a type code; 0 for an unknown code.
int idx_element_size(uint8_t type);
// "ubyte", "byte", "short", "int", "float", "double"; "unknown" otherwise.
const char* idx_type_name(uint8_t type);

IdxArray read_idx(const std::string& path);
void write_idx(const std::string& path, const IdxArray& array, bool gzip);

}  // namespace st::data
