// data/loader.h — mini-batches over an in-memory Dataset.
//   start_epoch(e): the order for epoch e is a Fisher–Yates permutation seeded by (seed, e) only,
//                   so a run resumed at epoch k sees exactly the order the original run saw.
//   next(x, y):     copies the next batch into caller buffers x (B, C, H, W) and y (B); returns B,
//                   0 once the epoch is exhausted. No allocation after construction.
// The Loader keeps a pointer to the Dataset: the Dataset must outlive it and not be resized.
// Tests: tests/data/test_loader.cpp
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"

namespace st::data {

class Loader {
public:
    Loader(const Dataset& dataset, int batch_size, bool shuffle, uint64_t seed,
           bool drop_last = false);
    Loader(Dataset&&, int, bool, uint64_t, bool = false) = delete;  // would dangle

    void start_epoch(int epoch);
    int next(float* x, int32_t* y);
    // The next batch like next() (returns its size b, 0 once the epoch is exhausted), but copies
    // only its samples [part_begin(b, first, parts), part_begin(b, last, parts)) into x and y: the
    // parts [first, last) of the batch split into `parts` (a rank of a data-parallel job reads
    // only its share of every batch, in the single-process order).
    int next_parts(int first, int last, int parts, float* x, int32_t* y);

    int64_t num_batches() const;   // per epoch; the last one may be partial unless drop_last
    int batch_size() const { return batch_size_; }
    int epoch() const { return epoch_; }
    const Dataset& dataset() const { return *dataset_; }
    // Sample indices in this epoch's order (for tests and debugging).
    const std::vector<int64_t>& order() const { return order_; }

private:
    const Dataset* dataset_;
    int batch_size_;
    bool shuffle_;
    uint64_t seed_;
    bool drop_last_;
    int epoch_ = 0;
    int64_t cursor_ = 0;
    std::vector<int64_t> order_;
};

// Where part k of a batch of n samples split into `parts` starts: k*n/parts (part sizes differ by at
// most one; a part is empty only when parts > n).
inline int part_begin(int n, int k, int parts) {
    return static_cast<int>(static_cast<int64_t>(n) * k / parts);
}

}  // namespace st::data
