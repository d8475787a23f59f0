// cuda/emu/emu.cpp — the emulator's scheduler and host API (see cuda/emu/emu.h for the model).
//   run_launch: validate like CUDA, then for each block: every thread is a fiber on a pooled
//               stack; a FIFO ready queue runs fibers until each returns or parks at a barrier,
//               switching from the stopping fiber straight to the next ready one.
//               The thread completing a barrier releases the others and keeps running, so a
//               barrier costs one switch per waiting thread. Empty queue with live threads left
//               = deadlock, reported with who waits where. Under the reverse and random
//               schedules the fibers a barrier releases (the completing one included) are queued
//               in the schedule's order, and the completing one waits for its turn.
//   strict memory: guard zones around every cudaMalloc block, checked after each launch; the
//               blocks are mmap'ed and PROT_NONE whenever no launch or emulated copy runs.
//   streams:    work on a non-default stream is queued (StreamWork) and run, in order, by whichever call
//               synchronizes with it; a kernel that throws leaves the device faulted (sticky).
//               Strict mode: a cudaMallocHost block is mmap'ed too, and while a cudaMemcpyAsync
//               into it (from it) is queued its pages are PROT_NONE (PROT_READ), so host code
//               that reads (writes) it before synchronizing faults and is reported.
//   race checker (ST_EMU_RACECHECK builds): the -fsanitize=thread hooks (__tsan_read4, ...) of
//               the instrumented kernels land in RaceState::access, which keeps per byte the last
//               write and two reads, stamped with (interval, thread, warp epoch).
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
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
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

// One queued operation of a stream: a launch, a copy, a fill, an event record or an event wait.
struct StreamWork {
  std::function<void()> run;
};
struct CUstream_st {
  unsigned flags = 0;
  std::deque<StreamWork> queue;
  std::string last_kernel;  // the last launch queued on it, for reports of queued copies
};
struct CUevent_st {
  std::chrono::steady_clock::time_point time;
  bool recorded = false;
  int pending = 0;                // records queued and not yet run
  CUstream_st* stream = nullptr;  // where the last record was queued
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

// Thrown by ST_SHARED_POISON when the launch's static plus dynamic shared memory is over the
// limit: the launch fails with cudaErrorInvalidValue, as CUDA refuses it.
struct SharedMemoryExceeded {
  size_t static_bytes;
};

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

struct SharedArray {  // a static __shared__ array registered by ST_SHARED_POISON
  unsigned char* p;
  size_t bytes;
};

// "global memory: byte 8 of a 1000-byte allocation" (defined with the device state below).
std::string describe_device_address(uintptr_t a);

// ---- the race checker -----------------------------------------------------------------------
// Every byte a kernel touches gets a Cell: the last write and up to two reads by different
// threads (enough that any later writer differs from one of them). A stamp packs the interval
// (a counter bumped at every block start and every completed __syncthreads, never reset, so a
// stamp from an earlier block or launch is recognisably old), the thread (linear id in the block)
// and the thread's warp epoch (the __syncwarp calls it completed in this interval). Two accesses
// race when they come from different threads in one interval of one block, unless they are lanes
// of one warp separated by a __syncwarp naming both (a vector clock per lane over its warp's
// lanes), or from two blocks of one launch (global memory; shared memory is per block).
struct RaceState {
  struct Cell {
    uint64_t w, r1, r2;
  };
  static constexpr int kTidShift = 16, kIvShift = 26;
  static constexpr size_t kPage = 4096;

  uint64_t iv = 1;  // the current interval
  uint64_t block_start = 1, launch_start = 1;
  unsigned tid = 0;
  uintptr_t stack_lo = 0;
  size_t stack_bytes = 0;
  std::vector<uint32_t> epoch;  // per thread, valid when epoch_iv matches
  std::vector<uint64_t> epoch_iv;
  std::vector<uint32_t> clock;  // per thread, 32 entries: its knowledge of its warp's lanes
  std::vector<uint64_t> clock_iv;
  std::vector<std::pair<uint64_t, uint3>> blocks;  // each block's first interval, run order
  std::string kernel, report;
  const std::vector<unsigned char>* smem = nullptr;
  const std::vector<SharedArray>* arrays = nullptr;
  std::unordered_map<uintptr_t, Cell*> pages;
  uintptr_t last_page = ~uintptr_t{0};
  Cell* last_cells = nullptr;

  void begin_launch(unsigned nthreads, const std::string& name, const std::vector<unsigned char>* s,
                    const std::vector<SharedArray>* a) {
    kernel = name;
    report.clear();
    smem = s;
    arrays = a;
    epoch.assign(nthreads, 0);
    epoch_iv.assign(nthreads, 0);
    clock.assign(size_t{nthreads} * 32, 0);
    clock_iv.assign(nthreads, 0);
    blocks.clear();
    launch_start = ++iv;
    block_start = iv;
  }
  void begin_block(uint3 b) {
    block_start = ++iv;
    blocks.emplace_back(iv, b);
  }
  void barrier() { ++iv; }
  // Shadow pages of finished launches only hold old stamps; past 2048 pages (192 MiB) they go.
  void end_launch() {
    if (pages.size() <= 2048) return;
    for (auto& [page, cells] : pages) munmap(cells, kPage * sizeof(Cell));
    pages.clear();
    last_page = ~uintptr_t{0};
    last_cells = nullptr;
  }
  void set_thread(unsigned t, const char* stack, size_t bytes) {
    tid = t;
    stack_lo = reinterpret_cast<uintptr_t>(stack);
    stack_bytes = bytes;
  }

  uint32_t epoch_of(unsigned t) const { return epoch_iv[t] == iv ? epoch[t] : 0; }
  uint32_t clock_of(unsigned t, unsigned lane) const {
    return clock_iv[t] == iv ? clock[size_t{t} * 32 + lane] : 0;
  }
  // A __syncwarp completed by `lanes` of the warp starting at thread `base`: each lane learns
  // what the others knew, and that they finished their current epoch.
  void warp_sync(unsigned base, unsigned lanes) {
    uint32_t joint[32] = {};
    for (unsigned l = 0; l < 32; ++l) {
      if (!(lanes >> l & 1u)) continue;
      for (unsigned k = 0; k < 32; ++k) joint[k] = std::max(joint[k], clock_of(base + l, k));
      joint[l] = std::max(joint[l], epoch_of(base + l) + 1);
    }
    for (unsigned l = 0; l < 32; ++l) {
      if (!(lanes >> l & 1u)) continue;
      const unsigned t = base + l;
      std::memcpy(&clock[size_t{t} * 32], joint, sizeof joint);
      clock_iv[t] = iv;
      epoch[t] = std::min<uint32_t>(epoch_of(t) + 1, 0xFFFF);
      epoch_iv[t] = iv;
    }
  }

