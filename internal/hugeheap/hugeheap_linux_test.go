//go:build linux

package hugeheap

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestAdvise: on a kernel that offers transparent huge pages, Advise
// advises at least Reserve bytes of heap from the heap's start, and Linux
// marks the mapping for huge pages (VmFlags "hg" in /proc/self/smaps); on
// one that does not, it says why and advises nothing. A second call does
// nothing more.
func TestAdvise(t *testing.T) {
	r := Advise()
	if again := Advise(); again != r {
		t.Errorf("a second Advise: %+v, the first %+v", again, r)
	}
	if _, why := hugePageSize(thpDir); why != "" {
		if r.Skipped == "" || r.Lo != 0 {
			t.Fatalf("no huge pages here (%s), yet %+v", why, r)
		}
		return
	}
	if r.Skipped != "" || r.Hi-r.Lo < Reserve {
		t.Fatalf("advised %+v, want at least %d bytes", r, Reserve)
	}
	flags := vmFlags(t, r.Lo)
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("the heap mapping at %#x has VmFlags %q: no hg (MADV_HUGEPAGE)", r.Lo, flags)
	}
	// Once the collection that Advise leads to has run, what the test
	// allocates lands in the advised range: the reservation was freed.
	runtime.GC()
	p := uintptr(unsafe.Pointer(&make([]byte, 1<<20)[0]))
	if p < r.Lo || p >= r.Hi {
		t.Errorf("a 1 MiB allocation at %#x, outside the advised %#x–%#x", p, r.Lo, r.Hi)
	}
}

// vmFlags returns the VmFlags of the mapping that holds addr.
func vmFlags(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if start, end, ok := addressRange(strings.Fields(line)[0]); ok {
			in = start <= addr && addr < end
			continue
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok && in {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no mapping of %#x in /proc/self/smaps", addr)
	return ""
}

func TestDisabledByGodebug(t *testing.T) {
	for in, want := range map[string]bool{
		"":                              false,
		"disablethp=1":                  true,
		"gctrace=1,disablethp=1":        true,
		"disablethp=0":                  false,
		"disablethp=1,disablethp=0":     false,
		" madvdontneed=1, disablethp=1": true,
		"xdisablethp=1":                 false,
	} {
		if got := disabledByGodebug(in); got != want {
			t.Errorf("GODEBUG=%q: disabled %v, want %v", in, got, want)
		}
	}
	if r := advise("disablethp=1", thpDir); r.Skipped != "GODEBUG=disablethp=1" || r.Lo != 0 {
		t.Errorf("with disablethp=1: %+v", r)
	}
}

func TestHugePageSize(t *testing.T) {
	for _, tc := range []struct {
		enabled, size string
		want          uintptr
		why           string
	}{
		{"always [madvise] never\n", "2097152\n", 2 << 20, ""},
		{"[always] madvise never\n", "2097152\n", 2 << 20, ""},
		{"always madvise [never]\n", "2097152\n", 0, "transparent huge pages are set to never"},
		{"always [madvise] never\n", "536870912\n", 0, `huge page size "536870912": want a power of two of at most 4194304`},
		{"always [madvise] never\n", "x\n", 0, `huge page size "x"`},
		{"", "", 0, "no transparent huge pages: "},
	} {
		dir := t.TempDir() + "/"
		if tc.enabled != "" {
			os.WriteFile(filepath.Join(dir, "enabled"), []byte(tc.enabled), 0o644)
			os.WriteFile(filepath.Join(dir, "hpage_pmd_size"), []byte(tc.size), 0o644)
		}
		got, why := hugePageSize(dir)
		if got != tc.want || !strings.HasPrefix(why, tc.why) || (tc.why == "") != (why == "") {
			t.Errorf("%q %q: %d %q, want %d %q", tc.enabled, tc.size, got, why, tc.want, tc.why)
		}
		if tc.why != "" {
			if r := advise("", dir); r.Skipped != why || r.Lo != 0 {
				t.Errorf("%q %q: advise %+v, want skipped: %s", tc.enabled, tc.size, r, why)
			}
		}
	}
}

func TestHeapMapping(t *testing.T) {
	a := uintptr(unsafe.Pointer(new([64]byte)))
	lo, hi, err := heapMapping(a, a+63)
	if err != nil || lo > a || hi <= a+63 {
		t.Errorf("heap object at %#x: mapping %#x–%#x, %v", a, lo, hi, err)
	}
	if _, _, err := heapMapping(4096, 4096); err == nil {
		t.Errorf("page 1 is mapped?")
	}
	// From the heap to the binary's text: not one run of anonymous mappings.
	text := reflect.ValueOf(TestHeapMapping).Pointer()
	if _, _, err := heapMapping(text, text); err == nil || !strings.Contains(err.Error(), "not an anonymous read-write mapping") {
		t.Errorf("the text: %v", err)
	}
}

func TestQueryCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"costpipe", "query", "usage"}, true},
		{[]string{"costpipe", "--clickhouse", "clickhouse://h:9000/db", "query", "latency", "--since", "30d"}, true},
		{[]string{"costpipe", "aggregate", "--brokers", "k:9092"}, false},
		{[]string{"costpipe", "serve"}, false},
		{[]string{"costpipe", "alerts", "run", "--", "query"}, false},
		{[]string{"costpipe"}, false},
		{[]string{"query"}, false}, // the program's own name
		{nil, false},
	} {
		if got := queryCommand(tc.args); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.args, got, tc.want)
		}
	}
}
