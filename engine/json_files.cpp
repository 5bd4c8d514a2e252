// JSON files of a run folder (see json_files.h).
#include "engine/json_files.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "kernels/error.h"

namespace musicrec {

std::string json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

void write_text_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp);
    MR_CHECK(f.good(), path + ": cannot create");
    f << text;
    f.flush();
    if (!f.good()) {
      std::remove(tmp.c_str());
      MR_CHECK(false, path + ": write failed (disk full?)");
    }
  }
  MR_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path + ": cannot rename into place");
}

void write_json_file(const std::string& path, const nlohmann::json& j) { write_text_file(path, json_text(j, 2) + "\n"); }

void append_json_line(const std::string& path, const nlohmann::json& j) {
  std::ofstream f(path, std::ios::app);
  MR_CHECK(f.good(), path + ": cannot open for appending");
  f << json_text(j) << "\n";
  MR_CHECK(f.good(), path + ": write failed (disk full?)");
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream f(path);
  MR_CHECK(f.good(), path + ": cannot read (" + std::strerror(errno) + ")");
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    MR_CHECK(false, path + ": not valid JSON (" + e.what() + ")");
  }
  return {};
}

}  // namespace musicrec