  uint64_t stamp() const {
    return iv << kIvShift | uint64_t{tid} << kTidShift | epoch_of(tid);
  }
  static uint64_t iv_of(uint64_t s) { return s >> kIvShift; }
  static unsigned tid_of(uint64_t s) { return static_cast<unsigned>(s >> kTidShift) & 1023u; }
  static uint32_t epoch_in(uint64_t s) { return static_cast<uint32_t>(s & 0xFFFF); }

  bool is_shared(uintptr_t a) const {
    if (!smem->empty() && a - reinterpret_cast<uintptr_t>(smem->data()) < smem->size()) return true;
    for (const SharedArray& arr : *arrays)
      if (a - reinterpret_cast<uintptr_t>(arr.p) < arr.bytes) return true;
    return false;
  }
  bool same_thread(uint64_t s) const { return iv_of(s) >= block_start && tid_of(s) == tid; }
  // Whether the access stamped `s` is unordered with one by the current thread now.
  bool concurrent(uint64_t s, uintptr_t a) const {
    if (s == 0 || iv_of(s) < launch_start) return false;
    if (iv_of(s) < block_start) return !is_shared(a);  // another block of this launch
    if (tid_of(s) == tid || iv_of(s) != iv) return false;
    const unsigned other = tid_of(s);
    if (other / 32 == tid / 32 && clock_of(tid, other % 32) > epoch_in(s)) return false;
    return true;
  }

  Cell* cell(uintptr_t a) {
    const uintptr_t page = a / kPage;
    if (page != last_page) {
      Cell*& cells = pages[page];
      if (!cells) {
        void* m = mmap(nullptr, kPage * sizeof(Cell), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) throw std::bad_alloc();
        cells = static_cast<Cell*>(m);
      }
      last_page = page;
      last_cells = cells;
    }
    return last_cells + a % kPage;
  }

  void access(uintptr_t a, size_t n, bool write) {
    if (!report.empty() || a - stack_lo < stack_bytes) return;
    const uint64_t now = stamp();
    for (size_t i = 0; i < n; ++i) {
      Cell& c = *cell(a + i);
      if (write) {
        if (concurrent(c.w, a + i)) return race(c.w, true, true, a + i);
        if (concurrent(c.r1, a + i)) return race(c.r1, false, true, a + i);
        if (concurrent(c.r2, a + i)) return race(c.r2, false, true, a + i);
        c.w = now;
        c.r1 = c.r2 = 0;
      } else {
        if (concurrent(c.w, a + i)) return race(c.w, true, false, a + i);
        if (c.r1 == 0 || same_thread(c.r1) || iv_of(c.r1) < launch_start) {
          c.r1 = now;
        } else {
          c.r2 = c.r1;
          c.r1 = now;
        }
      }
    }
  }

