//go:build linux

package hugeheap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// madvise advice values of Linux (include/uapi/asm-generic/mman-common.h).
const (
	madvHugepage = 14
	madvCollapse = 25
)

// thpDir is where Linux says how transparent huge pages are set up.
const thpDir = "/sys/kernel/mm/transparent_hugepage/"

var (
	once   sync.Once
	result Result
)

// Advise puts the start of the heap on huge pages, once per process, and
// says what it did. Call it early in a command that answers once and exits.
func Advise() Result {
	once.Do(func() { result = advise(os.Getenv("GODEBUG"), thpDir) })
	return result
}

// init advises at start-up, before most other packages' inits allocate,
// when the command line is one of the query commands (queryCommand).
func init() {
	if queryCommand(os.Args) {
		Advise()
	}
}

func advise(godebug, dir string) Result {
	if disabledByGodebug(godebug) {
		return Result{Skipped: "GODEBUG=disablethp=1"}
	}
	huge, why := hugePageSize(dir)
	if why != "" {
		return Result{Skipped: why}
	}
	first := new([64]byte)
	old := debug.SetGCPercent(-1) // no collection started by the reservation itself
	b := make([]byte, Reserve)
	start := uintptr(unsafe.Pointer(&b[0]))
	lo, hi, err := heapMapping(uintptr(unsafe.Pointer(first)), start+Reserve-1)
	var r Result
	if err != nil {
		r.Skipped = err.Error()
	} else if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, lo, hi-lo, madvHugepage); e != 0 {
		r.Skipped = "madvise(MADV_HUGEPAGE): " + e.Error()
	} else {
		r.Lo, r.Hi = lo, hi
		// The regions below the reservation hold what was allocated
		// before: collapse them, or each keeps faulting 4 KiB at a time (a
		// region with any small page mapped gets no huge page on a fault),
		// and the allocations that follow fill them first. Errors leave a
		// region as it was: EINVAL before Linux 6.1, EAGAIN or ENOMEM
		// without a free huge page. A collapse usually takes 0.2–0.4 ms a
		// region here, and now and then 4–10 ms (in a quarter of 40 runs
		// on 2 vCPUs); without it the question's faults stay at 1,000–1,400
		// and its median as before the advice (docs/BENCHMARKS.md).
		for p := lo &^ (huge - 1); p < start; p += huge {
			if p >= lo && p+huge <= hi {
				if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, p, huge, madvCollapse); e == 0 {
					r.Collapsed++
				}
			}
		}
	}
	// The heap is now past the collector's goal, so the next allocation
	// starts a collection, which runs beside the command and frees the
	// reservation for the allocations after it. (A forced one, runtime.GC,
	// would block for 2–7 ms here.)
	debug.SetGCPercent(old)
	runtime.KeepAlive(first)
	return r
}

// disabledByGodebug says whether GODEBUG sets disablethp to anything but 0.
func disabledByGodebug(godebug string) bool {
	disabled := false
	for kv := range strings.SplitSeq(godebug, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "disablethp="); ok {
			disabled = v != "0" // the last setting wins, as in the runtime
		}
	}
	return disabled
}

// hugePageSize is the size of a transparent huge page, or why there is none
// to ask for.
func hugePageSize(dir string) (uintptr, string) {
	mode, err := os.ReadFile(dir + "enabled")
	if err != nil {
		return 0, "no transparent huge pages: " + err.Error()
	}
	if bytes.Contains(mode, []byte("[never]")) {
		return 0, "transparent huge pages are set to never"
	}
	s, err := os.ReadFile(dir + "hpage_pmd_size")
	if err != nil {
		return 0, "no transparent huge pages: " + err.Error()
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(s)), 10, 64)
	if err != nil || n == 0 || n&(n-1) != 0 || n > Reserve/4 {
		return 0, fmt.Sprintf("huge page size %q: want a power of two of at most %d", strings.TrimSpace(string(s)), Reserve/4)
	}
	return uintptr(n), ""
}

// heapMapping returns the bounds of the anonymous read-write mappings that
// hold both a and z (a ≤ z): the start of the Go heap and the end of the
// reservation. An error when they are not one contiguous run of such
// mappings: then something else lies between them and nothing is advised.
func heapMapping(a, z uintptr) (lo, hi uintptr, err error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 7f0000000000-7f0000400000 rw-p 00000000 00:00 0   [name]
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		start, end, ok := addressRange(fields[0])
		if !ok {
			return 0, 0, fmt.Errorf("/proc/self/maps: cannot read %q", sc.Text())
		}
		anonRW := fields[1] == "rw-p" && fields[4] == "0"
		switch {
		case lo == 0 && start <= a && a < end:
			if !anonRW {
				return 0, 0, fmt.Errorf("the heap at %#x is not an anonymous read-write mapping", a)
			}
			lo = start
		case lo != 0 && (start != hi || !anonRW):
			return 0, 0, fmt.Errorf("the heap is not one run of mappings from %#x to %#x", a, z)
		case lo == 0:
			continue
		}
		hi = end
		if z < end {
			return lo, hi, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("/proc/self/maps holds no mapping of %#x–%#x", a, z)
}

// addressRange reads a mapping's "start-end" (hexadecimal) of
// /proc/self/maps or smaps.
func addressRange(field string) (start, end uintptr, ok bool) {
	from, to, ok := strings.Cut(field, "-")
	s, err1 := strconv.ParseUint(from, 16, 64)
	e, err2 := strconv.ParseUint(to, 16, 64)
	return uintptr(s), uintptr(e), ok && err1 == nil && err2 == nil
}

// queryCommand says whether args (os.Args) run a costpipe query command: an
// argument "query" before any "--". A flag's value "query" would count too;
// the cost of that mistake is the start of one heap on huge pages.
func queryCommand(args []string) bool {
	for _, a := range args[min(1, len(args)):] {
		switch a {
		case "query":
			return true
		case "--":
			return false
		}
	}
	return false
}
