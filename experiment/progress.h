// experiment/progress.h — a one-line progress bar with rate and ETA when stdout is a terminal;
// silent otherwise (the trainer then prints one line per epoch).
#pragma once
#include <chrono>
#include <cstdint>

namespace st::experiment {

class Progress {
 public:
  Progress(bool enabled, int epoch, int epochs, int64_t steps);
  // Redraws at most ~10 times a second.
  void update(int64_t step, double loss, double accuracy);
  void finish();  // clears the line

 private:
  bool enabled_;
  int epoch_, epochs_;
  int64_t steps_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace st::experiment