  std::string where(uintptr_t a) const {
    if (!smem->empty() && a - reinterpret_cast<uintptr_t>(smem->data()) < smem->size())
      return "dynamic shared memory (byte " +
             std::to_string(a - reinterpret_cast<uintptr_t>(smem->data())) + " of " +
             std::to_string(smem->size()) + ")";
    for (const SharedArray& arr : *arrays)
      if (a - reinterpret_cast<uintptr_t>(arr.p) < arr.bytes)
        return "shared memory (byte " + std::to_string(a - reinterpret_cast<uintptr_t>(arr.p)) +
               " of a " + std::to_string(arr.bytes) + "-byte __shared__ array)";
    return describe_device_address(a);
  }
  static std::string block_name(uint3 b) {
    return "(" + std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.z) + ")";
  }
  // The first race is kept; the scheduler throws it at the next barrier or at the block's end.
  void race(uint64_t earlier, bool earlier_wrote, bool now_writes, uintptr_t a) {
    const uint3 here = blocks.back().second;
    std::string other = "thread " + std::to_string(tid_of(earlier));
    std::string self = "thread " + std::to_string(tid);
    std::string why;
    if (iv_of(earlier) < block_start) {
      auto it = std::upper_bound(blocks.begin(), blocks.end(), std::make_pair(iv_of(earlier), uint3{}),
                                 [](const auto& x, const auto& y) { return x.first < y.first; });
      other += " of block " + block_name(std::prev(it)->second);
      self += " of block " + block_name(here);
      why = "; blocks of one launch are not ordered";
    } else if (tid_of(earlier) / 32 == tid / 32) {
      why = " with no __syncthreads or __syncwarp between";
    } else {
      why = " with no __syncthreads between";
    }
    report = "emulator: race in " + kernel + " (block " + block_name(here) + "): " + other +
             (earlier_wrote ? " wrote " : " read ") + where(a) + ", " + self +
             (now_writes ? " wrote it" : " read it") + why;
  }
};

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
  std::vector<SharedArray> shared_arrays;  // ST_SHARED_POISON'd arrays of this launch
  size_t static_smem = 0;                  // their bytes
  size_t static_smem_limit = 0;            // the most static bytes this launch may use
  RaceState race;
  bool racing = false;  // the race checker is on for this launch

  // A pending race report ends the launch at the next barrier (or the block's end).
  void throw_race() {
    if (racing && !race.report.empty()) throw std::runtime_error(race.report);
  }

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
    static_smem += bytes;
    if (static_smem > static_smem_limit) throw SharedMemoryExceeded{static_smem};
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
    if (racing) race.set_thread(f.linear, f.stack, kStackBytes);
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
    if (racing) race.barrier();
  }

  int block_sync(int op, int pred, const char* file, int line) {
    throw_race();
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
    if (racing && op == WarpOp::sync) race.warp_sync(base, lanes);
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
    throw_race();
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
    if (racing) race.begin_block(blockIdx);

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
    throw_race();
  }

  void run(const LaunchSpec& s, const Schedule& order, bool check_races, size_t static_limit) {
    spec = &s;
    sched = order;
    rng = order.seed;
    shared_arrays.clear();
    static_smem = 0;
    static_smem_limit = static_limit;
    racing = check_races;
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
    if (racing) race.begin_launch(nthreads, kernel, &smem, &shared_arrays);
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
// Held while any queued or immediate work runs, so that a stream's work runs in order even when
// several OS threads synchronize at once (recursive: an event wait runs another stream's work).
std::recursive_mutex g_exec_mutex;
Scheduler* g_scheduler = nullptr;
thread_local Scheduler* t_running = nullptr;  // the scheduler of the launch running on this thread
thread_local cudaError_t t_last_error = cudaSuccess;
thread_local RaceState* t_race = nullptr;     // the race checker of the launch running here
bool g_instrumented = false;                  // an instrumented kernel file called __tsan_init

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
// A strict allocation is [front guard | the bytes asked for | back guard up to the block's end],
// in a mapping of its own that is PROT_NONE while no launch or emulated copy runs.
constexpr size_t kGuardBytes = 256;  // the front guard; keeps the start 256-byte aligned
constexpr unsigned char kGuardFill = 0xFD;
constexpr unsigned char kPoisonFill = 0xFF;  // NaN floats, -1 integers
constexpr size_t kDefaultSharedBytes = 48 * 1024;  // per block, without an opt-in
constexpr size_t kOptinSharedBytes = 163 * 1024;   // sm_80's most, with cudaFuncSetAttribute

struct Allocation {
  size_t bytes = 0;              // asked for
  unsigned char* base = nullptr;  // what std::free (or munmap) takes
  size_t block = 0;              // bytes from base (strict: both guards included)
  size_t mapped = 0;             // strict: the mapping's length (a whole number of pages)
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

// A cudaMallocHost block. Strict: a mapping of its own (starting at the block), so that the pages
// under a queued asynchronous copy can be taken from the host until the copy has run.
struct PinnedBlock {
  size_t bytes = 0;   // asked for
  size_t size = 0;    // usable: bytes rounded up to 256
  size_t mapped = 0;  // strict: the mapping's length (whole pages); 0: aligned_alloc
  bool protected_ = false;  // some of its pages are not readable and writable now
};
// A cudaMemcpyAsync queued on a stream into (or from) a strict pinned block, not yet run.
struct PendingCopy {
  uint64_t id = 0;
  uintptr_t block = 0;           // the pinned block's start
  uintptr_t begin = 0, end = 0;  // the block's bytes the copy writes (into) or reads (from)
  bool into = false;
  size_t bytes = 0;
  CUstream_st* stream = nullptr;
  std::string kernel;  // the last launch queued on the stream before the copy; "" if none
};

struct Device {
  std::mutex mu;
  int enabled = -1;  // -1: not decided yet (read the environment)
  bool env_read = false;  // SPARSETRAIN_EMU_SCHEDULE, _STRICT and _RACECHECK
  Schedule schedule;
  bool strict = false;
  bool racecheck = false;
  size_t guarded = 0;      // strict allocations alive
  int access_depth = 0;    // launches and copies running: strict blocks are readable meanwhile
  std::string last_kernel;  // the kernel that ran last, for guard reports
  std::map<uintptr_t, Allocation> allocations;  // device allocations by start address
  std::map<uintptr_t, PinnedBlock> pinned;      // cudaMallocHost blocks by start address
  std::vector<PendingCopy> pending_copies;      // strict: queued copies into / from pinned blocks
  uint64_t next_copy_id = 1;
  size_t pinned_protected = 0;                  // pinned blocks with protected pages
  std::vector<CUstream_st*> streams;            // alive, in creation order
  cudaError_t sticky = cudaSuccess;  // set by a kernel fault, cleared by cudaDeviceReset
  std::map<const void*, size_t> static_smem;  // per kernel: static shared bytes seen so far
  std::map<const void*, int> max_dynamic_smem;  // per kernel: the opt-in of cudaFuncSetAttribute
  Stats stats;
};
Device& device() {
  static Device* d = new Device();  // leaked: memory may be freed during static destruction
  return *d;
}

// 1 / 0 / unset (off); anything else throws naming the variable.
bool read_switch(const char* name, const char* what) {
  const char* v = std::getenv(name);
  std::string s = v ? v : "";
  if (!s.empty() && s != "0" && s != "1")
    throw std::invalid_argument(std::string("emulator: ") + name + "=\"" + s + "\" is not a " +
                                what + "; accepted values: 1 (on) and 0 or unset (off)");
  return s == "1";
}

void read_environment_locked(Device& d) {
  const char* sched = std::getenv("SPARSETRAIN_EMU_SCHEDULE");
  Schedule parsed;
  if (sched && *sched) parsed = parse_schedule(sched, "SPARSETRAIN_EMU_SCHEDULE");
  const bool strict = read_switch("SPARSETRAIN_EMU_STRICT", "strictness");
  const bool race = read_switch("SPARSETRAIN_EMU_RACECHECK", "race checker switch");
  d.schedule = parsed;
  d.strict = strict;
  d.racecheck = race;
  d.env_read = true;
}

void require_environment_locked(Device& d) {
  if (!d.env_read) read_environment_locked(d);
}

// Strict blocks become readable and writable for a launch or an emulated copy, and PROT_NONE
// again when the last one ends, so host code dereferencing a device pointer faults (below).
void protect_locked(Device& d, bool on) {
  for (auto& [start, a] : d.allocations)
    if (a.mapped) mprotect(a.base, a.mapped, on ? PROT_NONE : PROT_READ | PROT_WRITE);
}
// The pages of strict pinned blocks that a queued copy writes become PROT_NONE, those it only
// reads PROT_READ, so that host code touching them before synchronizing faults (on_segv reports
// it). armed = false: every pinned block readable and writable (emulated work runs, or nothing is
// queued any more).
void protect_pinned_locked(Device& d, bool armed) {
  if (d.pinned_protected == 0 && (!armed || d.pending_copies.empty())) return;
  const size_t page = page_size();
  std::vector<int> prot;
  for (auto& [start, b] : d.pinned) {
    if (!b.mapped) continue;
    prot.clear();
    if (armed) {
      for (const PendingCopy& c : d.pending_copies) {
        if (c.block != start) continue;
        if (prot.empty()) prot.assign(b.mapped / page, PROT_READ | PROT_WRITE);
        const size_t last = (c.end - start + page - 1) / page;
        for (size_t i = (c.begin - start) / page; i < last && i < prot.size(); ++i)
          prot[i] = c.into ? PROT_NONE : (prot[i] & PROT_READ);
      }
    }
    auto* base = reinterpret_cast<unsigned char*>(start);
    if (prot.empty()) {
      if (b.protected_) {
        mprotect(base, b.mapped, PROT_READ | PROT_WRITE);
        b.protected_ = false;
        d.pinned_protected--;
      }
      continue;
    }
    for (size_t i = 0; i < prot.size();) {  // one call per run of pages alike
      size_t j = i + 1;
      while (j < prot.size() && prot[j] == prot[i]) ++j;
      mprotect(base + i * page, (j - i) * page, prot[i]);
      i = j;
    }
    if (!b.protected_) {
      b.protected_ = true;
      d.pinned_protected++;
    }
  }
}

void begin_access_locked(Device& d) {
  if (d.access_depth++ == 0) {
    if (d.guarded) protect_locked(d, false);
    protect_pinned_locked(d, false);
  }
}
void end_access_locked(Device& d) {
  if (--d.access_depth == 0) {
    if (d.guarded) protect_locked(d, true);
    protect_pinned_locked(d, true);
  }
}
struct DeviceAccess {  // the caller holds d.mu
  Device& d;
  explicit DeviceAccess(Device& dev) : d(dev) { begin_access_locked(d); }
  ~DeviceAccess() { end_access_locked(d); }
};

// The first damage to the guards of the strict allocations ("" if none); all are checked and
// refilled.
std::string damaged_guards_locked(Device& d) {
  std::string first;
  if (d.guarded == 0) return first;
  DeviceAccess access(d);
  for (auto& [start, a] : d.allocations) {
    if (!a.guarded) continue;
    std::string damage = check_guards(a);
    if (first.empty()) first = damage;
  }
  return first;
}

// Damage found outside a launch happened in the kernel that ran last or in an emulated copy
// after it.
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

// The allocation holding [p, p + bytes), or null.
const Allocation* find_allocation(Device& d, const void* p, size_t bytes) {
  auto a = reinterpret_cast<uintptr_t>(p);
  auto it = d.allocations.upper_bound(a);
  if (it == d.allocations.begin()) return nullptr;
  --it;
  if (a >= it->first && a + bytes <= it->first + std::max<size_t>(it->second.bytes, 1))
    return &it->second;
  return nullptr;
}
bool is_device_range(Device& d, const void* p, size_t bytes) {
  return find_allocation(d, p, bytes) != nullptr;
}
// The pinned block holding p, or d.pinned.end().
std::map<uintptr_t, PinnedBlock>::iterator find_pinned(Device& d, const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  auto it = d.pinned.upper_bound(a);
  if (it == d.pinned.begin()) return d.pinned.end();
  --it;
  return a < it->first + it->second.size ? it : d.pinned.end();
}
bool is_pinned(Device& d, const void* p) { return find_pinned(d, p) != d.pinned.end(); }

// Strict: records a copy about to be queued on `stream` into (or from) [p, p + bytes) when that is
// a mapped pinned block, and takes its pages from the host; returns the record's id (0: none).
uint64_t add_pending_copy_locked(Device& d, CUstream_st* stream, const void* p, size_t bytes,
                                 bool into) {
  auto it = find_pinned(d, p);
  if (!d.strict || it == d.pinned.end() || !it->second.mapped) return 0;
  PendingCopy c;
  c.id = d.next_copy_id++;
  c.block = it->first;
  c.begin = reinterpret_cast<uintptr_t>(p);
  c.end = std::min(c.begin + bytes, it->first + it->second.mapped);
  c.into = into;
  c.bytes = bytes;
  c.stream = stream;
  c.kernel = stream->last_kernel;
  d.pending_copies.push_back(std::move(c));
  return d.pending_copies.back().id;
}
// The copy has run (or was dropped): its pages go back to the host at the end of the access.
void retire_pending_copy_locked(Device& d, uint64_t id) {
  if (id == 0) return;
  auto& v = d.pending_copies;
  v.erase(std::remove_if(v.begin(), v.end(), [id](const PendingCopy& c) { return c.id == id; }),
          v.end());
  if (d.access_depth == 0) protect_pinned_locked(d, true);
}
// Queued work was dropped (a fault, cudaDeviceReset): nothing is pending any more.
void drop_pending_copies_locked(Device& d) {
  d.pending_copies.clear();
  protect_pinned_locked(d, false);
}

std::string describe_device_address(uintptr_t a) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.allocations.upper_bound(a);
  if (it != d.allocations.begin()) {
    --it;
    if (a - it->first < std::max<size_t>(it->second.bytes, 1))
      return "global memory (byte " + std::to_string(a - it->first) + " of a " +
             std::to_string(it->second.bytes) + "-byte allocation)";
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "memory at %p", reinterpret_cast<void*>(a));
  return buf;
}

// ---- host dereferences of device memory (strict mode) ----------------------------------------
struct sigaction g_previous_segv;

// 1: the faulting access was a write, 0: a read, -1: not known on this platform.
int fault_is_write(void* uctx) {
#if defined(__x86_64__) && defined(__linux__) && defined(REG_ERR)
  const auto* uc = static_cast<const ucontext_t*>(uctx);
  return (uc->uc_mcontext.gregs[REG_ERR] & 2) ? 1 : 0;  // the page fault's error code: W bit
#else
  (void)uctx;
  return -1;
#endif
}

// A fault at `a`: false unless it lies in a protected pinned block. There, a host access that
// conflicts with a queued copy is reported and the handler lets the process die at the retry;
// any other (bytes outside the copy that share a page with it, or a read of a copy's source on a
// page another copy writes) opens the page just enough for the access to go on.
bool pinned_fault(Device& d, uintptr_t a, void* addr, void* uctx) {
  for (auto& [start, b] : d.pinned) {
    if (!b.protected_ || a < start || a >= start + b.mapped) continue;
    const int is_write = fault_is_write(uctx);
    const PendingCopy* hit = nullptr;
    for (const PendingCopy& c : d.pending_copies) {
      if (c.block != start || a < c.begin || a >= c.end) continue;
      if (c.into) {  // any access: a read sees stale data, a write is overwritten by the copy
        hit = &c;
        break;
      }
      if (is_write != 0 && !hit) hit = &c;  // reading a copy's source is fine
    }
    if (!hit) {
      const uintptr_t page = a / page_size() * page_size();
      mprotect(reinterpret_cast<void*>(page), page_size(),
               is_write == 0 ? PROT_READ : PROT_READ | PROT_WRITE);
      return true;
    }
    const char* what = is_write == 1 ? "write to" : is_write == 0 ? "read of" : "access to";
    char msg[640];
    int n = std::snprintf(
        msg, sizeof msg,
        "emulator: host %s pinned memory at %p (byte %lld of a %zu-byte cudaMallocHost block) "
        "while a %zu-byte cudaMemcpyAsync %s it is queued on stream %p%s%.200s and not yet "
        "synchronized (missing cudaStreamSynchronize/cudaEventSynchronize?)\n",
        what, addr, static_cast<long long>(a - start), b.bytes, hit->bytes,
        hit->into ? "into" : "from", static_cast<void*>(hit->stream),
        hit->kernel.empty() ? "" : " after kernel ", hit->kernel.c_str());
    if (n > 0) (void)!write(2, msg, static_cast<size_t>(std::min<int>(n, sizeof msg - 1)));
    signal(SIGSEGV, SIG_DFL);  // the access faults again and the process dies of SIGSEGV
    return true;
  }
  return false;
}

// Runs on the faulting thread; the device lock may be held, so the map is read without it (the
// process is about to die anyway). A fault inside a strict block is reported, then the default
// action kills the process; any other fault goes to the handler that was there before.
void on_segv(int sig, siginfo_t* info, void* uctx) {
  auto a = reinterpret_cast<uintptr_t>(info->si_addr);
  Device& d = device();
  if (d.pinned_protected && pinned_fault(d, a, info->si_addr, uctx)) return;
  for (auto& [start, al] : d.allocations) {
    auto base = reinterpret_cast<uintptr_t>(al.base);
    if (!al.mapped || a < base || a >= base + al.mapped) continue;
    char msg[256];
    int n = std::snprintf(msg, sizeof msg,
                          "emulator: host code dereferenced device memory at %p (byte %lld of a "
                          "%zu-byte allocation); device memory is only reachable through kernels "
                          "and cudaMemcpy (SPARSETRAIN_EMU_STRICT=1)\n",
                          info->si_addr, static_cast<long long>(a - start), al.bytes);
    if (n > 0) (void)!write(2, msg, static_cast<size_t>(std::min<int>(n, sizeof msg - 1)));
    signal(SIGSEGV, SIG_DFL);  // the access faults again and the process dies of SIGSEGV
    return;
  }
  if (g_previous_segv.sa_flags & SA_SIGINFO) {
    g_previous_segv.sa_sigaction(sig, info, uctx);
  } else if (g_previous_segv.sa_handler == SIG_DFL || g_previous_segv.sa_handler == SIG_IGN) {
    signal(SIGSEGV, SIG_DFL);
  } else {
    g_previous_segv.sa_handler(sig);
  }
}
// At every strict cudaMalloc: a test framework may have put its own handler back meanwhile.
void install_segv_handler() {
  struct sigaction current;
  if (sigaction(SIGSEGV, nullptr, &current) != 0) return;
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_segv) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous_segv);
}

