// Tensors on Device::cuda (core/tensor.h): allocation from the device allocator, host<->device
// copies (to, copy_from both ways), zeros/zero_/fill_/clone/to_vector/item on the device, and that
// host accessors on a device tensor (and device accessors on a host one) fail with a clear assert
// instead of touching the wrong memory. Runs under the CPU emulator in the ordinary test run.
#include <doctest/doctest.h>

#include <string>

#include "core/tensor.h"
#include "core/test_cuda_util.h"
#include "gradcheck.h"

using namespace st;

TEST_CASE("cuda tensor: round trips, fills and copies" * doctest::skip(test::no_cuda_device())) {
  const Tensor h = test::random_tensor({3, 5, 7}, 1);
  const Tensor d = h.to(Device::cuda);
  CHECK(d.device() == Device::cuda);
  CHECK(d.shape() == h.shape());
  CHECK(!d.same_storage(h));
  CHECK(d.to(Device::cuda).same_storage(d));  // already there: no copy
  CHECK(d.to_vector() == h.to_vector());
  CHECK(d.to(Device::cpu).to_vector() == h.to_vector());

  Tensor c = d.clone();
  CHECK(c.device() == Device::cuda);
  CHECK(!c.same_storage(d));
  c.fill_(2.5f);
  CHECK(c.to_vector() == std::vector<float>(c.numel(), 2.5f));
  CHECK(d.to_vector() == h.to_vector());  // the clone was a copy
  c.zero_();
  CHECK(c.to_vector() == std::vector<float>(c.numel(), 0.f));
  c.copy_from(h);  // host -> device
  CHECK(c.to_vector() == h.to_vector());
  Tensor back(h.shape());
  back.copy_from(c);  // device -> host
  CHECK(back.to_vector() == h.to_vector());
  Tensor z = Tensor::zeros({4, 4}, DType::f32, Device::cuda);
  z.copy_from(test::random_tensor({16}, 2).reshape({4, 4}).to(Device::cuda));  // device -> device
  CHECK(z.to_vector() == test::random_tensor({16}, 2).to_vector());

  // Views share device storage: a short batch is the first rows.
  Tensor lead = d.leading(2);
  CHECK(lead.device() == Device::cuda);
  CHECK(lead.to_vector() == std::vector<float>(h.f32(), h.f32() + 2 * 35));
  CHECK(Tensor::full({1}, 3.f, Device::cuda).item() == 3.f);

  // Other dtypes and empty tensors.
  Tensor i = Tensor::from_vector({3}, std::vector<int32_t>{1, -2, 3}).to(Device::cuda);
  CHECK(i.to(Device::cpu).i32()[1] == -2);
  Tensor e = Tensor::zeros({0, 3}, DType::f32, Device::cuda);
  CHECK(e.numel() == 0);
  CHECK(e.to_vector().empty());
  CHECK(e.clone().numel() == 0);
  CHECK(Tensor({2, 3}, DType::u8, Device::cuda).str() == "u8(2, 3) on cuda");
}

TEST_CASE("cuda tensor: host accessors on a device tensor fail clearly" *
          doctest::skip(test::no_cuda_device())) {
  const Tensor d = Tensor::zeros({2, 2}, DType::f32, Device::cuda);
  CHECK_THROWS_WITH_AS(d.f32(), doctest::Contains("is on cuda, accessed as a cpu pointer"), std::logic_error);
  CHECK_THROWS_AS(Tensor({2}, DType::i32, Device::cuda).i32(), std::logic_error);
  CHECK_THROWS_AS(Tensor({2}, DType::u8, Device::cuda).u8(), std::logic_error);
  CHECK_THROWS_AS(Tensor({2}).cuda_f32(), std::logic_error);
  CHECK_NOTHROW(d.cuda_f32());
  CHECK_THROWS_AS(d.cuda_i32(), std::logic_error);  // dtype still checked
}

TEST_CASE("cuda tensor: storage comes from the device allocator and returns to it" *
          doctest::skip(test::no_cuda_device())) {
  const auto before = cuda::device_allocator_stats();
  { Tensor t({1000}, DType::f32, Device::cuda); }
  const auto mid = cuda::device_allocator_stats();
  CHECK(mid.bytes_in_use == before.bytes_in_use);
  { Tensor t({1000}, DType::f32, Device::cuda); }  // same size: served from the cache
  const auto after = cuda::device_allocator_stats();
  CHECK(after.device_mallocs == mid.device_mallocs);
  CHECK(after.cached_reuses > mid.cached_reuses);
}
