// distributed/communicator.cpp — the single-process communicator, the launcher's environment, the
// rank-ordered sum and the small helpers on top of any communicator; see communicator.h.
#include "distributed/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/check.h"

namespace st::distributed {

namespace detail {
// distributed/mpi.cpp (built with MPI) or the stub below it in this file's twin (no MPI).
std::unique_ptr<Communicator> make_mpi_communicator();
}  // namespace detail

namespace {

std::unique_ptr<Communicator>& world_slot() {
  static std::unique_ptr<Communicator> w;
  return w;
}

}  // namespace

int launched_ranks() {
  // Open MPI, then MPICH/Hydra and Slurm's PMI.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(name); v && *v) {
      const int n = std::atoi(v);
      if (n >= 1) return n;
    }
  }
  return 1;
}

Communicator& world() {
  auto& w = world_slot();
  if (w) return *w;
  const int ranks = launched_ranks();
  if (ranks > 1 || (built_with_mpi() && std::getenv("OMPI_COMM_WORLD_SIZE"))) {
    ST_CHECK(built_with_mpi(), "this job was started with ", ranks,
             " ranks, but this sparsetrain was built without MPI: install libopenmpi-dev "
             "(scripts/install_deps.sh) and build again, or run a single process");
    w = detail::make_mpi_communicator();
  } else {
    w = std::make_unique<SingleProcess>();
  }
  return *w;
}

Communicator* world_if_started() { return world_slot().get(); }

void SingleProcess::send(const void*, int64_t, int to) {
  ST_ASSERT(false, "send to rank ", to, " in a single-process job");
}
void SingleProcess::recv(void*, int64_t, int from) {
  ST_ASSERT(false, "receive from rank ", from, " in a single-process job");
}
void SingleProcess::broadcast(void*, int64_t, int root) { ST_ASSERT(root == 0, "broadcast from rank ", root); }
void SingleProcess::allgather(const void* mine, int64_t bytes, void* all) {
  if (bytes > 0 && all != mine) std::memmove(all, mine, static_cast<size_t>(bytes));
}
void SingleProcess::abort(int code) { std::exit(code); }

void ordered_sum(Communicator& comm, const std::vector<const float*>& local_parts, int64_t count, float* out) {
  ST_ASSERT(!local_parts.empty(), "ordered_sum: rank ", comm.rank(), " has no part");
  const int rank = comm.rank(), size = comm.size();
  const size_t k = local_parts.size();
  auto add = [](float* acc, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) acc[i] = acc[i] + x[i];
  };
  if (count == 0) return;  // (empty buffers may be null pointers)
  // Rank 0's parts fold in place into `out`: the fold's first k terms, for every slice.
  if (rank == 0) {
    std::memcpy(out, local_parts[0], static_cast<size_t>(count) * 4);
    for (size_t p = 1; p < k; ++p) add(out, local_parts[p], count);
  }
  if (size == 1) return;
  std::vector<int64_t> bounds(static_cast<size_t>(size) + 1);
  for (int j = 0; j <= size; ++j) bounds[static_cast<size_t>(j)] = count * j / size;
  const int64_t begin = bounds[static_cast<size_t>(rank)], n = bounds[static_cast<size_t>(rank) + 1] - begin;
  // This rank's slice as the others hold it: rank 0's prefix, then k parts from each other rank.
  thread_local std::vector<float> received;
  received.resize(static_cast<size_t>(n) * (1 + (size - 1) * k));
  auto slot = [&](int from, size_t p) {  // where the slice of part p of rank `from` lands
    return received.data() + static_cast<size_t>(n) * (from == 0 ? 0 : 1 + (from - 1) * k + p);
  };
  for (int from = 0; from < size; ++from)
    if (from != rank)
      for (size_t p = 0; p < (from == 0 ? 1 : k); ++p) comm.post_recv(slot(from, p), n * 4, from);
  for (int to = 0; to < size; ++to) {
    if (to == rank) continue;
    const int64_t b = bounds[static_cast<size_t>(to)], m = bounds[static_cast<size_t>(to) + 1] - b;
    if (rank == 0)
      comm.post_send(out + b, m * 4, to);
    else
      for (size_t p = 0; p < k; ++p) comm.post_send(local_parts[p] + b, m * 4, to);
  }
  comm.wait_all();
  // The fold of this slice, in rank order.
  float* acc = out + begin;
  if (rank != 0 && n > 0) std::memcpy(acc, slot(0, 0), static_cast<size_t>(n) * 4);
  for (int from = 1; from < size; ++from)
    for (size_t p = 0; p < k; ++p) add(acc, from == rank ? local_parts[p] + begin : slot(from, p), n);
  comm.allgather_slices(out, bounds);
}

std::string broadcast_string(Communicator& comm, const std::string& text, int root) {
  if (comm.size() == 1) return text;
  int64_t n = comm.rank() == root ? static_cast<int64_t>(text.size()) : 0;
  comm.broadcast(&n, sizeof n, root);
  std::string out = comm.rank() == root ? text : std::string(static_cast<size_t>(n), '\0');
  comm.broadcast(out.data(), n, root);
  return out;
}

uint64_t checksum(const void* data, int64_t bytes, uint64_t seed) {
  uint64_t h = seed;
  const auto* p = static_cast<const unsigned char*>(data);
  for (int64_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace st::distributed
