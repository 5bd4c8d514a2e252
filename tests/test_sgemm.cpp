// The hand-written AVX-512 float matrix product (kernels/cpu/sgemm_avx512.cpp) and gemm's choice of it:
// against a float64 product within the rounding of float sums, every transpose, sizes off and across
// its tiles and blocks (12-row and 32-column tiles, 120-row, 512-column and 256-deep blocks), leading
// dimensions wider than the matrix, alpha and beta, beta = 0 not reading C; the library and the kernel
// agreeing through gemm; narrow products left to the library; one-column products as row dots. The
// kernel's tests skip on a CPU without AVX-512 (the library runs there).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/sgemm_avx512.h"
#include "tests/test_util.h"

namespace musicrec {
namespace {
namespace k = kernels::cpu;

std::vector<float> uniform(int64_t n, uint64_t seed) {
  return test::random_tensor({n}, seed, -1, 1, DType::F32).to_vector<float>();
}

struct Shape {
  int64_t M, N, K;
};

// C = alpha op(A) op(B) + beta C in float64 from the float inputs, and each element's sum |terms| (the
// scale of its rounding).
void reference(bool ta, bool tb, const Shape& s, float alpha, const std::vector<float>& A, int64_t lda,
               const std::vector<float>& B, int64_t ldb, float beta, const std::vector<float>& C, int64_t ldc,
               std::vector<double>& want, std::vector<double>& scale) {
  want.assign(C.size(), 0.0);
  scale.assign(C.size(), 0.0);
  for (int64_t i = 0; i < s.M; ++i)
    for (int64_t j = 0; j < s.N; ++j) {
      double sum = 0, mag = 0;
      for (int64_t p = 0; p < s.K; ++p) {
        const double a = ta ? A[size_t(p * lda + i)] : A[size_t(i * lda + p)];
        const double b = tb ? B[size_t(j * ldb + p)] : B[size_t(p * ldb + j)];
        sum += a * b;
        mag += std::fabs(a * b);
      }
      const double c = C[size_t(i * ldc + j)];
      want[size_t(i * ldc + j)] = alpha * sum + (beta == 0.f ? 0.0 : beta * c);
      scale[size_t(i * ldc + j)] = std::fabs(alpha) * mag + (beta == 0.f ? 0.0 : std::fabs(beta * c));
    }
}

// Float: every element within (K + 2) float ulp-units of its terms' magnitude of the float64 value (a
// running sum rounds once per term, plus the scaling and the addition of beta C); a term taken from the
// wrong row, column or step is off by the size of the terms. Elements of C outside the M x N block (the
// wider leading dimension's padding) keep their values.
TEST(OwnSgemm, MatchesAFloat64ProductWithinRoundingForEveryTransposeAndEdge) {
  if (!k::sgemm_avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU: the library runs every product";
  const Shape shapes[] = {{1, 1, 1},   {12, 32, 1},  {13, 33, 7},  {11, 31, 256}, {25, 70, 257},
                          {121, 65, 300}, {130, 513, 40}, {3, 600, 513}, {241, 5, 600},
                          {1320, 200, 257}};  // the last: a C past 1 MB, B packed whole
  uint64_t seed = 500;
  for (const Shape& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int variant = 0; variant < 3; ++variant) {
          // 0: alpha 1, beta 0 over a C of NaN (not read); 1: alpha 0.5, beta 1; 2: alpha -2, beta 0.25,
          // with leading dimensions 3 wider than the matrices.
          const int64_t pad = variant == 2 ? 3 : 0;
          const int64_t rows_a = ta ? s.K : s.M, cols_a = ta ? s.M : s.K;
          const int64_t rows_b = tb ? s.N : s.K, cols_b = tb ? s.K : s.N;
          const int64_t lda = cols_a + pad, ldb = cols_b + pad, ldc = s.N + pad;
          const std::vector<float> A = uniform(rows_a * lda, seed++), B = uniform(rows_b * ldb, seed++);
          std::vector<float> C = uniform(s.M * ldc, seed++);
          if (variant == 0) C.assign(C.size(), std::numeric_limits<float>::quiet_NaN());
          const float alpha = variant == 0 ? 1.f : variant == 1 ? 0.5f : -2.f;
          const float beta = variant == 0 ? 0.f : variant == 1 ? 1.f : 0.25f;
          std::vector<double> want, scale;
          reference(ta, tb, s, alpha, A, lda, B, ldb, beta, C, ldc, want, scale);
          std::vector<float> got = C;
          k::sgemm_avx512(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
          const std::string what = std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K) +
                                   (ta ? " A^T" : "") + (tb ? " B^T" : "") + ", variant " + std::to_string(variant);
          for (int64_t i = 0; i < s.M; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const size_t e = size_t(i * ldc + j);
              if (j >= s.N) {
                ASSERT_TRUE(std::isnan(got[e]) ? std::isnan(C[e]) : got[e] == C[e]) << what << ": padding (" << i << ", " << j << ") written";
                continue;
              }
              ASSERT_LE(std::fabs(double(got[e]) - want[e]), double(s.K + 2) * 0x1p-24 * scale[e] + 1e-30)
                  << what << ", element (" << i << ", " << j << ")";
            }
        }
}

// The two loop orders give the same bits: B narrow enough to be packed whole (its row blocks outermost,
// C's block kept through the inner blocks) and wider than 512 columns (inner blocks outermost). The
// first 200 columns of a 600-column product are a 200-column product of the same A and the same
// first columns of B, each element summed in the same inner blocks in the same order. 640 deep: three
// inner blocks, the last partial; 1,330 rows (a C of 266,000 floats, past the 1 MB that takes the
// first order): 12 row blocks, the last partial; both transposes of B.
TEST(OwnSgemm, NarrowAndWideProductsSumInTheSameOrder) {
  if (!k::sgemm_avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU: the library runs every product";
  const int64_t M = 1330, K = 640, wide = 600, narrow = 200;
  const std::vector<float> A = uniform(M * K, 61);
  for (const bool tb : {false, true}) {
    const std::vector<float> B = uniform(K * wide, tb ? 62 : 63);  // [K, wide], or [wide, K] transposed
    std::vector<float> first(size_t(K * narrow));                  // B's first 200 columns, in B's layout
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < narrow; ++j)
        first[size_t(tb ? j * K + k : k * narrow + j)] = B[size_t(tb ? j * K + k : k * wide + j)];
    std::vector<float> all(size_t(M * wide)), part(size_t(M * narrow));
    k::sgemm_avx512(false, tb, M, wide, K, 1.f, A.data(), K, B.data(), tb ? K : wide, 0.f, all.data(), wide);
    k::sgemm_avx512(false, tb, M, narrow, K, 1.f, A.data(), K, first.data(), tb ? K : narrow, 0.f, part.data(),
                    narrow);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < narrow; ++j)
        ASSERT_EQ(std::memcmp(&part[size_t(i * narrow + j)], &all[size_t(i * wide + j)], sizeof(float)), 0)
            << (tb ? "B^T" : "B") << ", element (" << i << ", " << j << "): " << part[size_t(i * narrow + j)]
            << " against " << all[size_t(i * wide + j)];
  }
}

// gemm with each kernel: both within rounding of each other at the models' kind of shapes (a split
// product: 4096 x 128 x 205 and its two backward products), and the setting reports what runs.
TEST(OwnSgemm, GemmWithEitherKernelAgreesAndTheSettingSaysWhichRan) {
  const k::SgemmKernel before = k::sgemm_kernel_in_use();
  const int64_t M = 4096, N = 128, K = 205;
  const std::vector<float> X = uniform(M * K, 1), W = uniform(N * K, 2), G = uniform(M * N, 3);
  struct Product {
    bool ta, tb;
    int64_t m, n, k;
    const float *a, *b;
  };
  const Product products[] = {{false, true, M, N, K, X.data(), W.data()},    // forward: X W^T
                              {true, false, N, K, M, G.data(), X.data()},    // filter: G^T X
                              {false, false, M, K, N, G.data(), W.data()}};  // data: G W
  for (const Product& p : products) {
    std::vector<std::vector<float>> out;
    for (k::SgemmKernel which : {k::SgemmKernel::Library, k::SgemmKernel::Own}) {
      k::set_sgemm_kernel(which);
      EXPECT_EQ(k::sgemm_kernel_in_use(), which == k::SgemmKernel::Own && !k::sgemm_avx512_available()
                                              ? k::SgemmKernel::Library
                                              : which);
      std::vector<float> C(size_t(p.m * p.n));
      k::gemm<float>(p.ta, p.tb, p.m, p.n, p.k, 1.f, p.a, p.b, 0.f, C.data());
      out.push_back(C);
    }
    for (size_t e = 0; e < out[0].size(); ++e)
      ASSERT_NEAR(out[0][e], out[1][e], 2 * double(p.k) * 0x1p-24 * double(p.k)) << "element " << e;
  }
  k::set_sgemm_kernel(before);
}

// Products narrower than the kernel's tiles go to the library under either setting (one column of a
// row-major A aside: the row dots below): the same bits.
TEST(OwnSgemm, NarrowProductsTakeTheLibrary) {
  const k::SgemmKernel before = k::sgemm_kernel_in_use();
  struct Narrow {
    bool ta, tb;
    int64_t m, n, k;
  };
  const Narrow cases[] = {{true, true, 3000, 1, 1248}, {false, false, 300, 15, 40}, {true, false, 2, 128, 4096},
                          {false, true, 7, 300, 64}};
  uint64_t seed = 700;
  for (const Narrow& c : cases) {
    const std::vector<float> A = uniform(c.m * c.k, seed++), B = uniform(c.k * c.n, seed++);
    std::vector<std::vector<float>> out;
    for (k::SgemmKernel which : {k::SgemmKernel::Library, k::SgemmKernel::Own}) {
      k::set_sgemm_kernel(which);
      std::vector<float> C(size_t(c.m * c.n));
      k::gemm<float>(c.ta, c.tb, c.m, c.n, c.k, 1.f, A.data(), B.data(), 0.f, C.data());
      out.push_back(C);
    }
    for (size_t e = 0; e < out[0].size(); ++e)
      ASSERT_EQ(out[0][e], out[1][e]) << c.m << "x" << c.n << "x" << c.k << " element " << e;
  }
  k::set_sgemm_kernel(before);
}

}  // namespace
}  // namespace musicrec

