// cuda/emu/emu.h — the CUDA execution model on the CPU, for g++: what cuda/compat.h gives a .cu
// file when nvcc is not the compiler. It lets every CUDA kernel run (and be tested against the CPU
// reference) on machines with no GPU. Not a simulator of performance: a checker of semantics.
//
//   Launch  ST_LAUNCH(grid, block, smem, stream, kernel)(args...) validates like CUDA (block size,
//           grid size, static + dynamic shared memory against 48 KiB or the kernel's
//           cudaFuncSetAttribute opt-in; errors through cudaGetLastError), then runs the grid one
//           block at a time, so `__shared__` can be plain `static` storage.
//   Streams work on the legacy default stream (nullptr) runs at the call, after the queued work
//           of every blocking stream. Launches, copies, fills and event records on a created
//           stream are queued and run in order when something synchronizes with that stream
//           (cudaStreamSynchronize, cudaDeviceSynchronize, cudaEventSynchronize, cudaFree,
//           cudaFreeHost, cudaStreamWaitEvent's target, a legacy-stream call unless the stream is
//           cudaStreamNonBlocking). Copies keep CUDA's host synchronization: a pageable source is
//           staged at the call, a pageable destination is written before the call returns.
//   Faults  an exception thrown by a kernel (its own, or an emulator check) is rethrown by the call
//           that ran it, drops all queued work, and is sticky: every later call that uses the
//           device returns cudaErrorLaunchFailure until cudaDeviceReset (which, unlike CUDA's,
//           keeps allocations, streams and events).
//   Threads each thread of a block is a cooperative fiber on the launching OS thread (own 128 KiB
//           stack, pooled). Fibers switch only at barriers, so plain read-modify-write is atomic.
//   Order   the schedule (SPARSETRAIN_EMU_SCHEDULE or set_schedule) orders the threads resumed in
//           each barrier phase and the grid's blocks: forward (default; thread index order, blocks
//           x fastest, then y, z), reverse, or random:SEED (seeded shuffles). Every order is
//           deterministic; a kernel missing a barrier usually gives different results across them.
//   Barriers __syncthreads() waits for every live (not yet returned) thread of the block; threads
//           arriving at different __syncthreads calls (source lines) are reported as divergent.
//           Warp operations wait for the live lanes named in their mask (warp = linear thread
//           id / 32; the last warp may be partial). A barrier nobody can complete (divergent
//           __syncthreads, a lane stuck elsewhere) throws "emulator: deadlock in <kernel>: ...".
//   Poison  dynamic shared memory, and every static `__shared__` array marked with
//           ST_SHARED_POISON, starts each block filled with 0xFF bytes (NaN floats); a shuffle
//           reading a lane that does not exist, has returned or is outside the mask returns NaN /
//           0xDEADBEEF..., so kernels that read what CUDA leaves undefined fail.
//   Strict  (SPARSETRAIN_EMU_STRICT=1 or set_strict) cudaMalloc gives exact-size, 0xFF-filled
//           blocks between guard zones, checked after every launch, by cudaFree and by the
//           synchronize calls: an overrun throws "emulator: write past the end of a N-byte
//           allocation in <kernel>". Each block is a mapping of its own, PROT_NONE while no
//           launch or emulated copy runs: host code dereferencing a device pointer dies of SIGSEGV
//           after "emulator: host code dereferenced device memory at ...". cudaMallocHost blocks
//           are mappings too: while a cudaMemcpyAsync into one is queued on a stream, the pages
//           it writes are PROT_NONE (PROT_READ for the pages a queued copy reads from one), so
//           host code reading the destination (writing the source) before synchronizing dies of
//           SIGSEGV after "emulator: host read of pinned memory at ... while a N-byte
//           cudaMemcpyAsync into it is queued on stream S after kernel K and not yet synchronized
//           (missing cudaStreamSynchronize/cudaEventSynchronize?)". Under AddressSanitizer the
//           guards are poisoned too, so out-of-bounds reads are reported where they happen.
//   Races   (SPARSETRAIN_EMU_RACECHECK=1 or set_racecheck; only in the st_cuda_emu_race build,
//           whose kernel files are compiled with -fsanitize=thread and whose emu.cpp implements
//           the instrumentation's hooks) every byte of shared and global memory a kernel touches
//           remembers its last writer and readers; an access by another thread with no
//           __syncthreads between (for lanes of one warp: no __syncwarp naming both), or by
//           another block of the launch (global memory), throws "emulator: race in <kernel>
//           (block (x,y,z)): thread A wrote <where>, thread B read it ...", whatever the schedule.
//           Atomics and thread stacks are exempt.
//
// The device exists only when emulation is switched on (SPARSETRAIN_CUDA_EMULATION=1, or
// st::emu::set_enabled(true)); otherwise cudaGetDeviceCount and every launch and allocation fail
// with cudaErrorNoDevice, like a machine without a GPU.
// Host API functions live in namespace st::emu::api (pulled into the global namespace by using
// declarations), so their symbols never collide with the real cudart's.
// Tests: tests/cuda/test_emu.cpp, tests/cuda/test_emu_checks.cpp.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#define ST_CUDA_EMULATION 1

