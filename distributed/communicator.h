// distributed/communicator.h — the processes of one job and the few collective operations the
// trainer and the sweep need. The trainer never calls MPI: it talks to a Communicator, which is
// either the single-process one (size 1) or, when sparsetrain was built with MPI and started by an
// MPI launcher (mpirun, mpiexec, srun), the MPI one (distributed/mpi.cpp).
//
//   world()          the process's communicator, started on first use
//   ordered_sum()    every rank's parts summed as one left fold in rank order: the same floats, in
//                    the same order, as one process summing all the parts (no MPI reduction, whose
//                    order is the library's), moving as many bytes as a ring all-reduce when each
//                    rank holds one part; docs/design.md, "Data-parallel training over MPI"
//   bytes_sent()     what this rank's calls moved to other ranks (a broadcast counts its payload once
//                    per receiving rank, as a flat broadcast would send it)
// Tests: tests/distributed/test_distributed.cpp (one process and under mpirun -np 2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace st::distributed {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "single process", or the MPI library's name and version.
  virtual std::string transport() const = 0;
  // Point to point, blocking; `bytes` may be 0.
  virtual void send(const void* data, int64_t bytes, int to) = 0;
  virtual void recv(void* data, int64_t bytes, int from) = 0;
  // Root's `bytes` at `data` copied to every rank's `data`.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Every rank's `bytes` at `mine`, in rank order, into `all` (size() * bytes) on every rank.
  virtual void allgather(const void* mine, int64_t bytes, void* all) = 0;
  // In place: rank r's floats [bounds[r], bounds[r + 1]) of `data` to every rank (bounds: size() + 1).
  virtual void allgather_slices(float* data, const std::vector<int64_t>& bounds) = 0;
  // Nonblocking point to point: post any number, then wait_all() completes them all.
  virtual void post_send(const void* data, int64_t bytes, int to) = 0;
  virtual void post_recv(void* data, int64_t bytes, int from) = 0;
  virtual void wait_all() = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job with `code` (a rank that failed alone must not leave the others
  // waiting in a collective).
  [[noreturn]] virtual void abort(int code) = 0;

  int64_t bytes_sent() const { return bytes_sent_; }

 protected:
  int64_t bytes_sent_ = 0;
};

// Whether this binary was built with MPI (CMake found it).
bool built_with_mpi();
// The number of ranks an MPI launcher says this job has (its environment), 1 when none started us.
int launched_ranks();
// The process's communicator. With more than one launched rank it initializes MPI, or throws when
// this binary has no MPI. Single-process otherwise (no MPI call at all).
Communicator& world();
// world() if it has been started, else nullptr (for error handling that must not start MPI).
Communicator* world_if_started();

// Sums the parts of every rank into `out` (count floats, on every rank) as one left fold in rank
// order: rank 0's parts in their order, then rank 1's, and so on, each added with one rounding
// (((p0 + p1) + p2) + ...). The result is the same bits whatever the number of ranks the parts are
// spread over, and equals summing them in one process. Every rank holds the same number k >= 1 of
// parts; `out` must not alias them.
// Rank j owns the floats [count*j/N, count*(j+1)/N): every rank sends it that slice of its parts
// (rank 0 the sum of its k parts, a prefix of the fold; the others each part, as the fold adds them
// one by one), the owner adds them in rank order, and the owners' slices are gathered to all. With
// k = 1 each rank sends 2 (N-1)/N of the payload, what a ring all-reduce sends.
void ordered_sum(Communicator& comm, const std::vector<const float*>& local_parts, int64_t count, float* out);

// Root's string on every rank.
std::string broadcast_string(Communicator& comm, const std::string& text, int root);

// A 64-bit checksum (FNV-1a) of a byte range, for comparing state across ranks.
uint64_t checksum(const void* data, int64_t bytes, uint64_t seed = 0xcbf29ce484222325ULL);

// The single-process communicator (size 1); point-to-point calls are errors.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string transport() const override { return "single process"; }
  void send(const void*, int64_t, int) override;
  void recv(void*, int64_t, int) override;
  void broadcast(void*, int64_t, int root) override;
  void allgather(const void* mine, int64_t bytes, void* all) override;
  void allgather_slices(float*, const std::vector<int64_t>&) override {}
  void post_send(const void*, int64_t, int to) override { send(nullptr, 0, to); }
  void post_recv(void*, int64_t, int from) override { recv(nullptr, 0, from); }
  void wait_all() override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

}  // namespace st::distributed
