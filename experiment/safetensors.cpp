// experiment/safetensors.cpp — safetensors writer (atomic) and validating reader.
// The reader enforces what the reference implementation (huggingface/safetensors) enforces:
// header ≤ 100 MB, offsets contiguous from 0 with no gaps or overlaps, buffer fully covered.
#include "experiment/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "experiment/atomic_file.h"
#include "experiment/json_errors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp assumes a little-endian host (tensor bytes are copied as they are)"
#endif

namespace st::experiment {

using ordered_json = nlohmann::ordered_json;

namespace {

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // as the reference implementation
const char* const kMetadataKey = "__metadata__";

struct DtypeInfo {
  const char* name;
  std::size_t size;
};
constexpr DtypeInfo kDtypes[] = {{"F32", 4}, {"F64", 8}, {"I32", 4}, {"I64", 8}, {"U8", 1}};

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

bool is_known_dtype(const std::string& dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return true;
  return false;
}

std::size_t dtype_size(const std::string& dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return d.size;
  throw std::invalid_argument("unknown dtype \"" + dtype + "\" (known: F32, F64, I32, I64, U8)");
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_text(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / 8 / d)
      throw std::invalid_argument("shape " + shape_text(shape) + " is too large");
    n *= d;
  }
  return n;
}

const NamedTensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  auto fail = [&](const std::string& msg) { throw std::runtime_error(path + ": " + msg); };

  // Validate everything before touching the disk.
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = meta;
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name.empty()) fail("a tensor has an empty name");
    if (t.name == kMetadataKey) fail("\"__metadata__\" is reserved and cannot name a tensor");
    if (!names.insert(t.name).second) fail("duplicate tensor name \"" + t.name + "\"");
    std::size_t elem_size = 0;
    int64_t n = 0;
    try {
      elem_size = dtype_size(t.dtype);
      n = numel(t.shape);
    } catch (const std::invalid_argument& e) {
      fail("tensor \"" + t.name + "\": " + e.what());
    }
    const uint64_t expected = static_cast<uint64_t>(n) * elem_size;
    if (t.bytes.size() != expected)
      fail("tensor \"" + t.name + "\": " + std::to_string(t.bytes.size()) + " bytes, expected " +
           std::to_string(expected) + " (shape " + shape_text(t.shape) + " of " + t.dtype + ")");
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + expected}}};
    offset += expected;
  }

  // Pad with spaces so the buffer starts 8-byte aligned (the 8-byte length prefix included).
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t n = header_text.size();
  unsigned char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(n >> (8 * i));

  AtomicWriter out(path);
  out.write(prefix, sizeof prefix);
  out.write(header_text);
  for (const auto& t : tensors) out.write(t.bytes.data(), t.bytes.size());
  out.commit();
}

// ---------------------------------------------------------------------------------------------

