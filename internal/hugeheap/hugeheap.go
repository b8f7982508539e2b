// Package hugeheap puts the start of the Go heap on transparent huge pages,
// so that a command that answers once and exits does not pay one page fault
// for every 4 KiB of heap it touches.
//
// A `costpipe query` allocates a few MiB and exits before its first
// collection, so every allocation is fresh memory and every 4 KiB of it a
// page fault: about 600 after main starts in a 30-day question, at
// 10–15 µs each on the virtual machines of docs/BENCHMARKS.md ("Query
// speed"). Go no longer asks Linux for huge pages under its heap (since Go
// 1.21.1), and most hosts leave transparent huge pages to the programs that
// ask (`madvise`). Advise therefore
//
//   - makes the heap map Reserve bytes (one allocation that is never
//     touched, so it costs no memory),
//   - asks for huge pages over the heap mapped so far (MADV_HUGEPAGE), so that
//     the first touch of each 2 MiB maps all of it at once,
//   - collapses into huge pages the 2 MiB regions already touched
//     (MADV_COLLAPSE, Linux 6.1 and later), and
//   - drops the reservation: the heap is then past the collector's goal, so
//     a collection starts at the next allocation, runs beside the command and
//     frees it, and the allocations after it reuse the advised addresses.
//
// The package's init calls Advise when the command line is a `costpipe
// query` (an argument "query" before any "--"), so that the inits of the
// packages that follow it allocate on huge pages too. Other commands call
// Advise themselves or not at all.
//
// It is for short commands only: a long-running one churns its heap, and on
// the machine of docs/BENCHMARKS.md the aggregator's catch-up took 15% more
// CPU with its first 16 MiB advised (docs/design.md, "One build script; a
// command's start-up is part of its answer"). Under GOGC=off the reservation
// is never freed: it stays address space that nothing touches.
//
// GODEBUG=disablethp=1 (Go's own switch for huge pages under the heap)
// turns it off, as does a kernel without transparent huge pages or with
// them set to `never`; on systems other than Linux it does nothing.
package hugeheap

// Reserve is how much of the heap, from its start, is advised: a
// 30-day question's heap (4–8 MiB) with room to spare.
const Reserve = 16 << 20

// Result is what Advise did.
type Result struct {
	// Lo and Hi bound the advised heap, [Lo, Hi); zero when nothing was.
	Lo, Hi uintptr
	// Collapsed is the number of 2 MiB regions, touched before the
	// advice, that became huge pages.
	Collapsed int
	// Skipped says why nothing was advised ("" when something was).
	Skipped string
}
