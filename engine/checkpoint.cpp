// HDF5 checkpoints (see checkpoint.h).
#include "engine/checkpoint.h"

#include <algorithm>
#include <map>
#include <set>

#include "engine/hdf5_file.h"
#include "engine/isolated.h"
#include "engine/modules.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "kernels/error.h"

namespace musicrec {
namespace {

constexpr const char* kFormat = "musicrec-checkpoint";
constexpr int64_t kFormatVersion = 1;

std::string h5_path(const std::string& group, const std::string& dotted) {
  std::string p = group;
  for (char c : dotted) p += c == '.' ? '/' : c;
  return p;
}

std::string dotted(std::string s) {
  std::replace(s.begin(), s.end(), '/', '.');
  return s;
}

// A checkpoint through the pipe from the reader process: scalars, then each tensor as name, dtype,
// shape and raw bytes. The parent checks what it unpacks as it would a file.
void pack_tensors(ByteWriter& w, const std::vector<std::pair<std::string, Tensor>>& named) {
  w.u64(named.size());
  for (const auto& [name, t] : named) {
    w.str(name);
    w.u64(uint64_t(t.dtype()));
    w.u64(t.shape().size());
    for (int64_t d : t.shape()) w.u64(uint64_t(d));
    w.raw(t.raw_data(), t.nbytes());
  }
}

std::vector<std::pair<std::string, Tensor>> unpack_tensors(ByteReader& r, const std::string& path) {
  // Each tensor takes at least its name's length, dtype and rank: 24 bytes.
  std::vector<std::pair<std::string, Tensor>> named(r.count(24));
  for (auto& [name, t] : named) {
    name = r.str();
    const uint64_t dtype = r.u64(), rank = r.u64();
    MR_CHECK(dtype <= uint64_t(DType::I32) && rank <= 8, path + ": the reader process sent a malformed tensor " + name);
    Shape shape(rank);
    double elements = 1;  // in floating point: a forged shape must not overflow before it is checked
    for (auto& d : shape) {
      d = int64_t(r.u64());
      elements *= double(d);
      MR_CHECK(d >= 0, path + ": the reader process sent a negative size for tensor " + name);
    }
    // The data follows the shape directly: the bytes left must hold it before anything is allocated.
    MR_CHECK(elements * double(dtype_size(DType(dtype))) <= double(r.remaining()),
             path + ": the reader process sent too few bytes for tensor " + name + " of shape " + shape_str(shape));
    t = Tensor::empty(shape, DType(dtype));
    r.raw(t.raw_data(), t.nbytes());
  }
  return named;
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  Hdf5File f = Hdf5File::create(path);
  for (auto& [name, t] : c.model) f.write(h5_path("/model/", name), t);
  for (auto& [name, t] : c.optimizer) f.write(h5_path("/optimizer/", name), t);
  f.set_attr("format", std::string(kFormat));
  f.set_attr("format_version", kFormatVersion);
  f.set_attr("step", c.step);
  f.set_attr("epoch", c.epoch);
  f.set_attr("optimizer_steps", c.optimizer_steps);
  f.set_attr_u64("rng_seed", c.rng_seed);
  f.set_attr_u64("rng_offset", c.rng_offset);
  f.set_attr("optimizer_kind", c.optimizer_kind);
  f.set_attr("metadata", c.metadata_json);
  f.commit();
}

Checkpoint load_checkpoint(const std::string& path) {
  Hdf5File f = Hdf5File::open(path);
  MR_CHECK(f.has_attr("format") && f.attr_str("format") == kFormat,
           "checkpoint " + path + ": an HDF5 file, but not a musicrec checkpoint (no format attribute)");
  int64_t version = f.attr_i64("format_version");
  MR_CHECK(version == kFormatVersion, "checkpoint " + path + ": format version " + std::to_string(version) +
                                          ", this build reads version " + std::to_string(kFormatVersion));
  Checkpoint c;
  c.step = f.attr_i64("step");
  c.epoch = f.attr_i64("epoch");
  c.optimizer_steps = f.attr_i64("optimizer_steps");
  c.rng_seed = f.attr_u64("rng_seed");
  c.rng_offset = f.attr_u64("rng_offset");
  c.optimizer_kind = f.attr_str("optimizer_kind");
  c.metadata_json = f.attr_str("metadata");
  for (const std::string& name : f.datasets()) {
    if (name.rfind("model/", 0) == 0) {
      c.model.emplace_back(dotted(name.substr(6)), f.read(name));
    } else if (name.rfind("optimizer/", 0) == 0) {
      // "optimizer/m/tower/conv1/weight" -> "m/tower.conv1.weight"
      std::string rest = name.substr(10);
      size_t slash = rest.find('/');
      MR_CHECK(slash != std::string::npos, "checkpoint " + path + ": malformed optimizer entry /" + name);
      c.optimizer.emplace_back(rest.substr(0, slash + 1) + dotted(rest.substr(slash + 1)), f.read(name));
    }
  }
  return c;
}

std::unique_ptr<IsolatedWorker> make_checkpoint_reader(ChildSource source) {
  return std::make_unique<IsolatedWorker>([](const std::string& path) {
    const Checkpoint c = load_checkpoint(path);
    ByteWriter w;
    for (const std::string* s : {&c.optimizer_kind, &c.metadata_json}) w.str(*s);
    for (int64_t v : {c.optimizer_steps, c.step, c.epoch}) w.u64(uint64_t(v));
    for (uint64_t v : {c.rng_seed, c.rng_offset}) w.u64(v);
    pack_tensors(w, c.model);
    pack_tensors(w, c.optimizer);
    return w.take();
  }, source);
}

Checkpoint load_checkpoint_isolated(const std::string& path, IsolatedWorker* reader) {
  if (!isolate_untrusted_readers()) return load_checkpoint(path);
  // The program loads one checkpoint per command: its child ends with this call, so no idle process
  // holds a copy-on-write image of a parent that goes on to allocate gigabytes.
  std::unique_ptr<IsolatedWorker> own;
  if (!reader) reader = (own = make_checkpoint_reader()).get();
  const std::string bytes = reader->call("checkpoint " + path, path, IsolationOptions{isolation_timeout_for(path)});
  ByteReader r(bytes, path);
  Checkpoint c;
  for (std::string* s : {&c.optimizer_kind, &c.metadata_json}) *s = r.str();
  for (int64_t* v : {&c.optimizer_steps, &c.step, &c.epoch}) *v = int64_t(r.u64());
  for (uint64_t* v : {&c.rng_seed, &c.rng_offset}) *v = r.u64();
  c.model = unpack_tensors(r, path);
  c.optimizer = unpack_tensors(r, path);
  MR_CHECK(r.done(), path + ": the reader process sent more than the checkpoint");
  return c;
}

Checkpoint capture(const Module& model, const Optimizer* opt, const Generator& gen) {
  Checkpoint c;
  c.model = model.named_parameters();
  if (opt) {
    c.optimizer = opt->state();
    c.optimizer_kind = opt->kind();
    c.optimizer_steps = opt->steps();
  }
  c.rng_seed = gen.seed();
  c.rng_offset = gen.offset();
  return c;
}

void restore(const Checkpoint& c, Module& model, Optimizer* opt, Generator* gen) {
  std::map<std::string, Tensor> saved(c.model.begin(), c.model.end());
  std::set<std::string> used;
  for (auto& [name, p] : model.named_parameters()) {
    auto it = saved.find(name);
    MR_CHECK(it != saved.end(), "checkpoint has no parameter '" + name + "' (a checkpoint of another model?)");
    MR_CHECK(it->second.shape() == p.shape(), "checkpoint parameter '" + name + "' has shape " +
                                                  shape_str(it->second.shape()) + ", the model expects " +
                                                  shape_str(p.shape()));
    Tensor dst = p;
    dst.copy_from(it->second.dtype() == p.dtype() ? it->second : it->second.to_dtype(p.dtype()));
    used.insert(name);
  }
  for (auto& [name, t] : saved)
    MR_CHECK(used.count(name), "checkpoint parameter '" + name + "' does not exist in this model");
  if (opt) {
    MR_CHECK(c.optimizer_kind == opt->kind(), "checkpoint optimizer is '" + c.optimizer_kind + "', the run uses '" +
                                                  opt->kind() + "'");
    opt->load_state(std::map<std::string, Tensor>(c.optimizer.begin(), c.optimizer.end()));
    opt->set_steps(c.optimizer_steps);
  }
  if (gen) gen->set_state(c.rng_seed, c.rng_offset);
}

}  // namespace musicrec
