//go:build amd64 || arm64

package consumers

import "unsafe"

// prefetch asks the CPU to bring the cache line at addr into its caches
// without waiting for it (PREFETCHT0, PRFM PLDL1KEEP). It never faults,
// whatever addr holds.
//
//go:noescape
func prefetch(addr unsafe.Pointer)
