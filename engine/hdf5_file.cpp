// HDF5 wrapper (see hdf5_file.h).
#include "engine/hdf5_file.h"

#include <signal.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "engine/file_seal.h"
#include "kernels/error.h"

namespace musicrec {
namespace {


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

// Strings are written fixed-length (NUL-padded to the longest, at least 1 byte), since 2026-11-26.
// Variable-length strings live in the file's global heap, and libhdf5 1.10.8 follows a damaged heap
// reference without checks: most of its faults on our own damaged files were there (H5HG_read
// overflowing or copying overlapping memory, H5HG__protect looping; fuzz/README.md). Files written
// before then hold variable-length strings and are still read.
hid_t vlen_string_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

hid_t fixed_string_type(size_t bytes) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, std::max<size_t>(1, bytes));
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

// Fixed-length strings of `width` bytes back to std::string: each ends at its first NUL, or fills
// its width.
std::vector<std::string> unpad_strings(const std::vector<char>& bytes, size_t width, size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const char* p = bytes.data() + i * width;
    const void* nul = std::memchr(p, '\0', width);
    out.emplace_back(p, nul ? size_t(static_cast<const char*>(nul) - p) : width);
  }
  return out;
}

// Listing a file's datasets, group by group. Not H5Lvisit: libhdf5 1.10.8 remembers the groups it has
// visited only when their header counts more than one link to them, so a damaged file whose group links
// back to its parent made it recurse without end (found by fuzz_checkpoint: /model/dense/bias/dense was
// /model/dense again). Every group is entered once here, by its address, and only hard links are
// followed: musicrec writes no other kind, and an external link would open another file.
constexpr int kMaxGroupDepth = 64;  // ours are 3 deep

struct DatasetWalk {
  std::vector<std::string>* out;
  std::set<haddr_t>* entered;
  std::string prefix;  // the group's path and '/', or "" at the root
  int depth;
};

herr_t collect_datasets(hid_t group, const char* name, const H5L_info_t* link, void* data) {
  const DatasetWalk& walk = *static_cast<const DatasetWalk*>(data);
  if (link->type != H5L_TYPE_HARD) return 0;
  H5Handle obj(H5Oopen(group, name, H5P_DEFAULT), H5Oclose);
  if (!obj.ok()) return 0;  // a damaged object: whoever needs it reports it by name
  const std::string path = walk.prefix + name;
  const H5I_type_t type = H5Iget_type(obj.get());
  if (type == H5I_DATASET) walk.out->push_back(path);
  if (type != H5I_GROUP) return 0;
  H5O_info_t info{};
  if (H5Oget_info2(obj.get(), &info, H5O_INFO_BASIC) < 0 || !walk.entered->insert(info.addr).second) return 0;
  if (walk.depth >= kMaxGroupDepth) return -1;
  DatasetWalk inner{walk.out, walk.entered, path + "/", walk.depth + 1};
  hsize_t next = 0;
  return H5Literate(obj.get(), H5_INDEX_NAME, H5_ITER_INC, &next, collect_datasets, &inner) < 0 ? -1 : 0;
}

}  // namespace

void clear_hdf5_errors() { H5Eclear2(H5E_DEFAULT); }

// Removes PATH.tmp-<pid> files of processes that no longer exist: what a save killed half-way leaves.
void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const std::string prefix = p.filename().string() + ".tmp-";
  std::error_code ec;
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (::kill(pid_t(std::stol(pid)), 0) != 0 && errno == ESRCH) fs::remove(it->path(), ec);
  }
}

Hdf5File Hdf5File::create_with(const std::string& path, hid_t fcpl) {
  silence_hdf5();
  remove_stale_temporaries(path);
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  hid_t id = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  MR_CHECK(id >= 0, path + ": cannot create (folder missing or not writable?)");
  return Hdf5File(id, path, tmp);
}

Hdf5File Hdf5File::create(const std::string& path) { return create_with(path, H5P_DEFAULT); }

