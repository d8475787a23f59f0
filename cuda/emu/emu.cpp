// cuda/emu/emu.cpp — the emulator's scheduler and host API (see cuda/emu/emu.h for the model).
//   run_launch: validate like CUDA, then for each block: every thread is a fiber on a pooled
//               stack; a FIFO ready queue runs fibers until each returns or parks at a barrier,
//               switching from the stopping fiber straight to the next ready one.
//               The thread completing a barrier releases the others and keeps running, so a
//               barrier costs one switch per waiting thread. Empty queue with live threads left
//               = deadlock, reported with who waits where. Under the reverse and random
//               schedules the fibers a barrier releases (the completing one included) are queued
//               in the schedule's order, and the completing one waits for its turn.
//   strict memory: guard zones around every cudaMalloc block, checked after each launch.
//   context switch: a 16-instruction x86-64 switch of the callee-saved registers (kernels do not
//               change MXCSR or the x87 control word, and saving them cost half the switch);
//               ucontext's swapcontext makes two sigprocmask syscalls per switch. Other
//               architectures fall back to ucontext.
// Tests: tests/cuda/test_emu.cpp, tests/cuda/test_emu_checks.cpp.
#include "cuda/emu/emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(__x86_64__) || defined(ST_EMU_UCONTEXT)
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define ST_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ST_EMU_ASAN 1
#endif
#endif
#if defined(ST_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

struct CUstream_st {
  unsigned flags = 0;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point time;
  bool recorded = false;
};

