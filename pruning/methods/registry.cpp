// pruning/methods/registry.cpp — the factory of every method in pruning/method_list.h
// (methods::make_<name>, defined in <name>.cpp in this folder).
// Tests: tests/pruning/test_methods.cpp
#include "core/check.h"
#include "pruning/method.h"

namespace st::pruning {

namespace methods {
#define ST_DECLARE_FACTORY(id, name) std::unique_ptr<PruningMethod> make_##name();
ST_PRUNING_METHODS(ST_DECLARE_FACTORY)
#undef ST_DECLARE_FACTORY
}  // namespace methods

namespace {

struct Entry {
  Method method;
  std::unique_ptr<PruningMethod> (*make)();
};

const Entry kRegistry[] = {
#define ST_REGISTRY_ROW(id, name) {Method::id, methods::make_##name},
    ST_PRUNING_METHODS(ST_REGISTRY_ROW)
#undef ST_REGISTRY_ROW
};

}  // namespace

std::unique_ptr<PruningMethod> make_method(Method method) {
  for (const Entry& e : kRegistry)
    if (e.method == method) return e.make();
  ST_ASSERT(false, "pruning method ", to_string(method), " has no factory");
}

std::vector<Method> registered_methods() {
  std::vector<Method> out;
  for (const Entry& e : kRegistry) out.push_back(e.method);
  return out;
}

}  // namespace st::pruning
