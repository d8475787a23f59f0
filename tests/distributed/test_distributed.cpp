// tests/distributed/test_distributed.cpp — the communicator and the rank-ordered sum. ctest runs this
// suite in one process (`distributed`) and under `mpirun -np 2` (`distributed_mpi2`), where every case
// checks the two ranks against a one-process computation of the same numbers.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "distributed/communicator.h"

using namespace st::distributed;

namespace {

// Part p of `parts` (count floats): magnitudes from 1e-3 to 1e7 with both signs, so that adding the
// parts in any other order or grouping changes the rounded result.
std::vector<float> make_part(int p, int64_t count) {
  std::vector<float> v(static_cast<size_t>(count));
  uint64_t s = 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(p + 1);
  for (auto& x : v) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = static_cast<double>(s >> 11) / 9007199254740992.0;  // [0, 1)
    x = static_cast<float>((u < 0.5 ? -1 : 1) * std::pow(10.0, -3 + 10 * u));
  }
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

// The left fold of parts [0, parts), in one process.
std::vector<float> fold(int parts, int64_t count) {
  std::vector<float> acc = make_part(0, count);
  for (int p = 1; p < parts; ++p) {
    const std::vector<float> g = make_part(p, count);
    for (int64_t i = 0; i < count; ++i) acc[static_cast<size_t>(i)] = acc[static_cast<size_t>(i)] + g[static_cast<size_t>(i)];
  }
  return acc;
}

// ordered_sum with this rank holding the contiguous parts [rank * parts / size, (rank + 1) * parts / size).
std::vector<float> distributed_sum(Communicator& comm, int parts, int64_t count) {
  const int first = parts * comm.rank() / comm.size(), last = parts * (comm.rank() + 1) / comm.size();
  std::vector<std::vector<float>> mine;
  std::vector<const float*> ptrs;
  for (int p = first; p < last; ++p) mine.push_back(make_part(p, count));
  for (const auto& m : mine) ptrs.push_back(m.data());
  std::vector<float> out(static_cast<size_t>(count));
  ordered_sum(comm, ptrs, count, out.data());
  return out;
}

}  // namespace

TEST_CASE("ordered_sum in one process is the left fold of the parts, and the grouping matters") {
  SingleProcess one;
  const int64_t count = 1001;
  for (int parts : {1, 2, 3, 5}) {
    CAPTURE(parts);
    const std::vector<float> want = fold(parts, count);
    const std::vector<float> got = distributed_sum(one, parts, count);
    CHECK(same_bits(got, want));
  }
  // The check above can fail: a different grouping of the same three parts rounds differently.
  const std::vector<float> a = make_part(0, count), b = make_part(1, count), c = make_part(2, count);
  int differ = 0;
  for (int64_t i = 0; i < count; ++i) {
    const size_t k = static_cast<size_t>(i);
    differ += ((a[k] + b[k]) + c[k]) != (a[k] + (b[k] + c[k]));
  }
  CHECK(differ > 0);
  CHECK(one.bytes_sent() == 0);
}

TEST_CASE("ordered_sum over the job's ranks equals one process's fold, bit for bit") {
  Communicator& comm = world();
  INFO("ranks: ", comm.size(), " over ", comm.transport());
  // Fewer floats than ranks (empty slices), a few, and many; parts spread 1, 2 or 3 per rank.
  for (const int64_t count : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{300001}}) {
    for (int per_rank : {1, 2, 3}) {
      const int parts = per_rank * comm.size();
      CAPTURE(count);
      CAPTURE(parts);
      const int64_t before = comm.bytes_sent();
      const std::vector<float> got = distributed_sum(comm, parts, count);
      const std::vector<float> want = fold(parts, count);
      CHECK(same_bits(got, want));
      // Each rank sends the others' slices of its parts (rank 0: of their sum) and its own slice of
      // the result to every other rank; one part per rank sends 2 (N-1)/N of the payload.
      const int64_t sent = comm.bytes_sent() - before;
      const int n = comm.size(), r = comm.rank();
      const int64_t own = count * (r + 1) / n - count * r / n;
      CHECK(sent == 4 * ((count - own) * (r == 0 ? 1 : per_rank) + own * (n - 1)));
    }
  }
}

TEST_CASE("broadcast_string, allgather and checksum agree across the ranks") {
  Communicator& comm = world();
  const std::string name = broadcast_string(comm, comm.rank() == 0 ? "runs/lenet5-20261203-120000" : "", 0);
  CHECK(name == "runs/lenet5-20261203-120000");
  const int64_t mine = 1000 + comm.rank();
  std::vector<int64_t> all(static_cast<size_t>(comm.size()));
  comm.allgather(&mine, sizeof mine, all.data());
  for (int r = 0; r < comm.size(); ++r) CHECK(all[static_cast<size_t>(r)] == 1000 + r);
  const std::vector<float> v = make_part(3, 64);
  const uint64_t h = checksum(v.data(), 64 * 4);
  CHECK(h == checksum(v.data(), 64 * 4));
  std::vector<float> w = v;
  w[17] = std::nextafter(w[17], 1e30f);  // one bit
  CHECK(h != checksum(w.data(), 64 * 4));
  std::vector<uint64_t> hashes(static_cast<size_t>(comm.size()));
  comm.allgather(&h, sizeof h, hashes.data());
  for (uint64_t x : hashes) CHECK(x == h);
  CHECK(launched_ranks() == comm.size());  // the launcher's environment names the job's size
}
