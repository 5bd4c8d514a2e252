// Fuzz target: the CF dataset cache (data/cf_dataset.h, load_cf_cache). The fingerprint is fixed, as
// make_seeds writes it, so mutations reach the arrays behind the header check.
#include "data/cf_dataset.h"
#include "fuzz/fuzz_input.h"
#include "kernels/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = musicrec::fuzz::write_input("cf.h5", data, size);
  MR_FUZZ_EXPECT_CLEAN_ERRORS({
    musicrec::data::CfDataset ds;
    (void)musicrec::data::load_cf_cache(path, "fuzz-fingerprint", ds);
  });
  return 0;
}