namespace st::emu {
namespace detail {
namespace {

// ---- AddressSanitizer -----------------------------------------------------------------------
// ASan knows one stack per thread. Running on a fiber's stack without telling it makes it report
// false stack-buffer overflows (and lose track of fake stacks), so every switch is announced
// (start) and confirmed on the stack that gains control (finish), as the ASan fiber API requires.
struct AsanStack {
  const void* bottom = nullptr;  // a thread's own stack: learned on the first switch away from it
  size_t size = 0;
  void* fake_stack = nullptr;    // ASan's fake frames of a context that is switched away from
};
#if defined(ST_EMU_ASAN)
// `from_done`: `from` never runs again, so ASan may free its fake frames.
inline void asan_leave(AsanStack& from, const AsanStack& to, bool from_done) {
  __sanitizer_start_switch_fiber(from_done ? nullptr : &from.fake_stack, to.bottom, to.size);
}
inline void asan_arrive(AsanStack& self, AsanStack& from) {
  __sanitizer_finish_switch_fiber(self.fake_stack, &from.bottom, &from.size);
}
// A pooled stack may keep the poisoned redzones of a fiber abandoned mid-kernel.
inline void asan_forget(char* stack, size_t size) { ASAN_UNPOISON_MEMORY_REGION(stack, size); }
#else
inline void asan_leave(AsanStack&, const AsanStack&, bool) {}
inline void asan_arrive(AsanStack&, AsanStack&) {}
inline void asan_forget(char*, size_t) {}
#endif

// ---- context switching ---------------------------------------------------------------------
#if defined(__x86_64__) && !defined(ST_EMU_UCONTEXT)
extern "C" void st_emu_switch_context(void** save_sp, void* load_sp);
extern "C" void st_emu_fiber_start();
// save_sp (rdi) receives the current stack pointer after the callee-saved state is pushed;
// load_sp (rsi) is a stack saved the same way (or prepared by make_context below).
asm(R"(
  .text
  .p2align 4
  .globl st_emu_switch_context
  .hidden st_emu_switch_context
  .type st_emu_switch_context, @function
st_emu_switch_context:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size st_emu_switch_context, .-st_emu_switch_context

  .p2align 4
  .globl st_emu_fiber_start
  .hidden st_emu_fiber_start
  .type st_emu_fiber_start, @function
st_emu_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  xorl %ebp, %ebp
  movq %r13, %rdi
  callq *%r12
  ud2
  .cfi_endproc
  .size st_emu_fiber_start, .-st_emu_fiber_start
)");

struct Context {
  void* sp = nullptr;
  AsanStack asan;
};
inline void switch_context(Context& from, Context& to) { st_emu_switch_context(&from.sp, to.sp); }
// The first switch to `ctx` pops zeros and the entry/arg registers, then "returns" into
// st_emu_fiber_start (with a 16-byte aligned stack), which calls entry(arg).
void make_context(Context& ctx, char* stack, size_t size, void (*entry)(void*), void* arg) {
  auto top = reinterpret_cast<uintptr_t>(stack + size) & ~uintptr_t{15};
  auto* sp = reinterpret_cast<uint64_t*>(top - 72);
  std::memset(sp, 0, 72);
  sp[2] = reinterpret_cast<uint64_t>(arg);    // r13
  sp[3] = reinterpret_cast<uint64_t>(entry);  // r12
  sp[6] = reinterpret_cast<uint64_t>(&st_emu_fiber_start);
  ctx.sp = sp;
  ctx.asan = AsanStack{stack, size, nullptr};
}
#else
struct Context {
  ucontext_t uc;
  AsanStack asan;
};
inline void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
void make_context(Context& ctx, char* stack, size_t size, void (*entry)(void*), void* arg) {
  getcontext(&ctx.uc);
  ctx.uc.uc_stack.ss_sp = stack;
  ctx.uc.uc_stack.ss_size = size;
  ctx.uc.uc_link = nullptr;
  ctx.asan = AsanStack{stack, size, nullptr};
  // makecontext passes int arguments; split the pointer in two.
  auto bits = reinterpret_cast<uintptr_t>(arg);
  makecontext(&ctx.uc, reinterpret_cast<void (*)()>(+[](unsigned lo, unsigned hi) {
    auto* a = reinterpret_cast<void**>((uintptr_t{hi} << 32) | lo);
    reinterpret_cast<void (*)(void*)>(a[0])(a[1]);
  }),
              2, static_cast<unsigned>(bits), static_cast<unsigned>(bits >> 32));
  (void)entry;
}
#endif

// ---- stacks --------------------------------------------------------------------------------
constexpr size_t kStackBytes = 128 * 1024;

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

// Stacks are mapped once and reused by every later block and launch; the lowest page is a guard,
// so a kernel that overflows its stack faults instead of corrupting a neighbour.
class StackPool {
 public:
  char* get() {
    if (!free_.empty()) {
      char* s = free_.back();
      free_.pop_back();
      return s;
    }
    size_t guard = page_size();
    void* m = mmap(nullptr, kStackBytes + guard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    mprotect(m, guard, PROT_NONE);
    return static_cast<char*>(m) + guard;
  }
  void put(char* s) {
    asan_forget(s, kStackBytes);
    free_.push_back(s);
  }

 private:
  std::vector<char*> free_;
};

// ---- per-launch state ---------------------------------------------------------------------
enum class State : uint8_t { kNew, kReady, kRunning, kBlockWait, kWarpWait, kDone };

struct Fiber {
  Context ctx;
  char* stack = nullptr;
  uint3 tid{0, 0, 0};
  unsigned linear = 0;
  State state = State::kNew;
  // The warp operation this lane waits in, and its result once the operation completes.
  WarpOp op = WarpOp::sync;
  unsigned mask = 0;
  uint64_t value = 0;
  int arg = 0;
  int width = 32;
  WarpResult result{0, true};
  int block_result = 0;
#if !defined(__x86_64__) || defined(ST_EMU_UCONTEXT)
  void* start_args[2] = {nullptr, nullptr};
#endif
};

struct WarpGroup {  // lanes waiting in one warp operation (keyed by its mask)
  unsigned mask;
  unsigned arrived;
};

struct Warp {
  unsigned live = 0;  // lanes that exist and have not returned
  std::vector<WarpGroup> groups;
};

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::sync: return "__syncwarp";
    case WarpOp::shfl: return "__shfl_sync";
    case WarpOp::up: return "__shfl_up_sync";
    case WarpOp::down: return "__shfl_down_sync";
    case WarpOp::bfly: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
  }
  return "?";
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// splitmix64: a small seeded generator whose sequence is the same on every platform.
uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Puts ids[0, n) (given in ascending order) in the schedule's order.
template <class T>
void apply_order(const Schedule& sched, uint64_t& rng, T* ids, size_t n) {
  if (sched.order == Schedule::reverse) {
    std::reverse(ids, ids + n);
  } else if (sched.order == Schedule::random) {
    for (size_t i = n; i > 1; --i) std::swap(ids[i - 1], ids[next_random(rng) % i]);
  }
}

struct Scheduler {
  const LaunchSpec* spec = nullptr;
  std::string kernel;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<unsigned> queue;  // ring buffer of ready fibers; each fiber is in it at most once
  size_t q_head = 0, q_size = 0;
  unsigned nthreads = 0;
  unsigned live = 0;
  unsigned block_arrived = 0;
  int block_count = 0;  // threads at the current __syncthreads_* with a nonzero predicate
  int block_op = -1;
  const char* block_file = "";  // where the threads at the current barrier called it
  int block_line = 0;
  Fiber* current = nullptr;
  Context home;                // the launching thread's own stack, running run_block()
  char* dead_stack = nullptr;  // stack of a fiber that just returned, for the pool
  Context* switch_from = nullptr;  // the switch in flight, for resumed()
  Context* switch_to = nullptr;
  std::exception_ptr error;
  std::vector<unsigned char> smem;
  StackPool stacks;
  Schedule sched;
  uint64_t rng = 0;
  std::vector<unsigned> batch;  // fibers released together, put in the schedule's order
  struct SharedArray {
    unsigned char* p;
    size_t bytes;
  };
  std::vector<SharedArray> shared_arrays;  // ST_SHARED_POISON'd arrays of this launch

  // Queues the fibers in `batch` (ascending) in the schedule's order.
  void push_batch() {
    apply_order(sched, rng, batch.data(), batch.size());
    for (unsigned i : batch) push(i);
    batch.clear();
  }

  // Under reverse/random a barrier's last arrival is queued with the fibers it released: it goes
  // on at once only when the schedule puts it first, otherwise it waits for its turn.
  void take_turn() {
    Fiber* f = current;
    if (f->state != State::kReady) return;  // forward: it kept running
    if (queue[q_head] == f->linear) {
      pop();
      f->state = State::kRunning;
      return;
    }
    switch_between(f->ctx, next_context(), false);
    resumed();
  }

