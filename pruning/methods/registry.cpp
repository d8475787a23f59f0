// pruning/methods/registry.cpp — one line per pruning method: its pruning::Method and the factory
// defined in its own file in this folder. Adding a method: its file, its factory's declaration and
// its row below (and its config spelling in pruning/config.cpp).
// Tests: tests/pruning/test_methods.cpp
#include "core/check.h"
#include "pruning/method.h"

namespace st::pruning {

namespace methods {
std::unique_ptr<PruningMethod> make_one_shot(), make_iterative(), make_gradual(), make_static(), make_set(),
    make_rigl(), make_admm();
}  // namespace methods

namespace {

struct Entry {
  Method method;
  std::unique_ptr<PruningMethod> (*make)();
};

const Entry kRegistry[] = {
    {Method::OneShot, methods::make_one_shot},
    {Method::Iterative, methods::make_iterative},
    {Method::Gradual, methods::make_gradual},
    {Method::Static, methods::make_static},
    {Method::Set, methods::make_set},
    {Method::Rigl, methods::make_rigl},
    {Method::Admm, methods::make_admm},
};

}  // namespace

std::unique_ptr<PruningMethod> make_method(Method method) {
  for (const Entry& e : kRegistry)
    if (e.method == method) return e.make();
  ST_ASSERT(false, "pruning method ", to_string(method), " has no factory in pruning/methods/registry.cpp");
}

std::vector<Method> registered_methods() {
  std::vector<Method> out;
  for (const Entry& e : kRegistry) out.push_back(e.method);
  return out;
}

}  // namespace st::pruning
