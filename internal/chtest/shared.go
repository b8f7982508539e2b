package chtest

import (
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

var (
	mainActive atomic.Bool
	shared     struct {
		once sync.Once
		mu   sync.Mutex
		srv  *Server
		err  error
	}
)

// Main runs the tests of a package that uses Shared and then stops the
// shared server and removes its directory. Call it from TestMain:
//
//	func TestMain(m *testing.M) { chtest.Main(m) }
//
// It also kills every server of the binary, shared or private, when the test
// binary receives SIGINT or SIGTERM. Main does not return; it exits with the tests' exit code.
func Main(m *testing.M) {
	mainActive.Store(true)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		destroyAll()
		signal.Reset()
		if s, ok := sig.(syscall.Signal); ok {
			os.Exit(128 + int(s))
		}
		os.Exit(1)
	}()
	code := m.Run()
	signal.Stop(sigs)
	close(sigs)
	stopShared()
	os.Exit(code)
}

// Shared returns the test binary's shared server, starting it on first use.
// Tests sharing it must not Stop, Restart or Kill it (those fail the test)
// and should work in their own database from NewDatabase. The test package
// must run its tests through Main. Under go test -short it skips the test.
func Shared(t testing.TB) *Server {
	t.Helper()
	skipShort(t)
	if !mainActive.Load() {
		t.Fatal("chtest: Shared needs the package's TestMain to call chtest.Main: " +
			"func TestMain(m *testing.M) { chtest.Main(m) }")
	}
	shared.once.Do(func() {
		srv, err := start(Options{})
		if err == nil {
			srv.shared = true
		}
		shared.mu.Lock()
		shared.srv, shared.err = srv, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	srv, err := shared.srv, shared.err
	shared.mu.Unlock()
	if err != nil {
		t.Fatalf("chtest: cannot start the shared server: %v", err)
	}
	return srv
}

// stopShared kills the shared server, if one was started, and removes its
// directory.
func stopShared() {
	shared.mu.Lock()
	srv := shared.srv
	shared.srv = nil
	shared.mu.Unlock()
	if srv != nil {
		srv.destroy()
	}
}