  void register_shared(void* p, size_t bytes) {
    auto* c = static_cast<unsigned char*>(p);
    for (const SharedArray& a : shared_arrays)
      if (a.p == c) return;
    shared_arrays.push_back(SharedArray{c, bytes});
    std::memset(c, 0xFF, bytes);  // nobody in this block has reached the array yet
  }

  void push(unsigned i) {
    fibers[i].state = State::kReady;
    size_t slot = q_head + q_size;
    queue[slot >= nthreads ? slot - nthreads : slot] = i;
    q_size++;
  }
  unsigned pop() {
    unsigned i = queue[q_head];
    q_head = q_head + 1 == nthreads ? 0 : q_head + 1;
    q_size--;
    return i;
  }

  std::string where() const {
    return kernel + " (block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) +
           "," + std::to_string(blockIdx.z) + "))";
  }

  // "emulator: <what> in <kernel> (block (x,y,z)): <detail>"
  [[noreturn]] void fail(const std::string& what, const std::string& detail) {
    throw std::runtime_error("emulator: " + what + " in " + where() + ": " + detail);
  }

  // Parks the current fiber; returns when another fiber has released it.
  void park(State why) {
    Fiber* f = current;
    f->state = why;
    switch_between(f->ctx, next_context(), false);
    resumed();
  }

  // The context to switch to when the running fiber stops: the next ready fiber (set up as
  // current, started on a pooled stack if new), or the scheduler's loop when none is ready or a
  // kernel threw. Switching fiber to fiber directly halves the switches per barrier and thread.
  Context& next_context() {
    if (error || q_size == 0) return home;
    Fiber& f = fibers[pop()];
    if (!f.stack) {
      f.stack = stacks.get();
#if defined(__x86_64__) && !defined(ST_EMU_UCONTEXT)
      make_context(f.ctx, f.stack, kStackBytes, &Scheduler::fiber_main, this);
#else
      f.start_args[0] = reinterpret_cast<void*>(&Scheduler::fiber_main);
      f.start_args[1] = this;
      make_context(f.ctx, f.stack, kStackBytes, nullptr, f.start_args);
#endif
    }
    f.state = State::kRunning;
    current = &f;
    threadIdx = f.tid;
    return f.ctx;
  }

  // Every switch goes through here, so that resumed() on the other side knows both ends.
  void switch_between(Context& from, Context& to, bool from_done) {
    switch_from = &from;
    switch_to = &to;
    asan_leave(from.asan, to.asan, from_done);
    switch_context(from, to);
  }

  // Runs first on every context that gains control: a finished fiber cannot return its own stack
  // to the pool while running on it, so the next one does.
  void resumed() {
    asan_arrive(switch_to->asan, switch_from->asan);
    if (dead_stack) {
      stacks.put(dead_stack);
      dead_stack = nullptr;
    }
  }

  // ---- __syncthreads -----------------------------------------------------------------------
  void release_block() {
    int result = block_op == 1   ? block_count
                 : block_op == 2 ? (block_count == static_cast<int>(block_arrived))
                 : block_op == 3 ? (block_count > 0)
                                 : 0;
    const bool forward = sched.order == Schedule::forward;
    for (unsigned i = 0; i < nthreads; ++i) {
      Fiber& f = fibers[i];
      bool running_here = &f == current && f.state == State::kRunning;
      if (f.state == State::kBlockWait || running_here) {
        f.block_result = result;
        if (!running_here || !forward) batch.push_back(i);
      }
    }
    push_batch();
    block_arrived = 0;
    block_count = 0;
    block_op = -1;
  }

  int block_sync(int op, int pred, const char* file, int line) {
    if (block_arrived == 0) {
      block_file = file;
      block_line = line;
      block_op = op;
    } else if (line != block_line || op != block_op ||
               (file != block_file && std::strcmp(file, block_file) != 0)) {
      fail("divergent __syncthreads",
           "thread " + std::to_string(current->linear) + " reached the barrier at " + file + ":" +
               std::to_string(line) + " while " + std::to_string(block_arrived) +
               " threads wait at " + block_file + ":" + std::to_string(block_line));
    }
    block_arrived++;
    block_count += pred != 0;
    if (block_arrived == live) {
      release_block();
      take_turn();
    } else {
      park(State::kBlockWait);
    }
    return current->block_result;
  }

