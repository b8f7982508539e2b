//go:build !unix

package consumers

import "os"

// lockFile does nothing where flock(2) is not available: do not run
// `costpipe dlq unspool` on a directory an aggregator is writing there.
func lockFile(*os.File) error { return nil }
