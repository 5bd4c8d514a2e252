// Checkpoints in HDF5, readable by h5py:
//   /model/<module path>/<param>       e.g. /model/tower/conv1/weight (dots of the name become groups)
//   /optimizer/<state>/<module path>/<param>   e.g. /optimizer/m/tower/conv1/weight
//   root attributes: format = "musicrec-checkpoint", format_version, step, epoch, optimizer_kind,
//   optimizer_steps, rng_seed, rng_offset, metadata (a JSON string).
// Every dataset is chunked with the Fletcher-32 checksum filter, so corrupted data is detected on read
// rather than silently loaded. A save writes a temporary file in the same folder, flushes it to disk and
// renames it over the target: a crash mid-save leaves the previous checkpoint intact.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/isolated.h"
#include "engine/tensor.h"

namespace musicrec {

class Module;
class Optimizer;
class Generator;

struct Checkpoint {
  std::vector<std::pair<std::string, Tensor>> model;      // dotted parameter names
  std::vector<std::pair<std::string, Tensor>> optimizer;  // optimizer state names ("m/<param>")
  std::string optimizer_kind;
  int64_t optimizer_steps = 0;
  int64_t step = 0;
  int64_t epoch = 0;
  uint64_t rng_seed = 0;
  uint64_t rng_offset = 0;
  std::string metadata_json = "{}";
};

void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// Loads every dataset onto the CPU. Errors name the file and what is wrong with it.
Checkpoint load_checkpoint(const std::string& path);
// The same, read in a child process (engine/isolated.h) unless MUSICREC_HDF5_IN_PROCESS=1: for checkpoints
// that may come from elsewhere (`predict`, `recommend`, `--resume`), so that a file which crashes libhdf5
// or makes it loop is an error naming the file rather than the end of the program. A run's own best.h5,
// written moments before, is read in-process. `reader` (from make_checkpoint_reader) serves many loads
// (the fuzz target, whose children come from a fork server); without it each call starts and ends its own.
Checkpoint load_checkpoint_isolated(const std::string& path, IsolatedWorker* reader = nullptr);
std::unique_ptr<IsolatedWorker> make_checkpoint_reader(ChildSource source = ChildSource::kThisProcess);

// Gathers a model's parameters, an optimizer's state (may be null) and the generator's state.
Checkpoint capture(const Module& model, const Optimizer* opt, const Generator& gen);
// Copies a checkpoint into a model (every parameter must be present with its shape; extra entries are
// an error too, so a checkpoint of another model is refused), an optimizer (may be null) and a generator.
void restore(const Checkpoint& ckpt, Module& model, Optimizer* opt, Generator* gen);

}  // namespace musicrec