// ---- streams ---------------------------------------------------------------------------------
// A kernel that threw (an emulator check, a kernel's own exception) leaves the device faulted like
// a GPU after an illegal address: queued work is dropped and every later call returns
// cudaErrorLaunchFailure until cudaDeviceReset.
void fault(Device& d) {
  std::lock_guard<std::mutex> lock(d.mu);
  d.sticky = cudaErrorLaunchFailure;
  for (CUstream_st* s : d.streams) s->queue.clear();
  drop_pending_copies_locked(d);
}

// Runs `s`'s queued work in order, up to `until`'s pending record if given. The caller holds
// g_exec_mutex and not d.mu.
void drain(Device& d, CUstream_st* s, CUevent_st* until = nullptr) {
  for (;;) {
    StreamWork w;
    {
      std::lock_guard<std::mutex> lock(d.mu);
      if (s->queue.empty() || (until && until->pending == 0)) return;
      w = std::move(s->queue.front());
      s->queue.pop_front();
    }
    try {
      w.run();
    } catch (...) {
      fault(d);
      throw;
    }
  }
}

// Every stream's queue (all: cudaDeviceSynchronize, cudaFree), or only the blocking streams'
// (what work on the legacy default stream waits for).
void drain_streams(Device& d, bool blocking_only) {
  std::vector<CUstream_st*> streams;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    for (CUstream_st* s : d.streams)
      if (!blocking_only || !(s->flags & cudaStreamNonBlocking)) streams.push_back(s);
  }
  for (CUstream_st* s : streams) drain(d, s);
}

