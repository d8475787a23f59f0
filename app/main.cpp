// app/main.cpp — the `sparsetrain` command line: train | sweep | eval | info | export | bench | device.
// main parses the command line and runs the chosen subcommand (app/cmd_*.cpp). Every user mistake
// ends as "error: <what, naming the file/key/value>" and exit code 1.
#include <algorithm>
#include <cstdio>
#include <new>

#include "app/cli.h"
#include "app/openmp_defaults.h"
#include "core/check.h"
#include "distributed/communicator.h"
#include "experiment/json_errors.h"
#include "kernels/isa.h"

namespace {

using namespace st;

// CLI11 reads a misspelled command as a stray argument ("The following arguments were not
// expected: trian"): name it as a command and suggest the closest one. "" when the commands are known.
std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  const CLI::App* cur = &app;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto subs = cur->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty() || arg.empty() || arg[0] == '-') return "";
    std::vector<std::string> names;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : subs) {
      names.push_back(sub->get_name());
      if (sub->get_name() == arg) next = sub;
    }
    if (!next) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      return "unknown command \"" + st::excerpt(arg) + "\"" + experiment::did_you_mean(arg, names) +
             " (commands: " + list + ")";
    }
    cur = next;
  }
  return "";
}

// "bench train": a subcommand as typed.
std::string command_name(const CLI::App& app, const CLI::App* cmd) {
  std::string name;
  for (; cmd && cmd != &app; cmd = cmd->get_parent()) name = cmd->get_name() + (name.empty() ? "" : " " + name);
  return name.empty() ? "sparsetrain" : name;
}

// For CLI11's "The following arguments were not expected: --sparsityy": the first unknown option of
// the command being parsed, named with that command and the closest known option; "" when none.
std::string unknown_option(const CLI::App& app, int argc, char** argv) {
  const CLI::App* cur = &app;
  for (auto subs = cur->get_subcommands(); !subs.empty(); subs = cur->get_subcommands()) cur = subs.front();
  std::vector<std::string> names;
  for (const CLI::Option* o : cur->get_options())
    for (const std::string& n : o->get_lnames()) names.push_back("--" + n);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    const std::string name = arg.substr(0, arg.find('='));
    if (std::find(names.begin(), names.end(), name) == names.end())
      return "unknown option \"" + st::excerpt(name) + "\" for \"" + command_name(app, cur) + "\"" +
             experiment::did_you_mean(name, names) + " (see --help)";
  }
  return "";
}

// Every subcommand, in the order --help lists them.
std::vector<app::Command> add_commands(CLI::App& cli) {
  std::vector<app::Command> commands{app::add_train(cli), app::add_eval(cli), app::add_device(cli),
                                     app::add_config_reference(cli), app::add_info(cli), app::add_sweep(cli)};
  for (app::Command& c : app::add_bench(cli)) commands.push_back(std::move(c));
  commands.push_back(app::add_export(cli));
  return commands;
}

// Parses the command line; -1 when a command is to run, else the exit code (--help, --version: 0;
// a refused command, flag or value: 1, after its message).
int parse_command_line(CLI::App& cli, int argc, char** argv) {
  if (const std::string unknown = unknown_command(cli, argc, argv); !unknown.empty()) {
    std::fprintf(stderr, "error: %s\n", unknown.c_str());
    return 1;
  }
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // An unknown option is named whatever CLI11 stumbled on first ("The following arguments were
    // not expected", or "A subcommand is required" for `sparsetrain --bogus`).
    const std::string unknown = e.get_exit_code() != 0 ? unknown_option(cli, argc, argv) : "";
    if (!unknown.empty()) {
      std::fprintf(stderr, "error: %s\n", unknown.c_str());
      return 1;
    }
    // --help and --version exit 0; every refused flag exits 1, like every other user mistake.
    return cli.exit(e) == 0 ? 0 : 1;
  }
  return -1;
}

// A failed command's end. In a job of several ranks the message names the rank, and the whole job
// stops (MPI_Abort): the other ranks would otherwise wait for this one forever.
int fail(const std::string& message) {
  distributed::Communicator* comm = distributed::world_if_started();
  if (comm && comm->size() > 1) {
    std::fprintf(stderr, "error (rank %d of %d): %s\n", comm->rank(), comm->size(), message.c_str());
    std::fflush(stderr);
    comm->abort(1);
  }
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

// Runs the parsed command; every exception becomes one "error: ..." line and exit code 1.
int run_parsed(const std::vector<app::Command>& commands) {
  try {
    // SPARSETRAIN_ISA: checked before any command, so a typo stops the run instead of being ignored.
    kernels::set_isa(kernels::isa_from_environment());
    for (const app::Command& c : commands)
      if (c.cli->parsed()) return c.run();
  } catch (const std::bad_alloc&) {
    return fail("out of memory: the model, the batch or the dataset does not fit in this machine's memory "
                "(make model sizes, train.batch_size or the dataset smaller)");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  st::app::apply_openmp_wait_default(argv);  // may restart the process: before anything else
  CLI::App cli{"sparsetrain — a C++ trainer with built-in pruning and sparse training"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", "sparsetrain 0.1");
  const std::vector<st::app::Command> commands = add_commands(cli);
  if (const int exit_code = parse_command_line(cli, argc, argv); exit_code >= 0) return exit_code;
  return run_parsed(commands);
}
