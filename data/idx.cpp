// data/idx.cpp — IDX reader/writer; see idx.h for the format and the error contract.
#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>

namespace st::data {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
    throw std::runtime_error(path + ": " + what);
}

std::string hex_byte(uint8_t b) {
    static const char digits[] = "0123456789abcdef";
    return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

std::string shape_string(const std::vector<int>& dims, uint8_t type) {
    std::string s;
    for (size_t i = 0; i < dims.size(); ++i) {
        if (i) s += "\xC3\x97";  // U+00D7 MULTIPLICATION SIGN
        s += std::to_string(dims[i]);
    }
    return s + " " + idx_type_name(type);
}

using Bytes = std::vector<uint8_t, LargePageAllocator<uint8_t>>;

Bytes read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        fail(path, std::string("cannot open IDX file (") + std::strerror(err) + ")");
    }
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) fail(path, "cannot determine file size");
    in.seekg(0, std::ios::beg);
    Bytes bytes(static_cast<size_t>(size));
    if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
        fail(path, "read error");
    return bytes;
}

// Inflates every gzip member of `in` (concatenated members are legal gzip); a stream that ends
// early or has a bad checksum is an error, as is non-gzip data after the last member.
Bytes gunzip(const std::string& path, const Bytes& in) {
    Bytes out;
    // ISIZE (the last 4 bytes, little-endian) is the uncompressed size mod 2^32: a good hint.
    if (in.size() >= 18) {
        const size_t n = in.size();
        const uint32_t isize = uint32_t(in[n - 4]) | uint32_t(in[n - 3]) << 8 |
                               uint32_t(in[n - 2]) << 16 | uint32_t(in[n - 1]) << 24;
        // Deflate cannot expand more than ~1032:1, so a corrupt trailer cannot ask for more.
        out.reserve(std::min<uint64_t>(isize, uint64_t(in.size()) * 1032));
    }
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(path, "zlib inflateInit2 failed");
    size_t pos = 0;
    std::vector<uint8_t> chunk(1 << 16);
    while (true) {
        const size_t avail = std::min<size_t>(in.size() - pos, std::numeric_limits<uInt>::max());
        zs.next_in = const_cast<Bytef*>(in.data() + pos);
        zs.avail_in = static_cast<uInt>(avail);
        zs.next_out = chunk.data();
        zs.avail_out = static_cast<uInt>(chunk.size());
        const int rc = inflate(&zs, Z_NO_FLUSH);
        pos += avail - zs.avail_in;
        out.insert(out.end(), chunk.data(), chunk.data() + (chunk.size() - zs.avail_out));
        if (rc == Z_STREAM_END) {
            if (pos == in.size()) break;
            if (in.size() - pos >= 2 && in[pos] == 0x1f && in[pos + 1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            inflateEnd(&zs);
            fail(path, "trailing garbage: " + std::to_string(in.size() - pos) +
                           " bytes after the end of the gzip stream");
        }
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && pos == in.size()) {
            inflateEnd(&zs);
            fail(path, "truncated gzip stream: compressed data ends before the end of the stream (" +
                           std::to_string(in.size()) + " compressed bytes, " +
                           std::to_string(out.size()) + " bytes inflated)");
        }
        const std::string msg = zs.msg ? zs.msg : ("zlib error " + std::to_string(rc));
        inflateEnd(&zs);
        fail(path, "corrupt gzip data: " + msg);
    }
    inflateEnd(&zs);
    return out;
}

uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

void byteswap_elements(uint8_t* data, size_t count, int element_size) {
    if (element_size == 1) return;
    for (size_t i = 0; i < count; ++i) {
        uint8_t* e = data + i * element_size;
        for (int a = 0, b = element_size - 1; a < b; ++a, --b) std::swap(e[a], e[b]);
    }
}

bool host_is_little_endian() {
    const uint16_t probe = 1;
    uint8_t first;
    std::memcpy(&first, &probe, 1);
    return first == 1;
}

}  // namespace

int64_t IdxArray::count() const {
    int64_t n = 1;
    for (int d : dims) n *= d;
    return n;
}

int idx_element_size(uint8_t type) {
    switch (type) {
        case idx_type::u8: return 1;
        case idx_type::i8: return 1;
        case idx_type::i16: return 2;
        case idx_type::i32: return 4;
        case idx_type::f32: return 4;
        case idx_type::f64: return 8;
        default: return 0;
    }
}

const char* idx_type_name(uint8_t type) {
    switch (type) {
        case idx_type::u8: return "ubyte";
        case idx_type::i8: return "byte";
        case idx_type::i16: return "short";
        case idx_type::i32: return "int";
        case idx_type::f32: return "float";
        case idx_type::f64: return "double";
        default: return "unknown";
    }
}