bool stream_alive_locked(Device& d, cudaStream_t s) {
  return !s || std::find(d.streams.begin(), d.streams.end(), s) != d.streams.end();
}

// Runs `work` now (the legacy default stream: after the blocking streams' queued work) or queues
// it on `stream`. The caller holds no lock.
void submit(Device& d, cudaStream_t stream, std::function<void()> work) {
  std::lock_guard<std::recursive_mutex> exec(g_exec_mutex);
  if (stream) {
    std::lock_guard<std::mutex> lock(d.mu);
    stream->queue.push_back(StreamWork{std::move(work)});
    return;
  }
  drain_streams(d, true);
  try {
    work();
  } catch (...) {
    fault(d);
    throw;
  }
}

// The most dynamic shared memory a launch of `func` may ask for, given its static bytes.
size_t dynamic_limit_locked(Device& d, const void* func, size_t static_bytes) {
  auto it = d.max_dynamic_smem.find(func);
  if (it != d.max_dynamic_smem.end())
    return std::min<size_t>(static_cast<size_t>(it->second), kOptinSharedBytes - std::min(static_bytes, kOptinSharedBytes));
  return kDefaultSharedBytes - std::min(static_bytes, kDefaultSharedBytes);
}

void execute_launch(const LaunchSpec& spec) {
  Schedule order;
  bool race = false;
  size_t static_limit = 0;
  {
    Device& d = device();
    std::lock_guard<std::mutex> lock(d.mu);
    order = d.schedule;
    race = d.racecheck;
    // Static shared memory plus the launch's dynamic bytes must fit the kernel's limit.
    const size_t total = d.max_dynamic_smem.count(spec.func) ? kOptinSharedBytes : kDefaultSharedBytes;
    static_limit = total - std::min(spec.smem, total);
    d.stats.launches++;
  }
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  if (!g_scheduler) g_scheduler = new Scheduler();  // leaked with its stack pool, on purpose
  Scheduler& s = *g_scheduler;
  t_running = &s;
  if (race) t_race = &s.race;
  Device& d = device();
  {
    std::lock_guard<std::mutex> dlock(d.mu);
    begin_access_locked(d);
  }
  struct Reset {
    Scheduler& s;
    Device& d;
    ~Reset() {
      t_running = nullptr;
      t_race = nullptr;
      s.race.end_launch();
      threadIdx = uint3{0, 0, 0};
      blockIdx = uint3{0, 0, 0};
      std::lock_guard<std::mutex> dlock(d.mu);
      end_access_locked(d);
    }
  } reset{s, d};
  std::string kernel = spec.name ? spec.name : "kernel";
  try {
    s.run(spec, order, race, static_limit);
  } catch (const SharedMemoryExceeded& e) {
    std::lock_guard<std::mutex> dlock(d.mu);
    size_t& known = d.static_smem[spec.func];
    known = std::max(known, e.static_bytes);
    record(cudaErrorInvalidValue);
    return;
  } catch (...) {
    // The kernel's own error is the report; guards it damaged too are refilled unreported, so
    // that the next launch is not blamed for them.
    std::lock_guard<std::mutex> dlock(d.mu);
    d.last_kernel = kernel;
    (void)damaged_guards_locked(d);
    throw;
  }
  std::lock_guard<std::mutex> dlock(d.mu);
  size_t& known = d.static_smem[spec.func];
  known = std::max(known, s.static_smem);
  d.stats.blocks += 1ull * spec.grid.x * spec.grid.y * spec.grid.z;
  d.last_kernel = kernel;
  std::string damage = damaged_guards_locked(d);
  if (!damage.empty()) throw std::runtime_error("emulator: " + damage + " in " + kernel);
}

}  // namespace

void submit_launch(const LaunchSpec& spec, std::shared_ptr<void> keep) {
  if (t_running)
    throw std::logic_error(std::string("emulator: ") + spec.name +
                           " launched from inside a kernel (dynamic parallelism is not emulated)");
  Device& d = device();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!device_enabled_locked(d)) {
      record(cudaErrorNoDevice);
      return;
    }
    require_environment_locked(d);
    if (d.sticky) {
      record(d.sticky);
      return;
    }
    if (!stream_alive_locked(d, spec.stream)) {
      record(cudaErrorInvalidResourceHandle);
      return;
    }
    if (d.racecheck && !g_instrumented)
      throw std::logic_error(
          "emulator: the race checker (SPARSETRAIN_EMU_RACECHECK=1) is on, but no kernel of this "
          "program was compiled for it (-fsanitize=thread and the st_cuda_emu_race library)");
    const dim3 g = spec.grid, b = spec.block;
    unsigned long long threads = 1ull * b.x * b.y * b.z;
    if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0 || b.x > 1024 ||
        b.y > 1024 || b.z > 64 || threads > 1024 || g.x > 2147483647u || g.y > 65535 ||
        g.z > 65535) {
      record(cudaErrorInvalidConfiguration);
      return;
    }
    // Static shared bytes are known once the kernel has run (ST_SHARED_POISON counts them); the
    // first launch of a kernel over the limit fails when its first thread declares the array.
    auto known = d.static_smem.find(spec.func);
    const size_t static_bytes = known == d.static_smem.end() ? 0 : known->second;
    if (spec.smem > dynamic_limit_locked(d, spec.func, static_bytes)) {
      record(cudaErrorInvalidValue);
      return;
    }
    if (spec.stream) spec.stream->last_kernel = spec.name ? spec.name : "kernel";
  }
  LaunchSpec copy = spec;
  submit(d, spec.stream, [copy, keep] { execute_launch(copy); });
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

