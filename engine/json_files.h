// JSON files of a run folder: written whole through a temporary and a rename (never half-written), or
// appended one object per line (metrics.jsonl).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace musicrec {

void write_json_file(const std::string& path, const nlohmann::json& j);
void append_json_line(const std::string& path, const nlohmann::json& j);
nlohmann::json read_json_file(const std::string& path);

}  // namespace musicrec
