// Package nolisten gives tests an address where nothing listens and
// nothing can start to: a TCP port bound, never listened on, and held for
// the test's life.
//
// The usual way, listening on port 0 and closing the listener, frees the
// port: a server that another test starts meanwhile (a ClickHouse, a
// broker, an HTTP server on a port of its own choosing) can take it, and
// the test that expected "connection refused" talks to that server
// instead. On Linux a port bound without SO_REUSEADDR cannot be bound
// again by anyone while it is held, on 127.0.0.1 or on every address (on
// the BSDs and macOS, SO_REUSEADDR still lets a wildcard bind share it), and
// a connection to it is refused as to a closed one, since it has no
// listener.
package nolisten

import "testing"

// Addr returns "127.0.0.1:PORT", a port where connections are refused
// until the test and its subtests end.
func Addr(t testing.TB) string {
	t.Helper()
	addr, release, err := hold()
	if err != nil {
		t.Fatalf("cannot hold a port with nothing listening: %v", err)
	}
	t.Cleanup(release)
	return addr
}
