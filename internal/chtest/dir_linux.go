package chtest

import (
	"os"
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
// at least tmpfsMinFree bytes free, else "".
func tmpfsDir() string {
	dir := shmDir
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || int64(st.Type) != tmpfsMagic {
		return ""
	}
	if free := uint64(st.Bavail) * uint64(st.Bsize); free < tmpfsMinFree {
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
