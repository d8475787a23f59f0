// pruning/methods/static.cpp — static sparse training: the masks are drawn once before training
// (by the criterion, random by default, with ERK densities by default) and never change.
// Tests: tests/pruning/test_pruner.cpp, tests/pruning/test_methods.cpp
#include "pruning/pruner.h"

namespace st::pruning::methods {

namespace {

class Static final : public PruningMethod {
 public:
  std::vector<std::string> schedule_keys() const override { return {}; }

  MethodTraits traits() const override {
    MethodTraits t;
    t.sparse_from_start = true;
    t.default_criterion = CriterionType::Random;
    return t;
  }

  Action start(Pruner& p) override {
    return [&p] { p.prune_to(p.config().target, 0); };
  }
};

}  // namespace

std::unique_ptr<PruningMethod> make_static() { return std::make_unique<Static>(); }

}  // namespace st::pruning::methods
