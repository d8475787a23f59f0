#include "core/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace st {

LrSchedule::LrSchedule(float base_lr, int total_epochs, LrScheduleOptions opt)
    : base_(base_lr), total_(total_epochs), opt_(std::move(opt)) {
  ST_CHECK(opt_.type == LrScheduleType::constant || opt_.type == LrScheduleType::step ||
               opt_.type == LrScheduleType::cosine,
           "lr_schedule.type: not an LrScheduleType (", static_cast<int>(opt_.type), ")");
  ST_CHECK(opt_.step_size >= 1, "lr_schedule.step_size: must be >= 1");
}

float LrSchedule::lr_at(double epoch) const {
  const double w = opt_.warmup_epochs;
  if (epoch < w) return static_cast<float>(base_ * epoch / w);  // linear warm-up from 0
  if (opt_.type == LrScheduleType::constant) return base_;
  if (opt_.type == LrScheduleType::step) {
    const int k = static_cast<int>(std::floor(epoch / opt_.step_size));
    return static_cast<float>(base_ * std::pow(opt_.gamma, k));
  }
  // cosine over [warmup, total]
  const double span = std::max(1e-9, static_cast<double>(total_) - w);
  const double t = std::clamp((epoch - w) / span, 0.0, 1.0);
  return static_cast<float>(opt_.min_lr + (base_ - opt_.min_lr) * 0.5 * (1.0 + std::cos(M_PI * t)));
}

}  // namespace st