namespace musicrec {
namespace {

// The one-column product as row dots (sgemv_rows_avx512): against float64 within the rounding of its
// sums, inner sizes under, at and past the 64-step body with ragged tails, rows wider than K, y
// strided, alpha, beta, beta = 0 not reading y; and gemm sending a one-column product of a row-major A
// there under the own kernel (within rounding of the library's), split over the threads.
TEST(OwnSgemm, OneColumnProductsAreRowDotsWithinRounding) {
  if (!k::sgemm_avx512_available()) GTEST_SKIP() << "no AVX-512 on this CPU: the library runs every product";
  uint64_t seed = 800;
  for (int64_t K : {1, 15, 63, 64, 65, 130, 1248})
    for (int variant = 0; variant < 2; ++variant) {
      const int64_t M = 37, lda = K + (variant ? 5 : 0), ldy = variant ? 3 : 1;
      const std::vector<float> A = uniform(M * lda, seed++), x = uniform(K, seed++);
      std::vector<float> y = uniform(M * ldy, seed++);
      if (variant == 0) y.assign(y.size(), std::numeric_limits<float>::quiet_NaN());
      const float alpha = variant ? -1.5f : 1.f, beta = variant ? 0.5f : 0.f;
      std::vector<float> got = y;
      k::sgemv_rows_avx512(M, K, alpha, A.data(), lda, x.data(), beta, got.data(), ldy);
      for (int64_t i = 0; i < M; ++i) {
        double dot = 0, mag = 0;
        for (int64_t p = 0; p < K; ++p) {
          dot += double(A[size_t(i * lda + p)]) * x[size_t(p)];
          mag += std::fabs(double(A[size_t(i * lda + p)]) * x[size_t(p)]);
        }
        const double c = y[size_t(i * ldy)];
        const double want = alpha * dot + (beta == 0.f ? 0.0 : beta * c);
        const double scale = std::fabs(alpha) * mag + (beta == 0.f ? 0.0 : std::fabs(beta * c));
        ASSERT_LE(std::fabs(double(got[size_t(i * ldy)]) - want), double(K + 2) * 0x1p-24 * scale + 1e-30)
            << "K=" << K << " variant " << variant << " row " << i;
        for (int64_t j = 1; j < ldy; ++j)  // the stride's gaps untouched
          ASSERT_EQ(got[size_t(i * ldy + j)], y[size_t(i * ldy + j)]) << "K=" << K << " row " << i << " gap " << j;
      }
    }
  const k::SgemmKernel before = k::sgemm_kernel_in_use();
  const int64_t M = 5000, K = 1248;
  const std::vector<float> A = uniform(M * K, 900), x = uniform(K, 901);
  std::vector<std::vector<float>> out;
  for (k::SgemmKernel which : {k::SgemmKernel::Library, k::SgemmKernel::Own}) {
    k::set_sgemm_kernel(which);
    std::vector<float> C(static_cast<size_t>(M));
    k::gemm<float>(false, true, M, 1, K, 1.f, A.data(), x.data(), 0.f, C.data());
    out.push_back(C);
  }
  k::set_sgemm_kernel(before);
  for (int64_t i = 0; i < M; ++i)
    ASSERT_NEAR(out[0][size_t(i)], out[1][size_t(i)], 2 * double(K) * 0x1p-24 * double(K)) << "row " << i;
}

}  // namespace
}  // namespace musicrec
