// kernels/onednn.cpp — oneDNN (2.x) primitives for Linear and Conv2d, built once per shape.
//   OnednnLinear:  matmul primitives (measured against inner_product: see OnednnLinear below)
//                  forward   y  = x · wᵀ + b     matmul(x (B, IN), w viewed as (IN, OUT), bias (1, OUT))
//                  bwd data  dx = dy · w         matmul(dy (B, OUT), w (OUT, IN))
//                  bwd wts   dw (+)= dyᵀ · x     matmul(dy viewed as (OUT, B), x (B, IN)), `sum` post-op
//                                                 when accumulating; db (+)= Σ_B dy by a plain loop
//   OnednnConv2d:  convolution forward_training / backward_data / backward_weights, direct algorithm.
// Every tensor crosses the boundary in a plain layout (ab, nchw, oihw, x). Where a primitive prefers
// another layout, the layer owns a buffer in that layout and a reorder step converts at the boundary;
// for convolution, whether to let oneDNN pick is decided per pass from measurements
// (choose_conv_layouts).
// Each method binds the caller's pointers (memory::set_data_handle) and executes a prebuilt list of
// steps through the C API with prebuilt argument arrays, so a call allocates nothing on our side.
// All primitives of one layer share one user-owned scratchpad, and all layers share one engine and
// stream: a layer object may be used from one thread at a time (each call itself runs on OpenMP).
// Reference: kernels/reference.h. Tests: tests/kernels/test_onednn.cpp.
#include "kernels/onednn.h"

#include <dnnl.hpp>
#include <dnnl_debug.h>

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace st::kernels {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

// One CPU engine and stream for the whole process; oneDNN's CPU runtime here is OpenMP, so a call
// runs on the caller's OpenMP team and returns when done.
dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}
dnnl::stream& cpu_stream() {
  static dnnl::stream stream(cpu_engine());
  return stream;
}

[[noreturn]] void fail(const std::string& where, const std::string& what, const char* file,
                       int line) {
  throw std::runtime_error(where + ": oneDNN: " + what + " (" + file + ":" + std::to_string(line) +
                           ")");
}
#define ST_DNNL_CHECK(call, where)                                                \
  do {                                                                            \
    const dnnl_status_t st_status_ = (call);                                      \
    if (st_status_ != dnnl_success) fail(where, dnnl_status2str(st_status_), __FILE__, __LINE__); \
  } while (0)

}  // namespace

void limit_onednn_isa(Isa isa) {
  if (std::getenv("DNNL_MAX_CPU_ISA")) return;
  // The status is ignored on purpose: after oneDNN's first primitive the cap cannot change.
  (void)dnnl::set_max_cpu_isa(isa == Isa::avx512 ? dnnl::cpu_isa::all
                              : isa == Isa::avx2 ? dnnl::cpu_isa::avx2
                                                 : dnnl::cpu_isa::sse41);
}

std::string onednn_isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

namespace {

memory::desc plain_md(const memory::dims& dims, Tag tag) { return memory::desc(dims, Dt::f32, tag); }

// A memory object whose buffer is the caller's pointer, bound at each call.
memory user_memory(const memory::desc& md) { return memory(md, cpu_engine(), DNNL_MEMORY_NONE); }

void bind(const memory& mem, const float* ptr) { mem.set_data_handle(const_cast<float*>(ptr)); }

dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}
dnnl::primitive_attr accumulate_attr() {  // dst = op(...) + 1.0 · dst
  dnnl::primitive_attr attr = user_scratchpad_attr();
  dnnl::post_ops ops;
  ops.append_sum(1.f);
  attr.set_post_ops(ops);
  return attr;
}

// One primitive execution: the primitive, its argument array (raw handles, kept alive by `memories`)
// and the scratchpad it needs.
struct Step {
  dnnl::primitive primitive;
  memory::desc scratchpad_md;
  std::vector<memory> memories;
  std::vector<dnnl_exec_arg_t> args;
};
using Steps = std::vector<Step>;

Step make_step(const dnnl::primitive_desc_base& pd, std::vector<std::pair<int, memory>> args) {
  Step step{dnnl::primitive(pd.get()), pd.scratchpad_desc(), {}, {}};
  for (auto& [arg, mem] : args) {
    step.args.push_back({arg, mem.get()});
    step.memories.push_back(mem);
  }
  return step;
}

