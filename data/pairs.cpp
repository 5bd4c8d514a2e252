// Song pairs from Last.fm similarity (see pairs.h).
#include "data/pairs.h"

#include <algorithm>
#include <set>
#include <unordered_set>

#include "kernels/error.h"
#include "kernels/philox.h"

namespace musicrec::data {
namespace {

struct Part {
  std::vector<SongPair> positives, listed_negatives;
  std::vector<int32_t> sources;  // source rows, for random negatives
};

uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

// Fills `out` with the part's positives and `need` negatives: listed ones first (a seeded sample when
// there are more than needed), then random unlisted partners from `pool`.
void assemble(Part& p, size_t need, const std::vector<int32_t>& pool, const std::unordered_set<uint64_t>& listed,
              uint64_t seed, uint64_t stream, std::vector<SongPair>& out, PairSets& stats) {
  std::set<uint64_t> seen;
  for (auto& sp : p.positives)
    if (seen.insert(key(sp.a, sp.b)).second) out.push_back(sp);
  // Seeded shuffle of the listed negatives, then take what is needed.
  auto& ln = p.listed_negatives;
  for (size_t i = ln.size(); i > 1; --i)
    std::swap(ln[i - 1], ln[std::min(i - 1, size_t(double(rng::uniform(seed, stream, i)) * double(i)))]);
  size_t added = 0;
  for (auto& sp : ln) {
    if (added == need) break;
    if (seen.insert(key(sp.a, sp.b)).second) {
      out.push_back(sp);
      ++added;
      ++stats.listed_negatives;
    }
  }
  if (p.sources.empty() || pool.size() < 2) return;
  uint64_t counter = 0;
  const uint64_t max_tries = 20 * (need - added) + 1000;
  for (uint64_t tries = 0; added < need && tries < max_tries; ++tries) {
    auto w = rng::philox_block(seed, stream + 1, counter++);
    int32_t a = p.sources[w[0] % p.sources.size()];
    int32_t b = pool[w[1] % pool.size()];
    if (a == b || listed.count(key(a, b)) || !seen.insert(key(a, b)).second) continue;
    out.push_back({a, b, 0.f, 0});
    ++added;
    ++stats.random_negatives;
  }
}

}  // namespace

PairSets build_pairs(const std::vector<LastfmTrack>& lastfm_train, const std::vector<LastfmTrack>& lastfm_test,
                     const std::unordered_map<std::string, int64_t>& catalogue, const PairOptions& opt) {
  MR_CHECK(opt.threshold > 0 && opt.threshold <= 1, "pairs: threshold must be in (0, 1]");
  MR_CHECK(opt.negatives_per_positive > 0, "pairs: negatives per positive must be positive");
  auto row_of = [&](const std::string& id) -> int32_t {
    auto it = catalogue.find(id);
    return it == catalogue.end() ? -1 : int32_t(it->second);
  };
  std::unordered_set<int32_t> test_rows;
  std::vector<int32_t> train_pool, test_pool;
  for (auto& t : lastfm_test)
    if (int32_t r = row_of(t.track_id); r >= 0 && test_rows.insert(r).second) test_pool.push_back(r);
  for (auto& t : lastfm_train)
    if (int32_t r = row_of(t.track_id); r >= 0 && !test_rows.count(r)) train_pool.push_back(r);
  std::sort(train_pool.begin(), train_pool.end());
  train_pool.erase(std::unique(train_pool.begin(), train_pool.end()), train_pool.end());

  PairSets out;
  Part train, val, test;
  std::unordered_set<uint64_t> listed;
  auto collect = [&](const std::vector<LastfmTrack>& tracks, bool is_test) {
    for (auto& t : tracks) {
      const int32_t a = row_of(t.track_id);
      if (a < 0) continue;
      if (!is_test && test_rows.count(a)) continue;
      Part& part = is_test ? test
                           : (double(rng::uniform(opt.seed, 1, uint64_t(a))) - 1e-9 < opt.validation_fraction ? val : train);
      part.sources.push_back(a);
      for (auto& [sid, score] : t.similars) {
        const int32_t b = row_of(sid);
        if (b < 0) {
          ++out.dropped_partner_missing;
          continue;
        }
        if (!is_test && test_rows.count(b)) continue;  // no test track in training
        if (a == b) continue;
        listed.insert(key(a, b));
        SongPair sp{a, b, float(score), int8_t(score >= opt.threshold ? 1 : 0)};
        (sp.label ? part.positives : part.listed_negatives).push_back(sp);
      }
    }
  };
  collect(lastfm_train, false);
  collect(lastfm_test, true);
  if (opt.max_train_positives >= 0 && int64_t(train.positives.size()) > opt.max_train_positives)
    train.positives.resize(size_t(opt.max_train_positives));
  const double ratio = opt.balanced ? 1.0 : opt.negatives_per_positive;
  assemble(train, size_t(double(train.positives.size()) * ratio + 0.5), train_pool, listed, opt.seed, 10, out.train, out);
  assemble(val, size_t(double(val.positives.size()) * ratio + 0.5), train_pool, listed, opt.seed, 20, out.validation, out);
  assemble(test, test.positives.size(), test_pool.size() >= 2 ? test_pool : train_pool, listed, opt.seed, 30, out.test, out);
  return out;
}

}  // namespace musicrec::data
