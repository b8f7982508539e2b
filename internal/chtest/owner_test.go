package chtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/costpipe/costpipe/internal/flock"
)

// TestSweepTellsLiveOwnersByLock: a directory is swept when no process
// holds its owner file's lock, whatever process id the file names.
func TestSweepTellsLiveOwnersByLock(t *testing.T) {
	if !flock.Works {
		t.Skip("no flock(2) here: nothing is swept")
	}
	t.Parallel()
	mk := func(name string) string {
		dir, err := os.MkdirTemp(baseDir(), dirPrefix+"sweeptest-"+name+"-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
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
	f, err := os.Create(filepath.Join(other, ownerFile))
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
	if err := os.WriteFile(filepath.Join(dead, ownerFile), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Being created: no owner file yet.
	fresh := mk("fresh")

	sweepStaleDirs()
	for _, c := range []struct {
		dir  string
		kept bool
	}{{mine, true}, {other, true}, {dead, false}, {fresh, true}} {
		if exists(c.dir) != c.kept {
			t.Errorf("after a sweep %s exists: %v, want %v", filepath.Base(c.dir), !c.kept, c.kept)
		}
	}

	// The other process ends: its directory goes at the next sweep.
	child.Process.Kill()
	child.Wait()
	sweepStaleDirs()
	if exists(other) {
		t.Errorf("%s outlived its owner's lock", filepath.Base(other))
	}
	if !exists(mine) {
		t.Errorf("%s, this process's, was swept", filepath.Base(mine))
	}
}