  // ---- warp operations ----------------------------------------------------------------------
  void complete_group(unsigned w, size_t g) {
    WarpGroup group = warps[w].groups[g];
    warps[w].groups.erase(warps[w].groups.begin() + static_cast<std::ptrdiff_t>(g));
    unsigned base = w * 32;
    unsigned lanes = group.arrived;
    WarpOp op = WarpOp::sync;
    bool first = true;
    unsigned ballot = 0;
    for (unsigned l = 0; l < 32; ++l) {
      if (!(lanes >> l & 1u)) continue;
      const Fiber& f = fibers[base + l];
      if (first) {
        op = f.op;
        first = false;
      } else if (f.op != op) {
        fail("mismatched warp operations", "lanes of warp " + std::to_string(w) + " met at " +
                                               op_name(op) + " and " + op_name(f.op));
      }
      if (f.value) ballot |= 1u << l;
    }
    for (unsigned l = 0; l < 32; ++l) {
      if (!(lanes >> l & 1u)) continue;
      Fiber& f = fibers[base + l];
      WarpResult r{0, true};
      if (op == WarpOp::ballot) {
        r.bits = ballot;
      } else if (op == WarpOp::any) {
        r.bits = ballot != 0;
      } else if (op == WarpOp::all) {
        r.bits = ballot == lanes;
      } else if (op != WarpOp::sync) {
        int width = f.width;
        if (width < 1 || width > 32 || (width & (width - 1)))
          fail("bad shuffle width", std::to_string(width) + " is not a power of 2 in [1, 32]");
        int lane = static_cast<int>(l);
        int seg = lane & ~(width - 1);  // first lane of this lane's width-segment
        int src = lane;
        switch (op) {
          case WarpOp::shfl: src = seg + (f.arg & (width - 1)); break;
          case WarpOp::up: src = (lane - seg) - f.arg >= 0 ? lane - f.arg : lane; break;
          case WarpOp::down: src = (lane - seg) + f.arg < width ? lane + f.arg : lane; break;
          case WarpOp::bfly: {
            int x = lane ^ f.arg;
            src = (x >= seg + width || x > 31 || x < 0) ? lane : x;
            break;
          }
          default: break;
        }
        if (lanes >> src & 1u)
          r.bits = fibers[base + static_cast<unsigned>(src)].value;
        else
          r.valid = false;
      }
      f.result = r;
      if (&f != current || sched.order != Schedule::forward) batch.push_back(base + l);
    }
    push_batch();
  }

  // Completes every group of warp w whose live lanes have all arrived.
  void check_warp(unsigned w) {
    for (size_t g = 0; g < warps[w].groups.size();) {
      const WarpGroup& group = warps[w].groups[g];
      if ((group.mask & warps[w].live & ~group.arrived) == 0 && group.arrived != 0)
        complete_group(w, g);
      else
        ++g;
    }
  }

  WarpResult warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
    Fiber* f = current;
    unsigned w = f->linear / 32, lane = f->linear % 32;
    if (!(mask >> lane & 1u))
      fail("bad warp mask", std::string(op_name(op)) + " called by lane " + std::to_string(lane) +
                                " of warp " + std::to_string(w) + " with mask " + hex(mask) +
                                ", which does not include it");
    f->op = op;
    f->mask = mask;
    f->value = value;
    f->arg = arg;
    f->width = width;
    Warp& warp = warps[w];
    WarpGroup* group = nullptr;
    for (WarpGroup& g : warp.groups) {
      if (g.mask == mask) {
        group = &g;
      } else if (g.mask & mask & warp.live) {
        fail("bad warp masks", "lanes of warp " + std::to_string(w) +
                                   " wait in warp operations with overlapping " + "masks " +
                                   hex(g.mask) + " and " + hex(mask));
      }
    }
    if (!group) {
      warp.groups.push_back(WarpGroup{mask, 0});
      group = &warp.groups.back();
    }
    group->arrived |= 1u << lane;
    if ((group->mask & warp.live & ~group->arrived) == 0) {
      f->state = State::kRunning;
      complete_group(w, static_cast<size_t>(group - warp.groups.data()));
      take_turn();
    } else {
      park(State::kWarpWait);
    }
    return f->result;
  }

  unsigned active_mask() const { return warps[current->linear / 32].live; }

  // ---- thread exit and the block loop ------------------------------------------------------
  void on_exit(Fiber* f) {
    live--;
    unsigned w = f->linear / 32;
    warps[w].live &= ~(1u << (f->linear % 32));
    if (block_arrived > 0 && block_arrived == live) release_block();
    check_warp(w);
  }

  static void fiber_main(void* self) {
    auto* s = static_cast<Scheduler*>(self);
    s->resumed();
    Fiber* f = s->current;
    try {
      s->spec->body(s->spec->ctx);
      f->state = State::kDone;
      s->on_exit(f);
    } catch (...) {
      s->error = std::current_exception();
      f->state = State::kDone;
    }
    s->dead_stack = f->stack;
    f->stack = nullptr;
    s->switch_between(f->ctx, s->next_context(), true);
    std::abort();  // a finished fiber is never resumed
  }

  std::string deadlock_report() const {
    unsigned at_block = 0, at_warp = 0, done = 0;
    std::string warp_detail;
    for (unsigned i = 0; i < nthreads; ++i) {
      const Fiber& f = fibers[i];
      if (f.state == State::kBlockWait) at_block++;
      if (f.state == State::kDone) done++;
      if (f.state == State::kWarpWait) {
        if (at_warp++ == 0)
          warp_detail = std::string(" (first: thread ") + std::to_string(i) + " in " +
                        op_name(f.op) + " with mask " + hex(f.mask) + ", warp " +
                        std::to_string(i / 32) + " live lanes " + hex(warps[i / 32].live) + ")";
      }
    }
    return "deadlock in " + where() + ": " + std::to_string(at_block) +
           " threads wait at __syncthreads, " + std::to_string(at_warp) + " in warp operations" +
           warp_detail + ", " + std::to_string(done) + " of " + std::to_string(nthreads) +
           " have returned; no thread can proceed";
  }

