// The cost of a new reader child (engine/isolated.h) as the process grows: a worker whose every request
// is refused starts a child per request, as an MSD scan does after each damaged file and as the fuzz
// targets do for most inputs. Children forked from this process each time against children from a
// fork server made while the process was small (engine/fork_server.h).
//
//   BM_RefusedRequest/<source>/<MB>: source 0 = forked here, 1 = from a fork server; MB resident
//   (allocated and touched after the worker's first child, as a scan gathers tracks).
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/isolated.h"
#include "kernels/error.h"

namespace musicrec {
namespace {

void BM_RefusedRequest(benchmark::State& state) {
  const auto source = state.range(0) == 0 ? ChildSource::kThisProcess : ChildSource::kForkServer;
  IsolatedWorker worker([](const std::string& req) -> std::string {
    if (req == "warm") return "ok";
    throw Error("refused");
  }, source);
  worker.call("warm", "warm");  // the first child (and the server) while the process is small
  std::vector<std::unique_ptr<char[]>> resident;
  for (int64_t mb = 0; mb < state.range(1); ++mb) {
    resident.emplace_back(new char[1 << 20]);
    std::memset(resident.back().get(), int(mb), 1 << 20);
  }
  for (auto _ : state) {
    try {
      worker.call("f", "x");
    } catch (const Error&) {
    }
  }
  state.counters["children"] = worker.children_started();
}
BENCHMARK(BM_RefusedRequest)->ArgsProduct({{0, 1}, {0, 512}})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace musicrec

BENCHMARK_MAIN();