Step make_reorder(const memory& from, const memory& to, bool accumulate) {
  const dnnl::primitive_attr attr = accumulate ? accumulate_attr() : user_scratchpad_attr();
  dnnl::reorder::primitive_desc pd(cpu_engine(), from.get_desc(), cpu_engine(), to.get_desc(), attr);
  return make_step(pd, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

// Owned buffers in a primitive's preferred layout, one per (caller's memory, layout): the lists of a
// layer run one after another, so they share them.
struct InnerBuffers {
  std::vector<std::pair<std::pair<dnnl_memory_t, memory::desc>, memory>> held;
  memory get(const memory& user, const memory::desc& want) {
    for (auto& [key, mem] : held)
      if (key.first == user.get() && key.second == want) return mem;
    held.push_back({{user.get(), want}, memory(want, cpu_engine())});
    return held.back().second;
  }
};

// The memory to hand a primitive for input `user` when it wants layout `want`: `user` itself, or an
// owned buffer in layout `want` filled by a reorder appended to `before`.
memory as_input(const memory& user, const memory::desc& want, Steps& before, InnerBuffers& inner) {
  if (want == user.get_desc()) return user;
  memory buffer = inner.get(user, want);
  before.push_back(make_reorder(user, buffer, false));
  return buffer;
}
// The memory a primitive writes output `user` into: `user` itself when layouts match and nothing is
// to be added, else an owned buffer copied (or added, if `accumulate`) into `user` by a step in `after`.
memory as_output(const memory& user, const memory::desc& want, bool accumulate, Steps& after,
                 InnerBuffers& inner) {
  if (want == user.get_desc() && !accumulate) return user;
  memory buffer = inner.get(user, want);
  after.push_back(make_reorder(buffer, user, accumulate));
  return buffer;
}

Steps concat(Steps before, Step main, Steps after) {
  before.push_back(std::move(main));
  for (auto& s : after) before.push_back(std::move(s));
  return before;
}

// 64-byte aligned bytes owned by a layer (the shared scratchpad).
struct AlignedBytes {
  void* ptr = nullptr;
  AlignedBytes() = default;
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
  ~AlignedBytes() { std::free(ptr); }
};

// Sizes one scratchpad for steps that run one after another and adds it to each step's arguments.
void attach_scratchpad(const std::vector<Step*>& steps, AlignedBytes& buffer) {
  size_t bytes = 0;
  for (const Step* step : steps) bytes = std::max(bytes, step->scratchpad_md.get_size());
  if (bytes == 0) return;
  buffer.ptr = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!buffer.ptr) throw std::bad_alloc();
  for (Step* step : steps) {
    if (step->scratchpad_md.get_size() == 0) continue;
    memory scratch(step->scratchpad_md, cpu_engine(), buffer.ptr);
    step->args.push_back({DNNL_ARG_SCRATCHPAD, scratch.get()});
    step->memories.push_back(scratch);
  }
}
void attach_scratchpad(const std::vector<Steps*>& lists, AlignedBytes& buffer) {
  std::vector<Step*> steps;
  for (Steps* list : lists)
    for (Step& step : *list) steps.push_back(&step);
  attach_scratchpad(steps, buffer);
}

void run(const Steps& steps, const std::string& where) {
  dnnl::stream& stream = cpu_stream();
  for (const Step& step : steps)
    ST_DNNL_CHECK(dnnl_primitive_execute(step.primitive.get(), stream.get(),
                                         static_cast<int>(step.args.size()), step.args.data()),
                  where);
  ST_DNNL_CHECK(dnnl_stream_wait(stream.get()), where);
}

// The three passes of a layer whose primitives form one forward/backward family (convolution here;
// inner product would fit too): user memories in plain layouts, and per pass the steps (reorders in,
// the primitive, reorders out).
struct LayerPlan {
  memory x, w, b, y, dy, dx, dw, db;  // caller's buffers, plain layouts
  memory db_sink;                     // stands in for a null `db`
  bool has_bias_ = false;
  // backward(_accumulate): the data pass, then the weight pass reusing the data pass's reordered dy
  // when both want the same layout (one reorder of dy instead of two).
  Steps forward, backward_data, backward_weights, backward_weights_accumulate, backward,
      backward_accumulate;
  InnerBuffers inner;
  AlignedBytes scratchpad;
  // Error context, built once so that a call allocates nothing.
  std::string where_forward, where_backward_data, where_backward_weights, where_backward;

  void name(const std::string& layer) {
    where_forward = layer + " forward";
    where_backward_data = layer + " backward_data";
    where_backward_weights = layer + " backward_weights";
    where_backward = layer + " backward";
  }

  template <class BwdDataPd>
  void append_backward_data(const BwdDataPd& pd, Steps& steps, memory& dy_in) {
    Steps after;
    dy_in = as_input(dy, pd.diff_dst_desc(), steps, inner);
    std::vector<std::pair<int, memory>> args{
        {DNNL_ARG_DIFF_DST, dy_in},
        {DNNL_ARG_WEIGHTS, as_input(w, pd.weights_desc(), steps, inner)},
        {DNNL_ARG_DIFF_SRC, as_output(dx, pd.diff_src_desc(), false, after, inner)}};
    steps = concat(std::move(steps), make_step(pd, args), std::move(after));
  }
  // `dy_in`: dy already reordered by an earlier step of `steps`, used if its layout is the one wanted.
  template <class BwdWeightsPd>
  void append_backward_weights(const BwdWeightsPd& pd, bool has_bias, bool accumulate,
                               const memory* dy_in, Steps& steps) {
    Steps after;
    const bool reuse = dy_in && dy_in->get_desc() == pd.diff_dst_desc();
    std::vector<std::pair<int, memory>> args{
        {DNNL_ARG_SRC, as_input(x, pd.src_desc(), steps, inner)},
        {DNNL_ARG_DIFF_DST, reuse ? *dy_in : as_input(dy, pd.diff_dst_desc(), steps, inner)},
        {DNNL_ARG_DIFF_WEIGHTS, as_output(dw, pd.diff_weights_desc(), accumulate, after, inner)}};
    if (has_bias)
      args.push_back(
          {DNNL_ARG_DIFF_BIAS, as_output(db, pd.diff_bias_desc(), accumulate, after, inner)});
    steps = concat(std::move(steps), make_step(pd, args), std::move(after));
  }

  template <class FwdPd, class BwdDataPd, class BwdWeightsPd>
  void build(const FwdPd& fwd_pd, const BwdDataPd& bwd_data_pd, const BwdWeightsPd& bwd_weights_pd,
             bool has_bias) {
    {
      Steps before, after;
      std::vector<std::pair<int, memory>> args{
          {DNNL_ARG_SRC, as_input(x, fwd_pd.src_desc(), before, inner)},
          {DNNL_ARG_WEIGHTS, as_input(w, fwd_pd.weights_desc(), before, inner)},
          {DNNL_ARG_DST, as_output(y, fwd_pd.dst_desc(), false, after, inner)}};
      if (has_bias) args.push_back({DNNL_ARG_BIAS, as_input(b, fwd_pd.bias_desc(), before, inner)});
      forward = concat(std::move(before), make_step(fwd_pd, args), std::move(after));
    }
    memory dy_in;
    append_backward_data(bwd_data_pd, backward_data, dy_in);
    append_backward_weights(bwd_weights_pd, has_bias, false, nullptr, backward_weights);
    append_backward_weights(bwd_weights_pd, has_bias, true, nullptr, backward_weights_accumulate);
    for (bool accumulate : {false, true}) {
      Steps& steps = accumulate ? backward_accumulate : backward;
      append_backward_data(bwd_data_pd, steps, dy_in);
      append_backward_weights(bwd_weights_pd, has_bias, accumulate, &dy_in, steps);
    }
    attach_scratchpad({&forward, &backward_data, &backward_weights, &backward_weights_accumulate,
                       &backward, &backward_accumulate},
                      scratchpad);
    has_bias_ = has_bias;
    if (has_bias) db_sink = memory(db.get_desc(), cpu_engine());
  }

  void run_forward(const float* xp, const float* wp, const float* bp, float* yp) {
    bind(x, xp), bind(w, wp), bind(y, yp);
    if (has_bias_) {
      assert(bp && "a layer built with a bias needs b");
      bind(b, bp);
    }
    run(forward, where_forward);
  }
  void run_backward_data(const float* dyp, const float* wp, float* dxp) {
    bind(dy, dyp), bind(w, wp), bind(dx, dxp);
    run(backward_data, where_backward_data);
  }
  void run_backward_weights(const float* xp, const float* dyp, float* dwp, float* dbp,
                            bool accumulate) {
    bind(x, xp), bind(dy, dyp), bind(dw, dwp);
    // A null db still needs somewhere to go, and must not be accumulated into garbage.
    if (has_bias_) bind(db, dbp ? dbp : static_cast<float*>(db_sink.get_data_handle()));
    run(accumulate ? backward_weights_accumulate : backward_weights, where_backward_weights);
  }
  void run_backward(const float* dyp, const float* wp, float* dxp, const float* xp, float* dwp,
                    float* dbp, bool accumulate) {
    bind(dy, dyp), bind(w, wp), bind(dx, dxp), bind(x, xp), bind(dw, dwp);
    if (has_bias_) bind(db, dbp ? dbp : static_cast<float*>(db_sink.get_data_handle()));
    run(accumulate ? backward_accumulate : backward, where_backward);
  }
};

memory::desc maybe_any(const memory::desc& md, bool any) {
  return any ? memory::desc(md.dims(), Dt::f32, Tag::any) : md;
}

// Per pass: true lets oneDNN pick layouts (it then runs its direct kernels on channel blocks, with
// reorders at the boundary); false forces plain nchw/oihw (its im2col + GEMM).
struct ConvLayouts {
  bool forward, backward_data, backward_weights;
};

// oneDNN's direct kernels block channels by 16 with AVX-512 and by 8 below it; a channel count that
// is not a multiple is padded to one, and the work grows by the padding.
int onednn_channel_block() {
  return dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core ? 16 : 8;
}

// Blocked kernels win when the channels they block fill whole blocks, and lose when padding
// multiplies the work too much. Measured at batch 64 (µs, min of 100; plain → blocked, reorders
// included; one thread | two threads), AVX-512 (Intel Xeon, blocks of 16):
//   1→20 5×5 on 28²:     fwd  619 → 603  |  458 → 332   bwd_data  800 → 5576 |  423 → 2740
//                        bwd_weights 1441 → 625  | 2234 → 326
//   1→32 3×3 p1 on 28²:  fwd  525 → 400  |  316 → 217   bwd_data  498 → 2900 |  257 → 1363
//                        bwd_weights 1410 → 374  | 2074 → 211
//   20→50 5×5 on 12²:    fwd 2137 → 2588 | 1194 → 1405  bwd_data 2653 → 2560 | 1338 → 1440
//                        bwd_weights 2244 → 2722 | 1518 → 1722
//   32→64 3×3 p1 on 14²: fwd 4204 → 2602 | 2427 → 1434  bwd_data 4950 → 2569 | 2525 → 1638
//                        bwd_weights 4714 → 2735 | 2475 → 1293
// AVX2 (AMD EPYC Zen 2, blocks of 8; median of 30, two threads, reorders not included):
//   20→50 5×5 on 12²:    fwd 1943 → 1716   bwd_data 2276 → 3422   bwd_weights 2153 → 1911
//   32→64 3×3 p1 on 14²: fwd 3872 → 2516   bwd_data 4656 → 2377   bwd_weights 5209 → 3073
// and in LeNet-5's training step (20→50 on AVX2) blocking forward and weights, not data, took
// 5 750 to 6 000–6 300 samples/s; on AMD Zen 5 (AVX-512, blocks of 16) blocking 20→50's forward and
// weight passes anyway ran LeNet-5's dense step at 0.88–1.0× of plain (three alternating rounds,
// 1 and 2 threads). So: whole blocks block every pass; padding that adds at most
// half the work (C·OC padded over C·OC: 20→50 is 1.34 with blocks of 8, 2.05 with 16) blocks the
// forward and weight passes; more padding blocks none. With C = 1 the input stays plain even when
// oneDNN picks, so forward and backward_weights gain from blocking OC whatever OC is, while
// backward_data would compute a padded dx. (C ≤ 4 weight gradients do not reach oneDNN on a vector
// instruction set: kernels::conv2d_direct_weight_grad; nor do convs with C ≥ 2 whose channel
// counts are not whole blocks, such as 20→50: core/ops.cpp runs those on kernels/conv_pn.h, which
// is 1.6–2.2× oneDNN's passes there.) The choice depends on the shape and the instruction set
// alone, never on timing at run time, so results stay reproducible run after run.
ConvLayouts choose_conv_layouts(const Conv2dShape& s) {
  if (s.C == 1) return {true, false, true};
  const int b = onednn_channel_block();
  if (s.C % b == 0 && s.OC % b == 0) return {true, true, true};
  const auto padded = [b](int c) { return static_cast<double>((c + b - 1) / b * b); };
  const double growth = padded(s.C) * padded(s.OC) / (static_cast<double>(s.C) * s.OC);
  const bool some = growth <= 1.5;
  return {some, false, some};
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// OnednnLinear
// matmul rather than inner_product: at batch 64, one thread, summed over 784→300, 300→100, 100→10,
// 800→500, 500→10, 3136→128 (µs): forward 746 vs 860, backward_data 660 vs 644, backward_weights
// with accumulate 713 vs 812 (matmul fuses `+=` as a sum post-op; inner_product cannot, so it
// needs a buffer and an extra pass). Letting inner_product pick blocked weights was slower still
// (3206 vs 2119 for the three passes) once the per-call weight reorders are counted.
//
// Threads. oneDNN's own split of a matmul does not follow the rows of w, so in a training step each
// thread reads weights (and writes weight gradients) that the optimizer step, which splits every
// parameter into contiguous per-thread ranges, had just left in the other core's cache; its threads
// also wake for matmuls too small to share. Measured in LeNet-300's step (AMD Zen 5, two threads,
// µs per call): 784→300 forward 199 on oneDNN's threads against 189 on one; 300→100 forward 49
// against 29; and the SGD step after oneDNN's split 140 against 41–55 after a split by rows of w.
// So a pass whose output can be cut into slices of at least kMinSliceFlops each, wide enough
// (forward and weight gradient: ≥ kMinSliceCols rows of w, the same contiguous ranges the optimizer
// gives each thread; input gradient: ≥ kMinSliceRows batch rows) runs as one single-threaded matmul
// per slice, one slice per thread; a smaller pass runs on one thread when under kTeamMinFlops, on
// oneDNN's threads otherwise. Slices cut the output, never the reduction, and the choice depends on
// the shape and the thread count alone. Tried and left out: cutting the forward of a layer too
// narrow for that by batch rows (300→100: 31–35 µs on two threads against 27–29 on one), and
// slices of 32 rows of w (no faster).

namespace {

constexpr int64_t kMinSliceCols = 64;
constexpr int64_t kMinSliceRows = 8;
constexpr double kMinSliceFlops = 1e6;
constexpr double kTeamMinFlops = 16e6;

// The caller's buffers, in the order the passes name them.
enum Operand { kX, kW, kB, kY, kDy, kDx, kDw, kOperands };

// Columns [c0, c0 + n) of a row-major (rows, ld) operand, written from a dense (rows, n) buffer:
// oneDNN runs its fastest matmul (brgemm) only on dense sources and destinations.
struct ColumnCopy {
  Operand operand = kOperands;  // kOperands: no copy
  int64_t rows = 0, ld = 0, c0 = 0, n = 0;
};

void copy_columns(const float* src, int64_t ld_src, float* dst, int64_t ld_dst, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r)
    std::copy(src + r * ld_src, src + r * ld_src + n, dst + r * ld_dst);
}

// One matmul over a slice: its primitive and arguments; for each memory that views a caller's
// buffer, the operand and the offset (floats) of its first element there; and, where the matmul
// writes a dense staging buffer, the copy from it into the caller's output after it.
struct Slice {
  Step step;
  std::vector<std::pair<memory, std::pair<Operand, int64_t>>> views;
  ColumnCopy scatter;
  float* staging = nullptr;
};

// One pass: its slices (one per thread when more than one, each then on its own stream), and the
// error context.
struct Pass {
  std::vector<Slice> slices;
  std::vector<dnnl::stream> streams;
  std::vector<dnnl_status_t> status;  // per slice, of the last call
  std::string where;
};

// RAII: primitives created in scope are built for `threads` OpenMP threads.
class CreationThreads {
 public:
  explicit CreationThreads(int threads) : saved_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  ~CreationThreads() { omp_set_num_threads(saved_); }
  CreationThreads(const CreationThreads&) = delete;
  CreationThreads& operator=(const CreationThreads&) = delete;

 private:
  int saved_;
};

// How a pass runs on `threads` threads when its output can be cut into slices along a dimension of
// `extent` (no slice narrower than `min_extent`) and it does `flops` of work: the number of
// slices, and the threads oneDNN may use for each.
struct PassSplit {
  int slices, threads_each;
};
PassSplit split_pass(int64_t extent, int64_t min_extent, double flops, int threads) {
  if (threads > 1 && extent / threads >= min_extent && flops / threads >= kMinSliceFlops)
    return {threads, 1};
  return {1, flops < kTeamMinFlops ? 1 : threads};
}

// A (rows, cols) view with the given strides.
memory::desc view_md(memory::dim rows, memory::dim cols, memory::dim row_stride, memory::dim col_stride) {
  return memory::desc({rows, cols}, Dt::f32, memory::dims{row_stride, col_stride});
}

dnnl_status_t run_slice(const Slice& slice, const float* const (&ptr)[kOperands], dnnl::stream& stream) {
  const Step& step = slice.step;
  dnnl_status_t status = dnnl_primitive_execute(step.primitive.get(), stream.get(),
                                                static_cast<int>(step.args.size()), step.args.data());
  if (status == dnnl_success) status = dnnl_stream_wait(stream.get());
  if (status == dnnl_success && slice.scatter.operand != kOperands) {
    const ColumnCopy& c = slice.scatter;
    copy_columns(slice.staging, c.n, const_cast<float*>(ptr[c.operand]) + c.c0, c.ld, c.rows, c.n);
  }
  return status;
}

void run_pass(Pass& pass, const float* const (&ptr)[kOperands]) {
  for (const Slice& slice : pass.slices)
    for (const auto& [mem, view] : slice.views)
      bind(mem, ptr[view.first] + view.second);
  const int n = static_cast<int>(pass.slices.size());
  if (n == 1) {
    ST_DNNL_CHECK(run_slice(pass.slices[0], ptr, cpu_stream()), pass.where);
    return;
  }
  // One slice per thread; a failure is reported after the team joins.
#pragma omp parallel for schedule(static, 1) num_threads(n)
  for (int t = 0; t < n; ++t) pass.status[t] = run_slice(pass.slices[t], ptr, pass.streams[t]);
  for (int t = 0; t < n; ++t) ST_DNNL_CHECK(pass.status[t], pass.where);
}

}  // namespace

struct OnednnLinear::Impl {
  int batch, in, out;
  bool has_bias;
  std::string name;
  Pass forward, backward_data, backward_weights, backward_weights_accumulate;
  // Scratchpads by slice index (the passes run one after another, their slices side by side), and
  // the forward slices' staging buffers.
  std::vector<std::unique_ptr<AlignedBytes>> scratchpads, staging;
};

OnednnLinear::OnednnLinear(int batch, int in_features, int out_features, bool has_bias)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.batch = batch, m.in = in_features, m.out = out_features, m.has_bias = has_bias;
  m.name = "OnednnLinear(batch " + std::to_string(batch) + ", " + std::to_string(in_features) +
           " -> " + std::to_string(out_features) + ")";
  m.forward.where = m.name + " forward";
  m.backward_data.where = m.name + " backward_data";
  m.backward_weights.where = m.backward_weights_accumulate.where = m.name + " backward_weights";
  try {
    if (batch <= 0 || in_features <= 0 || out_features <= 0)
      throw dnnl::error(dnnl_invalid_arguments, "sizes must be positive");
    const memory::dim B = batch, IN = in_features, OUT = out_features;
    const int threads = omp_get_max_threads();
    const double flops = 2.0 * B * IN * OUT;
    using Matmul = dnnl::matmul;
    const dnnl::primitive_attr plain = user_scratchpad_attr(), sum = accumulate_attr();
    const auto view = [](const memory::desc& md) { return memory(md, cpu_engine(), DNNL_MEMORY_NONE); };
    // forward, output columns (rows of w) [c0, c1): y[:, c0:c1] = x · w[c0:c1]ᵀ + b[c0:c1], through
    // a dense (B, c1 − c0) staging buffer of the slice's own when the output is cut.
    const auto forward_slice = [&](int, memory::dim c0, memory::dim c1, bool cut) {
      const memory::dim n = c1 - c0;
      Slice s;
      if (cut) {
        m.staging.push_back(std::make_unique<AlignedBytes>());
        const size_t bytes = sizeof(float) * static_cast<size_t>(B * n);
        m.staging.back()->ptr = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!m.staging.back()->ptr) throw std::bad_alloc();
        s.staging = static_cast<float*>(m.staging.back()->ptr);
      }
      const memory x = view(view_md(B, IN, IN, 1)), w_t = view(view_md(IN, n, 1, IN));
      const memory b = view(view_md(1, n, n, 1));
      const memory y = cut ? memory(view_md(B, n, n, 1), cpu_engine(), s.staging) : view(view_md(B, OUT, OUT, 1));
      const auto desc = has_bias ? Matmul::desc(x.get_desc(), w_t.get_desc(), b.get_desc(), y.get_desc())
                                 : Matmul::desc(x.get_desc(), w_t.get_desc(), y.get_desc());
      std::vector<std::pair<int, memory>> args{{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w_t}, {DNNL_ARG_DST, y}};
      s.views = {{x, {kX, 0}}, {w_t, {kW, c0 * IN}}};
      if (cut) s.scatter = {kY, B, OUT, c0, n};
      else s.views.push_back({y, {kY, 0}});
      if (has_bias) args.push_back({DNNL_ARG_BIAS, b}), s.views.push_back({b, {kB, c0}});
      s.step = make_step(Matmul::primitive_desc(desc, plain, cpu_engine()), args);
      return s;
    };
    // input gradient, batch rows [r0, r1): dx[r0:r1] = dy[r0:r1] · w (all dense).
    const auto backward_data_slice = [&](int, memory::dim r0, memory::dim r1, bool) {
      const memory::dim n = r1 - r0;
      const memory dy = view(view_md(n, OUT, OUT, 1)), w = view(view_md(OUT, IN, IN, 1));
      const memory dx = view(view_md(n, IN, IN, 1));
      Slice s;
      s.step = make_step(Matmul::primitive_desc(Matmul::desc(dy.get_desc(), w.get_desc(), dx.get_desc()),
                                                plain, cpu_engine()),
                         {{DNNL_ARG_SRC, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dx}});
      s.views = {{dy, {kDy, r0 * OUT}}, {w, {kW, 0}}, {dx, {kDx, r0 * IN}}};
      return s;
    };
    // weight gradient, rows of dw [c0, c1): dw[c0:c1] (+)= dy[:, c0:c1]ᵀ · x. dy's columns stay
    // strided (oneDNN's gemm): gathering them into a dense buffer lets it run brgemm, which took as
    // long here and left dw out of cache: the optimizer step after it ran 80–92 µs against 42–55 on
    // 784→300 (Zen 5).
    const auto backward_weights_slice = [&](int, memory::dim c0, memory::dim c1, bool, bool accumulate) {
      const memory::dim n = c1 - c0;
      const memory dy_t = view(view_md(n, B, 1, OUT)), x = view(view_md(B, IN, IN, 1));
      const memory dw = view(view_md(n, IN, IN, 1));
      Slice s;
      s.step = make_step(Matmul::primitive_desc(Matmul::desc(dy_t.get_desc(), x.get_desc(), dw.get_desc()),
                                                accumulate ? sum : plain, cpu_engine()),
                         {{DNNL_ARG_SRC, dy_t}, {DNNL_ARG_WEIGHTS, x}, {DNNL_ARG_DST, dw}});
      s.views = {{dy_t, {kDy, c0}}, {x, {kX, 0}}, {dw, {kDw, c0 * IN}}};
      return s;
    };
    const auto build = [&](Pass& pass, memory::dim extent, memory::dim min_extent, auto&& slice) {
      const PassSplit split = split_pass(extent, min_extent, flops, threads);
      const CreationThreads scope(split.threads_each);
      for (int t = 0; t < split.slices; ++t)
        pass.slices.push_back(slice(t, extent * t / split.slices, extent * (t + 1) / split.slices, split.slices > 1));
    };
    build(m.forward, OUT, kMinSliceCols, forward_slice);
    build(m.backward_data, B, kMinSliceRows, backward_data_slice);
    build(m.backward_weights, OUT, kMinSliceCols,
          [&](int t, memory::dim c0, memory::dim c1, bool cut) { return backward_weights_slice(t, c0, c1, cut, false); });
    build(m.backward_weights_accumulate, OUT, kMinSliceCols,
          [&](int t, memory::dim c0, memory::dim c1, bool cut) { return backward_weights_slice(t, c0, c1, cut, true); });
    // Slice t of every pass shares scratchpad t; a pass in slices gets a stream per slice.
    Pass* const passes[] = {&m.forward, &m.backward_data, &m.backward_weights, &m.backward_weights_accumulate};
    for (size_t t = 0;; ++t) {
      std::vector<Step*> steps;
      for (Pass* pass : passes)
        if (t < pass->slices.size()) steps.push_back(&pass->slices[t].step);
      if (steps.empty()) break;
      m.scratchpads.push_back(std::make_unique<AlignedBytes>());
      attach_scratchpad(steps, *m.scratchpads.back());
    }
    for (Pass* pass : passes) {
      if (pass->slices.size() > 1)
        for (size_t t = 0; t < pass->slices.size(); ++t) pass->streams.emplace_back(cpu_engine());
      pass->status.resize(pass->slices.size());
    }
  } catch (const dnnl::error& e) {
    fail(m.name, e.what(), __FILE__, __LINE__);
  }
}

