package chtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/costpipe/costpipe/internal/flock"
)

// ownerLock in a directory chtest created holds the test binary's process
// id (for people) and, while the binary runs, its lock (flock). The kernel
// drops the lock when the process dies, however it dies, which is how a
// sweep tells a directory left by a dead run from one in use. A process id
// alone is wrong across PID namespaces sharing /dev/shm (two containers)
// and once the id is reused.
const ownerLock = "owner.lock"

// ownerPID is what chtest versions before ownerLock wrote: the process id
// only, checked as they checked it, so that a sweep by this version leaves
// an older version's running servers alone.
const ownerPID = "owner.pid"

// unclaimedAge is how old a directory without an owner file must be to be
// swept: it is being claimed (for milliseconds), or its test binary died
// between creating it and claiming it.
const unclaimedAge = time.Hour

// owned holds, for each directory this test binary created, its owner
// file, open and locked until the directory is removed.
var owned struct {
	mu    sync.Mutex
	files map[string]*os.File
}

// claim marks dir, just created, as this process's. The owner file is
// locked under another name and then renamed, so a sweep never sees it
// unlocked.
func claim(dir string) error {
	path := filepath.Join(dir, ownerLock)
	f, err := os.CreateTemp(dir, ownerLock+".*")
	if err != nil {
		return fmt.Errorf("cannot create an owner file in %q: %w", dir, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	// Where flock fails (some FUSE file systems), the directory goes on
	// unlocked: a sweep's lock fails there too, so it is never swept.
	if ok, err := flock.TryLock(f); err == nil && !ok {
		return fail(fmt.Errorf("cannot lock %q: another process holds it", f.Name()))
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid())); err != nil {
		return fail(fmt.Errorf("cannot write %q: %w", f.Name(), err))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fail(fmt.Errorf("cannot name the owner file %q: %w", path, err))
	}
	owned.mu.Lock()
	defer owned.mu.Unlock()
	if owned.files == nil {
		owned.files = map[string]*os.File{}
	}
	owned.files[dir] = f
	return nil
}

// release removes dir, a directory claim marked, and then drops its lock.
func release(dir string) {
	removeOwned(dir)
	owned.mu.Lock()
	f := owned.files[dir]
	delete(owned.files, dir)
	owned.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// removeAll is os.RemoveAll; tests make it fail.
var removeAll = os.RemoveAll

// removeOwned removes dir, its owner files last: a removal that fails
// part-way (a dead run's server still writing) leaves the owner file, so a
// later sweep tries again.
func removeOwned(dir string) {
	entries, _ := os.ReadDir(dir)
	failed := false
	for _, e := range entries {
		if n := e.Name(); n != ownerLock && n != ownerPID {
			if err := removeAll(filepath.Join(dir, n)); err != nil {
				failed = true
			}
		}
	}
	if !failed {
		removeAll(dir)
	}
}

// ownerGone reports whether the process that created dir has ended:
//   - with ownerLock, when no process holds its lock (this process holds
//     those of its own directories, and skips them);
//   - with only ownerPID (an older chtest), when that process id is not
//     running here;
//   - with neither, when dir is older than unclaimedAge.
func ownerGone(dir string) bool {
	owned.mu.Lock()
	_, mine := owned.files[dir]
	owned.mu.Unlock()
	if mine || !flock.Works {
		return false
	}
	// Read-write: on NFS an exclusive flock needs a descriptor open for
	// writing.
	f, err := os.OpenFile(filepath.Join(dir, ownerLock), os.O_RDWR, 0)
	if err == nil {
		defer f.Close()
		ok, err := flock.TryLock(f)
		return err == nil && ok
	}
	if !errors.Is(err, os.ErrNotExist) {
		return false
	}
	if data, err := os.ReadFile(filepath.Join(dir, ownerPID)); err == nil {
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			return false
		}
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
	fi, err := os.Stat(dir)
	return err == nil && time.Since(fi.ModTime()) > unclaimedAge
}