  void run_block() {
    for (unsigned i = 0; i < nthreads; ++i) {
      Fiber& f = fibers[i];
      f.state = State::kNew;
      f.result = WarpResult{0, true};
      queue[i] = i;
    }
    apply_order(sched, rng, queue.data(), nthreads);
    q_head = 0;
    q_size = nthreads;
    live = nthreads;
    block_arrived = 0;
    block_count = 0;
    block_op = -1;
    for (unsigned w = 0; w < warps.size(); ++w) {
      unsigned n = std::min(32u, nthreads - w * 32);
      warps[w].live = n == 32 ? 0xffffffffu : (1u << n) - 1u;
      warps[w].groups.clear();
    }
    if (!smem.empty()) std::memset(smem.data(), 0xFF, smem.size());
    for (const SharedArray& a : shared_arrays) std::memset(a.p, 0xFF, a.bytes);

    // Returns when no fiber is ready (all returned, or a deadlock) or a kernel threw.
    switch_between(home, next_context(), false);
    resumed();
    current = nullptr;
    bool deadlock = !error && live > 0;
    std::string report = deadlock ? deadlock_report() : std::string();
    // Threads still parked (after an exception or a deadlock) are abandoned: their stacks go
    // back to the pool without unwinding (kernels hold no resources to release).
    for (Fiber& f : fibers) {
      if (f.stack) {
        stacks.put(f.stack);
        f.stack = nullptr;
      }
    }
    if (error) {
      std::exception_ptr e = error;
      error = nullptr;
      std::rethrow_exception(e);
    }
    if (deadlock) throw std::runtime_error("emulator: " + report);
  }

