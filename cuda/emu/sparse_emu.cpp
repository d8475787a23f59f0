// cuda/emu/sparse_emu.cpp — cuda/sparse.cu compiled by g++ against the CPU emulator (cuda/emu/emu.h),
// for st_cuda_emu: the same kernels the GPU runs, checkable on a machine without one.
#include "cuda/sparse.cu"
