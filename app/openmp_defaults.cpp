#include "app/openmp_defaults.h"

#include <unistd.h>

#include <cstdlib>

namespace st::app {

void apply_openmp_wait_default(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  // Set in the restarted process's environment, so a failed exec below cannot loop.
  if (setenv("GOMP_SPINCOUNT", kDefaultSpinCount, /*overwrite=*/0) != 0) return;
  execv("/proc/self/exe", argv);
  // exec failed (no /proc, say): continue in this process with libgomp's own default; drop the
  // variable so that child processes are not told a setting this process does not run with.
  unsetenv("GOMP_SPINCOUNT");
}

}  // namespace st::app
