package chtest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseMemAvailable(t *testing.T) {
	t.Parallel()
	in := "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:    3145728 kB\nBuffers: 1 kB\n"
	if got, ok := parseMemAvailable([]byte(in)); !ok || got != 3<<30 {
		t.Errorf("parseMemAvailable = %d, %v; want %d, true", got, ok, uint64(3<<30))
	}
	if _, ok := parseMemAvailable([]byte("MemTotal: 1 kB\n")); ok {
		t.Error("parseMemAvailable without the line: ok, want not")
	}
}

func TestCgroupRoom(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cg := filepath.Join(root, "cgroup")
	group := filepath.Join(root, "fs", "ci", "job")
	write(filepath.Join(group, "memory.max"), "4294967296\n")
	write(filepath.Join(group, "memory.current"), "3221225472\n")

	// A v1 hierarchy only: no room is known.
	write(cg, "4:memory:/ci/job\n1:cpu:/\n")
	if _, ok := cgroupRoom(cg, filepath.Join(root, "fs")); ok {
		t.Error("v1 cgroup: room known, want unknown")
	}
	// v2: 4 GiB limit, 3 GiB used.
	write(cg, "0::/ci/job\n")
	if got, ok := cgroupRoom(cg, filepath.Join(root, "fs")); !ok || got != 1<<30 {
		t.Errorf("cgroupRoom = %d, %v; want %d, true", got, ok, 1<<30)
	}
	// No limit.
	write(filepath.Join(group, "memory.max"), "max\n")
	if _, ok := cgroupRoom(cg, filepath.Join(root, "fs")); ok {
		t.Error("memory.max \"max\": room known, want unknown (no limit)")
	}
}
