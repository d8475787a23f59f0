// tests/data/test_loader.cpp — every sample exactly once per epoch, order a function of
// (seed, epoch) only, partial last batch and drop_last, batch contents match the dataset.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <set>

#include "data/loader.h"
#include "data/random.h"
#include "data_test_util.h"

using namespace st::data;
using namespace st::data::test;

namespace {

// size samples of shape (2, 1, 3); sample i holds the values i*10 + k, label i % 7.
Dataset toy(int64_t size) {
    Dataset d;
    d.name = "toy/train";
    d.size = size;
    d.channels = 2;
    d.height = 1;
    d.width = 3;
    d.num_classes = 7;
    for (int64_t i = 0; i < size; ++i) {
        for (int k = 0; k < 6; ++k) d.images.push_back(float(i * 10 + k));
        d.labels.push_back(int32_t(i % 7));
    }
    return d;
}

// Runs one epoch; returns the sample indices in the order served and the batch sizes.
std::vector<int64_t> run_epoch(Loader& loader, int epoch, std::vector<int>* sizes = nullptr) {
    const Dataset& d = loader.dataset();
    std::vector<float> x(size_t(loader.batch_size() * d.sample_numel()));
    std::vector<int32_t> y(size_t(loader.batch_size()));
    std::vector<int64_t> served;
    loader.start_epoch(epoch);
    while (int b = loader.next(x.data(), y.data())) {
        if (sizes) sizes->push_back(b);
        for (int i = 0; i < b; ++i) {
            const int64_t s = int64_t(x[size_t(i * 6)]) / 10;
            for (int k = 0; k < 6; ++k) CHECK(x[size_t(i * 6 + k)] == float(s * 10 + k));
            CHECK(y[size_t(i)] == int32_t(s % 7));
            served.push_back(s);
        }
    }
    CHECK(loader.next(x.data(), y.data()) == 0);  // stays exhausted
    return served;
}

}  // namespace

TEST_CASE("loader: every sample exactly once per epoch, partial last batch") {
    const Dataset d = toy(23);
    Loader loader(d, 5, /*shuffle=*/true, /*seed=*/42);
    CHECK(loader.num_batches() == 5);
    for (int epoch = 0; epoch < 3; ++epoch) {
        std::vector<int> sizes;
        auto served = run_epoch(loader, epoch, &sizes);
        CHECK(sizes == std::vector<int>{5, 5, 5, 5, 3});
        CHECK(int64_t(sizes.size()) == loader.num_batches());
        std::sort(served.begin(), served.end());
        std::vector<int64_t> all(23);
        std::iota(all.begin(), all.end(), 0);
        CHECK(served == all);
    }
}

TEST_CASE("loader: drop_last") {
    const Dataset d = toy(23);
    Loader loader(d, 5, true, 42, /*drop_last=*/true);
    CHECK(loader.num_batches() == 4);
    std::vector<int> sizes;
    const auto served = run_epoch(loader, 0, &sizes);
    CHECK(sizes == std::vector<int>{5, 5, 5, 5});
    CHECK(std::set<int64_t>(served.begin(), served.end()).size() == 20);
    // The dropped samples differ between epochs, so none is left out for good.
    const auto served1 = run_epoch(loader, 1);
    CHECK(served != served1);

    const Dataset exact = toy(20);
    Loader exact_loader(exact, 5, true, 1, true);
    CHECK(exact_loader.num_batches() == 4);
    CHECK(run_epoch(exact_loader, 0).size() == 20);

    const Dataset tiny = toy(3);
    Loader tiny_loader(tiny, 5, true, 1, true);
    CHECK(tiny_loader.num_batches() == 0);
    CHECK(run_epoch(tiny_loader, 0).empty());
    Loader tiny_keep(tiny, 5, true, 1, false);
    CHECK(tiny_keep.num_batches() == 1);
    CHECK(run_epoch(tiny_keep, 0).size() == 3);
}

TEST_CASE("loader: order depends only on (seed, epoch)") {
    const Dataset d = toy(50);
    Loader a(d, 8, true, 7), b(d, 8, true, 7), c(d, 8, true, 8);
    const auto a0 = run_epoch(a, 0), a1 = run_epoch(a, 1), a2 = run_epoch(a, 2);
    // A fresh loader jumping straight to epoch 2 (a resumed run) sees the same order.
    CHECK(run_epoch(b, 2) == a2);
    CHECK(run_epoch(b, 0) == a0);
    CHECK(run_epoch(a, 1) == a1);
    CHECK(a0 != a1);
    CHECK(a1 != a2);
    CHECK(run_epoch(c, 0) != a0);
    // Batch size does not change the order, only how it is cut.
    Loader wide(d, 50, true, 7);
    CHECK(run_epoch(wide, 1) == a1);
    // Shuffled, not the identity.
    std::vector<int64_t> identity(50);
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(a0 != identity);
}

TEST_CASE("loader: no shuffle serves the dataset in order") {
    const Dataset d = toy(11);
    Loader loader(d, 4, /*shuffle=*/false, 3);
    std::vector<int64_t> identity(11);
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(run_epoch(loader, 0) == identity);
    CHECK(run_epoch(loader, 5) == identity);
}

TEST_CASE("loader: constructor starts epoch 0; bad batch size is an error") {
    const Dataset d = toy(9);
    Loader fresh(d, 4, true, 5), explicit0(d, 4, true, 5);
    std::vector<float> x(24);
    std::vector<int32_t> y(4);
    std::vector<int32_t> first_labels;
    while (int b = fresh.next(x.data(), y.data())) first_labels.insert(first_labels.end(), y.begin(), y.begin() + b);
    CHECK(first_labels.size() == 9);
    const auto order0 = run_epoch(explicit0, 0);
    for (size_t i = 0; i < order0.size(); ++i) CHECK(first_labels[i] == int32_t(order0[i] % 7));
    CHECK(contains(error_of([&] { Loader bad(d, 0, true, 1); }), "batch_size = 0"));
}

TEST_CASE("random: the stream is fixed (portable across standard libraries)") {
    // Reference values of SplitMix64 from seed 1234567 (Vigna's splitmix64.c).
    SplitMix64 g(1234567);
    CHECK(g.next() == 6457827717110365317ULL);
    CHECK(g.next() == 3203168211198807973ULL);
    CHECK(g.next() == 9817491932198370423ULL);
    SplitMix64 h(0);
    std::vector<int> counts(6, 0);
    for (int i = 0; i < 60000; ++i) ++counts[size_t(h.below(6))];
    for (int c : counts) CHECK(std::abs(c - 10000) < 500);
    // A fixed permutation: if this changes, every recorded run's data order changes too.
    std::vector<int> p(8);
    std::iota(p.begin(), p.end(), 0);
    SplitMix64 s(42);
    shuffle(p.data(), 8, s);
    CHECK(p == std::vector<int>{4, 3, 2, 0, 7, 6, 1, 5});
}
