//go:build !unix

package consumers

import "os"

// lockFile does nothing where flock(2) is not available: there, do not run
// `costpipe dlq unspool` on a directory an aggregator is writing.
func lockFile(*os.File) error { return nil }

// tryLockFile does nothing where flock(2) is not available.
func tryLockFile(*os.File) (bool, error) { return true, nil }

// unlockFile does nothing where flock(2) is not available.
func unlockFile(*os.File) {}
