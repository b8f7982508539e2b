package chtest

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// DirEnv names the environment variable that sets the directory in which
// servers (and ZooKeeper) keep their temporary directories. Default: a tmpfs
// at /dev/shm when there is one with room (tmpfsDir), else os.TempDir().
//
// A ClickHouse server writes a few small files per column of every part it
// inserts or merges, and the tests create and drop thousands of tables: on
// ext4, about a tenth of the CPU samples of `make test` on a two-core
// machine were the kernel's inode and block work for them (make test: 668 s
// on ext4, 628 s on /dev/shm). The data of a test server is small and
// deleted when the test ends, so memory holds it.
const DirEnv = "CHTEST_DIR"

// shmDir is where Linux mounts a tmpfs for every process to share.
const shmDir = "/dev/shm"

var base struct {
	once sync.Once
	dir  string
}

// baseDir returns where server directories are created: $CHTEST_DIR, else
// tmpfsDir's answer, else os.TempDir().
func baseDir() string {
	if d := os.Getenv(DirEnv); d != "" {
		// Absolute: a server runs in its directory and is given its
		// config's path, and each package's tests run in their own.
		if abs, err := filepath.Abs(d); err == nil {
			return abs
		}
		return d
	}
	base.once.Do(func() {
		base.dir = tmpfsDir()
		if base.dir == "" {
			base.dir = os.TempDir()
		}
	})
	return base.dir
}

// baseDirs returns the directories sweepStaleDirs looks in: baseDir,
// os.TempDir and /dev/shm, where earlier runs may have left theirs (a run
// with CHTEST_DIR set, or once /dev/shm had little room, still sweeps what
// killed runs left in memory).
func baseDirs() []string {
	dirs := []string{baseDir()}
	for _, d := range []string{os.TempDir(), shmDir} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}
