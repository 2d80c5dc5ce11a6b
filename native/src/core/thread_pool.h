// A tiny fixed-size thread pool for the CPU backend.
// Work is split into tasks 0..n-1 that threads claim as they go. Callers make every task write
// only its own outputs and compute them in a fixed order, so which thread runs a task never
// changes the arithmetic: results are bit-identical for every thread count.
#pragma once
#include <functional>

namespace revenant {

// Runs fn(task) for task in [0, n). Runs inline when n == 1, when only one thread is configured,
// or when the pool is already busy (a second model computing at the same time); the split into
// tasks is the same either way, so results do not depend on it.
void parallel_for(int n, const std::function<void(int task)>& fn);

// Threads the pool uses (num_threads(); it follows set_num_threads).
int pool_threads();

}  // namespace revenant