Hdf5File Hdf5File::create_sealed(const std::string& path) {
  H5Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);  // the user block the seal is written into
  MR_CHECK(fcpl.ok() && H5Pset_userblock(fcpl.get(), kSealBytes) >= 0, path + ": cannot reserve the seal's header");
  Hdf5File f = create_with(path, fcpl.get());
  f.sealed_ = true;
  return f;
}

Hdf5File Hdf5File::open_sealed(const std::string& path) {
  MR_CHECK(::access(path.c_str(), R_OK) == 0, path + ": cannot read (" + std::strerror(errno) + ")");
  check_seal(path);
  return open(path);
}

Hdf5File Hdf5File::open(const std::string& path) {
  silence_hdf5();
  MR_CHECK(::access(path.c_str(), R_OK) == 0, path + ": cannot read (" + std::strerror(errno) + ")");
  MR_CHECK(H5Fis_hdf5(path.c_str()) > 0, path + ": not an HDF5 file (truncated or corrupted?)");
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  MR_CHECK(id >= 0, path + ": HDF5 cannot open it (truncated or corrupted?)");
  return Hdf5File(id, path, "");
}

Hdf5File::Hdf5File(Hdf5File&& o) noexcept
    : id_(o.id_), path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), sealed_(o.sealed_) {
  o.id_ = -1;
  o.tmp_.clear();
}

Hdf5File::~Hdf5File() {
  if (id_ >= 0) H5Fclose(id_);
  if (!tmp_.empty()) std::remove(tmp_.c_str());  // never committed: no half-written file remains
}

void Hdf5File::write(const std::string& path, const Tensor& t) {
  Tensor h = t.cpu();
  std::vector<hsize_t> dims(h.shape().begin(), h.shape().end());
  H5Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  H5Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!dims.empty() && h.numel() > 0) {
    // Chunks of about 1 MiB along the first dimension, each with its own checksum.
    std::vector<hsize_t> chunk = dims;
    size_t row_bytes = dtype_size(h.dtype());
    for (size_t i = 1; i < dims.size(); ++i) row_bytes *= dims[i];
    chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], (size_t(1) << 20) / std::max<size_t>(row_bytes, 1)));
    H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data());
    H5Pset_fletcher32(dcpl.get());
  }
  H5Handle ds(H5Dcreate2(id_, path.c_str(), native_type(h.dtype()), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
          H5Dclose);
  MR_CHECK(ds.ok(), path_ + ": cannot create dataset " + path);
  if (h.numel() > 0)
    MR_CHECK(H5Dwrite(ds.get(), native_type(h.dtype()), H5S_ALL, H5S_ALL, H5P_DEFAULT, h.raw_data()) >= 0,
             path_ + ": cannot write dataset " + path + " (disk full?)");
}

