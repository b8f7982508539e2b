//go:build unix

package consumers

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f, waiting for it: the spool
// writer and `costpipe dlq unspool` take turns on a spool file.
func lockFile(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}
