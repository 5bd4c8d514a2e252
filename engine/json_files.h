// JSON (and other text) files of a run folder or report: written whole through a temporary and a
// rename (never half-written), or appended one object per line (metrics.jsonl).
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace musicrec {

// JSON text of `j`. Strings read from files may hold bytes that are not UTF-8 (a CSV header, an MSD
// title); nlohmann's dump() throws on those, so every dump of data goes through here and such bytes
// become U+FFFD instead of aborting a command after its work is done.
std::string json_text(const nlohmann::json& j, int indent = -1);

// Writes `text` to a temporary beside `path` and renames it into place; a failed write removes the
// temporary and is an error naming `path`.
void write_text_file(const std::string& path, const std::string& text);
void write_json_file(const std::string& path, const nlohmann::json& j);
void append_json_line(const std::string& path, const nlohmann::json& j);
nlohmann::json read_json_file(const std::string& path);

}  // namespace musicrec
