// kernels/isa.h — which instruction set the CPU kernels run on, chosen at run time.
// The kernel files with vector code (gemm, sparse_cpu, sparse_conv, conv, pool, elementwise, optim)
// are compiled three times, for AVX-512 (x86-64-v4), AVX2+FMA (x86-64-v3) and plain x86-64, each
// copy in a namespace of its own (st::kernels::avx512, ::avx2, ::generic; kernels/simd.h is their
// vector layer). The public functions (kernels/gemm.h, sparse_cpu.h, ...) call the copy of the
// active instruction set through one table (kernels/isa_table.h), so one binary runs the widest
// path the CPU supports and nothing depends on -march=native.
//   best_isa():      the widest set this CPU (and its OS) supports
//   active_isa():    the set in use: SPARSETRAIN_ISA if set (avx512 | avx2 | generic), else best_isa()
//   set_isa(isa):    switch (tests, benchmarks); throws std::invalid_argument if the CPU lacks it
//   isa_from_environment(): validates SPARSETRAIN_ISA, throwing a message that names it
// Forcing a lower set also caps oneDNN at the same level (dnnl::set_max_cpu_isa) unless
// DNNL_MAX_CPU_ISA says otherwise, so SPARSETRAIN_ISA=avx2 shows what an AVX2 machine gets.
// Tests: tests/kernels/test_isa.cpp (and every kernel suite runs once per set: CMakeLists.txt).
#pragma once
#include <string>
#include <vector>

namespace st::kernels {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
// "avx512" | "avx2" | "generic" -> Isa; throws std::invalid_argument naming `what` and the choices.
Isa parse_isa(const std::string& text, const std::string& what);
bool isa_supported(Isa isa);
std::vector<Isa> supported_isas();  // widest first
Isa best_isa();
Isa active_isa();
void set_isa(Isa isa);
// Reads SPARSETRAIN_ISA (once per call): the set it names, or best_isa() when unset. Throws
// std::invalid_argument for an unknown name or a set this CPU cannot run.
Isa isa_from_environment();
// "avx512 (this CPU: avx512, avx2, generic)" — for banners and `sparsetrain device`.
std::string isa_summary();

}  // namespace st::kernels