bool racecheck() {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::require_environment_locked(d);
  return d.racecheck;
}

void set_racecheck(bool on) {
  detail::Device& d = detail::device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::require_environment_locked(d);
  d.racecheck = on;
}

bool racecheck_available() { return detail::g_instrumented; }

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

// Sticky: after a kernel fault every call that needs the device's context reports it.
cudaError_t cudaGetLastError() {
  cudaError_t e = detail::t_last_error;
  detail::t_last_error = cudaSuccess;
  if (e == cudaSuccess) {
    detail::Device& d = device();
    std::lock_guard<std::mutex> lock(d.mu);
    e = d.sticky;
  }
  return e;
}

cudaError_t cudaPeekAtLastError() {
  if (detail::t_last_error != cudaSuccess) return detail::t_last_error;
  detail::Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  return d.sticky;
}

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
  prop->sharedMemPerBlockOptin = detail::kOptinSharedBytes;
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
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = static_cast<int>(detail::kOptinSharedBytes);
      break;
    default: return record(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

// The prologue of calls that use the device's context: a faulted device refuses them.
#define ST_EMU_REQUIRE_CONTEXT()   \
  ST_EMU_REQUIRE_DEVICE();         \
  if (d.sticky) return record(d.sticky)

// Usable from calls that must not hold the lock while queued work runs.
cudaError_t context_error(detail::Device& d) {
  std::lock_guard<std::mutex> lock(d.mu);
  if (!detail::device_enabled_locked(d)) return cudaErrorNoDevice;
  detail::require_environment_locked(d);
  return d.sticky;
}

cudaError_t cudaDeviceSynchronize() {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  {
    std::lock_guard<std::recursive_mutex> exec(detail::g_exec_mutex);
    detail::drain_streams(d, false);
  }
  std::lock_guard<std::mutex> lock(d.mu);
  detail::check_guards_outside_launch(d, "cudaDeviceSynchronize");
  return cudaSuccess;
}

// Clears a fault and drops queued work. Unlike CUDA's, it keeps every allocation, stream, event
// and kernel attribute (the backend's caching allocator holds blocks across tests).
cudaError_t cudaDeviceReset() {
  std::lock_guard<std::recursive_mutex> exec(detail::g_exec_mutex);
  ST_EMU_REQUIRE_DEVICE();
  d.sticky = cudaSuccess;
  for (CUstream_st* s : d.streams) s->queue.clear();
  detail::drop_pending_copies_locked(d);
  detail::t_last_error = cudaSuccess;
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  ST_EMU_REQUIRE_CONTEXT();
  if (!free_bytes || !total_bytes) return record(cudaErrorInvalidValue);
  size_t used = 0;
  for (auto& [p, a] : d.allocations) used += a.bytes;
  *total_bytes = physical_memory();
  *free_bytes = *total_bytes > used ? *total_bytes - used : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  ST_EMU_REQUIRE_CONTEXT();
  if (!ptr) return record(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  detail::require_environment_locked(d);
  const bool strict = d.strict;
  // Strict: the back guard takes the rounding and at least kGuardBytes more.
  const size_t extra = strict ? 2 * detail::kGuardBytes + 255 : 255;
  if (bytes > SIZE_MAX - extra - detail::page_size()) return record(cudaErrorMemoryAllocation);
  detail::Allocation a;
  a.bytes = bytes;
  a.block = (bytes + extra) / 256 * 256;  // cudaMalloc's alignment
  if (strict) {
    // A mapping of its own, so that it can be made unreachable from the host.
    a.mapped = (a.block + detail::page_size() - 1) / detail::page_size() * detail::page_size();
    void* m = mmap(nullptr, a.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return record(cudaErrorMemoryAllocation);
    a.base = static_cast<unsigned char*>(m);
  } else {
    a.base = static_cast<unsigned char*>(std::aligned_alloc(256, a.block));
    if (!a.base) return record(cudaErrorMemoryAllocation);
  }
  a.guarded = strict;
  unsigned char* p = a.base;
  if (strict) {
    p = a.base + detail::kGuardBytes;
    std::memset(p, detail::kPoisonFill, bytes);
    detail::fill_guards(a);
    detail::set_guards_poisoned(a, true);
    d.guarded++;
    detail::install_segv_handler();
    if (d.access_depth == 0) mprotect(a.base, a.mapped, PROT_NONE);
  }
  d.allocations[reinterpret_cast<uintptr_t>(p)] = a;
  d.stats.mallocs++;
  *ptr = p;
  return cudaSuccess;
}

// Synchronizes the device first, like CUDA's.
cudaError_t cudaFree(void* ptr) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  if (!ptr) return cudaSuccess;
  {
    std::lock_guard<std::recursive_mutex> exec(detail::g_exec_mutex);
    detail::drain_streams(d, false);
  }
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.allocations.end()) return record(cudaErrorInvalidValue);
  const detail::Allocation a = it->second;
  std::string damage;
  if (a.guarded) {
    if (a.mapped) mprotect(a.base, a.mapped, PROT_READ | PROT_WRITE);
    damage = detail::check_guards(a);
    detail::set_guards_poisoned(a, false);  // the memory goes back to the system
    d.guarded--;
  }
  d.allocations.erase(it);
  d.stats.frees++;
  if (a.mapped)
    munmap(a.base, a.mapped);
  else
    std::free(a.base);
  if (!damage.empty()) detail::throw_outside_launch(d, damage, "cudaFree");
  return cudaSuccess;
}

// Strict: a mapping of its own, whose pages a queued cudaMemcpyAsync into (from) it makes
// PROT_NONE (PROT_READ) until the copy runs (protect_pinned_locked, on_segv).
cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  ST_EMU_REQUIRE_CONTEXT();
  if (!ptr) return record(cudaErrorInvalidValue);
  detail::require_environment_locked(d);
  if (bytes > SIZE_MAX - 255 - detail::page_size()) return record(cudaErrorMemoryAllocation);
  detail::PinnedBlock b;
  b.bytes = bytes;
  b.size = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  if (d.strict) {
    b.mapped = (b.size + detail::page_size() - 1) / detail::page_size() * detail::page_size();
    void* m = mmap(nullptr, b.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *ptr = m == MAP_FAILED ? nullptr : m;
    detail::install_segv_handler();
  } else {
    *ptr = std::aligned_alloc(256, b.size);
  }
  if (!*ptr) return record(cudaErrorMemoryAllocation);
  d.pinned[reinterpret_cast<uintptr_t>(*ptr)] = b;
  return cudaSuccess;
}

// Synchronizes the device first, like CUDA's: queued copies into or from the block run.
cudaError_t cudaFreeHost(void* ptr) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  if (!ptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!d.pinned.count(reinterpret_cast<uintptr_t>(ptr))) return record(cudaErrorInvalidValue);
  }
  {
    std::lock_guard<std::recursive_mutex> exec(detail::g_exec_mutex);
    detail::drain_streams(d, false);
  }
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.pinned.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.pinned.end()) return record(cudaErrorInvalidValue);  // freed meanwhile
  const detail::PinnedBlock b = it->second;
  if (b.protected_) d.pinned_protected--;
  d.pinned.erase(it);
  if (b.mapped)
    munmap(ptr, b.mapped);
  else
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

