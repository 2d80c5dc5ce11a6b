// Thread count for the CPU backend: REVENANT_NUM_THREADS when set, else the hardware's.
#pragma once

namespace revenant {

int hardware_threads();
// Reads REVENANT_NUM_THREADS once; an unparsable or non-positive value is ignored with a warning
// on stderr, since the alternative (refusing to load the addon) would hide the real cause.
int num_threads();

}  // namespace revenant
