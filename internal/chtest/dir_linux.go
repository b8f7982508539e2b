package chtest

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	// tmpfsMagic is TMPFS_MAGIC of statfs(2).
	tmpfsMagic = 0x01021994
	// tmpfsMinFree is the free space a tmpfs must have to be used: a test
	// binary's servers hold tens of megabytes; the margin leaves room for
	// several packages' servers at once and for what else uses the tmpfs.
	tmpfsMinFree = 2 << 30
)

// tmpfsDir returns /dev/shm when it is a tmpfs this process can write to with
// at least tmpfsMinFree bytes free, and memory to back them, else "".
func tmpfsDir() string {
	dir := shmDir
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || int64(st.Type) != tmpfsMagic {
		return ""
	}
	if free := uint64(st.Bavail) * uint64(st.Bsize); free < tmpfsMinFree {
		return ""
	}
	// A tmpfs's size is a limit, not memory set aside: its files take the
	// machine's memory, and count against this process's cgroup.
	if avail, ok := memAvailable(); ok && avail < tmpfsMinFree {
		return ""
	}
	f, err := os.CreateTemp(dir, dirPrefix+"probe-")
	if err != nil {
		return ""
	}
	f.Close()
	os.Remove(f.Name())
	return dir
}

// memAvailable returns the memory this process may still use: the
// system's MemAvailable (/proc/meminfo), less when its cgroup (v2) has a
// limit with less room under it. ok is false when neither can be read.
func memAvailable() (avail uint64, ok bool) {
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		avail, ok = parseMemAvailable(b)
	}
	if room, rok := cgroupRoom("/proc/self/cgroup", "/sys/fs/cgroup"); rok && (!ok || room < avail) {
		avail, ok = room, true
	}
	return avail, ok
}

// parseMemAvailable reads the MemAvailable line of /proc/meminfo, in bytes.
func parseMemAvailable(meminfo []byte) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemAvailable:" && f[2] == "kB" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// cgroupRoom returns the memory this process's cgroup (v2) may still take:
// over its cgroup and each parent with a limit, the least of memory.max
// less memory.current, plus the page cache the kernel can reclaim (file
// less shmem, of memory.stat). The cgroup is the "0::/PATH" line of
// cgroupFile, under the mount root. ok is false without a v2 cgroup or a
// limit on the way up.
func cgroupRoom(cgroupFile, root string) (room uint64, ok bool) {
	b, err := os.ReadFile(cgroupFile)
	if err != nil {
		return 0, false
	}
	var path string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if p, found := strings.CutPrefix(line, "0::"); found {
			path = p
		}
	}
	if !strings.HasPrefix(path, "/") {
		return 0, false
	}
	for ; ; path = filepath.Dir(path) {
		if r, limited := cgroupLevelRoom(filepath.Join(root, path)); limited && (!ok || r < room) {
			room, ok = r, true
		}
		if path == "/" {
			return room, ok
		}
	}
}

// cgroupLevelRoom is cgroupRoom for the one cgroup directory dir; limited
// is false when it has no limit (memory.max "max", or none to read).
func cgroupLevelRoom(dir string) (room uint64, limited bool) {
	read := func(name string) (uint64, bool) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		return v, err == nil // "max" fails: no limit
	}
	limit, ok := read("memory.max")
	if !ok {
		return 0, false
	}
	used, ok := read("memory.current")
	if !ok {
		return 0, false
	}
	var file, shmem uint64
	if b, err := os.ReadFile(filepath.Join(dir, "memory.stat")); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			k, v, _ := strings.Cut(line, " ")
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			switch {
			case err != nil:
			case k == "file":
				file = n
			case k == "shmem":
				shmem = n
			}
		}
	}
	if file > shmem && file-shmem < used {
		used -= file - shmem
	}
	if used >= limit {
		return 0, true
	}
	return limit - used, true
}
