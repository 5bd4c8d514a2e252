// What this binary is: its version, the git commit it was built from, the build type, compiler, CUDA
// architectures and the versions of the libraries it runs with. `musicrec info` prints it and every
// training run records it in RUN/config.json ("build").
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace musicrec::apps {

nlohmann::json build_info();

// The command line this process was started with (set by main; "" when the jobs run from a test):
// what a training run prints as the way to resume it.
void set_command_line(int argc, char** argv);
const std::string& command_line();
// `command_line()` when set, else `fallback`.
std::string command_line_or(const std::string& fallback);

}  // namespace musicrec::apps
