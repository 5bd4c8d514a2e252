// HDF5 checkpoints (see checkpoint.h).
#include "engine/checkpoint.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "engine/modules.h"
#include "engine/optim.h"
#include "engine/random.h"
#include "kernels/error.h"

namespace musicrec {
namespace {

constexpr const char* kFormat = "musicrec-checkpoint";
constexpr int64_t kFormatVersion = 1;

// Owns one HDF5 identifier and closes it with the right function.
class H5Id {
 public:
  H5Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Id() {
    if (id_ >= 0) close_(id_);
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5 prints its own error stack by default; we report our own message instead.
void silence_hdf5() {
  static bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

hid_t native_type(DType t) {
  switch (t) {
    case DType::F32: return H5T_NATIVE_FLOAT;
    case DType::F64: return H5T_NATIVE_DOUBLE;
    default: return H5T_NATIVE_INT32;
  }
}

std::string h5_path(const std::string& group, const std::string& dotted) {
  std::string p = group;
  for (char c : dotted) p += c == '.' ? '/' : c;
  return p;
}

void write_dataset(hid_t file, const std::string& path, const Tensor& t, const std::string& file_name) {
  Tensor h = t.cpu();
  std::vector<hsize_t> dims(h.shape().begin(), h.shape().end());
  H5Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
             H5Sclose);
  H5Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!dims.empty() && h.numel() > 0) {
    // Chunks of about 1 MiB along the first dimension; each is checksummed on its own.
    std::vector<hsize_t> chunk = dims;
    size_t row_bytes = dtype_size(h.dtype());
    for (size_t i = 1; i < dims.size(); ++i) row_bytes *= dims[i];
    chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (size_t(1) << 20) / std::max<size_t>(row_bytes, 1)));
    H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data());
    H5Pset_fletcher32(dcpl.get());
  }
  H5Id ds(H5Dcreate2(file, path.c_str(), native_type(h.dtype()), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
          H5Dclose);
  MR_CHECK(ds.ok(), "checkpoint " + file_name + ": cannot create dataset " + path);
  if (h.numel() > 0)
    MR_CHECK(H5Dwrite(ds.get(), native_type(h.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, h.raw_data()) >= 0,
             "checkpoint " + file_name + ": cannot write dataset " + path);
}

template <typename V> void write_attr(hid_t obj, const char* name, hid_t type, const V& value) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id a(H5Acreate2(obj, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  MR_CHECK(a.ok() && H5Awrite(a.get(), type, &value) >= 0, std::string("cannot write attribute ") + name);
}

void write_string_attr(hid_t obj, const char* name, const std::string& value) {
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* p = value.c_str();
  write_attr(obj, name, type.get(), p);
}

bool has_attr(hid_t obj, const char* name) { return H5Aexists(obj, name) > 0; }

template <typename V> V read_attr(hid_t obj, const char* name, hid_t type, const std::string& file_name) {
  MR_CHECK(has_attr(obj, name), "checkpoint " + file_name + ": attribute '" + name + "' missing");
  H5Id a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  V v{};
  MR_CHECK(a.ok() && H5Aread(a.get(), type, &v) >= 0, "checkpoint " + file_name + ": cannot read attribute '" +
                                                           name + "'");
  return v;
}

std::string read_string_attr(hid_t obj, const char* name, const std::string& file_name) {
  MR_CHECK(has_attr(obj, name), "checkpoint " + file_name + ": attribute '" + name + "' missing");
  H5Id a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  H5Id ftype(H5Aget_type(a.get()), H5Tclose);
  MR_CHECK(H5Tget_class(ftype.get()) == H5T_STRING, "checkpoint " + file_name + ": attribute '" + name +
                                                        "' is not a string");
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  char* p = nullptr;
  MR_CHECK(H5Aread(a.get(), type.get(), &p) >= 0 && p, "checkpoint " + file_name + ": cannot read attribute '" +
                                                           name + "'");
  std::string s(p);
  H5free_memory(p);
  return s;
}

struct VisitState {
  std::vector<std::string> datasets;
};

herr_t visit_link(hid_t group, const char* name, const H5L_info_t*, void* data) {
  H5Id obj(H5Oopen(group, name, H5P_DEFAULT), H5Oclose);
  if (obj.ok() && H5Iget_type(obj.get()) == H5I_DATASET) static_cast<VisitState*>(data)->datasets.push_back(name);
  return 0;
}

Tensor read_dataset(hid_t file, const std::string& path, const std::string& file_name) {
  H5Id ds(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  MR_CHECK(ds.ok(), "checkpoint " + file_name + ": cannot open dataset /" + path);
  H5Id space(H5Dget_space(ds.get()), H5Sclose);
  int nd = H5Sget_simple_extent_ndims(space.get());
  MR_CHECK(nd >= 0 && nd <= 4, "checkpoint " + file_name + ": dataset /" + path + " has " + std::to_string(nd) +
                                   " dimensions (at most 4 supported)");
  std::vector<hsize_t> dims(static_cast<size_t>(nd));
  if (nd > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  H5Id type(H5Dget_type(ds.get()), H5Tclose);
  DType dt;
  H5T_class_t cls = H5Tget_class(type.get());
  if (cls == H5T_FLOAT) dt = H5Tget_size(type.get()) == 8 ? DType::F64 : DType::F32;
  else if (cls == H5T_INTEGER && H5Tget_size(type.get()) == 4) dt = DType::I32;
  else MR_CHECK(false, "checkpoint " + file_name + ": dataset /" + path + " has an unsupported element type");
  Shape shape(dims.begin(), dims.end());
  // The dataset's size is bounded by what the file can hold before anything is allocated for it.
  hsize_t storage = H5Dget_storage_size(ds.get());
  int64_t numel = shape_numel(shape);
  MR_CHECK(numel == 0 || storage > 0, "checkpoint " + file_name + ": dataset /" + path + " has no stored data");
  MR_CHECK(numel <= int64_t(1) << 34, "checkpoint " + file_name + ": dataset /" + path + " claims " +
                                          std::to_string(numel) + " elements");
  Tensor t = Tensor::empty(shape, dt, Device::cpu());
  if (numel > 0)
    MR_CHECK(H5Dread(ds.get(), native_type(dt), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) >= 0,
             "checkpoint " + file_name + ": dataset /" + path +
                 " cannot be read (checksum mismatch or truncated data: the file is corrupted)");
  return t;
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  silence_hdf5();
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  try {
    {
      H5Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      MR_CHECK(file.ok(), "checkpoint " + path + ": cannot create " + tmp + " (folder missing or not writable?)");
      for (auto& [name, t] : c.model) write_dataset(file.get(), h5_path("/model/", name), t, path);
      for (auto& [name, t] : c.optimizer) write_dataset(file.get(), h5_path("/optimizer/", name), t, path);
      hid_t root = file.get();
      write_string_attr(root, "format", kFormat);
      write_attr(root, "format_version", H5T_NATIVE_INT64, kFormatVersion);
      write_attr(root, "step", H5T_NATIVE_INT64, c.step);
      write_attr(root, "epoch", H5T_NATIVE_INT64, c.epoch);
      write_attr(root, "optimizer_steps", H5T_NATIVE_INT64, c.optimizer_steps);
      write_attr(root, "rng_seed", H5T_NATIVE_UINT64, c.rng_seed);
      write_attr(root, "rng_offset", H5T_NATIVE_UINT64, c.rng_offset);
      write_string_attr(root, "optimizer_kind", c.optimizer_kind);
      write_string_attr(root, "metadata", c.metadata_json);
      MR_CHECK(H5Fflush(root, H5F_SCOPE_GLOBAL) >= 0, "checkpoint " + path + ": flush failed (disk full?)");
    }
    fsync_path(tmp, false);
    MR_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "checkpoint " + path + ": cannot rename " + tmp + " into place");
    fsync_path(parent_dir(path), true);
  } catch (...) {
    std::remove(tmp.c_str());  // never leave a half-written file behind
    throw;
  }
}

Checkpoint load_checkpoint(const std::string& path) {
  silence_hdf5();
  MR_CHECK(::access(path.c_str(), R_OK) == 0, "checkpoint " + path + ": file missing or not readable");
  MR_CHECK(H5Fis_hdf5(path.c_str()) > 0, "checkpoint " + path + ": not an HDF5 file (truncated or corrupted?)");
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  MR_CHECK(file.ok(), "checkpoint " + path + ": HDF5 cannot open it (truncated or corrupted?)");
  hid_t root = file.get();
  MR_CHECK(has_attr(root, "format") && read_string_attr(root, "format", path) == kFormat,
           "checkpoint " + path + ": an HDF5 file, but not a musicrec checkpoint (no format attribute)");
  int64_t version = read_attr<int64_t>(root, "format_version", H5T_NATIVE_INT64, path);
  MR_CHECK(version == kFormatVersion, "checkpoint " + path + ": format version " + std::to_string(version) +
                                          ", this build reads version " + std::to_string(kFormatVersion));
  Checkpoint c;
  c.step = read_attr<int64_t>(root, "step", H5T_NATIVE_INT64, path);
  c.epoch = read_attr<int64_t>(root, "epoch", H5T_NATIVE_INT64, path);
  c.optimizer_steps = read_attr<int64_t>(root, "optimizer_steps", H5T_NATIVE_INT64, path);
  c.rng_seed = read_attr<uint64_t>(root, "rng_seed", H5T_NATIVE_UINT64, path);
  c.rng_offset = read_attr<uint64_t>(root, "rng_offset", H5T_NATIVE_UINT64, path);
  c.optimizer_kind = read_string_attr(root, "optimizer_kind", path);
  c.metadata_json = read_string_attr(root, "metadata", path);

  VisitState vs;
  MR_CHECK(H5Lvisit(root, H5_INDEX_NAME, H5_ITER_INC, visit_link, &vs) >= 0,
           "checkpoint " + path + ": cannot list its datasets (corrupted?)");
  for (const std::string& name : vs.datasets) {
    Tensor t = read_dataset(root, name, path);
    auto dotted = [](std::string s) {
      std::replace(s.begin(), s.end(), '/', '.');
      return s;
    };
    if (name.rfind("model/", 0) == 0) {
      c.model.emplace_back(dotted(name.substr(6)), t);
    } else if (name.rfind("optimizer/", 0) == 0) {
      // "optimizer/m/tower/conv1/weight" -> "m/tower.conv1.weight"
      std::string rest = name.substr(10);
      size_t slash = rest.find('/');
      MR_CHECK(slash != std::string::npos, "checkpoint " + path + ": malformed optimizer entry /" + name);
      c.optimizer.emplace_back(rest.substr(0, slash + 1) + dotted(rest.substr(slash + 1)), t);
    }
  }
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
