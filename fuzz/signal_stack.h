// The stack of the code a signal interrupted, written from the signal's handler (the isolated fuzz
// targets' watchdog, fuzz/isolated_fuzzing.cpp).
//
// Why not the sanitizer's report: the watchdog used to raise SIGSEGV and let AddressSanitizer report
// it, but its unwinder printed "<empty stack>" whenever the timer landed in its own allocator, which a
// libhdf5 loop of mallocs (H5FL_reg_malloc) does most of the time. Why not glibc's backtrace(): the
// sanitizer intercepts it and takes its internal allocator's lock, which the interrupted allocator may
// hold (children hung on that futex until the parent's limit, 5 s per try). So: libgcc's unwinder
// directly, which steps through the signal frame by the CFI of the code it meets (libhdf5 and the
// sanitizer runtime have no frame pointers), and modules listed ahead of time instead of dladdr. No
// allocation, no lock of ours, no sanitizer interceptor. One lock remains: the loader's, taken by the
// unwinder to find a module's unwind tables; if the signal interrupted code holding it (a C++ throw,
// a dlopen) the handler waits for ever, so the caller writes what it must before calling this.
#pragma once
#include <cstdint>

namespace musicrec::fuzz {

// Lists the modules loaded now and warms the unwinder up. Call once before the handler can run (and
// before forking children that will use it); modules loaded later print as unknown.
void prepare_signal_stack();

// Installs the handler for `signal` that reports where it interrupted the process and ends it: it
// writes `text` (the report's first lines) to `fd`, then the stack (write_interrupted_stack) and a
// blank line, and ends the process with `exit_code` by exit_group, past every exit hook. Calls
// prepare_signal_stack. The handler runs on the alternate signal stack when the thread has one (a
// deep recursion leaves little of its own); it is compiled without sanitizers, whose code for a call
// that does not return (unpoisoning the stack) takes the allocator's lock: the watchdog's first
// version hung there whenever its timer had landed in the allocator.
void report_stack_on_signal(int signal, const char* text, int fd, int exit_code);

// From a signal handler: writes to `fd` the frames from the interrupted one (`interrupted_pc`, from
// the handler's ucontext) down, one per line as the sanitizers print raw frames,
// "    #N 0xPC  (module+0xOFFSET)", so that symbolize_log and the triage read them as theirs. Return
// addresses are printed one byte back, to name the line of their call. When the unwinder cannot get
// past the signal frame, a line says so and the interrupted pc alone is printed.
void write_interrupted_stack(int fd, uintptr_t interrupted_pc);

}  // namespace musicrec::fuzz
