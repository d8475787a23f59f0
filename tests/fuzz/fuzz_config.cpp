// tests/fuzz/fuzz_config.cpp — the config reader: load_config with --set overrides, as `train` calls
// it. Input: the config file's bytes, then up to 8 overrides, each after a NUL byte
// ("{...}\0train.epochs=2\0model.hidden=[4]"). A config that loads must survive the round trip a
// run folder and a checkpoint put it through: to_json, then parse_config again, equal.
#include <cstring>
#include <string>
#include <vector>

#include "experiment/config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* end = data + size;
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const uint8_t* doc_end = nul ? nul : end;
  std::vector<std::string> overrides;
  for (const uint8_t* p = nul; p && p < end && overrides.size() < 8;) {
    const uint8_t* next = static_cast<const uint8_t*>(std::memchr(p + 1, 0, end - p - 1));
    overrides.emplace_back(reinterpret_cast<const char*>(p + 1), (next ? next : end) - p - 1);
    p = next;
  }
  const std::string path =
      st::fuzz::mem_file().write(data, static_cast<size_t>(doc_end - data));
  st::fuzz::expect_clean_refusal([&] {
    const st::experiment::Config c = st::experiment::load_config(path, overrides);
    const st::experiment::Config again = st::experiment::parse_config(to_json(c), path);
    if (again != c) {
      std::fprintf(stderr, "to_json/parse_config round trip changed the config:\n%s\n%s\n",
                   to_json(c).dump().c_str(), to_json(again).dump().c_str());
      std::abort();
    }
  });
  return 0;
}
