// Package chtest runs private ClickHouse servers for integration tests.
//
// Start launches a clickhouse-server process of its own: free 127.0.0.1
// ports, a fresh temporary directory (in /dev/shm when it is a tmpfs; see
// DirEnv) with a minimal config, the default user without a password, UTC.
// It returns once the server answers SELECT 1 over the native protocol and
// stops it (and removes the directory) when the test ends. StartWithOptions
// starts one in another time zone. Stop, Restart and Kill simulate outages;
// Restart keeps the ports and the data.
//
// StartCluster (cluster.go) starts a local cluster instead: Debian's
// ZooKeeper and shards × replicas of servers configured for replicated
// tables and ON CLUSTER DDL.
//
// Shared gives every test of a binary one lazily started server; tests
// isolate themselves with NewDatabase. It needs
//
//	func TestMain(m *testing.M) { chtest.Main(m) }
//
// Integration tests are not skipped when no server binary is installed:
// Start fails the test and says how to install one. Only go test -short
// skips them. The binary is found as $CHTEST_CLICKHOUSE_BIN,
// clickhouse-server (also in /usr/sbin), or the multi-tool clickhouse run as
// "clickhouse server". CI runs Debian 12's 18.16; the config avoids settings
// that newer releases reject and adapts to the version the binary reports.
//
// Server processes run in their own process group and, on Linux, die with
// the test binary, so a panic or timeout leaves no stray server behind;
// directories of test binaries that died are removed by the next Start.
//
// A Server's methods are safe for concurrent use, but Stop, Restart and Kill
// belong to the single test that owns the server.
package chtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/costpipe/costpipe/internal/childproc"
)

const (
	// startTimeout bounds how long a server may take to answer SELECT 1.
	startTimeout = 60 * time.Second
	// stopTimeout bounds a graceful stop before the server is killed.
	stopTimeout = 20 * time.Second
	// dirPrefix names server directories in baseDir.
	dirPrefix = "chtest-"
)

// Server is a private clickhouse-server process.
type Server struct {
	// TCPAddr is the native protocol address, "127.0.0.1:PORT".
	TCPAddr string
	// HTTPAddr is the HTTP interface address, "127.0.0.1:PORT".
	HTTPAddr string
	// TLSAddr is the native protocol's TLS address, "127.0.0.1:PORT", with
	// Options.TLS; "" without.
	TLSAddr string
	// Dir holds config.xml, users.xml, data/ and log/.
	Dir string
	// Version is the version the server reports, e.g. "18.16.1".
	Version string

	bin    []string
	config string
	shared bool

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one run of the server binary.
type process struct {
	pid  int
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // exit status, valid after done
}

// Options configure a private server of StartWithOptions.
type Options struct {
	// Timezone is the server's <timezone>, e.g. "Europe/Berlin": the zone of
	// DateTime columns declared without one and of date functions called
	// without one. Default "UTC" (Start, Shared).
	Timezone string
	// TLS, when set, opens a native TLS port too (Server.TLSAddr); see
	// tls.go. Default nil: plaintext only.
	TLS *TLS

	// ports, when set, are the native, HTTP, TLS and interserver ports to
	// use (StartCluster chooses them before writing every member's config).
	ports []int
	// configD are extra files for config.d, by name (cluster.go).
	configD map[string]string
}

// Start starts a private server and registers a t.Cleanup that kills it and
// removes its directory. It fails the test, with the server's log tail, if
// the server cannot start. Under go test -short it skips the test instead.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWithOptions(t, Options{})
}

// StartWithOptions is Start with options, e.g. a server in another time
// zone: chtest.StartWithOptions(t, chtest.Options{Timezone: "Europe/Berlin"}).
func StartWithOptions(t testing.TB, o Options) *Server {
	t.Helper()
	skipShort(t)
	s, err := start(o)
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chtest: log tail of the server on %s (%s):\n%s", s.TCPAddr, s.Dir, s.LogTail(40))
		}
		s.destroy()
	})
	return s
}

// skipShort skips integration tests when go test runs with -short, the only
// case in which they are skipped.
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test against ClickHouse: skipped under -short")
	}
}

