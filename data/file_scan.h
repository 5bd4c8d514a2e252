// Reads every file of a folder tree with a given extension on a few threads, in path order, keeping
// going past bad files: the result holds what each good file gave and the first few errors.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kernels/error.h"

namespace musicrec::data {

template <typename T>
struct ScanResult {
  std::vector<T> items;  // one per good file, in path order
  int64_t files = 0, bad = 0;
  std::vector<std::string> first_errors;  // up to 5
};

// Calls `visit(path)` for each file under `root` whose name ends in `extension`, in directory order,
// until it returns false. Folders whose names start with a dot are not entered: musicrec keeps its
// caches in `.musicrec-cache` beside the data (a scan read the image cache as a broken MSD file), and
// the MSD and Last.fm trees have no hidden folders.
template <typename Visit>
void visit_tree_files(const std::string& root, const std::string& extension, Visit visit) {
  MR_CHECK(std::filesystem::is_directory(root), root + ": not a directory");
  for (auto it = std::filesystem::recursive_directory_iterator(root); it != std::filesystem::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    if (it->is_directory() && name.size() > 1 && name[0] == '.') {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && it->path().extension() == extension && !visit(it->path().string())) return;
  }
}

// Those files, sorted.
inline std::vector<std::string> tree_files(const std::string& root, const std::string& extension) {
  std::vector<std::string> files;
  visit_tree_files(root, extension, [&](const std::string& f) {
    files.push_back(f);
    return true;
  });
  std::sort(files.begin(), files.end());
  return files;
}

// Whether there is one (stops at the first: a million-file tree is not listed to find out).
inline bool tree_has_files(const std::string& root, const std::string& extension) {
  bool found = false;
  visit_tree_files(root, extension, [&](const std::string&) { return !(found = true); });
  return found;
}

template <typename T, typename ReadFn>
ScanResult<T> scan_tree(const std::string& root, const std::string& extension, ReadFn read, int threads) {
  const std::vector<std::string> files = tree_files(root, extension);
  std::vector<T> got(files.size());
  std::vector<std::string> errors(files.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < files.size();) {
      try {
        got[i] = read(files[i]);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  };
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer's malloc in GCC 12 (and LLVM before 18) takes no lock around fork, so a reader
  // child (engine/isolated.h) forked while another scan thread is inside malloc can inherit the
  // sanitizer's allocator lock and hang until its time limit (seen in a sanitizer CI run: one of the
  // five real MSD files "bad" after 30 s). glibc's malloc does lock around fork: only sanitizer
  // builds scan with one thread.
  threads = 1;
#endif
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  ScanResult<T> r;
  r.files = int64_t(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    if (!errors[i].empty()) {
      ++r.bad;
      if (r.first_errors.size() < 5) r.first_errors.push_back(errors[i]);
      continue;
    }
    r.items.push_back(std::move(got[i]));
  }
  return r;
}

}  // namespace musicrec::data