OnednnLinear::~OnednnLinear() = default;

void OnednnLinear::forward(const float* x, const float* w, const float* b, float* y) {
  Impl& m = *impl_;
  assert((!m.has_bias || b) && "a layer built with a bias needs b");
  run_pass(m.forward, {x, w, b, y, nullptr, nullptr, nullptr});
}

void OnednnLinear::backward_data(const float* dy, const float* w, float* dx) {
  run_pass(impl_->backward_data, {nullptr, w, nullptr, nullptr, dy, dx, nullptr});
}

void OnednnLinear::backward_weights(const float* x, const float* dy, float* dw, float* db,
                                    bool accumulate) {
  Impl& m = *impl_;
  run_pass(accumulate ? m.backward_weights_accumulate : m.backward_weights,
           {x, nullptr, nullptr, nullptr, dy, nullptr, dw});
  if (!m.has_bias || !db) return;
  // db[o] (+)= Σ_b dy[b][o]: batch-outer so the inner loop is contiguous; B·OUT adds, too small to
  // be worth threads, and the fixed order keeps it deterministic.
  const int B = m.batch, OUT = m.out;
  if (!accumulate) std::fill(db, db + OUT, 0.f);
  for (int i = 0; i < B; ++i) {
    const float* row = dy + static_cast<size_t>(i) * OUT;
#pragma omp simd
    for (int o = 0; o < OUT; ++o) db[o] += row[o];
  }
}

