// tests/experiment/test_safetensors.cpp — experiment/safetensors.h and experiment/atomic_file.h:
// round trip of every dtype (empty tensors, scalars), the exact byte layout, header alignment,
// corrupt files (each error names the file), atomic writes that leave the old file intact.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "experiment/atomic_file.h"
#include "experiment/safetensors.h"

using namespace st::experiment;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("st_test_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
  // Leftover "<name>.tmp.<pid>" files.
  int temp_files() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(path))
      if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
    return n;
  }
};

template <class T>
NamedTensor make(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, const std::vector<T>& values) {
  NamedTensor t{name, dtype, std::move(shape), std::vector<uint8_t>(values.size() * sizeof(T))};
  if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string u64_le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file built by hand: prefix, header as given (no padding), data.
std::string hand_file(const std::string& header, const std::string& data) { return u64_le(header.size()) + header + data; }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

void check_contains(const std::string& message, const std::vector<std::string>& parts) {
  for (const auto& p : parts)
    CHECK_MESSAGE(message.find(p) != std::string::npos, "expected \"" << p << "\" in: " << message);
}

std::vector<NamedTensor> all_dtypes() {
  return {
      make<float>("layer1.weight", "F32", {2, 3}, {1.5f, -2.f, 0.f, 3.25f, 1e-30f, -0.f}),
      make<double>("f64", "F64", {3}, {1.0 / 3.0, -1e300, 2.5}),
      make<int32_t>("mask_rows", "I32", {2, 2}, {0, -1, 2147483647, -2147483647 - 1}),
      make<int64_t>("step", "I64", {1, 1, 2}, {int64_t(1) << 40, -7}),
      make<uint8_t>("layer1.mask", "U8", {5}, {0, 1, 1, 0, 255}),
      make<float>("empty", "F32", {0}, {}),
      make<int64_t>("empty_2d", "I64", {3, 0}, {}),
      make<float>("scalar", "F32", {}, {42.f}),
      make<uint8_t>("flag", "U8", {}, {7}),
  };
}

void check_same(const std::vector<NamedTensor>& got, const std::vector<NamedTensor>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(want[i].name);
    CHECK(got[i].name == want[i].name);
    CHECK(got[i].dtype == want[i].dtype);
    CHECK(got[i].shape == want[i].shape);
    CHECK(got[i].bytes == want[i].bytes);
  }
}

}  // namespace

TEST_CASE("safetensors: dtype sizes and numel") {
  CHECK(dtype_size("F32") == 4);
  CHECK(dtype_size("F64") == 8);
  CHECK(dtype_size("I32") == 4);
  CHECK(dtype_size("I64") == 8);
  CHECK(dtype_size("U8") == 1);
  CHECK_THROWS_AS(dtype_size("F16"), std::invalid_argument);
  CHECK(numel({}) == 1);
  CHECK(numel({0}) == 0);
  CHECK(numel({3, 0, 5}) == 0);
  CHECK(numel({2, 3, 4}) == 24);
  CHECK_THROWS(numel({-1}));
  CHECK_THROWS(numel({1 << 30, 1 << 30, 1 << 30}));
}

TEST_CASE("safetensors: round trip of every dtype, empty tensors and scalars") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  const auto tensors = all_dtypes();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"epoch", "3"}, {"config", "{\"a\": 1}"}};
  write_safetensors(path, tensors, metadata);
  const SafetensorsFile f = read_safetensors(path);
  CHECK(f.metadata == metadata);
  check_same(f.tensors, tensors);  // order preserved
  REQUIRE(f.find("step") != nullptr);
  CHECK(f.find("step")->shape == std::vector<int64_t>{1, 1, 2});
  CHECK(f.find("nope") == nullptr);
  CHECK(dir.temp_files() == 0);

  SUBCASE("no tensors, no metadata") {
    write_safetensors(path, {}, {});
    const SafetensorsFile e = read_safetensors(path);
    CHECK(e.tensors.empty());
    CHECK(e.metadata.empty());
  }
  SUBCASE("only empty tensors") {
    std::vector<NamedTensor> empties = {make<float>("a", "F32", {0}, {}), make<uint8_t>("b", "U8", {0, 4}, {})};
    write_safetensors(path, empties);
    check_same(read_safetensors(path).tensors, empties);
  }
}

TEST_CASE("safetensors: header is 8-byte aligned, space padded, and the file has no slack") {
  TempDir dir;
  const std::string path = dir.file("aligned.safetensors");
  // Names of every length mod 8 exercise every amount of padding.
  for (int len = 1; len <= 9; ++len) {
    const std::vector<NamedTensor> t = {make<float>(std::string(len, 'w'), "F32", {3}, {1, 2, 3}),
                                        make<uint8_t>("m", "U8", {1}, {1})};
    write_safetensors(path, t);
    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() >= 8);
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
    CAPTURE(len);
    CHECK(n % 8 == 0);
    CHECK(bytes.size() == 8 + n + 12 + 1);
    const std::string header = bytes.substr(8, n);
    CHECK(header.front() == '{');
    const size_t close = header.find_last_of('}');
    CHECK(header.find_first_not_of(' ', close + 1) == std::string::npos);  // only spaces after the JSON
    CHECK(header.size() - close - 1 < 8);
    CHECK(nlohmann::json::parse(header).is_object());
  }
}

