// tests/cuda/gpu/test_emu_gpu.cu — tests/cuda/test_emu.cpp compiled by nvcc for test_cuda_gpu: the
// kernels that pin down the emulator's semantics run on a real GPU, so emulator and hardware are
// checked against the same expectations (the emulator-only cases are left out by the #if there).
#include "tests/cuda/test_emu.cpp"
