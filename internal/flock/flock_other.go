//go:build !unix

package flock

import "os"

// Lock does nothing where flock(2) is not available.
func Lock(*os.File) error { return nil }

// TryLock does nothing where flock(2) is not available.
func TryLock(*os.File) (bool, error) { return true, nil }

// Unlock does nothing where flock(2) is not available.
func Unlock(*os.File) {}

// Works reports whether the locks are real: false here, where the
// functions do nothing.
const Works = false
