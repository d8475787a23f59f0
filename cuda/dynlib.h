// cuda/dynlib.h — opening a CUDA toolkit library (cuSPARSE, cuBLAS) when it is first needed
// instead of linking it. A linked library is loaded and relocated by every start of every command:
// cuSPARSE pulls in libnvJitLink, whose relocation alone kept ~26 MB resident in a CPU-only
// training run, and libcublasLt's initialisation costs ~0.4 s and ~200 MB. Opened on first use,
// only a run or benchmark that calls the library pays, and a machine without it still starts.
// Header-only and free of CUDA headers: used by cuda/cusparse.cu and bench/cuda_timing.cpp.
#pragma once
#include <dlfcn.h>

#include <string>

namespace st::cuda::dynlib {

// Opens `soname` (e.g. "libcusparse.so.12") through the loader's search path, then in `dir` (the
// toolkit's library folder the binary was built against; null to skip). Returns null on failure
// and sets *error to what was tried and the loader's message. The library stays loaded for the
// life of the process (never dlclose'd: the CUDA runtime may call into it until exit).
inline void* open(const std::string& soname, const char* dir, std::string* error) {
  std::string tried = soname;
  void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  const char* msg = lib ? nullptr : dlerror();
  std::string last = msg ? msg : "";
  if (!lib && dir != nullptr && *dir != '\0') {
    const std::string path = std::string(dir) + "/" + soname;
    tried += ", " + path;
    lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    msg = lib ? nullptr : dlerror();
    if (msg) last = msg;
  }
  if (!lib && error != nullptr) *error = "cannot load " + soname + " (tried " + tried + "): " + last;
  return lib;
}

// Points fn at the symbol `name` of lib; false (fn null) if the library has no such symbol.
template <class Fn>
bool resolve(void* lib, Fn& fn, const char* name) {
  fn = reinterpret_cast<Fn>(dlsym(lib, name));
  return fn != nullptr;
}

}  // namespace st::cuda::dynlib