// ------------------------------------------------------------------------------------------------
// OnednnConv2d

struct OnednnConv2d::Impl {
  Conv2dShape s;
  bool has_bias;
  std::string name;
  LayerPlan plan;
};

OnednnConv2d::OnednnConv2d(const Conv2dShape& s, bool has_bias) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.s = s, m.has_bias = has_bias;
  m.name = "OnednnConv2d(N " + std::to_string(s.N) + ", C " + std::to_string(s.C) + ", " +
           std::to_string(s.H) + "x" + std::to_string(s.W) + " -> OC " + std::to_string(s.OC) +
           ", kernel " + std::to_string(s.KH) + "x" + std::to_string(s.KW) + ", stride " +
           std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w) + ", pad " +
           std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w) + ")";
  try {
    const memory::desc src_md = plain_md({s.N, s.C, s.H, s.W}, Tag::nchw);
    const memory::desc w_md = plain_md({s.OC, s.C, s.KH, s.KW}, Tag::oihw);
    const memory::desc b_md = plain_md({s.OC}, Tag::x);
    const memory::desc dst_md = plain_md({s.N, s.OC, s.OH(), s.OW()}, Tag::nchw);
    LayerPlan& p = m.plan;
    p.x = user_memory(src_md), p.dx = user_memory(src_md);
    p.w = user_memory(w_md), p.dw = user_memory(w_md);
    p.b = user_memory(b_md), p.db = user_memory(b_md);
    p.y = user_memory(dst_md), p.dy = user_memory(dst_md);

    const ConvLayouts layouts = choose_conv_layouts(s);
    const memory::dims strides{s.stride_h, s.stride_w};
    const memory::dims pad_l{s.pad_h, s.pad_w};
    // Symmetric padding; oneDNN, like Conv2dShape::OH(), floors (H + 2·pad − KH) / stride, so rows
    // the last stride step cannot reach are simply not read.
    const memory::dims pad_r{s.pad_h, s.pad_w};
    const auto algo = dnnl::algorithm::convolution_direct;
    const dnnl::primitive_attr attr = user_scratchpad_attr();
    using Fwd = dnnl::convolution_forward;
    using BwdData = dnnl::convolution_backward_data;
    using BwdWeights = dnnl::convolution_backward_weights;
    bool any = layouts.forward;
    const auto fwd_desc =
        has_bias ? Fwd::desc(dnnl::prop_kind::forward_training, algo, maybe_any(src_md, any),
                             maybe_any(w_md, any), b_md, maybe_any(dst_md, any), strides, pad_l,
                             pad_r)
                 : Fwd::desc(dnnl::prop_kind::forward_training, algo, maybe_any(src_md, any),
                             maybe_any(w_md, any), maybe_any(dst_md, any), strides, pad_l, pad_r);
    const Fwd::primitive_desc fwd_pd(fwd_desc, attr, cpu_engine());
    any = layouts.backward_data;
    const BwdData::primitive_desc bwd_data_pd(
        BwdData::desc(algo, maybe_any(src_md, any), maybe_any(w_md, any), maybe_any(dst_md, any),
                      strides, pad_l, pad_r),
        attr, cpu_engine(), fwd_pd);
    any = layouts.backward_weights;
    const auto bwd_weights_desc =
        has_bias ? BwdWeights::desc(algo, maybe_any(src_md, any), maybe_any(w_md, any), b_md,
                                    maybe_any(dst_md, any), strides, pad_l, pad_r)
                 : BwdWeights::desc(algo, maybe_any(src_md, any), maybe_any(w_md, any),
                                    maybe_any(dst_md, any), strides, pad_l, pad_r);
    const BwdWeights::primitive_desc bwd_weights_pd(bwd_weights_desc, attr, cpu_engine(), fwd_pd);
    p.name(m.name);
    p.build(fwd_pd, bwd_data_pd, bwd_weights_pd, has_bias);
  } catch (const dnnl::error& e) {
    fail(m.name, e.what(), __FILE__, __LINE__);
  }
}

OnednnConv2d::~OnednnConv2d() = default;

void OnednnConv2d::forward(const float* x, const float* w, const float* b, float* y) {
  impl_->plan.run_forward(x, w, b, y);
}
void OnednnConv2d::backward_data(const float* dy, const float* w, float* dx) {
  impl_->plan.run_backward_data(dy, w, dx);
}
void OnednnConv2d::backward_weights(const float* x, const float* dy, float* dw, float* db,
                                    bool accumulate) {
  impl_->plan.run_backward_weights(x, dy, dw, db, accumulate);
}
void OnednnConv2d::backward(const float* dy, const float* w, float* dx, const float* x, float* dw,
                            float* db, bool accumulate) {
  impl_->plan.run_backward(dy, w, dx, x, dw, db, accumulate);
}

}  // namespace st::kernels
