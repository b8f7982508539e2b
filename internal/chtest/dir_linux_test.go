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
	fs := filepath.Join(root, "fs")
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const gib = 1 << 30
	cg := filepath.Join(root, "cgroup")
	parent := filepath.Join(fs, "ci")
	job := filepath.Join(parent, "job")
	write(filepath.Join(job, "memory.max"), "max\n")
	write(filepath.Join(job, "memory.current"), "3221225472\n")
	check := func(what string, want uint64, wantOK bool) {
		t.Helper()
		if got, ok := cgroupRoom(cg, fs); ok != wantOK || got != want {
			t.Errorf("%s: cgroupRoom = %d, %v; want %d, %v", what, got, ok, want, wantOK)
		}
	}

	write(cg, "4:memory:/ci/job\n1:cpu:/\n")
	check("a v1 hierarchy only", 0, false)
	write(cg, "0::/ci/job\n")
	check("no limit on the way up", 0, false)

	// 4 GiB limit, 3 GiB used, of which 1 GiB page cache with 256 MiB of
	// it tmpfs: 1 GiB free and 768 MiB reclaimable.
	write(filepath.Join(job, "memory.max"), "4294967296\n")
	write(filepath.Join(job, "memory.stat"), "anon 1073741824\nfile 1073741824\nshmem 268435456\n")
	check("limit on the cgroup", gib+768<<20, true)

	// A parent's tighter limit counts, though the cgroup has none.
	write(filepath.Join(job, "memory.max"), "max\n")
	write(filepath.Join(parent, "memory.max"), "3758096384\n") // 3.5 GiB
	write(filepath.Join(parent, "memory.current"), "3221225472\n")
	check("limit on a parent", 512<<20, true)

	// Over the limit: no room.
	write(filepath.Join(parent, "memory.current"), "4294967296\n")
	check("over the limit", 0, true)
}
