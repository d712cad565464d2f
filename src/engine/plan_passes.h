// Rewrites of a lowered plan, run by build_plan in this order (internal to engine/).
#pragma once

#include "engine/plan.h"

namespace yoloc {
namespace engine {

// Drops buffer `b` (no op may use it any more) and renumbers the later ones.
void erase_buffer(Plan& plan, int32_t b);

// The stem conv reads the NCHW float32 input itself when InputPack's only reader is one
// plain conv over a few channels (YOLOv8's 3-channel stem): one kernel and one buffer
// fewer, and the stem's output is written without the packed copy in between.
void fold_input_pack(Plan& plan);

// Horizontal fusion (as TensorRT does): two convs that read the same view with the same
// window, both plain, each writing a buffer of its own, become one conv whose output
// channels are the first's then the second's (YOLOv8's Detect heads start this way).
void fuse_sibling_convs(Plan& plan);

// INT8 storage (see plan.h): buffers whose readers all quantize with one scale stay int8.
void assign_int8_storage(Plan& plan);

}  // namespace engine
}  // namespace yoloc
