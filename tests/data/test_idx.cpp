// tests/data/test_idx.cpp — IDX round trips (raw and gzip, every type) and every corruption case:
// each error must name the file and say what was wrong.
#include <doctest/doctest.h>

#include <cstring>

#include "data/idx.h"
#include "data_test_util.h"

using namespace st::data;
using namespace st::data::test;

namespace {

IdxArray make_array(uint8_t type, std::vector<int> dims) {
    IdxArray a;
    a.type = type;
    a.dims = std::move(dims);
    a.data.resize(size_t(a.count() * idx_element_size(type)));
    for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = uint8_t(i * 37 + 11);
    return a;
}

// Expects read_idx(path) to fail with a message naming the path and containing `what`.
void check_error(const std::string& path, const std::string& what) {
    const std::string msg = error_of([&] { read_idx(path); });
    INFO("message: " << msg);
    CHECK(contains(msg, path));
    CHECK(contains(msg, what));
}

}  // namespace

TEST_CASE("idx: round trip for every type, raw and gzipped") {
    TempDir dir;
    for (uint8_t type : {idx_type::u8, idx_type::i8, idx_type::i16, idx_type::i32, idx_type::f32,
                         idx_type::f64})
        for (bool gz : {false, true}) {
            const IdxArray a = make_array(type, {7, 3, 5});
            const std::string path = dir.file("a_" + std::to_string(type) + (gz ? ".gz" : ""));
            write_idx(path, a, gz);
            const IdxArray b = read_idx(path);
            CHECK(b.type == type);
            CHECK(b.dims == a.dims);
            CHECK(b.data == a.data);
        }
}

TEST_CASE("idx: multi-byte elements are big-endian on disk, host order in memory") {
    TempDir dir;
    const std::string path = dir.file("ints");
    write_bytes(path, idx_bytes(idx_type::i32, {2}, {0x00, 0x00, 0x01, 0x02, 0xff, 0xff, 0xff, 0xfe}));
    const IdxArray a = read_idx(path);
    REQUIRE(a.data.size() == 8);
    int32_t v[2];
    std::memcpy(v, a.data.data(), 8);
    CHECK(v[0] == 258);
    CHECK(v[1] == -2);

    const std::string fpath = dir.file("floats.gz");
    const float one = 1.5f;
    uint32_t bits;
    std::memcpy(&bits, &one, 4);
    write_bytes(fpath, gzip_bytes(idx_bytes(idx_type::f32, {1},
                                            {uint8_t(bits >> 24), uint8_t(bits >> 16),
                                             uint8_t(bits >> 8), uint8_t(bits)})));
    const IdxArray f = read_idx(fpath);
    float back;
    std::memcpy(&back, f.data.data(), 4);
    CHECK(back == 1.5f);
}

TEST_CASE("idx: gzip is detected by magic, not by name; concatenated gzip members are read") {
    TempDir dir;
    const auto bytes = idx_bytes(idx_type::u8, {2, 3}, {1, 2, 3, 4, 5, 6});
    write_bytes(dir.file("plain_name"), gzip_bytes(bytes));
    CHECK(read_idx(dir.file("plain_name")).data == decltype(IdxArray::data){1, 2, 3, 4, 5, 6});
    write_bytes(dir.file("raw.gz"), bytes);
    CHECK(read_idx(dir.file("raw.gz")).dims == std::vector<int>{2, 3});

    // Split the file in two and gzip each half: `cat a.gz b.gz` is a valid gzip file.
    std::vector<uint8_t> first(bytes.begin(), bytes.begin() + 9), second(bytes.begin() + 9, bytes.end());
    auto joined = gzip_bytes(first);
    const auto tail = gzip_bytes(second);
    joined.insert(joined.end(), tail.begin(), tail.end());
    write_bytes(dir.file("multi.gz"), joined);
    CHECK(read_idx(dir.file("multi.gz")).data == decltype(IdxArray::data){1, 2, 3, 4, 5, 6});
}

TEST_CASE("idx: zero-sized dimension is an empty array") {
    TempDir dir;
    write_bytes(dir.file("empty"), idx_bytes(idx_type::u8, {0, 28, 28}, {}));
    const IdxArray a = read_idx(dir.file("empty"));
    CHECK(a.count() == 0);
    CHECK(a.data.empty());
}

TEST_CASE("idx: missing file") {
    TempDir dir;
    check_error(dir.file("does-not-exist-idx3-ubyte"), "cannot open");
}