SafetensorsFile read_safetensors(const std::string& path) {
  auto fail = [&](const std::string& msg) { throw std::runtime_error(path + ": " + msg); };

  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(std::string("cannot open safetensors file (") + std::strerror(errno) + ")");
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (file_size < 8)
    fail("file too short (" + std::to_string(file_size) + " bytes) to hold the 8-byte header length");
  unsigned char prefix[8];
  in.read(reinterpret_cast<char*>(prefix), 8);
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(prefix[i]) << (8 * i);
  if (header_size > file_size - 8)
    fail("header length " + std::to_string(header_size) + " is larger than the rest of the file (" +
         std::to_string(file_size - 8) + " bytes): truncated or not a safetensors file");
  if (header_size > kMaxHeaderSize)
    fail("header length " + std::to_string(header_size) + " exceeds the 100 MB limit");
  if (header_size < 2) fail("header length " + std::to_string(header_size) + " is too small for a JSON object");

  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  const uint64_t buffer_size = file_size - 8 - header_size;
  std::vector<uint8_t> buffer(buffer_size);
  in.read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(buffer_size));
  if (!in) fail("read failed");

  // Parse, refusing duplicate tensor names (a JSON parser would silently keep the last).
  ordered_json header;
  {
    std::set<std::string> seen;
    std::string duplicate;
    ordered_json::parser_callback_t cb = [&](int depth, ordered_json::parse_event_t event, ordered_json& parsed) {
      // dump() and the destructor recurse over a value: refuse deep nesting while it is parsed.
      if (depth > kMaxJsonDepth) fail("header nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      if (event == ordered_json::parse_event_t::key && depth == 1 && parsed.is_string() &&
          !seen.insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
      return true;
    };
    try {
      header = ordered_json::parse(header_text, cb);
    } catch (const ordered_json::exception& e) {  // parse_error, and out_of_range for 1e400
      fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!duplicate.empty()) fail("duplicate tensor name \"" + duplicate + "\" in the header");
  }
  if (!header.is_object()) fail("header is not a JSON object");

  SafetensorsFile file;
  struct Entry {
    NamedTensor tensor;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    const std::string& name = item.key();
    const ordered_json& v = item.value();
    if (name == kMetadataKey) {
      if (!v.is_object()) fail("\"__metadata__\" must be an object of strings");
      for (const auto& m : v.items()) {
        if (!m.value().is_string()) fail("\"__metadata__\".\"" + m.key() + "\" must be a string, got " + excerpt(m.value().dump()));
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor \"" + name + "\": ";
    if (!v.is_object()) fail(where + "expected an object with dtype, shape and data_offsets");
    for (const auto& f : v.items())
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        fail(where + "unknown field \"" + f.key() + "\"");
    if (!v.contains("dtype")) fail(where + "missing dtype");
    if (!v["dtype"].is_string()) fail(where + "dtype must be a string");
    Entry e;
    e.tensor.name = name;
    e.tensor.dtype = v["dtype"].get<std::string>();
    if (!is_known_dtype(e.tensor.dtype))
      fail(where + "unknown dtype \"" + e.tensor.dtype + "\" (known: F32, F64, I32, I64, U8)");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(where + "missing or malformed shape");
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(where + "shape must hold non-negative integers, got " + v["shape"].dump());
      e.tensor.shape.push_back(d.get<int64_t>());
    }
    const auto& off = v.contains("data_offsets") ? v["data_offsets"] : ordered_json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(where + "data_offsets must be [begin, end] with non-negative integers");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end) fail(where + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] end before they begin");
    if (e.end > buffer_size)
      fail(where + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
           "] run past the end of the data (" + std::to_string(buffer_size) + " bytes)");
    int64_t n = 0;
    try {
      n = numel(e.tensor.shape);
    } catch (const std::invalid_argument& ex) {
      fail(where + ex.what());
    }
    const uint64_t expected = static_cast<uint64_t>(n) * dtype_size(e.tensor.dtype);
    if (e.end - e.begin != expected)
      fail(where + "data_offsets span " + std::to_string(e.end - e.begin) + " bytes, but shape " +
           shape_text(e.tensor.shape) + " of " + e.tensor.dtype + " needs " + std::to_string(expected));
    entries.push_back(std::move(e));
  }

  // Contiguous from 0, no gaps, no overlaps, the whole buffer covered.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  for (auto& e : entries) {
    if (e.begin < pos) fail("tensor \"" + e.tensor.name + "\": data overlaps the previous tensor (begins at " + std::to_string(e.begin) + ", previous ends at " + std::to_string(pos) + ")");
    if (e.begin > pos) fail("tensor \"" + e.tensor.name + "\": gap in the data (begins at " + std::to_string(e.begin) + ", previous ends at " + std::to_string(pos) + ")");
    e.tensor.bytes.assign(buffer.begin() + static_cast<std::ptrdiff_t>(e.begin), buffer.begin() + static_cast<std::ptrdiff_t>(e.end));
    pos = e.end;
  }
  if (pos != buffer_size)
    fail(std::to_string(buffer_size - pos) + " bytes after the last tensor's data (the data is " +
         std::to_string(buffer_size) + " bytes, tensors cover " + std::to_string(pos) + ")");
  for (auto& e : entries) file.tensors.push_back(std::move(e.tensor));
  return file;
}

}  // namespace st::experiment
