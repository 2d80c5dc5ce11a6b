// Thread count for the CPU backend: set by the process (set_num_threads, from the role's share of
// the machine), else REVENANT_NUM_THREADS, else the hardware's.
#pragma once

namespace revenant {

int hardware_threads();
// The count the pool uses now. REVENANT_NUM_THREADS is read once; an unparsable or non-positive
// value is ignored with a warning on stderr, since the alternative (refusing to load the addon)
// would hide the real cause.
int num_threads();
// Sets the count for this process (1..4096); the pool is rebuilt at its next use. Throws
// revenant::Error naming the value when it is out of range.
void set_num_threads(int n);

}  // namespace revenant