void Hdf5File::write_strings(const std::string& path, const std::vector<std::string>& values) {
  size_t width = 1;
  for (const auto& s : values) width = std::max(width, s.size());
  std::vector<char> padded(values.size() * width, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(padded.data() + i * width, values[i].data(), values[i].size());
  hsize_t n = values.size();
  H5Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5Handle type(fixed_string_type(width), H5Tclose);
  H5Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  H5Handle ds(H5Dcreate2(id_, path.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  MR_CHECK(ds.ok(), path_ + ": cannot create dataset " + path);
  if (n > 0)
    MR_CHECK(H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, padded.data()) >= 0,
             path_ + ": cannot write dataset " + path);
}

namespace {
template <typename V> void put_attr(hid_t obj, const std::string& file, const std::string& name, hid_t type, const V& v) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle a(H5Acreate2(obj, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  MR_CHECK(a.ok() && H5Awrite(a.get(), type, &v) >= 0, file + ": cannot write attribute " + name);
}
// H5Aread writes every value the attribute holds: one that holds several, read into one variable,
// overflowed our stack (fuzz_song_images, session 9: six values, 48 bytes into an int64).
void check_one_value(hid_t attr, const std::string& file, const std::string& name) {
  H5Handle space(H5Aget_space(attr), H5Sclose);
  const hssize_t n = space.ok() ? H5Sget_simple_extent_npoints(space.get()) : -1;
  MR_CHECK(n == 1, file + ": attribute '" + name + "' holds " + std::to_string(n) + " values, expected one");
}

template <typename V> V get_attr(hid_t obj, const std::string& file, const std::string& name, hid_t type) {
  MR_CHECK(H5Aexists(obj, name.c_str()) > 0, file + ": attribute '" + name + "' missing");
  H5Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  MR_CHECK(a.ok(), file + ": cannot read attribute '" + name + "'");
  check_one_value(a.get(), file, name);
  V v{};
  MR_CHECK(a.ok() && H5Aread(a.get(), type, &v) >= 0, file + ": cannot read attribute '" + name + "'");
  return v;
}
}  // namespace

void Hdf5File::set_attr(const std::string& n, int64_t v) { put_attr(id_, path_, n, H5T_NATIVE_INT64, v); }
void Hdf5File::set_attr_u64(const std::string& n, uint64_t v) { put_attr(id_, path_, n, H5T_NATIVE_UINT64, v); }
void Hdf5File::set_attr(const std::string& n, double v) { put_attr(id_, path_, n, H5T_NATIVE_DOUBLE, v); }
void Hdf5File::set_attr(const std::string& n, const std::string& v) {
  if (H5Aexists(id_, n.c_str()) > 0) H5Adelete(id_, n.c_str());
  H5Handle type(fixed_string_type(v.size()), H5Tclose);
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle a(H5Acreate2(id_, n.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  std::vector<char> padded(std::max<size_t>(1, v.size()), '\0');
  std::memcpy(padded.data(), v.data(), v.size());
  MR_CHECK(a.ok() && H5Awrite(a.get(), type.get(), padded.data()) >= 0, path_ + ": cannot write attribute " + n);
}

void Hdf5File::commit() {
  MR_CHECK(!tmp_.empty(), path_ + ": commit() of a file opened for reading");
  MR_CHECK(H5Fflush(id_, H5F_SCOPE_GLOBAL) >= 0, path_ + ": flush failed (disk full?)");
  H5Fclose(id_);
  id_ = -1;
  if (sealed_) seal_file(tmp_);  // a failure leaves the temporary to the destructor
  fsync_path(tmp_, false);
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    tmp_.clear();
    MR_CHECK(false, path_ + ": cannot rename the finished file into place");
  }
  tmp_.clear();
  fsync_path(parent_dir(path_), true);
}

bool Hdf5File::has(const std::string& path) const {
  if (H5Lexists(id_, path.c_str(), H5P_DEFAULT) <= 0) return false;
  H5Handle obj(H5Oopen(id_, path.c_str(), H5P_DEFAULT), H5Oclose);
  return obj.ok() && H5Iget_type(obj.get()) == H5I_DATASET;
}

namespace {
std::string dims_str(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}
}  // namespace

namespace {

// A size or count held as a double, for a message. Casting a double of 2^64 or more to uint64_t is
// undefined (fuzz_song_images: a storage size of 2^64 - 1 rounds up to 2^64 as a double; UBSan).
std::string count_text(double v) {
  if (!(v >= 0)) return "?";
  return v >= 18446744073709551615.0 ? "18446744073709551615 or more" : std::to_string(uint64_t(v));
}

// What a dataset's layout must store for the extent it claims (see check_claimed_size).
void check_layout(hid_t dataset, uint64_t elements, uint64_t element_bytes, double stored, const std::string& what) {
  H5Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
  const H5D_layout_t layout = dcpl.ok() ? H5Pget_layout(dcpl.get()) : H5D_LAYOUT_ERROR;
  // Contiguous and compact data is never filtered: the layout must store at least what the extent
  // claims (callers pass an element size no larger than the file's). libhdf5 1.10.8 reads the extent's
  // worth through a buffer of the smaller stored size.
  if (layout == H5D_COMPACT || layout == H5D_CONTIGUOUS)
    MR_CHECK(double(elements) * double(element_bytes) <= stored,
             what + " claims " + std::to_string(elements) + " elements of " + std::to_string(element_bytes) +
                 " bytes in an unfiltered layout of " + count_text(stored) + " bytes");
  if (layout != H5D_CHUNKED) return;
  H5Handle space(H5Dget_space(dataset), H5Sclose);
  const int nd = space.ok() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  // libhdf5 creates chunked datasets only over simple dataspaces of 1 to 32 dimensions; over a scalar
  // one (a damaged dataspace or layout message) 1.10.8's read loops without end building its chunk map
  // (fuzz_cf_cache: a third of its inputs at one point, each stopped by the watchdog).
  MR_CHECK(nd > 0 && nd <= 32, what + " is chunked over a dataspace of " + std::to_string(nd) +
                                   " dimensions (its layout is damaged)");
  std::vector<hsize_t> dims(size_t(nd), 0), chunk(size_t(nd), 0);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  MR_CHECK(H5Pget_chunk(dcpl.get(), nd, chunk.data()) == nd, what + " has a damaged chunk layout");
  // A read walks every chunk the dataset is split into, stored or not: a damaged chunk layout of one
  // element per chunk made a read of a few kB take seconds (fuzz_checkpoint, the watchdog's most common
  // stop). Real files hold kilobytes per chunk (MSD: ~8 kB, ours: up to 1 MB), so a dataset may have at
  // most one chunk per 8 stored bytes, plus 1,024.
  double chunks = 1, chunk_bytes = double(element_bytes);
  for (int i = 0; i < nd; ++i) {
    MR_CHECK(chunk[size_t(i)] > 0, what + " has a chunk dimension of 0");
    chunks *= std::ceil(double(dims[size_t(i)]) / double(chunk[size_t(i)]));
    chunk_bytes *= double(chunk[size_t(i)]);
  }
  MR_CHECK(chunks <= stored / 8 + 1024, what + " is split into " + count_text(chunks) +
                                            " chunks for " + count_text(stored) +
                                            " stored bytes (its chunk layout is damaged)");
  // Without a compressing filter every stored chunk is a whole chunk (plus a 4-byte checksum with
  // Fletcher-32). A pipeline damaged into "no compression" over a 140-byte compressed chunk made
  // libhdf5 copy 8,160 bytes out of it (fuzz_msd: H5VM_memcpyvv, 11 % of its inputs).
  bool compressed = false, checksummed = false;
  const int nfilters = H5Pget_nfilters(dcpl.get());
  for (int i = 0; i < nfilters; ++i) {
    unsigned flags = 0, config = 0;
    size_t nvalues = 0;
    const H5Z_filter_t id = H5Pget_filter2(dcpl.get(), unsigned(i), &flags, &nvalues, nullptr, 0, nullptr, &config);
    if (id == H5Z_FILTER_FLETCHER32) checksummed = true;
    else if (id != H5Z_FILTER_SHUFFLE) compressed = true;
  }
  if (nfilters >= 0 && !compressed)
    MR_CHECK(stored >= chunk_bytes + (checksummed ? 4 : 0),
             what + " stores " + count_text(stored) + " bytes, less than one uncompressed chunk of " +
                 std::to_string(uint64_t(chunk_bytes)) + " (its chunk layout or filters are damaged)");
}

}  // namespace

void check_claimed_size(hid_t dataset, uint64_t elements, uint64_t element_bytes, const std::string& what) {
  if (elements == 0) return;
  // The storage size comes from the dataset's own layout message or chunk index, which a damaged file
  // can forge too (found by fuzz_song_images: a string list claiming 2^62 entries "stored" in a 17 kB
  // file), so it may not exceed the file's real size.
  double stored = double(H5Dget_storage_size(dataset));
  H5Handle file(H5Iget_file_id(dataset), H5Fclose);
  hsize_t file_bytes = 0;
  if (file.ok() && H5Fget_filesize(file.get(), &file_bytes) >= 0) {
    // A chunked dataset's storage size is the sum of its chunk index's sizes, which is also what
    // libhdf5 allocates to read each chunk: a damaged index claiming a 2 GB chunk in a 58 kB file made
    // every read allocate and clear 2 GB (fuzz_msd: a tenth of its inputs, each taking seconds).
    MR_CHECK(stored <= double(file_bytes), what + " claims " + count_text(stored) +
                                               " stored bytes in a file of " + std::to_string(file_bytes) +
                                               " (its layout or chunk index is damaged)");
  }
  MR_CHECK(stored > 0, what + " has no stored data");
  MR_CHECK(double(elements) * double(element_bytes) <= 64.0 * stored + 1e6,
           what + " claims " + std::to_string(elements) + " elements, more than its " + count_text(stored) +
               " stored bytes can hold");
  check_layout(dataset, elements, element_bytes, stored, what);
}

Tensor Hdf5File::read(const std::string& path) const {
  MR_CHECK(has(path), path_ + ": dataset /" + path + " missing");
  H5Handle ds(H5Dopen2(id_, path.c_str(), H5P_DEFAULT), H5Dclose);
  MR_CHECK(ds.ok(), path_ + ": cannot open dataset /" + path);
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  int nd = H5Sget_simple_extent_ndims(space.get());
  MR_CHECK(nd >= 0 && nd <= 4, path_ + ": dataset /" + path + " has " + std::to_string(nd) +
                                   " dimensions (at most 4 supported)");
  std::vector<hsize_t> dims(static_cast<size_t>(nd));
  if (nd > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  H5Handle type(H5Dget_type(ds.get()), H5Tclose);
  DType dt = DType::F32;
  const H5T_class_t cls = H5Tget_class(type.get());
  // The element size is the file's datatype message, which a damaged file forges too: a "float" of 72
  // bytes (precision 64) was read as float32 and libhdf5 copied 72-byte elements out of a chunk buffer
  // sized for 8-byte ones (fuzz_msd: a heap overflow in H5VM_memcpyvv, 2.5 % of its inputs).
  const size_t element_bytes = H5Tget_size(type.get());
  if (cls == H5T_FLOAT && (element_bytes == 4 || element_bytes == 8)) dt = element_bytes == 8 ? DType::F64 : DType::F32;
  else if (cls == H5T_INTEGER && element_bytes == 4) dt = DType::I32;
  else
    MR_CHECK(false, path_ + ": dataset /" + path + " has an unsupported element type (" +
                        (cls == H5T_FLOAT ? "a float" : cls == H5T_INTEGER ? "an integer" : "not a number") + " of " +
                        std::to_string(element_bytes) + " bytes; floats of 4 or 8 bytes and 32-bit integers are read)");
  Shape shape(dims.begin(), dims.end());
  // Every partial product in floating point, so shape_numel below cannot overflow: a forged extent
  // such as [2^53, 2^23, 0] has 0 elements but overflows on the way (found by fuzz_song_images).
  double claimed = 1;
  for (hsize_t d : dims) {
    claimed *= double(d);
    MR_CHECK(double(d) <= double(int64_t(1) << 34) && claimed <= double(int64_t(1) << 34),
             path_ + ": dataset /" + path + " has extent " + dims_str(dims) + " (at most 2^34 elements supported)");
  }
  const int64_t numel = shape_numel(shape);
  check_claimed_size(ds.get(), uint64_t(numel), dtype_size(dt), path_ + ": dataset /" + path);
  Tensor t = Tensor::empty(shape, dt, Device::cpu());
  if (numel > 0)
    MR_CHECK(H5Dread(ds.get(), native_type(dt), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw_data()) >= 0,
             path_ + ": dataset /" + path + " cannot be read (checksum mismatch or truncated data: the file is corrupted)");
  return t;
}

std::vector<std::string> Hdf5File::read_strings(const std::string& path) const {
  MR_CHECK(has(path), path_ + ": dataset /" + path + " missing");
  H5Handle ds(H5Dopen2(id_, path.c_str(), H5P_DEFAULT), H5Dclose);
  H5Handle space(H5Dget_space(ds.get()), H5Sclose);
  MR_CHECK(H5Sget_simple_extent_ndims(space.get()) == 1, path_ + ": dataset /" + path + " is not a string list");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  H5Handle ftype(H5Dget_type(ds.get()), H5Tclose);
  MR_CHECK(ftype.ok() && H5Tget_class(ftype.get()) == H5T_STRING, path_ + ": dataset /" + path + " is not a string list");
  if (H5Tis_variable_str(ftype.get()) <= 0) {
    const size_t width = H5Tget_size(ftype.get());
    MR_CHECK(width > 0, path_ + ": dataset /" + path + " has strings of 0 bytes");
    check_claimed_size(ds.get(), n, width, path_ + ": dataset /" + path);
    std::vector<char> bytes(n * width);
    H5Handle type(fixed_string_type(width), H5Tclose);
    if (n > 0)
      MR_CHECK(H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()) >= 0,
               path_ + ": dataset /" + path + " cannot be read (corrupted?)");
    return unpad_strings(bytes, width, n);
  }
  check_claimed_size(ds.get(), n, sizeof(char*), path_ + ": dataset /" + path);
  H5Handle type(vlen_string_type(), H5Tclose);
  std::vector<char*> ptrs(n, nullptr);
  if (n > 0)
    MR_CHECK(H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) >= 0,
             path_ + ": dataset /" + path + " cannot be read (corrupted?)");
  std::vector<std::string> out;
  out.reserve(n);
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  if (n > 0) H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, ptrs.data());
  return out;
}

bool Hdf5File::has_attr(const std::string& name) const { return H5Aexists(id_, name.c_str()) > 0; }
int64_t Hdf5File::attr_i64(const std::string& n) const { return get_attr<int64_t>(id_, path_, n, H5T_NATIVE_INT64); }
uint64_t Hdf5File::attr_u64(const std::string& n) const { return get_attr<uint64_t>(id_, path_, n, H5T_NATIVE_UINT64); }
double Hdf5File::attr_f64(const std::string& n) const { return get_attr<double>(id_, path_, n, H5T_NATIVE_DOUBLE); }

std::string Hdf5File::attr_str(const std::string& name) const {
  MR_CHECK(has_attr(name), path_ + ": attribute '" + name + "' missing");
  H5Handle a(H5Aopen(id_, name.c_str(), H5P_DEFAULT), H5Aclose);
  H5Handle ftype(H5Aget_type(a.get()), H5Tclose);
  MR_CHECK(H5Tget_class(ftype.get()) == H5T_STRING, path_ + ": attribute '" + name + "' is not a string");
  if (H5Tis_variable_str(ftype.get()) <= 0) {
    // The width comes from the attribute's datatype message: no more than the file holds.
    const size_t width = H5Tget_size(ftype.get());
    hsize_t file_bytes = 0;
    MR_CHECK(H5Fget_filesize(id_, &file_bytes) >= 0 && width > 0 && width <= file_bytes,
             path_ + ": attribute '" + name + "' claims a string of " + std::to_string(width) + " bytes in a file of " +
                 std::to_string(file_bytes));
    H5Handle space(H5Aget_space(a.get()), H5Sclose);
    MR_CHECK(space.ok() && H5Sget_simple_extent_npoints(space.get()) == 1, path_ + ": attribute '" + name + "' is not one string");
    std::vector<char> bytes(width);
    H5Handle type(fixed_string_type(width), H5Tclose);
    MR_CHECK(H5Aread(a.get(), type.get(), bytes.data()) >= 0, path_ + ": cannot read attribute '" + name + "'");
    return unpad_strings(bytes, width, 1)[0];
  }
  check_one_value(a.get(), path_, name);  // one pointer
  H5Handle type(vlen_string_type(), H5Tclose);
  char* p = nullptr;
  MR_CHECK(H5Aread(a.get(), type.get(), &p) >= 0 && p, path_ + ": cannot read attribute '" + name + "'");
  std::string s(p);
  H5free_memory(p);
  return s;
}

std::vector<std::string> Hdf5File::datasets() const {
  std::vector<std::string> out;
  std::set<haddr_t> entered;
  H5O_info_t root{};
  if (H5Oget_info2(id_, &root, H5O_INFO_BASIC) >= 0) entered.insert(root.addr);
  DatasetWalk walk{&out, &entered, "", 0};
  hsize_t next = 0;
  MR_CHECK(H5Literate(id_, H5_INDEX_NAME, H5_ITER_INC, &next, collect_datasets, &walk) >= 0,
           path_ + ": cannot list its datasets (damaged groups, or nested over " + std::to_string(kMaxGroupDepth) + " deep)");
  return out;
}

}  // namespace musicrec
