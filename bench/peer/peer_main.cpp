// musicrec_peer: our side of the PyTorch comparison (bench/peer/README.md).
//
//   musicrec_peer parity --model cf|pairs --out DIR [--device D --steps 50 --batch 256 --seed 1]
//     writes DIR/init.h5 (the initial weights, a normal checkpoint), DIR/batches.h5 (every step's inputs)
//     and DIR/ours.json (the loss of each step, the optimizer and the model's sizes), training with
//     dropout off so that bench/peer/peer.py can replay the same steps from the same weights.
//   musicrec_peer speed --model cf|pairs --batch B [--device D --steps 50 --repeats 5 --seed 1]
//     times whole training steps (forward, loss, backward, Adam) on batches already on the device and
//     prints one JSON line: the median over repeats of samples/s and ms/step.
//   musicrec_peer infer [--n 141000 --device D]: one seed scored against an N-song catalogue from tower
//     vectors, with the plain pair head and with our catalogue head (two JSON lines).
//   musicrec_peer kde [--n 127000 --method auto|exact|binned|naive|tiled --device D]: KDE sample weights.
//   musicrec_peer ops [--n 256 --device D]: the cost of an op itself (dispatch, autograd, allocation,
//     on a GPU the launch): a chain of 100 elementwise ops on n elements and its backward, in ops/s.
//
// Both models are built at the sizes they train at: the CF baseline with the real KKBox train.csv's
// cardinalities (plus index 0, "unknown"), the pair CNN at its defaults with one distinct song per pair
// in a batch (the tower runs on B images; the two sides index into them). The peer builds the same
// shapes from ours.json, so the two sides cannot drift apart.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/checkpoint.h"
#include "engine/device.h"
#include "engine/hdf5_file.h"
#include "engine/json_files.h"
#include "engine/kde.h"
#include "engine/random.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "kernels/error.h"
#include "models/cf_model.h"
#include "models/pair_cnn.h"