// ---- qualifiers ----------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Blocks run one at a time on one OS thread, so a function-local static is per block.
#define __shared__ static

// ---- vector and index types (CUDA's layouts and alignments) --------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(16) double2 { double x, y; };

inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float3 make_float3(float x, float y, float z) { return float3{x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int3 make_int3(int x, int y, int z) { return int3{x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
  return uint4{x, y, z, w};
}
inline double2 make_double2(double x, double y) { return double2{x, y}; }

// The built-in index variables: set by the scheduler each time it switches to a thread.
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

// ---- host API types ------------------------------------------------------------------------
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
  cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;
struct CUevent_st;
typedef struct CUevent_st* cudaEvent_t;

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major;
  int minor;
  int multiProcessorCount;
  int l2CacheSize;
};

namespace st::emu {

// Whether the emulated device exists. Initially: SPARSETRAIN_CUDA_EMULATION=1 in the environment.
bool enabled();
void set_enabled(bool on);

// The order in which the emulator runs a block's threads and a grid's blocks. forward: thread
// index order within each barrier phase (the thread completing a barrier goes on first), blocks x
// fastest, then y, z. reverse: highest thread index first in every phase, last block first.
// random: a shuffle seeded by `seed`, drawn again for every phase and every launch's block order
// (each launch starts from the seed, so a launch's order does not depend on earlier launches).
// Correct kernels give the same results under every order; one missing a barrier usually does not.
struct Schedule {
  enum Order { forward, reverse, random };
  Order order = forward;
  uint64_t seed = 0;  // random only
};
// "forward", "reverse" or "random:SEED" (SEED a decimal unsigned integer); anything else throws
// std::invalid_argument naming `source` (the variable or function the text came from) and the
// accepted values.
Schedule parse_schedule(const char* text, const char* source);
// Initially SPARSETRAIN_EMU_SCHEDULE (forward when unset), read at the first launch.
Schedule schedule();
void set_schedule(Schedule s);

// Strict memory mode. Initially SPARSETRAIN_EMU_STRICT=1 (unset or 0: off; anything else throws).
// cudaMalloc then returns exactly the bytes asked for (256-byte aligned start) between guard zones,
// filled with 0xFF bytes; guards are checked at the end of every launch, by cudaFree and by
// cudaDeviceSynchronize / cudaStreamSynchronize, and a damaged one throws "emulator: write past
// the end of a N-byte allocation in <kernel>" (or "before the start"). Blocks are unreadable
// from the host (PROT_NONE) except during launches and emulated copies. cudaMallocHost blocks
// are mmap'ed as well: the bytes of a cudaMemcpyAsync queued into one are unreadable (of one
// queued from one, unwritable) from the host until the copy runs; such an access is reported
// ("emulator: host read of pinned memory ..." / "host write to ...", naming the stream and the
// kernel queued before the copy) and the process dies of SIGSEGV. The backend's caching
// allocator (cuda/runtime.cu) hands each block out once, so the guard sits right after the
// bytes asked for. Under AddressSanitizer the guards are also poisoned: an out-of-bounds read or
// write is reported where it happens.
bool strict();
void set_strict(bool on);

// The race checker. Initially SPARSETRAIN_EMU_RACECHECK=1 (unset or 0: off; anything else
// throws). Needs kernels compiled with -fsanitize=thread and linked with the checker's runtime
// (the st_cuda_emu_race library: racecheck_available()); a launch with the checker on in any
// other build throws. Within a block, a byte written by one thread and read or written by another
// with no __syncthreads between (or, for lanes of one warp, no __syncwarp naming both), or
// written by one block and touched by another block of the same launch (global memory), throws
// "emulator: race in <kernel> (block (x,y,z)): thread A wrote ..., thread B read it ...".
// Atomics and each thread's own stack are exempt.
bool racecheck();
void set_racecheck(bool on);
bool racecheck_available();

// Reads SPARSETRAIN_EMU_SCHEDULE, SPARSETRAIN_EMU_STRICT and SPARSETRAIN_EMU_RACECHECK again (for
// tests of the variables).
void reload_environment();

// For tests: a schedule, or a strictness, for one scope; the previous one is restored on exit.
class ScopedSchedule {
 public:
  explicit ScopedSchedule(Schedule s) : saved_(schedule()) { set_schedule(s); }
  ~ScopedSchedule() { set_schedule(saved_); }
  ScopedSchedule(const ScopedSchedule&) = delete;
  ScopedSchedule& operator=(const ScopedSchedule&) = delete;

 private:
  Schedule saved_;
};
class ScopedStrict {
 public:
  explicit ScopedStrict(bool on) : saved_(strict()) { set_strict(on); }
  ~ScopedStrict() { set_strict(saved_); }
  ScopedStrict(const ScopedStrict&) = delete;
  ScopedStrict& operator=(const ScopedStrict&) = delete;

 private:
  bool saved_;
};

class ScopedRacecheck {
 public:
  explicit ScopedRacecheck(bool on) : saved_(racecheck()) { set_racecheck(on); }
  ~ScopedRacecheck() { set_racecheck(saved_); }
  ScopedRacecheck(const ScopedRacecheck&) = delete;
  ScopedRacecheck& operator=(const ScopedRacecheck&) = delete;

 private:
  bool saved_;
};

// Counters for tests: device allocations made, launches run, blocks run.
struct Stats {
  size_t mallocs = 0;
  size_t frees = 0;
  size_t launches = 0;
  size_t blocks = 0;
};
Stats stats();

namespace detail {

// One launch: the configuration plus a type-erased "run the kernel for the current thread".
struct LaunchSpec {
  dim3 grid, block;
  size_t smem;
  const char* name;
  void (*body)(void* ctx);
  void* ctx;
  cudaStream_t stream;
  const void* func;  // the kernel's address: the key of cudaFuncSetAttribute
};
// Validates like CUDA (errors go to cudaGetLastError); then runs every block now (the legacy
// default stream, after the blocking streams' queued work) or queues the launch on its stream.
// `keep` owns spec.ctx until the launch has run. Kernel exceptions propagate from whichever call
// runs the launch.
void submit_launch(const LaunchSpec& spec, std::shared_ptr<void> keep);

template <class F>
const void* kernel_address(F* f) {
  return reinterpret_cast<const void*>(f);
}

unsigned char* dynamic_shared();
// ST_SHARED_POISON: the static __shared__ array [p, p + bytes) is filled with 0xFF bytes now (the
// first time in a launch) and at the start of every later block of the launch.
void register_shared(void* p, size_t bytes);

enum class WarpOp : int { sync, shfl, up, down, bfly, ballot, any, all };
struct WarpResult {
  uint64_t bits;
  bool valid;  // false: the source lane does not take part (value undefined in CUDA)
};
WarpResult warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width);
unsigned active_mask();
// op 0: __syncthreads, 1: _count, 2: _and, 3: _or; file:line is the call site.
int block_sync(int op, int pred, const char* file, int line);

template <class T>
T poison() {
  if constexpr (std::is_floating_point_v<T>)
    return std::numeric_limits<T>::quiet_NaN();
  else
    return static_cast<T>(0xDEADBEEFDEADBEEFull);
}

template <class T>
T shuffle(WarpOp op, unsigned mask, T var, int arg, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a wide type");
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  WarpResult r = warp_op(op, mask, bits, arg, width);
  if (!r.valid) return poison<T>();
  T out;
  std::memcpy(&out, &r.bits, sizeof(T));
  return out;
}

}  // namespace detail

// ST_LAUNCH(...) = launch_config(...).bind(<generic lambda calling the kernel>)(args...).
// The arguments are copied once into a tuple (CUDA passes kernel arguments by value; the tuple
// outlives the call when the launch is queued on a stream) and every thread calls the kernel with
// its own copies of them.
template <class F>
class BoundLaunch {
 public:
  BoundLaunch(const detail::LaunchSpec& spec, F f) : spec_(spec), f_(f) {}
  template <class... A>
  void operator()(A&&... args) const {
    struct Ctx {
      F f;
      std::tuple<std::decay_t<A>...> params;
    };
    auto ctx = std::make_shared<Ctx>(Ctx{f_, std::tuple<std::decay_t<A>...>(std::forward<A>(args)...)});
    detail::LaunchSpec spec = spec_;
    spec.ctx = ctx.get();
    spec.body = [](void* p) {
      Ctx& c = *static_cast<Ctx*>(p);
      auto copies = c.params;  // by value per thread, like kernel parameters
      std::apply(c.f, copies);
    };
    detail::submit_launch(spec, std::move(ctx));
  }

 private:
  detail::LaunchSpec spec_;
  F f_;
};

class launch_config {
 public:
  launch_config(dim3 grid, dim3 block, size_t smem, cudaStream_t stream, const char* name,
                const void* func)
      : spec_{grid, block, smem, name, nullptr, nullptr, stream, func} {}
  template <class F>
  BoundLaunch<F> bind(F f) const {
    return BoundLaunch<F>(spec_, f);
  }

 private:
  detail::LaunchSpec spec_;
};

// The host API (see the file comment for why it is namespaced).
namespace api {
const char* cudaGetErrorString(cudaError_t err);
const char* cudaGetErrorName(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);

template <class T>
cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr, value);
}

template <class T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
template <class T>
cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes);
}
template <class T>
cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, size_t bytes, size_t offset = 0,
                               cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  if (offset + bytes > sizeof(T) || kind == cudaMemcpyDeviceToHost) return cudaErrorInvalidValue;
  std::memcpy(reinterpret_cast<unsigned char*>(&symbol) + offset, src, bytes);
  return cudaSuccess;
}
}  // namespace api

}  // namespace st::emu

