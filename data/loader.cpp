// data/loader.cpp — seeded per-epoch permutation and batch copy; see loader.h.
#include "data/loader.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "data/random.h"

namespace st::data {

namespace {
constexpr uint64_t kStreamLoader = 0x10ade7;
}

Loader::Loader(const Dataset& dataset, int batch_size, bool shuffle, uint64_t seed, bool drop_last)
    : dataset_(&dataset), batch_size_(batch_size), shuffle_(shuffle), seed_(seed),
      drop_last_(drop_last), order_(size_t(dataset.size)) {
    if (batch_size <= 0)
        throw std::runtime_error("batch_size = " + std::to_string(batch_size) +
                                 ": expected a positive number");
    start_epoch(0);
}

void Loader::start_epoch(int epoch) {
    epoch_ = epoch;
    cursor_ = 0;
    for (int64_t i = 0; i < int64_t(order_.size()); ++i) order_[size_t(i)] = i;
    if (shuffle_) {
        SplitMix64 rng(mix_seed(seed_, kStreamLoader, uint64_t(int64_t(epoch))));
        shuffle(order_.data(), int64_t(order_.size()), rng);
    }
}

int64_t Loader::num_batches() const {
    const int64_t n = int64_t(order_.size());
    return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

int Loader::next(float* x, int32_t* y) { return next_parts(0, 1, 1, x, y); }

int Loader::next_parts(int first, int last, int parts, float* x, int32_t* y) {
    if (parts < 1 || first < 0 || last < first || last > parts)
        throw std::runtime_error("Loader::next_parts: parts [" + std::to_string(first) + ", " +
                                 std::to_string(last) + ") of " + std::to_string(parts));
    const int64_t n = int64_t(order_.size());
    const int64_t remaining = n - cursor_;
    if (remaining <= 0 || (drop_last_ && remaining < batch_size_)) return 0;
    const int b = int(std::min<int64_t>(batch_size_, remaining));
    const int lo = part_begin(b, first, parts), hi = part_begin(b, last, parts);
    const int64_t numel = dataset_->sample_numel();
    const float* images = dataset_->images.data();
    for (int i = lo; i < hi; ++i) {
        const int64_t s = order_[size_t(cursor_ + i)];
        std::copy(images + s * numel, images + (s + 1) * numel, x + (i - lo) * numel);
        y[i - lo] = dataset_->labels[size_t(s)];
    }
    cursor_ += b;
    return b;
}

}  // namespace st::data