namespace musicrec {
namespace {

struct Options {
  std::string mode, model = "cf", out, device = "auto";
  int64_t steps = 50, batch = 256, repeats = 5, seed = 1;
  int64_t n = 0;            // infer: catalogue songs (141,000); kde: samples (127,000); ops: elements (256)
  std::string method = "auto";  // kde: the engine's method names
};

// KKBox train.csv's distinct values per feature (member, song, source_system_tab, source_screen_name,
// source_type, genre, artist, language, city, gender, registered_via, age_bucket), each + 1 for index 0.
const std::vector<int64_t> kKkboxCardinality = {30756, 359967, 9, 22, 14, 574, 40583, 11, 22, 4, 6, 10};

// One training step's inputs, on the host and on the device.
struct Batch {
  // CF
  Tensor cat, num, target;
  // pairs
  Tensor images, side_a, side_b, label, weight;
  Batch to(Device d) const {
    Batch b;
    for (auto [dst, src] : {std::pair{&b.cat, &cat}, {&b.num, &num}, {&b.target, &target}, {&b.images, &images},
                            {&b.side_a, &side_a}, {&b.side_b, &side_b}, {&b.label, &label}, {&b.weight, &weight}})
      if (src->defined()) *dst = src->to(d);
    return b;
  }
};

Batch make_batch(const Options& o, const models::PairCnnConfig& pc, std::mt19937_64& rng) {
  Batch b;
  const int64_t B = o.batch;
  std::normal_distribution<float> normal(0.f, 1.f);
  if (o.model == "cf") {
    const int64_t F = int64_t(kKkboxCardinality.size());
    std::vector<int32_t> cat(static_cast<size_t>(F * B)), target(static_cast<size_t>(B));
    for (int64_t f = 0; f < F; ++f) {
      std::uniform_int_distribution<int32_t> code(0, int32_t(kKkboxCardinality[size_t(f)] - 1));
      for (int64_t i = 0; i < B; ++i) cat[size_t(f * B + i)] = code(rng);
    }
    std::vector<float> num(static_cast<size_t>(B * 2));
    for (auto& v : num) v = normal(rng);
    for (auto& t : target) t = int32_t(rng() & 1);
    b.cat = Tensor::from_vector(cat, {F, B});
    b.num = Tensor::from_vector(num, {B, 2});
    b.target = Tensor::from_vector(target, {B});
  } else {
    const int64_t U = B, pixels = pc.height * pc.width;
    std::vector<float> images(static_cast<size_t>(U * pixels)), label(static_cast<size_t>(B)), weight(static_cast<size_t>(B));
    for (auto& v : images) v = normal(rng);
    std::vector<int32_t> a(static_cast<size_t>(B)), c(static_cast<size_t>(B));
    std::uniform_int_distribution<int32_t> song(0, int32_t(U - 1));
    std::bernoulli_distribution similar(0.1);
    for (int64_t i = 0; i < B; ++i) {
      a[size_t(i)] = song(rng);
      c[size_t(i)] = song(rng);
      label[size_t(i)] = similar(rng) ? 1.f : 0.f;
      weight[size_t(i)] = label[size_t(i)] > 0 ? 10.f : 1.f;  // the class weights of `--weights class`
    }
    b.images = Tensor::from_vector(images, {U, 1, pc.height, pc.width});
    b.side_a = Tensor::from_vector(a, {B});
    b.side_b = Tensor::from_vector(c, {B});
    b.label = Tensor::from_vector(label, {B, 1});
    b.weight = Tensor::from_vector(weight, {B, 1});
  }
  return b;
}

// A model behind one interface: its loss on a batch.
struct Net {
  std::unique_ptr<models::CfModel> cf;
  std::unique_ptr<models::PairCnn> pairs;
  models::PairCnnConfig pair_config;
  Generator gen{1};
  Module& module() { return cf ? static_cast<Module&>(*cf) : static_cast<Module&>(*pairs); }
  Tensor loss(const Batch& b) {
    if (cf) return ops::mean(ops::softmax_cross_entropy(cf->forward(b.cat, b.num, gen), b.target));
    return ops::mean(ops::bce_with_logits(pairs->forward(b.images, b.side_a, b.side_b), b.label, b.weight));
  }
};

Net make_net(const Options& o, float dropout) {
  Net n;
  n.gen = Generator(uint64_t(o.seed));
  if (o.model == "cf") {
    models::CfModelConfig c;
    c.cardinality = kKkboxCardinality;
    c.dropout = dropout;
    n.cf = std::make_unique<models::CfModel>(c, n.gen);
  } else {
    MR_CHECK(o.model == "pairs", "musicrec_peer: --model must be cf or pairs, got '" + o.model + "'");
    n.pairs = std::make_unique<models::PairCnn>(n.pair_config, n.gen);
  }
  return n;
}

nlohmann::json model_json(const Options& o, const Net& n) {
  nlohmann::json j = {{"model", o.model}, {"batch", o.batch}};
  if (o.model == "cf") {
    j["cardinality"] = kKkboxCardinality;
    j["id_dim"] = n.cf->config().id_dim;
    j["feature_dim"] = n.cf->config().feature_dim;
    j["hidden"] = n.cf->config().hidden;
    j["numeric"] = n.cf->config().numeric;
  } else {
    const auto& c = n.pairs->config();
    j["height"] = c.height;
    j["width"] = c.width;
    j["filters"] = c.filters;
    j["dense1"] = c.dense1;
    j["dense2"] = c.dense2;
    j["song_vector_width"] = n.pairs->song_vector_width();
  }
  return j;
}

int parity(const Options& o) {
  const Device dev = parse_device(o.device);
  MR_CHECK(!o.out.empty(), "musicrec_peer parity: --out DIR is required");
  std::filesystem::create_directories(o.out);
  Net net = make_net(o, 0.f);  // dropout off: the peer cannot draw our masks
  save_checkpoint(o.out + "/init.h5", capture(net.module(), nullptr, net.gen));
  net.module().to(dev);
  AdamOptions ao;  // the training commands' optimizer at their default learning rate
  Adam opt(net.module().named_parameters(), ao);
  std::mt19937_64 rng(uint64_t(o.seed) * 7919 + 17);
  Hdf5File batches = Hdf5File::create(o.out + "/batches.h5");
  std::vector<double> losses;
  for (int64_t s = 0; s < o.steps; ++s) {
    const Batch hb = make_batch(o, net.pair_config, rng);
    const std::string p = fmt::format("step{:03d}/", s);
    for (auto [name, t] : {std::pair{"cat", &hb.cat}, {"num", &hb.num}, {"target", &hb.target}, {"images", &hb.images},
                           {"side_a", &hb.side_a}, {"side_b", &hb.side_b}, {"label", &hb.label}, {"weight", &hb.weight}})
      if (t->defined()) batches.write(p + name, *t);
    const Batch b = hb.to(dev);
    opt.zero_grad();
    Tensor loss = net.loss(b);
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  batches.commit();
  nlohmann::json j = model_json(o, net);
  j["device"] = dev.str();
  j["steps"] = o.steps;
  j["optimizer"] = {{"kind", "adam"}, {"lr", ao.lr}, {"beta1", ao.beta1}, {"beta2", ao.beta2}, {"eps", ao.eps},
                    {"sparse_embeddings", o.model == "cf"}};
  j["losses"] = losses;
  write_text_file(o.out + "/ours.json", j.dump(1) + "\n");
  fmt::print("musicrec_peer parity: {} steps of {} on {}; first loss {:.6f}, last {:.6f}; wrote {}\n", o.steps,
             o.model, dev.str(), losses.front(), losses.back(), o.out);
  return 0;
}

int speed(const Options& o) {
  const Device dev = parse_device(o.device);
  Net net = make_net(o, 0.5f);  // the model as it trains (the peer's dropout is on too)
  net.module().to(dev);
  Adam opt(net.module().named_parameters(), AdamOptions{});
  // A few batches on the device, used in turn, so neither data generation nor copies are timed.
  std::mt19937_64 rng(uint64_t(o.seed));
  std::vector<Batch> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(make_batch(o, net.pair_config, rng).to(dev));
  auto run_steps = [&](int64_t n) {
    Tensor loss;
    for (int64_t s = 0; s < n; ++s) {
      opt.zero_grad();
      loss = net.loss(batches[size_t(s) % batches.size()]);
      loss.backward();
      opt.step();
    }
    return loss.item();  // waits for the device
  };
  run_steps(std::max<int64_t>(5, o.steps / 5));  // warm-up: allocator, cuDNN plans, handles
  std::vector<double> ms;
  for (int64_t r = 0; r < o.repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run_steps(o.steps);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                 double(o.steps));
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  nlohmann::json j = {{"side", "musicrec"}, {"model", o.model}, {"batch", o.batch}, {"device", dev.str()},
                      {"ms_per_step", med}, {"samples_per_s", double(o.batch) * 1000.0 / med},
                      {"ms_per_step_all", ms}};
  fmt::print("{}\n", j.dump());
  return 0;
}

// Waits until t is computed: copies it to the host (the copy waits for the stream).
void wait_for(const Tensor& t) { (void)t.to(Device::cpu()); }

// Median over repeats of fn's wall time in ms (fn must wait for the device itself).
// `finish` runs once at the end of each repeat, inside its time: for calls that do not wait for the
// device themselves, the wait for the last one (as the peer's timed() synchronises after its loop).
template <typename Fn, typename Finish = void (*)()>
double median_ms(const Options& o, Fn&& fn, Finish&& finish = [] {}) {
  for (int i = 0; i < 3; ++i) fn();  // warm-up
  finish();
  std::vector<double> ms;
  for (int64_t r = 0; r < o.repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 0; s < o.steps; ++s) fn();
    finish();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                 double(o.steps));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void print_rate(const std::string& side, const std::string& what, int64_t n, const Device& dev, double ms) {
  nlohmann::json j = {{"side", side}, {"model", what}, {"batch", n}, {"device", dev.str()},
                      {"ms_per_step", ms}, {"samples_per_s", double(n) * 1000.0 / ms}};
  fmt::print("{}\n", j.dump());
}

// Scoring one seed song against every song of a catalogue with the pair head, from tower vectors
// already computed (what recommendation does per seed): the plain head over N pairs (the same pairs and
// function as the PyTorch peer's; PairCnn::head computes dense 1 by its column blocks instead of over a
// concatenation, the peer concatenates as written), and our catalogue head (dense 1 split so the
// catalogue's share is computed once, a different algorithm: its own row).
int infer(const Options& o) {
  const Device dev = parse_device(o.device);
  const int64_t N = o.n > 0 ? o.n : 141000;
  Options po = o;
  po.model = "pairs";
  Net net = make_net(po, 0.f);
  net.module().to(dev);
  net.module().train(false);
  autograd::NoGradGuard ng;
  Generator g(uint64_t(o.seed));
  Tensor vectors = Tensor::empty({N, net.pairs->song_vector_width()});
  init::uniform_(vectors, 0.f, 1.f, g);  // sigmoid outputs
  vectors = vectors.to(dev);
  std::vector<int32_t> seeds(static_cast<size_t>(N), 7);
  std::vector<int32_t> all(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) all[size_t(i)] = int32_t(i);
  const Tensor side_a = Tensor::from_vector(seeds, {N}, dev), side_b = Tensor::from_vector(all, {N}, dev);
  const double plain = median_ms(o, [&] {
    wait_for(net.pairs->head(vectors, side_a, side_b));
  });
  print_rate("musicrec", "pair-head", N, dev, plain);
  const models::CatalogueHead c = net.pairs->prepare_catalogue(vectors);
  const double cat = median_ms(o, [&] { wait_for(net.pairs->logits_against(c, 7)); });
  print_rate("musicrec", "catalogue-head", N, dev, cat);
  return 0;
}

// KDE sample weights of n scores in [0, 1] (bandwidth 0.2).
int kde(const Options& o) {
  const Device dev = parse_device(o.device);
  const int64_t n = o.n > 0 ? o.n : 127000;
  Generator g(uint64_t(o.seed));
  Tensor y = Tensor::empty({n});
  init::uniform_(y, 0.f, 1.f, g);
  y = y.to(dev);
  KdeOptions ko;
  ko.method = parse_kde_method(o.method);
  const double ms = median_ms(o, [&] { wait_for(kde_sample_weights(y, ko)); });
  // Named by what is computed, so the row meets the peer's exact sums: every method but binned is exact.
  const bool binned = ko.method == KdeMethod::Binned ||
                      (ko.method == KdeMethod::Auto && dev.type == DeviceType::CPU && n > ko.exact_limit);
  print_rate("musicrec", binned ? "kde-binned" : "kde-exact", n, dev, ms);
  return 0;
}

// What one op costs beside its arithmetic: 50 times (add a constant, ReLU) on n elements, the sum, and
// the backward through all of it, with the leaf's gradient dropped after each (as the peer's
// `x.grad = None`). With n small the arithmetic is nothing, so the time is the engine's per-op work:
// argument checks, the autograd record, allocations, and on a GPU the kernel launches, none waited for
// until the end of a repeat. The rate is forward ops per second, each with its backward.
constexpr int kChainPairs = 50;
int ops_chain(const Options& o) {
  const Device dev = parse_device(o.device);
  const int64_t n = o.n > 0 ? o.n : 256;
  Generator g(uint64_t(o.seed));
  Tensor x = Tensor::empty({n}), c = Tensor::empty({n});
  init::uniform_(x, -1.f, 1.f, g);
  init::uniform_(c, -1.f, 1.f, g);
  x = x.to(dev).set_requires_grad(true);
  c = c.to(dev);
  Tensor last;
  const double ms = median_ms(
      o,
      [&] {
        Tensor h = x;
        for (int i = 0; i < kChainPairs; ++i) h = ops::relu(ops::add(h, c));
        last = ops::sum(h);
        last.backward();
        x.zero_grad();
      },
      [&] { wait_for(last); });
  const double ops_per_step = 2.0 * kChainPairs;
  nlohmann::json j = {{"side", "musicrec"}, {"model", "op-chain (ops/s)"}, {"batch", n}, {"device", dev.str()},
                      {"ms_per_step", ms}, {"us_per_op", 1000.0 * ms / ops_per_step},
                      {"samples_per_s", ops_per_step * 1000.0 / ms}};
  fmt::print("{}\n", j.dump());
  return 0;
}

}  // namespace
}  // namespace musicrec

int main(int argc, char** argv) {
  using namespace musicrec;
  Options o;
  try {
    MR_CHECK(argc >= 2, "usage: musicrec_peer parity|speed|infer|kde|ops [--model cf|pairs --out DIR --device D --steps N --batch B "
             "--repeats R --seed S --n N --method M]");
    o.mode = argv[1];
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      MR_CHECK(i + 1 < argc, "musicrec_peer: " + a + " needs a value");
      const std::string v = argv[++i];
      if (a == "--model") o.model = v;
      else if (a == "--out") o.out = v;
      else if (a == "--device") o.device = v;
      else if (a == "--steps") o.steps = std::stoll(v);
      else if (a == "--batch") o.batch = std::stoll(v);
      else if (a == "--repeats") o.repeats = std::stoll(v);
      else if (a == "--seed") o.seed = std::stoll(v);
      else if (a == "--n") o.n = std::stoll(v);
      else if (a == "--method") o.method = v;
      else MR_CHECK(false, "musicrec_peer: unknown option " + a);
    }
    MR_CHECK(o.steps >= 1 && o.batch >= 2 && o.repeats >= 1, "musicrec_peer: --steps, --repeats must be >= 1, --batch >= 2");
    if (o.mode == "parity") return parity(o);
    if (o.mode == "speed") return speed(o);
    if (o.mode == "infer") return infer(o);
    if (o.mode == "kde") return kde(o);
    if (o.mode == "ops") return ops_chain(o);
    MR_CHECK(false, "musicrec_peer: mode must be parity, speed, infer, kde or ops, got '" + o.mode + "'");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "musicrec_peer: %s\n", e.what());
    return 1;
  }
  return 0;
}