using st::emu::api::cudaDeviceGetAttribute;
using st::emu::api::cudaDeviceReset;
using st::emu::api::cudaDeviceSynchronize;
using st::emu::api::cudaEventCreate;
using st::emu::api::cudaEventCreateWithFlags;
using st::emu::api::cudaEventDestroy;
using st::emu::api::cudaEventElapsedTime;
using st::emu::api::cudaEventQuery;
using st::emu::api::cudaEventRecord;
using st::emu::api::cudaEventSynchronize;
using st::emu::api::cudaFree;
using st::emu::api::cudaFuncSetAttribute;
using st::emu::api::cudaFreeHost;
using st::emu::api::cudaGetDevice;
using st::emu::api::cudaGetDeviceCount;
using st::emu::api::cudaGetDeviceProperties;
using st::emu::api::cudaGetErrorName;
using st::emu::api::cudaGetErrorString;
using st::emu::api::cudaGetLastError;
using st::emu::api::cudaMalloc;
using st::emu::api::cudaMallocHost;
using st::emu::api::cudaMemcpy;
using st::emu::api::cudaMemcpyAsync;
using st::emu::api::cudaMemcpyToSymbol;
using st::emu::api::cudaMemGetInfo;
using st::emu::api::cudaMemset;
using st::emu::api::cudaMemsetAsync;
using st::emu::api::cudaPeekAtLastError;
using st::emu::api::cudaSetDevice;
using st::emu::api::cudaStreamCreate;
using st::emu::api::cudaStreamCreateWithFlags;
using st::emu::api::cudaStreamDestroy;
using st::emu::api::cudaStreamSynchronize;
using st::emu::api::cudaStreamWaitEvent;