TEST_CASE("safetensors: exact byte layout of one tiny tensor") {
  TempDir dir;
  const std::string path = dir.file("tiny.safetensors");
  write_safetensors(path, {make<float>("x", "F32", {2}, {1.0f, -2.0f})}, {});

  std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(header.size() == 54);
  header += "  ";  // padded to 56
  const std::string data("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);  // 1.0f, -2.0f little-endian
  const std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) + header + data;
  CHECK(read_bytes(path) == expected);

  SUBCASE("and a hand-built file in another writer's style reads back") {
    // Metadata first, tensors listed out of buffer order, no padding (as other writers may do).
    const std::string h =
        R"({"__metadata__":{"format":"pt"},"b":{"dtype":"I32","shape":[],"data_offsets":[4,8]},)"
        R"("a":{"shape":[4],"data_offsets":[0,4],"dtype":"U8"}})";
    write_bytes(path, hand_file(h, std::string("\x01\x02\x03\x04\x05\x00\x00\x00", 8)));
    const SafetensorsFile f = read_safetensors(path);
    CHECK(f.metadata.at("format") == "pt");
    REQUIRE(f.tensors.size() == 2);
    CHECK(f.tensors[0].name == "a");  // buffer order
    CHECK(f.tensors[0].bytes == std::vector<uint8_t>{1, 2, 3, 4});
    CHECK(f.tensors[1].name == "b");
    CHECK(f.tensors[1].shape.empty());
    int32_t b = 0;
    std::memcpy(&b, f.tensors[1].bytes.data(), 4);
    CHECK(b == 5);
  }
}

TEST_CASE("safetensors: truncated files give errors naming the file") {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  write_safetensors(good, all_dtypes(), {{"format", "pt"}});
  const std::string bytes = read_bytes(good);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);

  const std::string path = dir.file("cut.safetensors");
  for (size_t cut : {size_t(0), size_t(3), size_t(7), size_t(8), size_t(9), size_t(8 + n / 2), size_t(8 + n - 1),
                     size_t(8 + n), size_t(8 + n + 5), bytes.size() - 1}) {
    CAPTURE(cut);
    write_bytes(path, bytes.substr(0, cut));
    const std::string message = error_of([&] { read_safetensors(path); });
    CHECK_MESSAGE(message.rfind(path + ": ", 0) == 0, message);
  }
  check_contains(error_of([&] { read_safetensors(dir.file("missing.safetensors")); }),
                 {dir.file("missing.safetensors") + ": ", "cannot open"});
  write_bytes(path, bytes.substr(0, 5));
  check_contains(error_of([&] { read_safetensors(path); }), {"too short"});
  write_bytes(path, bytes.substr(0, 8 + n / 2));
  check_contains(error_of([&] { read_safetensors(path); }), {"header length", "larger than the rest of the file"});
  write_bytes(path, bytes.substr(0, bytes.size() - 1));
  check_contains(error_of([&] { read_safetensors(path); }), {"past the end of the data"});
}

