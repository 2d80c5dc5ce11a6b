// RV_HD marks a function that both backends compile: host and device code under nvcc, a plain
// inline function in C++ (the CPU backend, and the emulator's build of the CUDA sources).
#pragma once

#ifdef __CUDACC__
#define RV_HD __host__ __device__ __forceinline__
#else
#define RV_HD inline
#endif