// The copy or fill itself, with strict blocks reachable for its duration. A queued copy's
// records of pinned pages it uses (into, from) are retired: the host gets the pages back after it.
void device_memmove(void* dst, const void* src, size_t bytes, uint64_t into = 0,
                    uint64_t from = 0) {
  detail::Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::DeviceAccess access(d);
  detail::retire_pending_copy_locked(d, into);
  detail::retire_pending_copy_locked(d, from);
  std::memmove(dst, src, bytes);
}
void device_memset(void* dst, int value, size_t bytes) {
  detail::Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  detail::DeviceAccess access(d);
  std::memset(dst, value, bytes);
}

// Queues or runs a copy with CUDA's host synchronization: from pageable host memory the source
// is staged at the call (it may be reused at once); into pageable host memory the call returns
// once the data has arrived; to or from cudaMallocHost memory, and device to device, it is
// queued like a kernel.
cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                 cudaStream_t stream) {
  detail::Device& d = device();
  bool src_pageable = false, dst_pageable = false;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!detail::device_enabled_locked(d)) return record(cudaErrorNoDevice);
    if (d.sticky) return record(d.sticky);
    if (!detail::stream_alive_locked(d, stream)) return record(cudaErrorInvalidResourceHandle);
    cudaError_t e = check_copy(d, dst, src, bytes, kind);
    if (e != cudaSuccess) return record(e);
    if (bytes == 0) return cudaSuccess;
    src_pageable = !detail::is_device_range(d, src, bytes) && !detail::is_pinned(d, src);
    dst_pageable = !detail::is_device_range(d, dst, bytes) && !detail::is_pinned(d, dst);
  }
  if (dst_pageable && stream) {  // runs after the stream's queued work, before returning
    std::lock_guard<std::recursive_mutex> exec(detail::g_exec_mutex);
    detail::drain(d, stream);
    stream = nullptr;
  }
  if (src_pageable && stream) {
    auto staged = std::make_shared<std::vector<unsigned char>>(
        static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + bytes);
    uint64_t into = 0;
    {
      std::lock_guard<std::mutex> lock(d.mu);
      into = detail::add_pending_copy_locked(d, stream, dst, bytes, true);  // host to host
      if (into) detail::install_segv_handler();
      if (into && d.access_depth == 0) detail::protect_pinned_locked(d, true);
    }
    detail::submit(d, stream, [dst, staged, into] {
      device_memmove(dst, staged->data(), staged->size(), into);
    });
  } else {
    // Strict: until the queued copy runs, the host must not touch a pinned destination, nor
    // write a pinned source.
    uint64_t into = 0, from = 0;
    if (stream) {
      std::lock_guard<std::mutex> lock(d.mu);
      into = detail::add_pending_copy_locked(d, stream, dst, bytes, true);
      from = detail::add_pending_copy_locked(d, stream, src, bytes, false);
      if (into || from) detail::install_segv_handler();
      if ((into || from) && d.access_depth == 0) detail::protect_pinned_locked(d, true);
    }
    detail::submit(d, stream, [dst, src, bytes, into, from] {
      device_memmove(dst, src, bytes, into, from);
    });
  }
  return cudaSuccess;
}

cudaError_t fill(void* dst, int value, size_t bytes, cudaStream_t stream) {
  detail::Device& d = device();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!detail::device_enabled_locked(d)) return record(cudaErrorNoDevice);
    if (d.sticky) return record(d.sticky);
    if (!detail::stream_alive_locked(d, stream)) return record(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (!detail::is_device_range(d, dst, bytes)) return record(cudaErrorInvalidValue);
  }
  detail::submit(d, stream, [dst, value, bytes] { device_memset(dst, value, bytes); });
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return copy(dst, src, bytes, kind, nullptr);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  return copy(dst, src, bytes, kind, stream);
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) { return fill(dst, value, bytes, nullptr); }

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  return fill(dst, value, bytes, stream);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  ST_EMU_REQUIRE_CONTEXT();
  if (!stream || (flags & ~unsigned{cudaStreamNonBlocking})) return record(cudaErrorInvalidValue);
  *stream = new CUstream_st();
  (*stream)->flags = flags;
  d.streams.push_back(*stream);
  return cudaSuccess;
}

// Its queued work runs first (CUDA lets it finish after the call returns).
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  std::lock_guard<std::recursive_mutex> exec(detail::g_exec_mutex);
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!stream || !detail::stream_alive_locked(d, stream))
      return record(cudaErrorInvalidResourceHandle);
  }
  detail::drain(d, stream);
  std::lock_guard<std::mutex> lock(d.mu);
  d.streams.erase(std::find(d.streams.begin(), d.streams.end(), stream));
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  {
    std::lock_guard<std::recursive_mutex> exec(detail::g_exec_mutex);
    {
      std::lock_guard<std::mutex> lock(d.mu);
      if (!detail::stream_alive_locked(d, stream)) return record(cudaErrorInvalidResourceHandle);
    }
    if (stream)
      detail::drain(d, stream);
    else
      detail::drain_streams(d, true);  // the legacy default stream waits for the blocking ones
  }
  std::lock_guard<std::mutex> lock(d.mu);
  detail::check_guards_outside_launch(d, "cudaStreamSynchronize");
  return cudaSuccess;
}

