// musicrec_fuzz_triage LOG: prints "libhdf5" or "musicrec" for the report in LOG (fuzz/triage.h);
// scripts/fuzz.sh calls it on the log of a target that stopped. Exit 2 when LOG cannot be read.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "fuzz/triage.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: musicrec_fuzz_triage LOG\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "musicrec_fuzz_triage: cannot read %s\n", argv[1]);
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  const bool library = musicrec::fuzz::classify_report(text.str()) == musicrec::fuzz::Culprit::kLibhdf5;
  std::puts(library ? "libhdf5" : "musicrec");
  return 0;
}
