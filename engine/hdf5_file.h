// A small typed wrapper over the HDF5 C API for the files musicrec writes itself (checkpoints, dataset
// caches): tensors as datasets (chunked, Fletcher-32 checksummed), string lists, scalar attributes on
// the root group, and a listing of every dataset. Errors name the file and the object. Writing goes to
// a temporary file that commit() renames into place, so a crash never leaves a half-written file.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace musicrec {

// Owns one HDF5 identifier and closes it with the matching function (H5Dclose, H5Tclose, ...).
class H5Handle {
 public:
  H5Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~H5Handle() {
    if (id_ >= 0) close_(id_);
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// Empties this thread's HDF5 error stack. HDF5 (thread-safe build) keeps a stack per thread; one left
// with entries when a worker thread ends is never freed (LeakSanitizer found it in the MSD tree scan's
// second thread on truncated files), so a thread that caught an HDF5 failure calls this.
void clear_hdf5_errors();

// Refuses a dataset whose header claims more data than the file stores for it: `elements` of
// `element_bytes` each may be at most 64 times the dataset's stored bytes plus 1 MB (gzip rarely
// compresses our data past 10:1), so a tiny file with a forged extent cannot make a reader allocate
// gigabytes; and the stored bytes (the sum of a chunk index's sizes, which libhdf5 allocates to read the
// chunks) may not exceed the file's own size. `what` names the file and dataset in the error.
void check_claimed_size(hid_t dataset, uint64_t elements, uint64_t element_bytes, const std::string& what);

class Hdf5File {
 public:
  // Creates `path` (through a temporary until commit()).
  static Hdf5File create(const std::string& path);
  // Likewise, and commit() seals it (engine/file_seal.h): for musicrec's own caches.
  static Hdf5File create_sealed(const std::string& path);
  // Opens `path` read-only; a missing, truncated or foreign file is a clear error.
  static Hdf5File open(const std::string& path);
  // Opens a sealed file, after checking that its bytes are those musicrec sealed.
  static Hdf5File open_sealed(const std::string& path);
  ~Hdf5File();
  Hdf5File(Hdf5File&& o) noexcept;
  Hdf5File& operator=(Hdf5File&&) = delete;
  Hdf5File(const Hdf5File&) = delete;

  void write(const std::string& dataset, const Tensor& t);  // intermediate groups are created
  void write_strings(const std::string& dataset, const std::vector<std::string>& values);
  void set_attr(const std::string& name, int64_t v);
  void set_attr_u64(const std::string& name, uint64_t v);
  void set_attr(const std::string& name, double v);
  void set_attr(const std::string& name, const std::string& v);
  // Flushes, fsyncs and renames the temporary into place. Without it the temporary is removed.
  void commit();

  bool has(const std::string& dataset) const;
  Tensor read(const std::string& dataset) const;  // onto the CPU; checksum failures are errors
  std::vector<std::string> read_strings(const std::string& dataset) const;
  bool has_attr(const std::string& name) const;
  int64_t attr_i64(const std::string& name) const;
  uint64_t attr_u64(const std::string& name) const;
  double attr_f64(const std::string& name) const;
  std::string attr_str(const std::string& name) const;
  std::vector<std::string> datasets() const;  // every dataset path, without the leading '/'
  const std::string& path() const { return path_; }
  hid_t id() const { return id_; }  // for readers of foreign layouts (MSD compound tables)

 private:
  Hdf5File(hid_t id, std::string path, std::string tmp) : id_(id), path_(std::move(path)), tmp_(std::move(tmp)) {}
  static Hdf5File create_with(const std::string& path, hid_t fcpl);  // create and create_sealed
  hid_t id_ = -1;
  std::string path_, tmp_;  // tmp_ non-empty while writing
  bool sealed_ = false;     // commit() seals the temporary before renaming it
};

}  // namespace musicrec