namespace {
// Runs the event's stream up to its last queued record.
void wait_event(detail::Device& d, cudaEvent_t event) {
  std::lock_guard<std::recursive_mutex> exec(detail::g_exec_mutex);
  CUstream_st* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (event->pending) s = event->stream;
  }
  if (s) detail::drain(d, s, event);
}
}  // namespace

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  if (!event) return record(cudaErrorInvalidResourceHandle);
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!detail::stream_alive_locked(d, stream)) return record(cudaErrorInvalidResourceHandle);
  }
  detail::submit(d, stream, [&d, event] { wait_event(d, event); });
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  ST_EMU_REQUIRE_CONTEXT();
  if (!event) return record(cudaErrorInvalidValue);
  *event = new CUevent_st();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  if (!event) return record(cudaErrorInvalidResourceHandle);
  wait_event(d, event);  // a queued record still refers to it
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  if (!event) return record(cudaErrorInvalidResourceHandle);
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!detail::stream_alive_locked(d, stream)) return record(cudaErrorInvalidResourceHandle);
    event->pending++;
    event->stream = stream;
  }
  detail::submit(d, stream, [&d, event] {
    std::lock_guard<std::mutex> lock(d.mu);
    event->time = std::chrono::steady_clock::now();
    event->recorded = true;
    event->pending--;
  });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  if (!event) return record(cudaErrorInvalidResourceHandle);
  wait_event(d, event);
  return cudaSuccess;
}

// Runs the event's stream up to the event and reports it complete: nothing else would make the
// queue progress, so a loop polling with cudaEventQuery would never end on cudaErrorNotReady.
cudaError_t cudaEventQuery(cudaEvent_t event) {
  detail::Device& d = device();
  if (cudaError_t e = context_error(d)) return record(e);
  if (!event) return record(cudaErrorInvalidResourceHandle);
  wait_event(d, event);
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  ST_EMU_REQUIRE_CONTEXT();
  if (!ms) return record(cudaErrorInvalidValue);
  if (!start || !end) return record(cudaErrorInvalidResourceHandle);
  if (start->pending || end->pending) return record(cudaErrorNotReady);
  if (!start->recorded || !end->recorded) return record(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  ST_EMU_REQUIRE_CONTEXT();
  if (!func) return record(cudaErrorInvalidValue);
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout)
    return value >= -1 && value <= 100 ? cudaSuccess : record(cudaErrorInvalidValue);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return record(cudaErrorInvalidValue);
  auto known = d.static_smem.find(func);
  const size_t static_bytes = known == d.static_smem.end() ? 0 : known->second;
  if (value < 0 || static_cast<size_t>(value) + static_bytes > detail::kOptinSharedBytes)
    return record(cudaErrorInvalidValue);
  d.max_dynamic_smem[func] = value;
  return cudaSuccess;
}

#undef ST_EMU_REQUIRE_CONTEXT
#undef ST_EMU_REQUIRE_DEVICE
}  // namespace api

}  // namespace st::emu

// ---- the race checker's runtime ----------------------------------------------------------------
// Kernel files compiled with -fsanitize=thread (and linked without libtsan) call these for every
// load and store; outside a checked launch they return at once. Atomic operations of instrumented
// host code (std::atomic, shared_ptr counts) are done for real and not recorded. This runtime is
// only in st_cuda_emu_race, so it never meets the real ThreadSanitizer.
#if defined(ST_EMU_RACECHECK)
namespace {
using st::emu::detail::t_race;
inline void race_access(const volatile void* p, size_t n, bool write) {
  if (st::emu::detail::RaceState* r = t_race)
    r->access(reinterpret_cast<uintptr_t>(p), n, write);
}
}  // namespace

extern "C" {
void __tsan_init() { st::emu::detail::g_instrumented = true; }
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
void __tsan_read_range(void* p, unsigned long n) { race_access(p, n, false); }
void __tsan_write_range(void* p, unsigned long n) { race_access(p, n, true); }
#define ST_EMU_TSAN_ACCESS(n)                                                        \
  void __tsan_read##n(void* p) { race_access(p, n, false); }                         \
  void __tsan_write##n(void* p) { race_access(p, n, true); }                         \
  void __tsan_unaligned_read##n(void* p) { race_access(p, n, false); }               \
  void __tsan_unaligned_write##n(void* p) { race_access(p, n, true); }               \
  void __tsan_volatile_read##n(void* p) { race_access(p, n, false); }                \
  void __tsan_volatile_write##n(void* p) { race_access(p, n, true); }                \
  void __tsan_unaligned_volatile_read##n(void* p) { race_access(p, n, false); }      \
  void __tsan_unaligned_volatile_write##n(void* p) { race_access(p, n, true); }
ST_EMU_TSAN_ACCESS(1)
ST_EMU_TSAN_ACCESS(2)
ST_EMU_TSAN_ACCESS(4)
ST_EMU_TSAN_ACCESS(8)
ST_EMU_TSAN_ACCESS(16)
#undef ST_EMU_TSAN_ACCESS

#define ST_EMU_TSAN_ATOMIC(bits, T)                                                            \
  T __tsan_atomic##bits##_load(const volatile T* a, int) {                                     \
    return __atomic_load_n(a, __ATOMIC_SEQ_CST);                                               \
  }                                                                                            \
  void __tsan_atomic##bits##_store(volatile T* a, T v, int) {                                  \
    __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                                  \
  }                                                                                            \
  T __tsan_atomic##bits##_exchange(volatile T* a, T v, int) {                                  \
    return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);                                        \
  }                                                                                            \
  T __tsan_atomic##bits##_fetch_add(volatile T* a, T v, int) {                                 \
    return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST);                                         \
  }                                                                                            \
  T __tsan_atomic##bits##_fetch_sub(volatile T* a, T v, int) {                                 \
    return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST);                                         \
  }                                                                                            \
  T __tsan_atomic##bits##_fetch_and(volatile T* a, T v, int) {                                 \
    return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST);                                         \
  }                                                                                            \
  T __tsan_atomic##bits##_fetch_or(volatile T* a, T v, int) {                                  \
    return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST);                                          \
  }                                                                                            \
  T __tsan_atomic##bits##_fetch_xor(volatile T* a, T v, int) {                                 \
    return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST);                                         \
  }                                                                                            \
  T __tsan_atomic##bits##_fetch_nand(volatile T* a, T v, int) {                                \
    return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST);                                        \
  }                                                                                            \
  int __tsan_atomic##bits##_compare_exchange_strong(volatile T* a, T* c, T v, int, int) {      \
    return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);    \
  }                                                                                            \
  int __tsan_atomic##bits##_compare_exchange_weak(volatile T* a, T* c, T v, int, int) {        \
    return __atomic_compare_exchange_n(a, c, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);     \
  }                                                                                            \
  T __tsan_atomic##bits##_compare_exchange_val(volatile T* a, T c, T v, int, int) {            \
    __atomic_compare_exchange_n(a, &c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);          \
    return c;                                                                                  \
  }
ST_EMU_TSAN_ATOMIC(8, unsigned char)
ST_EMU_TSAN_ATOMIC(16, unsigned short)
ST_EMU_TSAN_ATOMIC(32, unsigned)
ST_EMU_TSAN_ATOMIC(64, unsigned long long)
#undef ST_EMU_TSAN_ATOMIC
void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
}  // extern "C"
#endif  // ST_EMU_RACECHECK
