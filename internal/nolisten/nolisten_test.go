package nolisten_test

import (
	"errors"
	"net"
	"runtime"
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
	if runtime.GOOS == "windows" {
		return // held only on unix
	}
	// A server asking for this port (Go's listeners set SO_REUSEADDR, as
	// ClickHouse's and most servers' do) does not get it.
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		t.Fatalf("listen on %s succeeded while it is held", addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("listen on %s: %v, want address in use", addr, err)
	}
}