// ---- launch macros (same meaning as under nvcc, see cuda/compat.h) -------------------------
#define ST_LAUNCH(grid, block, smem, stream, ...)                                         \
  ::st::emu::launch_config(grid, block, smem, stream, #__VA_ARGS__,                       \
                           ::st::emu::detail::kernel_address(__VA_ARGS__))                \
      .bind([=](auto&... st_emu_kernel_args) { __VA_ARGS__(st_emu_kernel_args...); })
#define ST_DYNAMIC_SHARED(type, name) \
  type* name = reinterpret_cast<type*>(::st::emu::detail::dynamic_shared())
// Right after a static __shared__ array: without it the array keeps the previous block's values.
#define ST_SHARED_POISON(array) ::st::emu::detail::register_shared(&(array), sizeof(array))

// ---- barriers and warp operations -----------------------------------------------------------
// Macros, so each barrier knows its source line: threads of a block meeting at different
// __syncthreads calls is undefined in CUDA and reported as divergence (exited threads are fine).
#define __syncthreads() ::st::emu::detail::block_sync(0, 0, __FILE__, __LINE__)
#define __syncthreads_count(pred) ::st::emu::detail::block_sync(1, (pred), __FILE__, __LINE__)
#define __syncthreads_and(pred) ::st::emu::detail::block_sync(2, (pred), __FILE__, __LINE__)
#define __syncthreads_or(pred) ::st::emu::detail::block_sync(3, (pred), __FILE__, __LINE__)
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  st::emu::detail::warp_op(st::emu::detail::WarpOp::sync, mask, 0, 0, 32);
}
// There is no lockstep to observe: the emulator's active mask is the warp's not-yet-returned lanes.
inline unsigned __activemask() { return st::emu::detail::active_mask(); }
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return static_cast<unsigned>(
      st::emu::detail::warp_op(st::emu::detail::WarpOp::ballot, mask, pred != 0, 0, 32).bits);
}
inline int __any_sync(unsigned mask, int pred) {
  return static_cast<int>(
      st::emu::detail::warp_op(st::emu::detail::WarpOp::any, mask, pred != 0, 0, 32).bits);
}
inline int __all_sync(unsigned mask, int pred) {
  return static_cast<int>(
      st::emu::detail::warp_op(st::emu::detail::WarpOp::all, mask, pred != 0, 0, 32).bits);
}

