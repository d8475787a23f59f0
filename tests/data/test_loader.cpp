// tests/data/test_loader.cpp — every sample exactly once per epoch, order a function of
// (seed, epoch) only, partial last batch and drop_last, batch contents match the dataset; the
// prefetching thread serves the same batches and passes errors on.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <set>

#include "data/loader.h"
#include "data/prefetch.h"
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

TEST_CASE("prefetch: the thread serves the loader's batches, double-buffered, in parts too") {
    const Dataset d = toy(23);
    using Policy = BatchPrefetcher::Policy;
    for (const Policy policy : {Policy::background, Policy::in_place, Policy::measure})
    for (const int parts : {1, 3}) {
        CAPTURE(int(policy));
        CAPTURE(parts);
        Loader plain(d, 5, true, 9), threaded(d, 5, true, 9);
        BatchPrefetcher prefetch(threaded, policy);
        CHECK(prefetch.background() == (policy == Policy::background));
        std::vector<float> xa(30), xb[2] = {std::vector<float>(30, -1.f), std::vector<float>(30, -1.f)};
        std::vector<int32_t> ya(5), yb[2] = {std::vector<int32_t>(5, -1), std::vector<int32_t>(5, -1)};
        for (int epoch = 0; epoch < 3 + 2 * BatchPrefetcher::kWindow; ++epoch) {  // past a few windows
            plain.start_epoch(epoch);
            threaded.start_epoch(epoch);
            CHECK_FALSE(prefetch.pending());
            prefetch.request(parts == 1 ? 0 : 1, parts, parts, xb[0].data(), yb[0].data());
            CHECK(prefetch.pending());
            for (int64_t b = 0;; ++b) {
                const int n = plain.next_parts(parts == 1 ? 0 : 1, parts, parts, xa.data(), ya.data());
                const int m = prefetch.wait();
                CHECK_FALSE(prefetch.pending());
                REQUIRE(m == n);
                const size_t s = size_t(b % 2);
                if (n > 0) prefetch.request(parts == 1 ? 0 : 1, parts, parts, xb[1 - s].data(), yb[1 - s].data());
                const int local = part_begin(n, parts, parts) - part_begin(n, parts == 1 ? 0 : 1, parts);
                for (int i = 0; i < local * 6; ++i) CHECK(xb[s][size_t(i)] == xa[size_t(i)]);
                for (int i = 0; i < local; ++i) CHECK(yb[s][size_t(i)] == ya[size_t(i)]);
                if (n == 0) break;
                CHECK(b < plain.num_batches());
            }
        }
    }
}

TEST_CASE("prefetch: misuse is refused, the loader's error reaches wait, a copy in flight ends first") {
    const Dataset d = toy(9);
    Loader loader(d, 4, false, 0);
    std::vector<float> x(24);
    std::vector<int32_t> y(4);
    for (const auto policy : {BatchPrefetcher::Policy::background, BatchPrefetcher::Policy::in_place}) {
        CAPTURE(int(policy));
        loader.start_epoch(0);
        std::fill(x.begin(), x.end(), -1.f);
        {
            BatchPrefetcher prefetch(loader, policy);
            CHECK_THROWS_WITH_AS(prefetch.wait(), doctest::Contains("no batch was requested"), std::logic_error);
            prefetch.request(x.data(), y.data());
            CHECK_THROWS_WITH_AS(prefetch.request(x.data(), y.data()), doctest::Contains("not waited for"),
                                 std::logic_error);
            CHECK(prefetch.wait() == 4);
            prefetch.request(2, 1, 4, x.data(), y.data());  // parts [2, 1): the loader refuses it
            CHECK(contains(error_of([&] { prefetch.wait(); }), "Loader::next_parts: parts [2, 1) of 4"));
            prefetch.request(x.data(), y.data());  // still usable after an error
            CHECK(prefetch.wait() == 4);
            CHECK(x[0] == 40.f);  // samples 4..7 in file order
            prefetch.request(x.data(), y.data());  // destroyed with this request not waited for
        }
        // Copied on the thread: done before the destructor returned. In place: never copied.
        CHECK(x[0] == (policy == BatchPrefetcher::Policy::background ? 80.f : 40.f));
        CHECK(loader.next(x.data(), y.data()) == (policy == BatchPrefetcher::Policy::background ? 0 : 1));
    }
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