  void run(const LaunchSpec& s, const Schedule& order) {
    spec = &s;
    sched = order;
    rng = order.seed;
    shared_arrays.clear();
    kernel = s.name ? s.name : "kernel";
    nthreads = s.block.x * s.block.y * s.block.z;
    fibers.assign(nthreads, Fiber{});
    for (unsigned i = 0; i < nthreads; ++i) {
      fibers[i].linear = i;
      fibers[i].tid =
          uint3{i % s.block.x, (i / s.block.x) % s.block.y, i / (s.block.x * s.block.y)};
    }
    warps.assign((nthreads + 31) / 32, Warp{});
    queue.assign(nthreads, 0);
    smem.assign(s.smem, 0);
    blockDim = s.block;
    gridDim = s.grid;
    const uint64_t gx = s.grid.x, gxy = gx * s.grid.y, nblocks = gxy * s.grid.z;
    auto run_linear = [&](uint64_t b) {
      blockIdx = uint3{static_cast<unsigned>(b % gx), static_cast<unsigned>(b % gxy / gx),
                       static_cast<unsigned>(b / gxy)};
      run_block();
    };
    if (sched.order == Schedule::forward) {
      for (uint64_t b = 0; b < nblocks; ++b) run_linear(b);
    } else if (sched.order == Schedule::reverse) {
      for (uint64_t b = nblocks; b-- > 0;) run_linear(b);
    } else {
      std::vector<uint64_t> order(nblocks);
      for (uint64_t b = 0; b < nblocks; ++b) order[b] = b;
      apply_order(sched, rng, order.data(), order.size());
      for (uint64_t b : order) run_linear(b);
    }
  }
};

std::mutex g_launch_mutex;  // launches from several OS threads take turns (shared memory is static)
Scheduler* g_scheduler = nullptr;
thread_local Scheduler* t_running = nullptr;  // the scheduler of the launch running on this thread
thread_local cudaError_t t_last_error = cudaSuccess;

Scheduler& running(const char* what) {
  if (!t_running)
    throw std::logic_error(std::string("emulator: ") + what + " called outside a kernel");
  return *t_running;
}

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

// ---- device state --------------------------------------------------------------------------
// A strict allocation is [front guard | the bytes asked for | back guard up to the block's end].
constexpr size_t kGuardBytes = 256;  // the front guard; keeps the start 256-byte aligned
constexpr unsigned char kGuardFill = 0xFD;
constexpr unsigned char kPoisonFill = 0xFF;  // NaN floats, -1 integers

struct Allocation {
  size_t bytes = 0;              // asked for
  unsigned char* base = nullptr;  // what std::free takes
  size_t block = 0;              // bytes from base (strict: both guards included)
  bool guarded = false;
};

#if defined(ST_EMU_ASAN)
inline void asan_guard(unsigned char* p, size_t n, bool poison) {
  if (poison)
    ASAN_POISON_MEMORY_REGION(p, n);
  else
    ASAN_UNPOISON_MEMORY_REGION(p, n);
}
#else
inline void asan_guard(unsigned char*, size_t, bool) {}
#endif

// Poisons (for ASan) or unpoisons both guards of a strict allocation.
void set_guards_poisoned(const Allocation& a, bool poison) {
  unsigned char* end = a.base + kGuardBytes + a.bytes;
  asan_guard(a.base, kGuardBytes, poison);
  asan_guard(end, a.block - kGuardBytes - a.bytes, poison);
}

void fill_guards(const Allocation& a) {
  unsigned char* end = a.base + kGuardBytes + a.bytes;
  std::memset(a.base, kGuardFill, kGuardBytes);
  std::memset(end, kGuardFill, a.block - kGuardBytes - a.bytes);
}

// "" when both guards are intact; otherwise what was damaged ("write past the end of a 1000-byte
// allocation"), with the guard refilled so that one bug is reported once.
std::string check_guards(const Allocation& a) {
  set_guards_poisoned(a, false);
  const unsigned char* end = a.base + kGuardBytes + a.bytes;
  const size_t back = a.block - kGuardBytes - a.bytes;
  std::string damage;
  for (size_t i = 0; i < back && damage.empty(); ++i)
    if (end[i] != kGuardFill)
      damage = "write past the end of a " + std::to_string(a.bytes) + "-byte allocation";
  for (size_t i = kGuardBytes; i-- > 0 && damage.empty();)
    if (a.base[i] != kGuardFill)
      damage = "write before the start of a " + std::to_string(a.bytes) + "-byte allocation";
  if (!damage.empty()) fill_guards(a);
  set_guards_poisoned(a, true);
  return damage;
}

struct Device {
  std::mutex mu;
  int enabled = -1;  // -1: not decided yet (read the environment)
  bool env_read = false;  // SPARSETRAIN_EMU_SCHEDULE and SPARSETRAIN_EMU_STRICT
  Schedule schedule;
  bool strict = false;
  size_t guarded = 0;      // strict allocations alive
  std::string last_kernel;  // the kernel that ran last, for guard reports
  std::map<uintptr_t, Allocation> allocations;  // device allocations by start address
  Stats stats;
};
Device& device() {
  static Device* d = new Device();  // leaked: memory may be freed during static destruction
  return *d;
}

void read_environment_locked(Device& d) {
  const char* sched = std::getenv("SPARSETRAIN_EMU_SCHEDULE");
  const char* strict = std::getenv("SPARSETRAIN_EMU_STRICT");
  Schedule parsed;
  if (sched && *sched) parsed = parse_schedule(sched, "SPARSETRAIN_EMU_SCHEDULE");
  std::string s = strict ? strict : "";
  if (!s.empty() && s != "0" && s != "1")
    throw std::invalid_argument("emulator: SPARSETRAIN_EMU_STRICT=\"" + s +
                                "\" is not a strictness; accepted values: 1 (strict memory "
                                "checks) and 0 or unset (off)");
  d.schedule = parsed;
  d.strict = s == "1";
  d.env_read = true;
}

void require_environment_locked(Device& d) {
  if (!d.env_read) read_environment_locked(d);
}

// The first damage to the guards of the strict allocations ("" if none); all are checked and
// refilled.
std::string damaged_guards_locked(Device& d) {
  std::string first;
  if (d.guarded == 0) return first;
  for (auto& [start, a] : d.allocations) {
    if (!a.guarded) continue;
    std::string damage = check_guards(a);
    if (first.empty()) first = damage;
  }
  return first;
}

// Damage found outside a launch happened in the kernel that ran last or in host code after it
// (writing through a device pointer, which only the emulator lets it do).
[[noreturn]] void throw_outside_launch(const Device& d, const std::string& damage,
                                       const char* found_by) {
  throw std::runtime_error("emulator: " + damage + " in " +
                           (d.last_kernel.empty() ? std::string("host code") : d.last_kernel) +
                           " (found by " + found_by + ")");
}

void check_guards_outside_launch(Device& d, const char* found_by) {
  std::string damage = damaged_guards_locked(d);
  if (!damage.empty()) throw_outside_launch(d, damage, found_by);
}

bool device_enabled_locked(Device& d) {
  if (d.enabled < 0) {
    const char* v = std::getenv("SPARSETRAIN_CUDA_EMULATION");
    d.enabled = v && std::string(v) == "1";
  }
  return d.enabled == 1;
}

// Whether [p, p + bytes) lies inside one device allocation.
bool is_device_range(Device& d, const void* p, size_t bytes) {
  auto a = reinterpret_cast<uintptr_t>(p);
  auto it = d.allocations.upper_bound(a);
  if (it == d.allocations.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + std::max<size_t>(it->second.bytes, 1);
}

}  // namespace

void run_launch(const LaunchSpec& spec) {
  Schedule order;
  if (t_running)
    throw std::logic_error(std::string("emulator: ") + spec.name +
                           " launched from inside a kernel (dynamic parallelism is not emulated)");
  {
    Device& d = device();
    std::lock_guard<std::mutex> lock(d.mu);
    if (!device_enabled_locked(d)) {
      record(cudaErrorNoDevice);
      return;
    }
    require_environment_locked(d);
    order = d.schedule;
    d.stats.launches++;
  }
  const dim3 g = spec.grid, b = spec.block;
  unsigned long long threads = 1ull * b.x * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0 || b.x > 1024 ||
      b.y > 1024 || b.z > 64 || threads > 1024 || g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
    record(cudaErrorInvalidConfiguration);
    return;
  }
  if (spec.smem > 48 * 1024) {  // the default dynamic shared memory limit of every target
    record(cudaErrorInvalidValue);
    return;
  }
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  if (!g_scheduler) g_scheduler = new Scheduler();  // leaked with its stack pool, on purpose
  Scheduler& s = *g_scheduler;
  t_running = &s;
  struct Reset {
    ~Reset() {
      t_running = nullptr;
      threadIdx = uint3{0, 0, 0};
      blockIdx = uint3{0, 0, 0};
    }
  } reset;
  std::string kernel = spec.name ? spec.name : "kernel";
  try {
    s.run(spec, order);
  } catch (...) {
    // The kernel's own error is the report; guards it damaged too are refilled unreported, so
    // that the next launch is not blamed for them.
    Device& d = device();
    std::lock_guard<std::mutex> dlock(d.mu);
    d.last_kernel = kernel;
    (void)damaged_guards_locked(d);
    throw;
  }
  Device& d = device();
  std::lock_guard<std::mutex> dlock(d.mu);
  d.stats.blocks += 1ull * g.x * g.y * g.z;
  d.last_kernel = kernel;
  std::string damage = damaged_guards_locked(d);
  if (!damage.empty()) throw std::runtime_error("emulator: " + damage + " in " + kernel);
}

void register_shared(void* p, size_t bytes) {
  running("ST_SHARED_POISON").register_shared(p, bytes);
}

unsigned char* dynamic_shared() {
  Scheduler& s = running("ST_DYNAMIC_SHARED");
  return s.smem.empty() ? nullptr : s.smem.data();
}

WarpResult warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
  return running(op_name(op)).warp_op(op, mask, value, arg, width);
}

