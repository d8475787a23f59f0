// distributed/mpi.cpp — the Communicator over MPI (built when CMake finds MPI: ST_HAVE_MPI).
// MPI is initialized on first use (world()) with MPI_THREAD_FUNNELED: OpenMP threads compute, only
// the main thread communicates. It is finalized at exit. Messages larger than MPI's int count are
// split. Errors: MPI's default handler aborts the job with the library's message.
#include <memory>

#include "distributed/communicator.h"

#ifdef ST_HAVE_MPI
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/check.h"

namespace st::distributed {

bool built_with_mpi() { return true; }

namespace {

constexpr int64_t kMaxMessage = int64_t{1} << 30;  // bytes per MPI call (its counts are int)

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      std::atexit([] {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
      });
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    std::string v(version, static_cast<size_t>(len));
    transport_ = "MPI (" + v.substr(0, v.find_first_of(",\n")) + ")";
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string transport() const override { return transport_; }

  void send(const void* data, int64_t bytes, int to) override {
    const auto* p = static_cast<const char*>(data);
    for (int64_t off = 0; off < bytes || off == 0; off += kMaxMessage) {
      const int n = static_cast<int>(std::min(kMaxMessage, bytes - off));
      MPI_Send(p + off, n, MPI_BYTE, to, 0, MPI_COMM_WORLD);
      if (bytes == 0) break;
    }
    bytes_sent_ += bytes;
  }
  void recv(void* data, int64_t bytes, int from) override {
    auto* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes || off == 0; off += kMaxMessage) {
      const int n = static_cast<int>(std::min(kMaxMessage, bytes - off));
      MPI_Recv(p + off, n, MPI_BYTE, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (bytes == 0) break;
    }
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    auto* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kMaxMessage)
      MPI_Bcast(p + off, static_cast<int>(std::min(kMaxMessage, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD);
    if (rank_ == root) bytes_sent_ += bytes * (size_ - 1);
  }
  void allgather(const void* mine, int64_t bytes, void* all) override {
    ST_CHECK(bytes < kMaxMessage, "allgather of ", bytes, " bytes: more than one MPI message");
    MPI_Allgather(mine, static_cast<int>(bytes), MPI_BYTE, all, static_cast<int>(bytes), MPI_BYTE, MPI_COMM_WORLD);
    bytes_sent_ += bytes * (size_ - 1);
  }
  void allgather_slices(float* data, const std::vector<int64_t>& bounds) override {
    std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      const int64_t b = bounds[static_cast<size_t>(r)], n = bounds[static_cast<size_t>(r) + 1] - b;
      ST_CHECK(n < (int64_t{1} << 31) && b < (int64_t{1} << 31), "allgather of ", bounds.back(),
               " floats: more than MPI's int counts");
      counts[static_cast<size_t>(r)] = static_cast<int>(n);
      displs[static_cast<size_t>(r)] = static_cast<int>(b);
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displs.data(), MPI_FLOAT, MPI_COMM_WORLD);
    bytes_sent_ += int64_t{4} * counts[static_cast<size_t>(rank_)] * (size_ - 1);
  }
  void post_send(const void* data, int64_t bytes, int to) override {
    ST_CHECK(bytes < kMaxMessage, "a message of ", bytes, " bytes: more than one MPI call");
    requests_.emplace_back();
    MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, to, 1, MPI_COMM_WORLD, &requests_.back());
    bytes_sent_ += bytes;
  }
  void post_recv(void* data, int64_t bytes, int from) override {
    ST_CHECK(bytes < kMaxMessage, "a message of ", bytes, " bytes: more than one MPI call");
    requests_.emplace_back();
    MPI_Irecv(data, static_cast<int>(bytes), MPI_BYTE, from, 1, MPI_COMM_WORLD, &requests_.back());
  }
  void wait_all() override {
    MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
  }
  void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  int rank_ = 0, size_ = 1;
  std::string transport_;
  std::vector<MPI_Request> requests_;  // posted, not yet completed (wait_all)
};

}  // namespace

namespace detail {
std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }
}  // namespace detail

}  // namespace st::distributed

#else  // built without MPI

namespace st::distributed {
bool built_with_mpi() { return false; }
namespace detail {
std::unique_ptr<Communicator> make_mpi_communicator() { return nullptr; }  // world() refuses first
}  // namespace detail
}  // namespace st::distributed

#endif