IdxArray read_idx(const std::string& path) {
    Bytes bytes = read_file(path);
    const bool gz = bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
    if (gz) bytes = gunzip(path, bytes);
    const char* what = gz ? "decompressed file has " : "file has ";

    if (bytes.size() < 4)
        fail(path, std::string("truncated header: expected at least 4 bytes (magic), ") + what +
                       std::to_string(bytes.size()) + " bytes");
    if (bytes[0] != 0 || bytes[1] != 0)
        fail(path, "bad magic: expected two leading zero bytes, got " + hex_byte(bytes[0]) + " " +
                       hex_byte(bytes[1]) + " (not an IDX file" +
                       (gz ? std::string(")") : std::string(", nor gzip)")));
    IdxArray array;
    array.type = bytes[2];
    const int element_size = idx_element_size(array.type);
    if (element_size == 0)
        fail(path, "bad magic: unknown type code " + hex_byte(array.type) +
                       " (expected 0x08 ubyte, 0x09 byte, 0x0b short, 0x0c int, 0x0d float or "
                       "0x0e double)");
    const int ndims = bytes[3];
    if (ndims == 0) fail(path, "bad magic: dimension count is 0 (expected at least 1)");

    const size_t header = 4 + 4 * size_t(ndims);
    if (bytes.size() < header)
        fail(path, "truncated header: " + std::to_string(ndims) + " dimensions need a " +
                       std::to_string(header) + "-byte header, " + what +
                       std::to_string(bytes.size()) + " bytes");
    uint64_t count = 1;
    bool overflow = false;
    for (int i = 0; i < ndims; ++i) {
        const uint32_t d = be32(bytes.data() + 4 + 4 * i);
        if (d > uint32_t(std::numeric_limits<int>::max()))
            fail(path, "dimension " + std::to_string(i) + " is " + std::to_string(d) +
                           " (too large, expected < 2^31)");
        array.dims.push_back(int(d));
        if (d != 0 && count > (uint64_t(1) << 48) / d) overflow = true;
        count *= d;
    }
    if (overflow) fail(path, "dimensions " + shape_string(array.dims, array.type) +
                                 " are implausibly large (corrupt header?)");

    const uint64_t expected = header + count * uint64_t(element_size);
    if (bytes.size() != expected) {
        const bool longer = bytes.size() > expected;
        fail(path, std::string(longer ? "trailing garbage: " : "truncated data: ") + "expected " +
                       std::to_string(expected) + " bytes for " +
                       shape_string(array.dims, array.type) + ", " + what +
                       std::to_string(bytes.size()) + " bytes" +
                       (longer ? " (" + std::to_string(bytes.size() - expected) + " extra)"
                               : std::string()));
    }

    // Drop the header in place (a memmove; no second 47 MB buffer for MNIST).
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
    if (host_is_little_endian()) byteswap_elements(bytes.data(), count, element_size);
    array.data = std::move(bytes);
    return array;
}

void write_idx(const std::string& path, const IdxArray& array, bool gzip) {
    const int element_size = idx_element_size(array.type);
    if (element_size == 0) fail(path, "write_idx: unknown type code " + hex_byte(array.type));
    if (array.dims.empty() || array.dims.size() > 255)
        fail(path, "write_idx: need 1..255 dimensions, got " + std::to_string(array.dims.size()));
    const int64_t count = array.count();
    if (array.data.size() != uint64_t(count) * element_size)
        fail(path, "write_idx: data has " + std::to_string(array.data.size()) +
                       " bytes, dims need " + std::to_string(count * element_size));

    std::vector<uint8_t> bytes = {0, 0, array.type, uint8_t(array.dims.size())};
    for (int d : array.dims) {
        const uint32_t u = uint32_t(d);
        bytes.insert(bytes.end(), {uint8_t(u >> 24), uint8_t(u >> 16), uint8_t(u >> 8), uint8_t(u)});
    }
    const size_t header = bytes.size();
    bytes.insert(bytes.end(), array.data.begin(), array.data.end());
    if (host_is_little_endian()) byteswap_elements(bytes.data() + header, count, element_size);

    if (gzip) {
        gzFile f = gzopen(path.c_str(), "wb");
        if (!f) fail(path, "cannot open for writing");
        size_t pos = 0;
        while (pos < bytes.size()) {
            const unsigned n = unsigned(std::min<size_t>(bytes.size() - pos, 1u << 30));
            if (gzwrite(f, bytes.data() + pos, n) != int(n)) {
                gzclose(f);
                fail(path, "gzwrite failed");
            }
            pos += n;
        }
        if (gzclose(f) != Z_OK) fail(path, "gzclose failed");
    } else {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        if (!out) fail(path, "cannot open for writing");
        out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
        if (!out) fail(path, "write failed");
    }
}

}  // namespace st::data
