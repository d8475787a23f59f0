// tests/fuzz/fuzz_sweep.cpp — the sweep file reader: parse_sweep, then resolve_points (every grid
// point through parse_config), as `sweep --dry-run` does. Base configs named by path are read from
// the current directory (scripts/fuzz.sh runs from the repository root, so "configs/..." exist).
#include <string>

#include "experiment/sweep.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  st::fuzz::expect_clean_refusal([&] {
    const st::experiment::SweepConfig sweep = st::experiment::parse_sweep(text, "fuzz.sweep.json");
    st::experiment::resolve_points(sweep);
  });
  return 0;
}