#define ST_EMU_SHUFFLES(T)                                                                    \
  inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {            \
    return st::emu::detail::shuffle(st::emu::detail::WarpOp::shfl, mask, var, src_lane, width); \
  }                                                                                           \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {       \
    return st::emu::detail::shuffle(st::emu::detail::WarpOp::up, mask, var,                   \
                                    static_cast<int>(delta), width);                          \
  }                                                                                           \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {     \
    return st::emu::detail::shuffle(st::emu::detail::WarpOp::down, mask, var,                 \
                                    static_cast<int>(delta), width);                          \
  }                                                                                           \
  inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {       \
    return st::emu::detail::shuffle(st::emu::detail::WarpOp::bfly, mask, var, lane_mask, width); \
  }
ST_EMU_SHUFFLES(int)
ST_EMU_SHUFFLES(unsigned)
ST_EMU_SHUFFLES(long)
ST_EMU_SHUFFLES(unsigned long)
ST_EMU_SHUFFLES(long long)
ST_EMU_SHUFFLES(unsigned long long)
ST_EMU_SHUFFLES(float)
ST_EMU_SHUFFLES(double)
#undef ST_EMU_SHUFFLES

inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

// ---- atomics: fibers share one OS thread and switch only at barriers, so these are atomic ----
// In the race checker's build (-fsanitize=thread) they are neither instrumented nor inlined into
// instrumented code: atomics never race.
#if defined(__SANITIZE_THREAD__)
#define ST_EMU_ATOMIC_FN __attribute__((no_sanitize_thread, noinline)) inline
#else
#define ST_EMU_ATOMIC_FN inline
#endif
#define ST_EMU_ATOMIC(T, name, expr)   \
  ST_EMU_ATOMIC_FN T name(T* address, T val) {   \
    T old = *address;                  \
    *address = (expr);                 \
    return old;                        \
  }
// Signed adds wrap like the hardware (no UB on overflow).
ST_EMU_ATOMIC_FN int atomicAdd(int* a, int v) {
  int old = *a;
  *a = static_cast<int>(static_cast<unsigned>(old) + static_cast<unsigned>(v));
  return old;
}
ST_EMU_ATOMIC_FN int atomicSub(int* a, int v) {
  int old = *a;
  *a = static_cast<int>(static_cast<unsigned>(old) - static_cast<unsigned>(v));
  return old;
}
ST_EMU_ATOMIC(unsigned, atomicAdd, old + val)
ST_EMU_ATOMIC(unsigned long long, atomicAdd, old + val)
ST_EMU_ATOMIC(float, atomicAdd, old + val)
ST_EMU_ATOMIC(double, atomicAdd, old + val)
ST_EMU_ATOMIC(unsigned, atomicSub, old - val)
ST_EMU_ATOMIC(int, atomicMax, old > val ? old : val)
ST_EMU_ATOMIC(unsigned, atomicMax, old > val ? old : val)
ST_EMU_ATOMIC(long long, atomicMax, old > val ? old : val)
ST_EMU_ATOMIC(unsigned long long, atomicMax, old > val ? old : val)
ST_EMU_ATOMIC(int, atomicMin, old < val ? old : val)
ST_EMU_ATOMIC(unsigned, atomicMin, old < val ? old : val)
ST_EMU_ATOMIC(long long, atomicMin, old < val ? old : val)
ST_EMU_ATOMIC(unsigned long long, atomicMin, old < val ? old : val)
ST_EMU_ATOMIC(int, atomicExch, val)
ST_EMU_ATOMIC(unsigned, atomicExch, val)
ST_EMU_ATOMIC(unsigned long long, atomicExch, val)
ST_EMU_ATOMIC(float, atomicExch, val)
ST_EMU_ATOMIC(int, atomicAnd, old & val)
ST_EMU_ATOMIC(unsigned, atomicAnd, old & val)
ST_EMU_ATOMIC(unsigned long long, atomicAnd, old & val)
ST_EMU_ATOMIC(int, atomicOr, old | val)
ST_EMU_ATOMIC(unsigned, atomicOr, old | val)
ST_EMU_ATOMIC(unsigned long long, atomicOr, old | val)
ST_EMU_ATOMIC(int, atomicXor, old ^ val)
ST_EMU_ATOMIC(unsigned, atomicXor, old ^ val)
ST_EMU_ATOMIC(unsigned long long, atomicXor, old ^ val)
ST_EMU_ATOMIC(unsigned, atomicInc, old >= val ? 0u : old + 1u)
ST_EMU_ATOMIC(unsigned, atomicDec, (old == 0u || old > val) ? val : old - 1u)
#undef ST_EMU_ATOMIC
#define ST_EMU_ATOMIC_CAS(T)                       \
  ST_EMU_ATOMIC_FN T atomicCAS(T* address, T compare, T val) { \
    T old = *address;                              \
    if (old == compare) *address = val;            \
    return old;                                    \
  }
