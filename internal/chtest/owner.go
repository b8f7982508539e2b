package chtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/costpipe/costpipe/internal/flock"
)

// owned holds, for each directory this test binary created, its owner
// file, open and locked (flock) until the directory is removed. The kernel
// drops the lock when the process dies, however it dies, which is how
// sweepStaleDirs tells a directory left by a dead run from one in use.
// (A process id, which it once compared, is wrong across PID namespaces
// sharing /dev/shm, two containers say, and once the id is reused.)
var owned struct {
	mu    sync.Mutex
	files map[string]*os.File
}

// claim marks dir, just created, as this process's: its owner file holds
// the process id (for people) and this process's lock. The file is
// locked under another name and renamed: a sweep never sees it unlocked.
func claim(dir string) error {
	path := filepath.Join(dir, ownerFile)
	f, err := os.CreateTemp(dir, ownerFile+".*")
	if err != nil {
		return fmt.Errorf("cannot create an owner file in %q: %w", dir, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if ok, err := flock.TryLock(f); err != nil || !ok {
		return fail(fmt.Errorf("cannot lock %q (held elsewhere: %v): %v", f.Name(), !ok, err))
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
	os.RemoveAll(dir)
	owned.mu.Lock()
	f := owned.files[dir]
	delete(owned.files, dir)
	owned.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// ownerGone reports whether the process that claimed dir has ended: its
// owner file is there and no one holds its lock (this process holds the
// locks of its own directories, through other open files, so they are not
// gone). A directory without an owner file is being created, or by an
// older chtest: left alone.
func ownerGone(dir string) bool {
	if !flock.Works {
		return false
	}
	f, err := os.Open(filepath.Join(dir, ownerFile))
	if err != nil {
		return false
	}
	defer f.Close()
	ok, err := flock.TryLock(f)
	return err == nil && ok
}