unsigned active_mask() { return running("__activemask").active_mask(); }

int block_sync(int op, int pred, const char* file, int line) {
  return running("__syncthreads").block_sync(op, pred, file, line);
}

}  // namespace detail

bool enabled() {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  return detail::device_enabled_locked(d);
}

void set_enabled(bool on) {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  d.enabled = on ? 1 : 0;
}

Stats stats() {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  return d.stats;
}

Schedule parse_schedule(const char* text, const char* source) {
  const std::string t = text ? text : "";
  Schedule s;
  if (t == "forward") return s;
  if (t == "reverse") {
    s.order = Schedule::reverse;
    return s;
  }
  const std::string prefix = "random:";
  const std::string seed = t.compare(0, prefix.size(), prefix) == 0 ? t.substr(prefix.size()) : "";
  if (!seed.empty() && seed.size() <= 20 &&
      seed.find_first_not_of("0123456789") == std::string::npos) {
    errno = 0;
    unsigned long long v = std::strtoull(seed.c_str(), nullptr, 10);
    if (errno == 0) {
      s.order = Schedule::random;
      s.seed = v;
      return s;
    }
  }
  throw std::invalid_argument(std::string("emulator: ") + source + "=\"" + t +
                              "\" is not a schedule; accepted values: forward (the default), "
                              "reverse, random:SEED (SEED a decimal unsigned integer)");
}

Schedule schedule() {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::require_environment_locked(d);
  return d.schedule;
}

void set_schedule(Schedule s) {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::require_environment_locked(d);  // so a later first launch does not overwrite s
  d.schedule = s;
}

bool strict() {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::require_environment_locked(d);
  return d.strict;
}

void set_strict(bool on) {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::require_environment_locked(d);
  d.strict = on;
}

void reload_environment() {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::read_environment_locked(d);
}

// ---- host API ------------------------------------------------------------------------------
namespace api {
using detail::device;
using detail::record;

namespace {
// The common prologue: no device unless emulation is on.
#define ST_EMU_REQUIRE_DEVICE()           \
  detail::Device& d = device();           \
  std::lock_guard<std::mutex> lock(d.mu); \
  if (!detail::device_enabled_locked(d)) return record(cudaErrorNoDevice)

size_t physical_memory() {
  long pages = sysconf(_SC_PHYS_PAGES);
  return pages > 0 ? static_cast<size_t>(pages) * detail::page_size() : (size_t{8} << 30);
}
}  // namespace

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver:
      return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnknown";
}

