// core/lr_schedule.h — learning-rate schedules, separate from optimizers: constant, step (×gamma every
// step_size epochs) and cosine (from lr to min_lr over the epochs after warm-up), each with an
// optional linear warm-up. Evaluated per step on a fractional epoch, so warm-up is smooth.
#pragma once
namespace st {

enum class LrScheduleType { constant, step, cosine };

struct LrScheduleOptions {
  LrScheduleType type = LrScheduleType::constant;
  int warmup_epochs = 0;
  int step_size = 10;
  float gamma = 0.1f;
  float min_lr = 0.f;
};

class LrSchedule {
 public:
  LrSchedule(float base_lr, int total_epochs, LrScheduleOptions opt);
  // epoch: 0-based epoch index plus the fraction of the epoch done *after* the step being taken
  // ((batch + 1) / batches), so the first warm-up step already has a positive rate.
  float lr_at(double epoch) const;

 private:
  float base_;
  int total_;
  LrScheduleOptions opt_;
};

}  // namespace st
