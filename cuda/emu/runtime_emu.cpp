// cuda/emu/runtime_emu.cpp — cuda/runtime.cu compiled by g++ against the CPU emulator, for
// st_cuda_emu: device memory is host memory and the device exists only when emulation is on.
#include "cuda/runtime.cu"
