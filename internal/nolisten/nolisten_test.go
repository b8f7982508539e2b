//go:build linux

package nolisten_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/nolisten"
)

func TestAddrRefusesAndCannotBeTaken(t *testing.T) {
	t.Parallel()
	addr := nolisten.Addr(t)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded, want connection refused", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	// A server asking for this port, on 127.0.0.1 or on every address
	// (Go's listeners set SO_REUSEADDR, as ClickHouse's and most servers'
	// do), does not get it.
	_, port, _ := net.SplitHostPort(addr)
	for _, at := range []string{addr, ":" + port} {
		ln, err := net.Listen("tcp", at)
		if err == nil {
			ln.Close()
			t.Fatalf("listen on %s succeeded while %s is held", at, addr)
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("listen on %s: %v, want address in use", at, err)
		}
	}
}
