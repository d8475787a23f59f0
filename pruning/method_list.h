// pruning/method_list.h — every pruning method, one line each: its pruning::Method value and its
// config spelling, which is also the name of its file and factory (pruning/methods/<name>.cpp,
// methods::make_<name>). pruning/config.h builds the Method enum and its spellings from this list,
// pruning/methods/registry.cpp the factories. Adding a method: its file plus one line here.
// Tests: tests/pruning/test_methods.cpp
#pragma once

#define ST_PRUNING_METHODS(X) \
  X(OneShot, one_shot)        \
  X(Iterative, iterative)     \
  X(Gradual, gradual)         \
  X(Static, static)           \
  X(Set, set)                 \
  X(Rigl, rigl)               \
  X(Admm, admm)               \
  X(Random, random)           \
  /* one line per method, each ending in a backslash, above this one */
