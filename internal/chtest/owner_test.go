package chtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/flock"
)

// TestSweepTellsLiveOwnersByLock: a directory is swept when no process
// holds its owner file's lock, whatever process id the file names; an
// older chtest's directory by its process id; one never claimed once it is
// an hour old.
func TestSweepTellsLiveOwnersByLock(t *testing.T) {
	if !flock.Works {
		t.Skip("no flock(2) here: nothing is swept")
	}
	t.Parallel()
	base := t.TempDir()
	mk := func(name string) string {
		dir, err := os.MkdirTemp(base, dirPrefix+name+"-")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	write := func(dir, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(dir string) bool { _, err := os.Stat(dir); return err == nil }

	// Ours: claimed by this process.
	mine := mk("mine")
	if err := claim(mine); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { release(mine) })

	// Another process's, alive: a child holds the lock, and the file names
	// a process id that does not exist here (as from another PID
	// namespace sharing /dev/shm). Checked by process id, it was swept.
	other := mk("other")
	f, err := os.Create(filepath.Join(other, ownerLock))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := flock.TryLock(f); err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if _, err := f.WriteString("999999999"); err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "300")
	child.ExtraFiles = []*os.File{f} // the lock is the open file's: the child holds it too
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	f.Close() // now only the child holds it

	// A dead run's: nobody holds the lock, though the file names a live
	// process (this one's parent; a reused id looks the same).
	dead := mk("dead")
	write(dead, ownerLock, "1")
	// An older chtest's, its test binary alive (this one stands in), and
	// one whose binary is gone.
	oldLive := mk("old-live")
	write(oldLive, ownerPID, strconv.Itoa(os.Getppid()))
	oldDead := mk("old-dead")
	write(oldDead, ownerPID, "999999999")
	// Being claimed: no owner file yet; and one left so for two hours.
	fresh := mk("fresh")
	stale := mk("stale")
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	sweepIn([]string{base})
	for _, c := range []struct {
		dir  string
		kept bool
	}{{mine, true}, {other, true}, {dead, false}, {oldLive, true}, {oldDead, false}, {fresh, true}, {stale, false}} {
		if exists(c.dir) != c.kept {
			t.Errorf("after a sweep %s exists: %v, want %v", filepath.Base(c.dir), !c.kept, c.kept)
		}
	}

	// The other process ends: its directory goes at the next sweep.
	child.Process.Kill()
	child.Wait()
	sweepIn([]string{base})
	if exists(other) {
		t.Errorf("%s outlived its owner's lock", filepath.Base(other))
	}
	if !exists(mine) {
		t.Errorf("%s, this process's, was swept", filepath.Base(mine))
	}
	release(mine)
	if exists(mine) {
		t.Errorf("%s outlived its release", filepath.Base(mine))
	}
}

// TestRemoveOwnedKeepsTheOwnerFileUntilTheRest: a directory whose removal
// fails part-way keeps its owner file, so a later sweep tries again.
//
// Not parallel: it swaps removeAll.
func TestRemoveOwnedKeepsTheOwnerFileUntilTheRest(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{ownerLock, "a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer func(f func(string) error) { removeAll = f }(removeAll)
	removeAll = func(path string) error {
		if filepath.Base(path) == "a" {
			return errors.New("directory not empty") // a dead run's server still writing
		}
		return os.RemoveAll(path)
	}
	removeOwned(dir)
	if _, err := os.Stat(filepath.Join(dir, ownerLock)); err != nil {
		t.Errorf("owner file after a failed removal: %v, want it kept", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); err == nil {
		t.Error("b was kept; want the rest removed")
	}
	removeAll = os.RemoveAll
	removeOwned(dir)
	if _, err := os.Stat(dir); err == nil {
		t.Error("the directory outlived a removal that could remove all of it")
	}
}