TEST_CASE("idx: truncated header") {
    TempDir dir;
    write_bytes(dir.file("empty_file"), {});
    check_error(dir.file("empty_file"), "truncated header");
    write_bytes(dir.file("three"), {0, 0, 8});
    check_error(dir.file("three"), "truncated header");
    // Magic says 3 dims (16-byte header) but the file stops after the first dim.
    write_bytes(dir.file("short_dims"), {0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
    check_error(dir.file("short_dims"), "16-byte header");
    write_bytes(dir.file("short_dims.gz"), gzip_bytes({0, 0, 8, 3, 0, 0, 0, 2, 0, 0}));
    check_error(dir.file("short_dims.gz"), "truncated header");
}

TEST_CASE("idx: bad magic") {
    TempDir dir;
    write_bytes(dir.file("text"), {'h', 'e', 'l', 'l', 'o', '\n'});
    check_error(dir.file("text"), "bad magic: expected two leading zero bytes, got 0x68 0x65");
    write_bytes(dir.file("one_zero"), {0, 1, 8, 1, 0, 0, 0, 1, 7});
    check_error(dir.file("one_zero"), "two leading zero bytes");
    for (uint8_t type : {uint8_t(0x00), uint8_t(0x07), uint8_t(0x0A), uint8_t(0x0F), uint8_t(0xff)}) {
        write_bytes(dir.file("bad_type"), idx_bytes(type, {1}, {7}));
        check_error(dir.file("bad_type"), "unknown type code");
    }
    write_bytes(dir.file("bad_type_10"), idx_bytes(0x0A, {1}, {7}));
    check_error(dir.file("bad_type_10"), "0x0a");
    write_bytes(dir.file("no_dims"), {0, 0, 8, 0});
    check_error(dir.file("no_dims"), "dimension count is 0");
    write_bytes(dir.file("huge_dim"), idx_bytes(idx_type::u8, {0x80000000u}, {}));
    check_error(dir.file("huge_dim"), "too large");
    write_bytes(dir.file("huge_product"), idx_bytes(idx_type::u8, {0x7fffffff, 0x7fffffff}, {}));
    check_error(dir.file("huge_product"), "implausibly large");
}

TEST_CASE("idx: data size must match the product of dims") {
    TempDir dir;
    // 3×4 ubyte needs a 12-byte header + 12 = 24 bytes.
    write_bytes(dir.file("short"), idx_bytes(idx_type::u8, {3, 4}, std::vector<uint8_t>(11, 1)));
    check_error(dir.file("short"), "truncated data: expected 24 bytes for 3\xC3\x97" "4 ubyte, file has 23 bytes");
    write_bytes(dir.file("long"), idx_bytes(idx_type::u8, {3, 4}, std::vector<uint8_t>(13, 1)));
    check_error(dir.file("long"), "trailing garbage: expected 24 bytes for 3\xC3\x97" "4 ubyte, file has 25 bytes (1 extra)");
    // Element size counts: 2 shorts need 4 data bytes.
    write_bytes(dir.file("short16"), idx_bytes(idx_type::i16, {2}, {0, 1, 0}));
    check_error(dir.file("short16"), "expected 12 bytes for 2 short");
    // The same checks apply after decompression.
    write_bytes(dir.file("short.gz"), gzip_bytes(idx_bytes(idx_type::u8, {3, 4}, std::vector<uint8_t>(5, 1))));
    check_error(dir.file("short.gz"), "decompressed file has 17 bytes");
    write_bytes(dir.file("long.gz"), gzip_bytes(idx_bytes(idx_type::u8, {3, 4}, std::vector<uint8_t>(14, 1))));
    check_error(dir.file("long.gz"), "trailing garbage");
}

TEST_CASE("idx: broken gzip") {
    TempDir dir;
    std::vector<uint8_t> payload(5000);
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = uint8_t((i * 7919) >> 3);
    const auto gz = gzip_bytes(idx_bytes(idx_type::u8, {5000}, payload));

    for (size_t keep : {size_t(2), size_t(10), gz.size() / 2, gz.size() - 4, gz.size() - 1}) {
        INFO("kept " << keep << " of " << gz.size() << " gzip bytes");
        write_bytes(dir.file("trunc.gz"), std::vector<uint8_t>(gz.begin(), gz.begin() + keep));
        check_error(dir.file("trunc.gz"), "truncated gzip stream");
    }

    auto bad_crc = gz;
    bad_crc[bad_crc.size() - 6] ^= 0xff;   // inside the CRC32 trailer
    write_bytes(dir.file("crc.gz"), bad_crc);
    check_error(dir.file("crc.gz"), "corrupt gzip data");

    auto garbage = gz;
    garbage.insert(garbage.end(), {'j', 'u', 'n', 'k'});
    write_bytes(dir.file("junk.gz"), garbage);
    check_error(dir.file("junk.gz"), "4 bytes after the end of the gzip stream");
}

TEST_CASE("idx: write_idx rejects inconsistent arrays") {
    TempDir dir;
    IdxArray a = make_array(idx_type::u8, {2, 2});
    a.data.pop_back();
    const std::string msg = error_of([&] { write_idx(dir.file("x"), a, false); });
    CHECK(contains(msg, dir.file("x")));
    CHECK(contains(msg, "dims need 4"));
}
