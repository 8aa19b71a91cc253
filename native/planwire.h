// A plan (plan.h) as one relocatable block of bytes, so that the husk server, which builds it
// (addon.cc readPlan), can send it to the front door, which clones the children that run it
// (frontdoor.cc). Pointers become offsets into the block; the receiver turns them back into
// pointers into its own copy, before clone(), so the children still only read memory.
#pragma once

#include <cstddef>

#include "plan.h"

namespace husk {

// The block for `plan`, in a buffer from malloc (*size bytes), or nullptr (errno ENOMEM).
char *encodePlan(const Plan &plan, size_t *size);

// Checks the block (every offset and length inside it) and fills *plan with pointers into
// it; the steps array is malloc'd into *steps (free it with free()). The block must stay
// alive and unmoved, and must be 8-byte aligned. Returns 0 or -EINVAL.
long decodePlan(char *block, size_t size, Plan *plan, Step **steps);

}  // namespace husk
