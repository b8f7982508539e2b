package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/chtest"
	"github.com/costpipe/costpipe/internal/logtest"
)

// TestServeReloadsKeysOnSIGHUP: `costpipe serve` reads its key file again
// on SIGHUP: a new key works, a removed one gets 401, a broken file keeps
// the old keys and is counted in /metrics, and the process keeps serving
// (and still stops cleanly on SIGTERM: startServe checks).
func TestServeReloadsKeysOnSIGHUP(t *testing.T) {
	t.Parallel()
	srv := chtest.Shared(t)
	dsn := srv.DSN(srv.NewDatabase(t))
	if r := run(t, "", nil, "--clickhouse", dsn, "migrate"); r.code != 0 {
		t.Fatalf("migrate: %s", r.stderr)
	}
	keys := filepath.Join(t.TempDir(), "keys.txt")
	write := func(content string) {
		if err := os.WriteFile(keys+".new", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(keys+".new", keys); err != nil {
			t.Fatal(err)
		}
	}
	write("first-key *\n")
	sp := startServe(t, dsn, keys)
	status := func(key string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", sp.url+"/api/v1/usage?since=1h", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	metrics := func() string {
		resp, err := http.Get(sp.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// waitFor polls until cond holds: the signal is handled asynchronously.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after SIGHUP: %s did not happen within 10 s; metrics:\n%s", what, metrics())
			}
		}
	}
	if status("first-key") != 200 || status("second-key") != 401 {
		t.Fatal("the keys at start-up")
	}

	write("second-key *\n")
	sp.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the reload", func() bool { return strings.Contains(metrics(), `costpipe_serve_keys_reload_total{result="ok"} 1`) })
	if a, b := status("second-key"), status("first-key"); a != 200 || b != 401 {
		t.Errorf("after the reload: the new key %d (want 200), the removed one %d (want 401)", a, b)
	}

	write("second-key * but more\n")
	sp.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the failed reload counted", func() bool { return strings.Contains(metrics(), `costpipe_serve_keys_reload_total{result="error"} 1`) })
	if status("second-key") != 200 || status("first-key") != 401 {
		t.Error("a broken key file changed the keys")
	}
}

// TestServeSurvivesSIGHUPWhileStarting: a SIGHUP during the start (here
// while the first ping waits on a ClickHouse that accepts, says nothing
// for a second and hangs up) is a key reload once serve serves, not the
// end of the process: SIGHUP was caught only once the server existed, and
// Go's default action for it ended the process silently.
func TestServeSurvivesSIGHUPWhileStarting(t *testing.T) {
	t.Parallel()
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	dialled := make(chan struct{}, 1)
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			select {
			case dialled <- struct{}{}:
			default:
			}
			time.AfterFunc(time.Second, func() { c.Close() }) // no answer, then hung up
		}
	}()
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte("k1 *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "--clickhouse", "clickhouse://"+hole.Addr().String()+"/x", "serve", "--listen", "127.0.0.1:0", "--keys", keys)
	var stderr logtest.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select { // serve is dialling ClickHouse: well into its start
	case <-dialled:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("serve never dialled ClickHouse:\n%s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.After(15 * time.Second)
	for !strings.Contains(stderr.String(), "API keys reloaded") {
		select {
		case err := <-exited:
			t.Fatalf("serve ended after a SIGHUP during its start: %v\n%s", err, stderr.String())
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("no key reload within 15 s of a SIGHUP during the start:\n%s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
	}
}
