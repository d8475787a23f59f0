#include "experiment/progress.h"

#include <cstdio>
#include <string>

namespace st::experiment {

Progress::Progress(bool enabled, int epoch, int epochs, int64_t steps)
    : enabled_(enabled), epoch_(epoch), epochs_(epochs), steps_(steps),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::update(int64_t step, double loss, double accuracy) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (step != steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? step / elapsed : 0;
  const double eta = rate > 0 ? (steps_ - step) / rate : 0;
  const int width = 30;
  const int filled = steps_ ? static_cast<int>(width * step / steps_) : width;
  std::string bar(filled, '#');
  bar.resize(width, '.');
  std::printf("\r\033[2Kepoch %d/%d [%s] %lld/%lld  loss %.4f  acc %.2f%%  %.0f it/s  ETA %.0fs",
              epoch_, epochs_, bar.c_str(), static_cast<long long>(step),
              static_cast<long long>(steps_), loss, 100 * accuracy, rate, eta);
  std::fflush(stdout);
}

void Progress::finish() {
  if (!enabled_) return;
  std::printf("\r\033[2K");
  std::fflush(stdout);
}

}  // namespace st::experiment
