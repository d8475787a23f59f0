// experiment/safetensors.h — the safetensors checkpoint format (readable by PyTorch's `safetensors`).
//   file = u64 little-endian N | N bytes of JSON header, space-padded to a multiple of 8 | byte buffer
//   header = {"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}, ...}
//   offsets are relative to the buffer; tensors are contiguous, in order, with no gaps.
// write_safetensors is atomic (experiment/atomic_file.h). read_safetensors validates everything and
// names the file in each error. Tests: tests/experiment/test_safetensors.cpp
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace st::experiment {

// A tensor as stored: raw little-endian bytes, row-major. dtype: "F32" | "F64" | "I32" | "I64" | "U8".
// shape [] is a scalar (1 element); a 0 anywhere in the shape is an empty tensor.
struct NamedTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Bytes per element of a dtype; throws std::invalid_argument for an unknown one.
std::size_t dtype_size(const std::string& dtype);
bool is_known_dtype(const std::string& dtype);

// Product of the dims (1 for a scalar); throws std::invalid_argument for a negative dim or overflow.
int64_t numel(const std::vector<int64_t>& shape);

// Writes the tensors in the given order. Throws std::runtime_error (naming the file) for a duplicate
// or empty name, an unknown dtype, bytes.size() != numel·dtype size, or an I/O failure; in every case
// an existing file at `path` is left untouched and no temp file is left behind.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<NamedTensor> tensors;  // in buffer order (= the order they were written)
  const NamedTensor* find(const std::string& name) const;  // nullptr when absent
};

// Throws std::runtime_error "<path>: <problem>" for anything that is not a valid file.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace st::experiment
