// tests/main.cpp — the doctest main of every layer suite. SPARSETRAIN_ISA (kernels/isa.h) picks the
// instruction set the CPU kernels run on, so ctest runs a suite once per set; a set this CPU cannot
// run makes the suite exit 77, which ctest reports as skipped (SKIP_RETURN_CODE), never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "kernels/isa.h"

int main(int argc, char** argv) {
  using namespace st::kernels;
  if (const char* env = std::getenv("SPARSETRAIN_ISA"); env && *env) {
    Isa isa;
    try {
      isa = parse_isa(env, "SPARSETRAIN_ISA");
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
    if (!isa_supported(isa)) {
      std::printf("skipped: this CPU cannot run the %s kernels (it runs: %s)\n", env, isa_summary().c_str());
      return 77;
    }
    set_isa(isa);
  }
  std::printf("CPU kernels: %s\n", isa_name(active_isa()));
  doctest::Context context(argc, argv);
  return context.run();
}
