// MR_HD marks a function that compiles for both host and device, so one piece of math serves the
// CPU loop (the reference) and the CUDA kernel alike.
#pragma once
#if defined(__CUDACC__)
#define MR_HD __host__ __device__ __forceinline__
#else
#define MR_HD inline
#endif