cudaError_t cudaGetLastError() {
  cudaError_t e = detail::t_last_error;
  detail::t_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return detail::t_last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  ST_EMU_REQUIRE_DEVICE();  // like the real runtime, *count is left unwritten on error
  if (!count) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev) {
  ST_EMU_REQUIRE_DEVICE();
  return dev == 0 ? cudaSuccess : record(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDevice(int* dev) {
  ST_EMU_REQUIRE_DEVICE();
  if (!dev) return record(cudaErrorInvalidValue);
  *dev = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int dev) {
  ST_EMU_REQUIRE_DEVICE();
  if (!prop) return record(cudaErrorInvalidValue);
  if (dev != 0) return record(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "%s", "sparsetrain CPU emulator");
  prop->totalGlobalMem = physical_memory();
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 48 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->major = 8;  // the emulator offers what sm_80 kernels use (no tensor cores)
  prop->minor = 0;
  prop->multiProcessorCount = 4;  // small, so grid-stride loops get exercised
  prop->l2CacheSize = 4 << 20;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int dev) {
  ST_EMU_REQUIRE_DEVICE();
  if (!value) return record(cudaErrorInvalidValue);
  if (dev != 0) return record(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = 4; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 8; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    default: return record(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  ST_EMU_REQUIRE_DEVICE();
  detail::check_guards_outside_launch(d, "cudaDeviceSynchronize");
  return cudaSuccess;
}

cudaError_t cudaDeviceReset() {
  ST_EMU_REQUIRE_DEVICE();
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  ST_EMU_REQUIRE_DEVICE();
  if (!free_bytes || !total_bytes) return record(cudaErrorInvalidValue);
  size_t used = 0;
  for (auto& [p, a] : d.allocations) used += a.bytes;
  *total_bytes = physical_memory();
  *free_bytes = *total_bytes > used ? *total_bytes - used : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  ST_EMU_REQUIRE_DEVICE();
  if (!ptr) return record(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  detail::require_environment_locked(d);
  const bool strict = d.strict;
  // Strict: the back guard takes the rounding and at least kGuardBytes more.
  const size_t extra = strict ? 2 * detail::kGuardBytes + 255 : 255;
  if (bytes > SIZE_MAX - extra) return record(cudaErrorMemoryAllocation);
  detail::Allocation a;
  a.bytes = bytes;
  a.block = (bytes + extra) / 256 * 256;  // cudaMalloc's alignment
  a.base = static_cast<unsigned char*>(std::aligned_alloc(256, a.block));
  if (!a.base) return record(cudaErrorMemoryAllocation);
  a.guarded = strict;
  unsigned char* p = a.base;
  if (strict) {
    p = a.base + detail::kGuardBytes;
    std::memset(p, detail::kPoisonFill, bytes);
    detail::fill_guards(a);
    detail::set_guards_poisoned(a, true);
    d.guarded++;
  }
  d.allocations[reinterpret_cast<uintptr_t>(p)] = a;
  d.stats.mallocs++;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  ST_EMU_REQUIRE_DEVICE();
  if (!ptr) return cudaSuccess;
  auto it = d.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.allocations.end()) return record(cudaErrorInvalidValue);
  const detail::Allocation a = it->second;
  d.allocations.erase(it);
  d.stats.frees++;
  std::string damage;
  if (a.guarded) {
    damage = detail::check_guards(a);
    detail::set_guards_poisoned(a, false);  // the block goes back to malloc
    d.guarded--;
  }
  std::free(a.base);
  if (!damage.empty()) detail::throw_outside_launch(d, damage, "cudaFree");
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  ST_EMU_REQUIRE_DEVICE();
  if (!ptr) return record(cudaErrorInvalidValue);
  *ptr = std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
  return *ptr ? cudaSuccess : record(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  ST_EMU_REQUIRE_DEVICE();
  std::free(ptr);
  return cudaSuccess;
}

namespace {
// Checks that the pointers are on the side `kind` says (catches host/device mix-ups, which
// would fault on a GPU). cudaMemcpyDefault accepts anything.
cudaError_t check_copy(detail::Device& d, void* dst, const void* src, size_t bytes,
                       cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return cudaErrorInvalidValue;
  bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return cudaErrorInvalidMemcpyDirection;
  if (kind == cudaMemcpyDefault) return cudaSuccess;
  if (dst_dev != detail::is_device_range(d, dst, bytes)) return cudaErrorInvalidValue;
  if (src_dev != detail::is_device_range(d, src, bytes)) return cudaErrorInvalidValue;
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  ST_EMU_REQUIRE_DEVICE();
  cudaError_t e = check_copy(d, dst, src, bytes, kind);
  if (e != cudaSuccess) return record(e);
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  ST_EMU_REQUIRE_DEVICE();
  if (bytes == 0) return cudaSuccess;
  if (!detail::is_device_range(d, dst, bytes)) return record(cudaErrorInvalidValue);
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(dst, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  ST_EMU_REQUIRE_DEVICE();
  if (!stream) return record(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags};
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  ST_EMU_REQUIRE_DEVICE();
  if (!stream) return record(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) {
  ST_EMU_REQUIRE_DEVICE();
  detail::check_guards_outside_launch(d, "cudaStreamSynchronize");
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned) {
  ST_EMU_REQUIRE_DEVICE();
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  ST_EMU_REQUIRE_DEVICE();
  if (!event) return record(cudaErrorInvalidValue);
  *event = new CUevent_st();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  ST_EMU_REQUIRE_DEVICE();
  if (!event) return record(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  ST_EMU_REQUIRE_DEVICE();
  if (!event) return record(cudaErrorInvalidResourceHandle);
  event->time = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  ST_EMU_REQUIRE_DEVICE();
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  ST_EMU_REQUIRE_DEVICE();
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  ST_EMU_REQUIRE_DEVICE();
  if (!ms) return record(cudaErrorInvalidValue);
  if (!start || !end) return record(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return record(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

#undef ST_EMU_REQUIRE_DEVICE
}  // namespace api

}  // namespace st::emu
