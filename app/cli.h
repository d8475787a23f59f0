// app/cli.h — the pieces the `sparsetrain` subcommands share: a Command (a CLI11 subcommand and the
// function that runs it with the options parsed into it), one add_* function per subcommand, the
// integer ranges of their flags, and the output-path check. main.cpp adds them all and dispatches.
// Tests: tests/cli/test_cli.sh, tests/bad_input/cases_input.sh
#pragma once
#include <climits>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace st::app {

struct Command {
  CLI::App* cli = nullptr;  // the subcommand; parsed() says whether the user chose it
  std::function<int()> run;  // runs it; returns the exit code
};

// Each adds its subcommand to `app`, with options stored where the returned run() reads them.
Command add_train(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_device(CLI::App& app);
Command add_config_reference(CLI::App& app);
Command add_info(CLI::App& app);
Command add_sweep(CLI::App& app);
std::vector<Command> add_bench(CLI::App& app);  // bench train, bench kernels
Command add_export(CLI::App& app);

// CLI11's PositiveNumber prints its bound as DBL_MAX in full (309 digits); every integer flag is an
// int, so its range is written as one.
inline const CLI::Range kPositive(1, INT_MAX, "POSITIVE");
inline const CLI::Range kNonNegative(0, INT_MAX, "NONNEGATIVE");

// Refuses, before any work, an output path that cannot be written: a benchmark must not run for
// minutes and then fail at its last step. Creates nothing. "" passes.
void check_writable(const std::string& path, const std::string& flag);

}  // namespace st::app