TEST_CASE("safetensors: corrupt headers and offsets give errors naming the file and the problem") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  const std::string data8(8, '\x01');
  struct Bad {
    std::string file;
    std::vector<std::string> parts;
  };
  const std::vector<Bad> cases = {
      {hand_file("this is not json", ""), {"not valid JSON"}},
      {hand_file("[1, 2, 3]", ""), {"not a JSON object"}},
      {hand_file(R"({"a":)", ""), {"not valid JSON"}},
      {u64_le(uint64_t(1) << 62) + "{}", {"header length", "larger than the rest of the file"}},
      {hand_file(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", data8), {"tensor \"x\"", "missing dtype"}},
      {hand_file(R"({"x":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", data8), {"tensor \"x\"", "unknown dtype \"F16\""}},
      {hand_file(R"({"x":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", data8), {"tensor \"x\"", "dtype must be a string"}},
      {hand_file(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", data8), {"tensor \"x\"", "shape"}},
      {hand_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8), {"tensor \"x\"", "non-negative"}},
      {hand_file(R"({"x":{"dtype":"F32","shape":[2]}})", data8), {"tensor \"x\"", "data_offsets"}},
      {hand_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data8), {"tensor \"x\"", "data_offsets"}},
      {hand_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", data8), {"tensor \"x\"", "unknown field \"extra\""}},
      {hand_file(R"({"x":5})", data8), {"tensor \"x\"", "expected an object"}},
      {hand_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", data8), {"tensor \"x\"", "past the end of the data (8 bytes)"}},
      {hand_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data8), {"tensor \"x\"", "end before they begin"}},
      {hand_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8), {"tensor \"x\"", "span 8 bytes", "needs 12"}},
      {hand_file(R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"y":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", data8),
       {"tensor \"y\"", "overlaps"}},
      {hand_file(R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"y":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", data8),
       {"tensor \"y\"", "gap"}},
      {hand_file(R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", std::string(4, '\0')), {"tensor \"x\"", "gap"}},
      {hand_file(R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", data8), {"4 bytes after the last tensor"}},
      {hand_file(R"({"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"x":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", data8),
       {"duplicate tensor name \"x\""}},
      {hand_file(R"({"__metadata__":{"epoch":3}})", ""), {"__metadata__", "epoch", "must be a string"}},
      {hand_file(R"({"__metadata__":[1]})", ""), {"__metadata__", "must be an object"}},
  };
  for (const auto& bad : cases) {
    write_bytes(path, bad.file);
    const std::string message = error_of([&] { read_safetensors(path); });
    CAPTURE(bad.file.substr(8));
    CHECK_MESSAGE(message.rfind(path + ": ", 0) == 0, message);
    check_contains(message, bad.parts);
  }
}

TEST_CASE("safetensors: a failed write leaves the existing file untouched") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  write_safetensors(path, all_dtypes(), {{"epoch", "1"}});
  const std::string before = read_bytes(path);

  SUBCASE("bytes that do not match the shape") {
    auto t = all_dtypes();
    t[2].bytes.pop_back();
    check_contains(error_of([&] { write_safetensors(path, t, {{"epoch", "2"}}); }),
                   {path + ": ", "tensor \"mask_rows\"", "15 bytes, expected 16", "[2,2]", "I32"});
  }
  SUBCASE("duplicate names") {
    auto t = all_dtypes();
    t.push_back(t[0]);
    check_contains(error_of([&] { write_safetensors(path, t); }), {path + ": ", "duplicate tensor name \"layer1.weight\""});
  }
  SUBCASE("unknown dtype, empty name, reserved name, negative dim") {
    check_contains(error_of([&] { write_safetensors(path, {NamedTensor{"h", "F16", {1}, {0, 0}}}); }), {path + ": ", "\"h\"", "F16"});
    check_contains(error_of([&] { write_safetensors(path, {make<float>("", "F32", {1}, {1.f})}); }), {"empty name"});
    check_contains(error_of([&] { write_safetensors(path, {make<float>("__metadata__", "F32", {1}, {1.f})}); }), {"reserved"});
    check_contains(error_of([&] { write_safetensors(path, {make<float>("n", "F32", {-1}, {})}); }), {"\"n\"", "negative"});
  }
  SUBCASE("the target is a directory: the rename fails after the data is written") {
    const std::string target = dir.file("a_directory");
    fs::create_directory(target);
    fs::create_directory(target + "/inside");  // a non-empty directory cannot be replaced
    check_contains(error_of([&] { write_safetensors(target, all_dtypes()); }), {target + ": ", "rename"});
    CHECK(fs::is_directory(target + "/inside"));
  }
  CHECK(read_bytes(path) == before);
  CHECK(dir.temp_files() == 0);
  check_same(read_safetensors(path).tensors, all_dtypes());

  SUBCASE("the target directory is missing") {
    const std::string missing = dir.file("no/such/dir/model.safetensors");
    check_contains(error_of([&] { write_safetensors(missing, all_dtypes()); }), {missing + ": ", "cannot create"});
    CHECK_FALSE(fs::exists(dir.file("no")));
  }
  SUBCASE("a successful write replaces the file") {
    write_safetensors(path, {make<float>("only", "F32", {1}, {9.f})}, {{"epoch", "2"}});
    const SafetensorsFile f = read_safetensors(path);
    CHECK(f.metadata.at("epoch") == "2");
    REQUIRE(f.tensors.size() == 1);
    CHECK(f.tensors[0].name == "only");
    CHECK(dir.temp_files() == 0);
  }
}

TEST_CASE("atomic_file: write_file_atomic and AtomicWriter") {
  TempDir dir;
  const std::string path = dir.file("summary.json");
  write_file_atomic(path, "first\n");
  CHECK(read_bytes(path) == "first\n");
  write_file_atomic(path, std::string("second\0with nul", 15));
  CHECK(read_bytes(path) == std::string("second\0with nul", 15));
  write_file_atomic(path, "");
  CHECK(read_bytes(path).empty());

  write_file_atomic(path, "keep me");
  {
    AtomicWriter w(path);
    CHECK(fs::exists(w.temp_path()));
    CHECK(w.temp_path() == path + ".tmp." + std::to_string(::getpid()));
    w.write("never committed");
  }  // abandoned: the temp file goes, the target stays
  CHECK(read_bytes(path) == "keep me");
  CHECK(dir.temp_files() == 0);

  check_contains(error_of([&] { write_file_atomic(dir.file("missing/x.json"), "x"); }), {dir.file("missing/x.json") + ": "});
  AtomicWriter w(path);
  w.write("done");
  w.commit();
  CHECK(read_bytes(path) == "done");
  CHECK_THROWS(w.commit());
  CHECK(dir.temp_files() == 0);
}
