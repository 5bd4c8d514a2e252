// Fuzzing a reader the way the program runs it: in a reader child (engine/isolated.h).
//
// The program reads HDF5 from elsewhere in a child process, because Debian's libhdf5 1.10.8 is not
// memory-safe on damaged files (fuzz/README.md): a crash or loop inside the library becomes an error
// naming the file. A fuzz target that called the reader in-process would stop on the library's faults
// every few hundred inputs and never test what the program does. These targets call the isolated
// readers instead, and this harness keeps the fuzzing as sharp as in-process:
//  - coverage: each child zeroes its copy of the coverage counters before a request and copies them
//    into shared memory after it; the parent adds them to its own, so libFuzzer sees the reader's edges;
//  - reports: each child writes its stderr to a log; after every input the parent reads it, and a
//    sanitizer report in our code (fuzz/triage.h) stops the run as a finding in-process would (the
//    child's report is printed, then abort), while one inside libhdf5 is what the isolation is for: it
//    is counted, kept under $MUSICREC_FUZZ_LIBRARY_DIR when set, and fuzzing goes on;
//  - hangs: a watchdog timer on the child's CPU time interrupts it after `watchdog_cpu_ms` of one
//    request; its handler prints where the child was looping, unwound through the signal frame, as a
//    report the same triage reads to decide whose loop it is. CPU time, not wall time, so a loaded machine cannot trip it. Each target sets it
//    several times above the slowest read of its corpus (measured per target in fuzz/README.md):
//    libhdf5 loops on some damaged files (H5C_protect, H5HG__protect), and each loop costs the whole
//    watchdog: at 100 ms they were a third of the checkpoint target's time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace musicrec {
class IsolatedWorker;
}

namespace musicrec::fuzz {

// Sets the harness up in this process, then makes `reader`'s fork server (IsolatedWorker::start_server),
// whose children, copies of the process, carry the harness. A target calls it from LLVMFuzzerInitialize,
// before libFuzzer allocates its tables (16 MB of feature maps, the corpus, the quarantine): a
// fork copies the page tables of all that is resident, and every input that is refused, most of them,
// ends its child, so the server forks once per input. Its children also run without libFuzzer's
// malloc hooks and crash handlers, which are installed later (the sanitizer's own limits stay).
void prepare_isolated_fuzzing(int watchdog_cpu_ms, IsolatedWorker& reader);

// Runs `read` (which calls an isolated reader), accepting a musicrec::Error as the clean outcome, then
// collects the child's coverage and report for this input. Returns what LLVMFuzzerTestOneInput should:
// -1 when the child died inside libhdf5, which tells libFuzzer not to keep the input in the corpus
// even for its new coverage: mutations of such inputs mostly crash the library again (one input in
// ten did when they were kept), and each costs a new child, a report and, for a loop, the watchdog.
int fuzz_isolated(const uint8_t* data, size_t size, const std::function<void()>& read);

}  // namespace musicrec::fuzz
