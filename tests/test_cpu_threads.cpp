// kernels/cpu/parallel.h: parallel_for runs every item once (in up to four chunks per thread), passes
// exceptions on, stays serial where it must (nested, forked child), and the kernels that use it give the
// same bits at any thread count.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/parallel.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
namespace k = kernels::cpu;

// Sets the kernels' thread count for one scope and restores the default after it.
struct Threads {
  explicit Threads(int n) { k::set_cpu_threads(n); }
  ~Threads() { k::set_cpu_threads(0); }
};

TEST(ParallelFor, RunsEveryItemOnceInContiguousChunks) {
  for (int threads : {1, 2, 3, 5})
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(2), int64_t(7), int64_t(1000)}) {
      Threads t(threads);
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> chunks{0};
      k::parallel_for(n, 1, [&](int64_t b, int64_t e) {
        ASSERT_LT(b, e);
        ++chunks;
        for (int64_t i = b; i < e; ++i) ++hits[size_t(i)];
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << n << " items, " << threads << " threads";
      if (threads == 1 || n <= 1) EXPECT_EQ(chunks.load(), n > 0 ? 1 : 0) << n << " items";
      else EXPECT_EQ(chunks.load(), std::min<int64_t>(4 * threads, n)) << n << " items, " << threads << " threads";
    }
}

TEST(ParallelFor, KeepsChunksOfAtLeastMinItemsAndNestsSerially) {
  Threads t(4);
  std::atomic<int> chunks{0}, inner_chunks{0};
  k::parallel_for(10, 4, [&](int64_t b, int64_t e) {
    ++chunks;
    EXPECT_EQ(e - b, 5);  // 10 items at 4 or more each: 2 chunks of 5, not 16
    k::parallel_for(100, 1, [&](int64_t, int64_t) { ++inner_chunks; });
  });
  EXPECT_EQ(chunks.load(), 2);
  EXPECT_EQ(inner_chunks.load(), 2) << "a parallel_for inside a chunk runs as one serial call";
}

TEST(ParallelFor, RethrowsAWorkersExceptionAfterEveryChunkEnds) {
  Threads t(3);
  std::atomic<int> finished{0};
  EXPECT_THROW(k::parallel_for(3, 1,
                               [&](int64_t b, int64_t) {
                                 if (b == 2) throw std::runtime_error("chunk 2");
                                 std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                 ++finished;
                               }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 2);
  // The pool still works afterwards.
  std::atomic<int> ran{0};
  k::parallel_for(3, 1, [&](int64_t, int64_t) { ++ran; });
  EXPECT_EQ(ran.load(), 3);
}

TEST(ParallelFor, AForkedChildRunsSerially) {
  Threads t(2);
  k::parallel_for(2, 1, [](int64_t, int64_t) {});  // the parent's pool exists now
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const auto caller = std::this_thread::get_id();
    bool others = false;
    k::parallel_for(8, 1, [&](int64_t, int64_t) { others |= std::this_thread::get_id() != caller; });
    _exit(others ? 3 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child hung or crashed";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Runs `kernel` at 1, 2 and 3 threads and compares every output bit for bit.
template <typename Run> void expect_same_bits_at_any_thread_count(Run run, const char* what) {
  std::vector<std::vector<float>> want;
  for (int threads : {1, 2, 3}) {
    Threads t(threads);
    std::vector<std::vector<float>> got = run();
    if (threads == 1) {
      want = got;
      continue;
    }
    ASSERT_EQ(got.size(), want.size());
    for (size_t o = 0; o < got.size(); ++o)
      for (size_t i = 0; i < got[o].size(); ++i)
        ASSERT_EQ(std::memcmp(&got[o][i], &want[o][i], sizeof(float)), 0)
            << what << ": output " << o << " element " << i << " at " << threads << " threads";
  }
}

std::vector<float> floats(const Shape& s, uint64_t seed, double lo = -3, double hi = 3) {
  return test::random_tensor(s, seed, lo, hi, DType::F32).to_vector<float>();
}

TEST(CpuThreads, PoolingAndTheSigmoidEpilogueGiveTheSameBits) {
  const int64_t N = 5, C = 7, H = 17, W = 30, HW = H * W, OHW = (H / 2) * (W / 2);
  const std::vector<float> x = floats({N, C, H, W}, 1), b = floats({C}, 2), g = floats({N, C, H, W}, 3);
  const std::vector<float> gp = floats({N, C, H / 2, W / 2}, 4);
  expect_same_bits_at_any_thread_count(
      [&] {
        std::vector<float> y(x.size()), gx(x.size()), gb(static_cast<size_t>(C)), py(static_cast<size_t>(N * C * OHW)), pgx(x.size());
        std::vector<int32_t> argmax(py.size());
        k::bias_sigmoid_nchw_forward<float>(x.data(), b.data(), y.data(), N, C, HW);
        k::bias_sigmoid_nchw_backward<float>(y.data(), g.data(), gx.data(), gb.data(), N, C, HW);
        k::maxpool2x2_forward<float>(x.data(), py.data(), argmax.data(), N * C, H, W);
        k::maxpool2x2_backward<float>(gp.data(), argmax.data(), pgx.data(), N * C, H, W);
        std::vector<float> a(argmax.begin(), argmax.end());
        return std::vector<std::vector<float>>{y, gx, gb, py, a, pgx};
      },
      "bias_sigmoid and maxpool2x2");
}

TEST(CpuThreads, DirectConvolutionGivesTheSameBits) {
  const int64_t N = 3, H = 40, W = 120, K = 16, KH = 5, KW = 10, OH = H - KH + 1, OW = W - KW + 1;
  const std::vector<float> x = floats({N, 1, H, W}, 5), w = floats({K, 1, KH, KW}, 6, -0.3, 0.3);
  const std::vector<float> gy = floats({N, K, OH, OW}, 7);
  expect_same_bits_at_any_thread_count(
      [&] {
        std::vector<float> y(static_cast<size_t>(N * K * OH * OW)), gw(w.size()), gw_pooled(w.size());
        std::vector<float> py(static_cast<size_t>(N * K * (OH / 2) * (OW / 2)));
        std::vector<int32_t> argmax(py.size());
        k::conv2d_forward_direct<float>(x.data(), w.data(), y.data(), N, 1, H, W, K, KH, KW);
        k::conv2d_backward_filter_direct<float>(x.data(), gy.data(), gw.data(), N, 1, H, W, K, KH, KW);
        k::conv2d_maxpool_forward<float>(x.data(), w.data(), nullptr, py.data(), argmax.data(), N, 1, H, W, K, KH, KW, 0,
                                         0);
        k::conv2d_maxpool_backward<float>(x.data(), w.data(), gy.data(), argmax.data(), nullptr, nullptr,
                                          gw_pooled.data(), nullptr, N, 1, H, W, K, KH, KW, 0, 0);  // gy's first values
        // With the sigmoid epilogue: the output, and the filter and bias gradients through it.
        const std::vector<float> b = floats({K}, 12);
        std::vector<float> sy(py.size()), sgw(w.size()), sgb(b.size());
        k::conv2d_maxpool_forward<float>(x.data(), w.data(), b.data(), sy.data(), argmax.data(), N, 1, H, W, K, KH, KW, 0,
                                         0);
        k::conv2d_maxpool_backward<float>(x.data(), w.data(), gy.data(), argmax.data(), sy.data(), nullptr, sgw.data(),
                                          sgb.data(), N, 1, H, W, K, KH, KW, 0, 0);
        std::vector<float> a(argmax.begin(), argmax.end());
        return std::vector<std::vector<float>>{y, gw, py, a, gw_pooled, sy, sgw, sgb};
      },
      "direct convolution");
}

// The direct kernels with input channels (conv 2's and conv 3's shapes): images split over threads, the
// filter gradient (lanes over channels) in fixed groups of images (N = 21: groups of one and two), the
// data gradient as a forward over the bordered gradient; and the layer in one pass with both gradients
// and the bias's.
class CpuThreadsChannels : public ::testing::TestWithParam<std::array<int64_t, 3>> {};
TEST_P(CpuThreadsChannels, DirectConvolutionWithChannelsGivesTheSameBits) {
  const auto [C, H, W] = GetParam();
  const int64_t N = 21, K = 32, KH = 2, KW = 2, OH = H - KH + 1, OW = W - KW + 1;
  const std::vector<float> x = floats({N, C, H, W}, 15), w = floats({K, C, KH, KW}, 16, -0.3, 0.3);
  const std::vector<float> gy = floats({N, K, OH, OW}, 17), b = floats({K}, 18);
  expect_same_bits_at_any_thread_count(
      [&] {
        std::vector<float> y(static_cast<size_t>(N * K * OH * OW)), gx(x.size()), gw(w.size());
        k::conv2d_forward_direct<float>(x.data(), w.data(), y.data(), N, C, H, W, K, KH, KW);
        k::conv2d_backward_data_direct<float>(gy.data(), w.data(), gx.data(), N, C, H, W, K, KH, KW);
        k::conv2d_backward_filter_direct<float>(x.data(), gy.data(), gw.data(), N, C, H, W, K, KH, KW);
        std::vector<float> py(static_cast<size_t>(N * K * (OH / 2) * (OW / 2))), pgx(x.size()), pgw(w.size());
        std::vector<float> pgb(b.size());
        std::vector<int32_t> argmax(py.size());
        k::conv2d_maxpool_forward<float>(x.data(), w.data(), b.data(), py.data(), argmax.data(), N, C, H, W, K, KH, KW, 0,
                                         0);
        k::conv2d_maxpool_backward<float>(x.data(), w.data(), gy.data(), argmax.data(), py.data(), pgx.data(),
                                          pgw.data(), pgb.data(), N, C, H, W, K, KH, KW, 0, 0);
        std::vector<float> a(argmax.begin(), argmax.end());
        return std::vector<std::vector<float>>{y, gx, gw, py, a, pgx, pgw, pgb};
      },
      "direct convolution with channels");
}
INSTANTIATE_TEST_SUITE_P(Conv2And3, CpuThreadsChannels,
                         ::testing::Values(std::array<int64_t, 3>{16, 18, 55}, std::array<int64_t, 3>{32, 8, 27}));

// The im2col path (padded convolutions; until session 14 layers 2 and 3): images split over threads
// with a single-threaded gemm each, and the filter gradient summed in fixed groups of images. N = 21
// gives groups of one and two images. The layer in one pass takes padding here, which keeps it on im2col.
TEST(CpuThreads, Im2colConvolutionGivesTheSameBits) {
  const int64_t N = 21, C = 16, H = 18, W = 55, K = 32, KH = 2, KW = 2, OH = H - KH + 1, OW = W - KW + 1;
  const std::vector<float> x = floats({N, C, H, W}, 8), w = floats({K, C, KH, KW}, 9, -0.3, 0.3);
  const std::vector<float> gy = floats({N, K, OH, OW}, 10);
  expect_same_bits_at_any_thread_count(
      [&] {
        std::vector<float> y(static_cast<size_t>(N * K * OH * OW)), gx(x.size()), gw(w.size());
        const auto im2col = k::ConvPath::Im2col;
        k::conv2d_forward<float>(x.data(), w.data(), y.data(), N, C, H, W, K, KH, KW, 0, 0, im2col);
        k::conv2d_backward_data<float>(gy.data(), w.data(), gx.data(), N, C, H, W, K, KH, KW, 0, 0, im2col);
        k::conv2d_backward_filter<float>(x.data(), gy.data(), gw.data(), N, C, H, W, K, KH, KW, 0, 0, im2col);
        // Convolution, pooling and the sigmoid epilogue in one pass (the layers' op), padded by one row and
        // column (output 19 x 56), gy's first values as the output's gradients.
        const int64_t PH = (OH + 2) / 2, PW = (OW + 2) / 2;
        std::vector<float> py(static_cast<size_t>(N * K * PH * PW)), pgx(x.size()), pgw(w.size());
        std::vector<int32_t> argmax(py.size());
        const std::vector<float> b = floats({K}, 11);
        k::conv2d_maxpool_forward<float>(x.data(), w.data(), b.data(), py.data(), argmax.data(), N, C, H, W, K, KH, KW, 1,
                                         1);
        std::vector<float> pgb(b.size());
        k::conv2d_maxpool_backward<float>(x.data(), w.data(), gy.data(), argmax.data(), py.data(), pgx.data(),
                                          pgw.data(), pgb.data(), N, C, H, W, K, KH, KW, 1, 1);
        std::vector<float> a(argmax.begin(), argmax.end());
        return std::vector<std::vector<float>>{y, gx, gw, py, a, pgx, pgw, pgb};
      },
      "im2col convolution");
}

// Dropout (mask words split over threads) and Adam (elements and rows split): the CF model's kernels.
TEST(CpuThreads, DropoutAndAdamGiveTheSameBits) {
  const int64_t n = 300'001, rows = 5'000, dim = 64, U = 3'001;
  const std::vector<float> x = floats({n}, 11), g = floats({n}, 12), gr = floats({U, dim}, 13);
  std::vector<int32_t> row_ids(static_cast<size_t>(U));
  for (int64_t u = 0; u < U; ++u) row_ids[size_t(u)] = u % 7 == 3 ? -1 : int32_t(u * 5000 / U);  // distinct, padding
  expect_same_bits_at_any_thread_count(
      [&] {
        std::vector<float> y(x.size()), gx(x.size()), p = x, m(x.size(), 0.1f), v(x.size(), 0.2f);
        std::vector<float> pr = floats({rows, dim}, 14), mr(pr.size(), 0.1f), vr(pr.size(), 0.2f);
        std::vector<uint32_t> bits(static_cast<size_t>((n + 31) / 32));
        k::dropout_forward<float>(x.data(), y.data(), n, 0.3f, 77, 5, bits.data());
        k::dropout_backward<float>(g.data(), gx.data(), n, 0.3f, bits.data());
        k::adam_dense<float>(p.data(), m.data(), v.data(), g.data(), n, 0.9f, 0.999f, 1e-3f, 1e-8f, 0.f);
        k::adam_rows<float>(pr.data(), mr.data(), vr.data(), row_ids.data(), gr.data(), U, dim, 0.9f, 0.999f, 1e-3f,
                            1e-8f, 0.01f);
        std::vector<float> b(bits.size());
        for (size_t i = 0; i < bits.size(); ++i) std::memcpy(&b[i], &bits[i], 4);
        return std::vector<std::vector<float>>{y, gx, b, p, m, v, pr, mr, vr};
      },
      "dropout and Adam");
}

// Matrix products split into blocks of C's rows or columns (blas.cpp): every transpose combination, split
// by rows (M > N) and by columns, against a double-precision reference, and the same bits at 1, 2 and 3
// threads. The sizes give 2 to 16 blocks with ragged last blocks; beta = 1 checks that each block
// accumulates into its own part of C only.
TEST(CpuThreads, MatrixProductsSplitIntoBlocksGiveTheSameBitsAndTheRightValues) {
  struct Shape3 {
    int64_t M, N, K;
  };
  for (const Shape3& sh : {Shape3{1000, 90, 150}, Shape3{70, 1100, 130}, Shape3{2049, 200, 64}}) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const std::vector<float> A = floats({sh.M * sh.K}, 20, -1, 1), B = floats({sh.K * sh.N}, 21, -1, 1);
      const std::vector<float> C0 = floats({sh.M * sh.N}, 22, -1, 1);
      std::vector<float> first;
      expect_same_bits_at_any_thread_count(
          [&] {
            std::vector<float> C = C0;
            k::gemm<float>(ta, tb, sh.M, sh.N, sh.K, 0.5f, A.data(), B.data(), 1.0f, C.data());
            if (first.empty()) first = C;
            return std::vector<std::vector<float>>{C};
          },
          "gemm");
      for (int64_t i = 0; i < sh.M; i += 7)
        for (int64_t j = 0; j < sh.N; j += 5) {
          double want = C0[size_t(i * sh.N + j)];
          for (int64_t q = 0; q < sh.K; ++q)
            want += 0.5 * double(A[size_t(ta ? q * sh.M + i : i * sh.K + q)]) * double(B[size_t(tb ? j * sh.K + q : q * sh.N + j)]);
          ASSERT_NEAR(first[size_t(i * sh.N + j)], want, 1e-4)
              << sh.M << "x" << sh.N << "x" << sh.K << " trans " << ta << tb << " at " << i << "," << j;
        }
    }
  }
}

// The streaming kernels split by element or row (the pair head over a catalogue, the CF model's
// layers, the exact KDE's rows): sizes of several 64k-element chunks with ragged ends, so a chunk that starts at a wrong offset
// shows against the single-threaded run.
TEST(CpuThreads, StreamingAndRowKernelsGiveTheSameBits) {
  const int64_t n = 300'001, rows = 2'411, cols = 127, pairs = 3'001;
  const std::vector<float> x = floats({n}, 15), g = floats({n}, 16), b = floats({cols}, 17);
  const std::vector<float> table = floats({rows, cols}, 18), gp = floats({pairs}, 19);
  std::vector<int32_t> ia(static_cast<size_t>(pairs)), ib(ia.size());
  for (int64_t i = 0; i < pairs; ++i) ia[size_t(i)] = int32_t(i * 7 % rows), ib[size_t(i)] = int32_t(i * 13 % rows);
  expect_same_bits_at_any_thread_count(
      [&] {
        std::vector<float> filled(x.size()), sum = x, scaled = x, sy(x.size()), sg(x.size()), ry(x.size()), rg(x.size());
        k::fill<float>(filled.data(), n, 0.25f);
        k::add_into<float>(sum.data(), g.data(), n);
        k::scale_into<float>(scaled.data(), n, 0.7f);
        k::sigmoid_forward<float>(x.data(), sy.data(), n);
        k::sigmoid_backward<float>(sy.data(), g.data(), sg.data(), n);
        k::relu_forward<float>(x.data(), ry.data(), n);
        k::relu_backward<float>(x.data(), g.data(), rg.data(), n);
        std::vector<float> biased(table.size()), gathered(static_cast<size_t>(pairs * cols)), dots(static_cast<size_t>(pairs));
        std::vector<float> ga(gathered.size()), gb(gathered.size()), block(static_cast<size_t>(rows * 50));
        std::vector<float> back(table.size(), 0.f);
        k::bias_add_rows<float>(table.data(), b.data(), biased.data(), rows, cols);
        k::embedding_forward<float>(table.data(), ia.data(), gathered.data(), pairs, cols);
        k::rowdot_pairs_forward<float>(table.data(), ia.data(), ib.data(), dots.data(), pairs, cols, 0.5f);
        k::rowdot_backward<float>(gathered.data(), gathered.data(), gp.data(), ga.data(), gb.data(), pairs, cols);
        k::copy_col_block<float>(table.data(), cols, 60, block.data(), 50, 0, 50, rows);
        k::copy_col_block<float>(block.data(), 50, 0, back.data(), cols, 70, 50, rows);
        std::vector<float> density(static_cast<size_t>(pairs));
        k::kde_density_exact<float>(gp.data(), pairs, 0.2, density.data());  // rows of the O(n^2) sum
        return std::vector<std::vector<float>>{filled, sum, scaled, sy, sg, ry, rg, biased, gathered, dots, ga, gb,
                                               block, back, density};
      },
      "streaming and row kernels");
}

// The full sum: its blocks go to the threads in chunks of at least 64 (1M elements), so 3M elements
// with a ragged end make up to three chunks.
TEST(CpuThreads, TheFullSumGivesTheSameBits) {
  const int64_t n = 3'000'017;
  const std::vector<float> x = floats({n}, 20);
  expect_same_bits_at_any_thread_count([&] { return std::vector<std::vector<float>>{{k::sum<float>(x.data(), n)}}; },
                                       "the full sum");
}

}  // namespace
}  // namespace musicrec
