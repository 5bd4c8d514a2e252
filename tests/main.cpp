// Test entry point: poisons every CPU allocation (0xFF bytes, NaN as float) so a kernel that leaves
// part of its output unwritten fails its test instead of passing on leftover values.
#include <gtest/gtest.h>

#include "engine/allocator.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  musicrec::cpu_allocator().set_poison(true);
  return RUN_ALL_TESTS();
}