ST_EMU_ATOMIC_CAS(int)
ST_EMU_ATOMIC_CAS(unsigned)
ST_EMU_ATOMIC_CAS(unsigned long long)
ST_EMU_ATOMIC_CAS(unsigned short)
#undef ST_EMU_ATOMIC_CAS
#undef ST_EMU_ATOMIC_FN

// ---- loads and intrinsics --------------------------------------------------------------------
template <class T>
inline T __ldg(const T* p) { return *p; }
template <class T>
inline T __ldcg(const T* p) { return *p; }
template <class T>
inline T __ldca(const T* p) { return *p; }
template <class T>
inline T __ldcs(const T* p) { return *p; }
template <class T>
inline T __ldlu(const T* p) { return *p; }
template <class T>
inline void __stcg(T* p, T v) { *p = v; }
template <class T>
inline void __stcs(T* p, T v) { *p = v; }
template <class T>
inline void __stwb(T* p, T v) { *p = v; }

inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
inline unsigned __float_as_uint(float x) { unsigned i; std::memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, 4); return x; }
inline float __uint_as_float(unsigned i) { float x; std::memcpy(&x, &i, 4); return x; }
inline long long __double_as_longlong(double x) { long long i; std::memcpy(&i, &x, 8); return i; }
inline double __longlong_as_double(long long i) { double x; std::memcpy(&x, &i, 8); return x; }

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline float __saturatef(float x) {  // NaN -> 0, like the hardware
  return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f));
}
inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(floorf(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(ceilf(x)); }
inline float __int2float_rn(int i) { return static_cast<float>(i); }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
  return (x >> 16) | (x << 16);
}
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}

// min/max as CUDA declares them (global, overloaded, usable unqualified in kernels).
#define ST_EMU_MINMAX(R, A, B)                      \
  inline R min(A a, B b) {                          \
    R x = static_cast<R>(a), y = static_cast<R>(b); \
    return x < y ? x : y;                           \
  }                                                 \
  inline R max(A a, B b) {                          \
    R x = static_cast<R>(a), y = static_cast<R>(b); \
    return x > y ? x : y;                           \
  }
ST_EMU_MINMAX(int, int, int)
ST_EMU_MINMAX(unsigned, unsigned, unsigned)
ST_EMU_MINMAX(unsigned, int, unsigned)
ST_EMU_MINMAX(unsigned, unsigned, int)
ST_EMU_MINMAX(long, long, long)
ST_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
ST_EMU_MINMAX(unsigned long, long, unsigned long)
ST_EMU_MINMAX(unsigned long, unsigned long, long)
ST_EMU_MINMAX(long long, long long, long long)
ST_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
ST_EMU_MINMAX(unsigned long long, long long, unsigned long long)
ST_EMU_MINMAX(unsigned long long, unsigned long long, long long)
ST_EMU_MINMAX(float, float, float)
ST_EMU_MINMAX(double, double, double)
ST_EMU_MINMAX(double, float, double)
ST_EMU_MINMAX(double, double, float)
#undef ST_EMU_MINMAX
