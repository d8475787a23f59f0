// cuda/emu/emu.cpp — the emulator's scheduler and host API (see cuda/emu/emu.h for the model).
//   run_launch: validate like CUDA, then for each block: every thread is a fiber on a pooled
//               stack; a FIFO ready queue runs fibers until each returns or parks at a barrier,
//               switching from the stopping fiber straight to the next ready one.
//               The thread completing a barrier releases the others and keeps running, so a
//               barrier costs one switch per waiting thread. Empty queue with live threads left
//               = deadlock, reported with who waits where.
//   context switch: a 16-instruction x86-64 switch of the callee-saved registers (kernels do not
//               change MXCSR or the x87 control word, and saving them cost half the switch);
//               ucontext's swapcontext makes two sigprocmask syscalls per switch. Other
//               architectures fall back to ucontext.
// Tests: tests/cuda/test_emu.cpp.
#include "cuda/emu/emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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
    for (unsigned i = 0; i < nthreads; ++i) {
      if (fibers[i].state == State::kBlockWait) {
        fibers[i].block_result = result;
        push(i);
      }
    }
    if (current && current->state == State::kRunning) current->block_result = result;
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
      if (&f != current) push(base + l);
    }
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

  void run(const LaunchSpec& s) {
    spec = &s;
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
    for (unsigned z = 0; z < s.grid.z; ++z)
      for (unsigned y = 0; y < s.grid.y; ++y)
        for (unsigned x = 0; x < s.grid.x; ++x) {
          blockIdx = uint3{x, y, z};
          run_block();
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
struct Device {
  std::mutex mu;
  int enabled = -1;                         // -1: not decided yet (read the environment)
  std::map<uintptr_t, size_t> allocations;  // device allocations: start -> bytes
  Stats stats;
};
Device& device() {
  static Device* d = new Device();  // leaked: memory may be freed during static destruction
  return *d;
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
  return a >= it->first && a + bytes <= it->first + std::max<size_t>(it->second, 1);
}

}  // namespace

void run_launch(const LaunchSpec& spec) {
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
  s.run(spec);
  std::lock_guard<std::mutex> dlock(device().mu);
  device().stats.blocks += 1ull * g.x * g.y * g.z;
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
  for (auto& [p, n] : d.allocations) used += n;
  *total_bytes = physical_memory();
  *free_bytes = *total_bytes > used ? *total_bytes - used : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  ST_EMU_REQUIRE_DEVICE();
  if (!ptr) return record(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  size_t size = (bytes + 255) / 256 * 256;  // cudaMalloc's alignment
  void* p = std::aligned_alloc(256, size);
  if (!p) return record(cudaErrorMemoryAllocation);
  d.allocations[reinterpret_cast<uintptr_t>(p)] = bytes;
  d.stats.mallocs++;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  ST_EMU_REQUIRE_DEVICE();
  if (!ptr) return cudaSuccess;
  auto it = d.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.allocations.end()) return record(cudaErrorInvalidValue);
  d.allocations.erase(it);
  d.stats.frees++;
  std::free(ptr);
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