// start creates a directory and starts a server in it, choosing new ports if
// the chosen ones were taken in the meantime.
func start(o Options) (*Server, error) {
	if o.Timezone == "" {
		o.Timezone = "UTC"
	}
	if !tzRE.MatchString(o.Timezone) {
		return nil, fmt.Errorf("time zone %q: want an IANA name such as Europe/Berlin", o.Timezone)
	}
	sweepStaleDirs()
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	major := binaryMajor(bin)
	var lastErr error
	for range 3 {
		s, err := startOnce(bin, major, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

// tzRE keeps a time zone name from breaking the XML config.
var tzRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+/-]*$`)

func startOnce(bin []string, major int, o Options) (*Server, error) {
	dir, err := os.MkdirTemp(baseDir(), dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("cannot create a server directory: %w", err)
	}
	if err := claim(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	ports := o.ports
	if ports == nil {
		if ports, err = freePorts(3); err != nil {
			release(dir)
			return nil, err
		}
	}
	config, err := writeConfig(dir, ports[0], ports[1], major, o.Timezone)
	if err == nil && o.TLS != nil {
		err = writeTLSConfig(dir, ports[2], o.TLS)
	}
	for name, content := range o.configD {
		if err != nil {
			break
		}
		err = writeConfigD(dir, name, content)
	}
	if err != nil {
		release(dir)
		return nil, err
	}
	s := &Server{
		TCPAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		HTTPAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		Dir:      dir,
		TLSAddr:  tlsAddr(o.TLS, ports[2]),
		bin:      bin,
		config:   config,
	}
	live.Store(s, struct{}{})
	if err := s.launch(); err != nil {
		err = fmt.Errorf("%w\nlog tail (%s):\n%s", err, dir, s.LogTail(40))
		s.destroy()
		return nil, err
	}
	return s, nil
}

// live holds every server not yet destroyed, for Main's signal handler.
var live sync.Map // *Server -> struct{}

// DSN returns the clickhouse-go DSN of database on this server,
// "clickhouse://127.0.0.1:PORT/database".
func (s *Server) DSN(database string) string {
	return "clickhouse://" + s.TCPAddr + "/" + database
}

// Conn opens a native-protocol connection pool to database and closes it in
// t.Cleanup.
func (s *Server) Conn(t testing.TB, database string) driver.Conn {
	t.Helper()
	conn, err := s.open(database)
	if err != nil {
		t.Fatalf("chtest: cannot connect to %s: %v", s.DSN(database), err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (s *Server) open(database string) (driver.Conn, error) {
	return clickhouse.Open(&clickhouse.Options{
		Addr:        []string{s.TCPAddr},
		Auth:        clickhouse.Auth{Database: database, Username: "default"},
		DialTimeout: 5 * time.Second,
	})
}

// NewDatabase creates a database with a fresh random name "test_<hex>" and
// drops it in t.Cleanup (if the server is up by then).
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	if err := s.exec(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("chtest: cannot create database %q: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.exec(ctx, "DROP DATABASE IF EXISTS "+name)
	})
	return name
}

// exec runs one statement on a short-lived connection.
func (s *Server) exec(ctx context.Context, query string) error {
	conn, err := s.open("default")
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, query)
}

// Stop stops the server gracefully (SIGTERM, then SIGKILL after 20 s) and
// waits until it has exited. Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mustOwn(t, "Stop")
	if err := s.stop(); err != nil {
		t.Fatalf("chtest: %v", err)
	}
}

// Kill kills the server with SIGKILL, as a crash would, and waits until it
// has exited. Killing a stopped server does nothing.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mustOwn(t, "Kill")
	s.kill()
}

// Restart starts the server again on the same ports with the same data
// directory, stopping it gracefully first if it is running, and returns once
// it answers. It fails the test if the server does not come back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mustOwn(t, "Restart")
	if err := s.stop(); err != nil {
		t.Fatalf("chtest: %v", err)
	}
	if err := s.launch(); err != nil {
		t.Fatalf("chtest: cannot restart: %v\nlog tail (%s):\n%s", err, s.Dir, s.LogTail(40))
	}
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (s *Server) mustOwn(t testing.TB, what string) {
	t.Helper()
	if s.shared {
		t.Fatalf("chtest: cannot %s the shared server: other tests use it; start a private one with chtest.Start", what)
	}
}

// launch starts the server process and waits until it answers SELECT 1.
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		select {
		case <-s.proc.done:
		default:
			return errors.New("cannot start the server: it is running")
		}
	}
	stdout, err := os.OpenFile(filepath.Join(s.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open the server's stdout log: %w", err)
	}
	defer stdout.Close() // the child holds its own descriptor

	args := append(append([]string{}, s.bin[1:]...), "--config-file="+s.config)
	cmd := exec.Command(s.bin[0], args...)
	cmd.Dir = s.Dir
	cmd.Stdout = stdout
	cmd.Stderr = stdout
	cmd.Env = append(os.Environ(), "CLICKHOUSE_WATCHDOG_ENABLE=0")
	// Its own process group, so it can be signalled as a whole, killed
	// when the test binary dies (Linux; elsewhere Main and t.Cleanup do).
	cmd.SysProcAttr = childproc.Group(syscall.SIGKILL)

	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("cannot run %q: %w", strings.Join(s.bin, " "), err)
	}
	s.proc = p

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	version, err := s.waitReady(ctx, p)
	if err != nil {
		killGroup(p)
		return err
	}
	s.Version = version
	return nil
}

// startProcess starts cmd and reaps it in the background: done closes once
// it has exited.
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits,
		// so keep this goroutine on its thread for the child's lifetime.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.done)
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// waitReady polls SELECT version() until the server answers, the process
// exits or ctx ends.
func (s *Server) waitReady(ctx context.Context, p *process) (string, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		version, err := s.probe(ctx)
		if err == nil {
			return version, nil
		}
		lastErr = err
		select {
		case <-p.done:
			return "", fmt.Errorf("clickhouse server on %s exited while starting: %v", s.TCPAddr, p.err)
		case <-ctx.Done():
			return "", fmt.Errorf("clickhouse server on %s did not answer within %s: %w", s.TCPAddr, startTimeout, lastErr)
		case <-tick.C:
		}
	}
}

func (s *Server) probe(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{s.TCPAddr},
		Auth:        clickhouse.Auth{Database: "default", Username: "default"},
		DialTimeout: time.Second,
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return "", err
	}
	return version, nil
}

// stop sends SIGTERM to the process group, waits up to stopTimeout, then
// kills it.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	signalGroup(p, syscall.SIGTERM)
	select {
	case <-p.done:
		killGroup(p) // any child left behind
		return nil
	case <-time.After(stopTimeout):
		killGroup(p)
		return fmt.Errorf("clickhouse server on %s ignored SIGTERM for %s; killed it", s.TCPAddr, stopTimeout)
	}
}

// kill sends SIGKILL to the process group and waits for the exit.
func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		killGroup(s.proc)
	}
}

// destroy kills the server and removes its directory.
func (s *Server) destroy() {
	s.kill()
	release(s.Dir)
	live.Delete(s)
}

// destroyAll destroys every live server.
func destroyAll() {
	live.Range(func(k, _ any) bool {
		k.(*Server).destroy()
		return true
	})
}

func signalGroup(p *process, sig syscall.Signal) {
	if p.pid > 0 {
		_ = syscall.Kill(-p.pid, sig)
	}
}

func killGroup(p *process) {
	signalGroup(p, syscall.SIGKILL)
	<-p.done
}

// LogTail returns up to n last lines of the server's error log and of its
// stdout/stderr, for failure messages.
func (s *Server) LogTail(n int) string {
	var b strings.Builder
	for _, name := range []string{"stdout.log", "server.err.log"} {
		data, err := os.ReadFile(filepath.Join(s.Dir, "log", name))
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", name, strings.Join(lines, "\n"))
	}
	if b.Len() == 0 {
		return "(no log output)"
	}
	return b.String()
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cannot find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// sweepStaleDirs removes server directories left by test binaries that are
// no longer running (killed by a timeout or a signal; see ownerGone); their
// servers died with them.
func sweepStaleDirs() { sweepIn(baseDirs()) }

// sweepIn is sweepStaleDirs over the directories bases.
func sweepIn(bases []string) {
	var dirs []string
	for _, b := range bases {
		found, _ := filepath.Glob(filepath.Join(b, dirPrefix+"*"))
		dirs = append(dirs, found...)
	}
	for _, dir := range dirs {
		if ownerGone(dir) {
			removeOwned(dir)
		}
	}
}
