// `musicrec recommend`: a playlist for a listener from their Spotify history and a trained pair CNN.
// The listener's five most played songs that the catalogue has are the seeds; every catalogue song the
// listener has not played is scored against each seed by the pair head (through models::CatalogueHead) over cached tower vectors
// (RUN/tower_vectors.h5, rebuilt when the checkpoint or the image cache changes); a candidate's score
// is its best (or mean) score over the seeds, and the output names the seed it is closest to.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace musicrec::apps {

struct RecommendOptions {
  std::string model, msd, format = "table", aggregate = "max", by = "plays", device = "auto", out;
  std::vector<std::string> history;
  int64_t top = 20, min_ms = 30000;
};

struct Recommendation {
  std::string track_id, artist, title, closest_seed;
  double score;
};

// candidate_ids, when given, receives the track ids of every song the listener could be recommended
// (the catalogue less what they played): what a random pick would choose from.
std::vector<Recommendation> recommend(const RecommendOptions& o, std::vector<std::string>* candidate_ids = nullptr);

// Writes recommendations in o.format (table, json, m3u, csv) to o.out (atomically: a temporary file
// renamed into place) or, except csv, to standard output.
void write_recommendations(const RecommendOptions& o, const std::vector<Recommendation>& recs);

}  // namespace musicrec::apps
