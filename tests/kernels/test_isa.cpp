// tests/kernels/test_isa.cpp — the run-time choice of the kernels' instruction set (kernels/isa.h):
// names and their errors, SPARSETRAIN_ISA, and switching sets inside one process: every set this
// CPU runs gives the reference's results through the public functions, which call that set's table.
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>

#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/isa_table.h"
#include "kernels/reference.h"
#include "kernels/sparse_cpu.h"
#include "kernel_test_util.h"

namespace st::kernels {
namespace {

// Restores the set (and SPARSETRAIN_ISA) a case found.
struct IsaGuard {
  Isa saved = active_isa();
  std::string env = std::getenv("SPARSETRAIN_ISA") ? std::getenv("SPARSETRAIN_ISA") : "";
  bool had_env = std::getenv("SPARSETRAIN_ISA") != nullptr;
  ~IsaGuard() {
    if (had_env) setenv("SPARSETRAIN_ISA", env.c_str(), 1);
    else unsetenv("SPARSETRAIN_ISA");
    set_isa(saved);
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("instruction set names round-trip and a bad one is an error naming it") {
  for (Isa isa : {Isa::avx512, Isa::avx2, Isa::generic}) CHECK(parse_isa(isa_name(isa), "x") == isa);
  const std::string e = error_of([] { parse_isa("avx3", "SPARSETRAIN_ISA"); });
  CHECK(e.find("SPARSETRAIN_ISA") != std::string::npos);
  CHECK(e.find("\"avx3\"") != std::string::npos);
  CHECK(e.find("avx512, avx2 or generic") != std::string::npos);
}

TEST_CASE("the supported sets: widest first, generic always, best_isa the first") {
  const std::vector<Isa> sets = supported_isas();
  REQUIRE(!sets.empty());
  CHECK(sets.back() == Isa::generic);
  CHECK(best_isa() == sets.front());
  for (size_t i = 1; i < sets.size(); ++i) CHECK(static_cast<int>(sets[i - 1]) > static_cast<int>(sets[i]));
  CHECK(isa_summary().find("generic") != std::string::npos);
}

TEST_CASE("SPARSETRAIN_ISA: unset means the best set; a name picks it; a typo or an unsupported set is refused") {
  IsaGuard guard;
  unsetenv("SPARSETRAIN_ISA");
  CHECK(isa_from_environment() == best_isa());
  setenv("SPARSETRAIN_ISA", "generic", 1);
  CHECK(isa_from_environment() == Isa::generic);
  setenv("SPARSETRAIN_ISA", "AVX2", 1);  // names are lower case, as printed
  CHECK(error_of([] { isa_from_environment(); }).find("SPARSETRAIN_ISA") != std::string::npos);
  bool any_unsupported = false;
  for (Isa isa : {Isa::avx512, Isa::avx2}) {
    if (isa_supported(isa)) continue;
    any_unsupported = true;
    setenv("SPARSETRAIN_ISA", isa_name(isa), 1);
    CHECK(error_of([] { isa_from_environment(); }).find("this CPU cannot run") != std::string::npos);
    CHECK(error_of([isa] { set_isa(isa); }).find("this CPU cannot run") != std::string::npos);
  }
  if (!any_unsupported) MESSAGE("this CPU runs every set: the unsupported-set refusal is not exercised here");
}

TEST_CASE("every supported set, switched in one process, matches the references") {
  IsaGuard guard;
  const test::SparseCase c = test::make_case(37, 70, 0.2, 5);
  std::vector<int32_t> perm;
  const CsrMatrix wt = csr_transpose(c.csr, perm);
  const int batch = 45, OUT = 37, IN = 70;
  const auto x = test::random_floats(static_cast<size_t>(batch) * IN, 1);
  const auto dy = test::random_floats(static_cast<size_t>(batch) * OUT, 2);
  for (Isa isa : supported_isas()) {
    set_isa(isa);
    CAPTURE(isa_name(isa));
    CHECK(active_isa() == isa);
    std::vector<float> y(static_cast<size_t>(batch) * OUT), want(y.size());
    csr_spmm_xwt(c.csr, x.data(), batch, y.data(), 0.0f);
    ref::sgemm(false, true, batch, OUT, IN, 1.0f, x.data(), IN, c.dense.data(), IN, 0.0f, want.data(), OUT);
    test::check_close(y, want, 1e-5, test::scale_for(IN));
    std::vector<float> dx(static_cast<size_t>(batch) * IN), dx_want(dx.size());
    csr_spmm_dyw(wt, dy.data(), batch, dx.data(), 0.0f);
    ref::sgemm(false, false, batch, IN, OUT, 1.0f, dy.data(), OUT, c.dense.data(), IN, 0.0f, dx_want.data(), IN);
    test::check_close(dx, dx_want, 1e-5, test::scale_for(OUT));
    // Dense: an odd shape over several micro-tiles of every set (8×32, 6×16).
    std::vector<float> z(static_cast<size_t>(batch) * OUT);
    sgemm(false, true, batch, OUT, IN, 1.0f, x.data(), IN, c.dense.data(), IN, 0.0f, z.data(), OUT);
    test::check_close(z, want, 1e-5, test::scale_for(IN));
    const KernelTable* table = isa == Isa::avx512 ? &avx512::kTable : isa == Isa::avx2 ? &avx2::kTable
                                                                                       : &generic::kTable;
    CHECK(&active_kernels() == table);
  }
}

}  // namespace
}  // namespace st::kernels
