// kernels/host_device.h — ST_HD marks the small inline functions that the CPU kernels and the CUDA
// kernels share (optimizer rules, pooling windows): __host__ __device__ under nvcc, plain inline
// for g++ (the CPU build and the CUDA emulator).
#pragma once

#if defined(__CUDACC__)
#define ST_HD __host__ __device__ __forceinline__
#else
#define ST_HD inline
#endif
