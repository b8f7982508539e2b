package serve

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/internal/logtest"
	"github.com/costpipe/costpipe/producers/ingest"
)

// TestReloadKeys: ReloadKeys (what SIGHUP runs) swaps the key file in
// while requests keep coming: a new key works, a removed key gets 401, a
// new binding scopes the key to its new tenant, and a broken or missing
// file keeps the old keys, logs and counts the error. No request in
// flight fails.
func TestReloadKeys(t *testing.T) {
	t.Parallel()
	w := fixture(t)
	file := filepath.Join(t.TempDir(), "keys.txt")
	write := func(content string) {
		// As an operator should: a new file renamed over the old one, so a
		// reload never reads half a file.
		tmp := file + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("steady *\nold-key " + acme + "\n")
	keys, err := ingest.LoadKeys(file)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	opts := DefaultOptions()
	opts.Keys, opts.KeysFile = keys, file
	opts.Now = func() time.Time { return now }
	opts.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	s, err := New(w, analytics.New(w, analytics.Options{Now: func() time.Time { return now }}), opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	status := func(key, path string) int {
		t.Helper()
		return get(t, hs, key, path, "").code
	}
	const usage = "/api/v1/usage?since=30d&by=tenant"
	if status("steady", usage) != 200 || status("old-key", usage) != 200 || status("new-key", usage) != 401 {
		t.Fatal("the keys before any reload")
	}

	// Clients keep asking, with the key every version of the file has,
	// through every reload below: none of their requests may fail.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var asked, failed atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", hs.URL+usage, nil)
				req.Header.Set("Authorization", "Bearer steady")
				resp, err := hs.Client().Do(req)
				asked.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}

	// A new key, a removed one, a key bound to another tenant.
	write("steady *\nnew-key " + globex + "\n# old-key removed\n")
	if n, err := s.ReloadKeys(); err != nil || n != 2 {
		t.Fatalf("reload: %d keys, %v", n, err)
	}
	if c := status("old-key", usage); c != 401 {
		t.Errorf("a removed key: %d, want 401", c)
	}
	got := rows(t, get(t, hs, "new-key", usage, ""))
	if len(got) != 1 || got[0]["tenant"] != globex {
		t.Errorf("the new key reads %v, want globex alone", got)
	}
	if c := status("new-key", "/api/v1/usage?where=tenant%3D"+acme); c != 403 {
		t.Errorf("the new key asking for another tenant: %d, want 403", c)
	}

	// Broken files: the old keys stay.
	for i, broken := range []string{
		"steady *\nnew-key " + globex + "\nthree fields here\n",
		"# nothing but a comment\n",
		"",
	} {
		write(broken)
		if n, err := s.ReloadKeys(); err == nil || n != 2 {
			t.Errorf("broken file %d: %d keys, %v; want the 2 old keys and an error", i, n, err)
		}
		if status("new-key", usage) != 200 || status("old-key", usage) != 401 {
			t.Errorf("broken file %d changed the keys", i)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReloadKeys(); err == nil || status("new-key", usage) != 200 {
		t.Errorf("a missing file: %v", err)
	}
	write("steady *\nold-key " + acme + "\n")
	if n, err := s.ReloadKeys(); err != nil || n != 2 || status("old-key", usage) != 200 || status("new-key", usage) != 401 {
		t.Errorf("the fixed file: %d keys, %v", n, err)
	}
	time.Sleep(50 * time.Millisecond) // a few more requests after the last reload
	close(stop)
	wg.Wait()
	if asked.Load() < 10 || failed.Load() != 0 {
		t.Errorf("during the reloads %d of %d requests of a kept key failed", failed.Load(), asked.Load())
	}

	// Logged and counted; the errors name the file and line, never a key.
	logs := logBuf.String()
	if strings.Count(logs, "cannot reload API keys; keeping the old ones") != 4 || strings.Count(logs, "API keys reloaded") != 2 ||
		!strings.Contains(logs, "keys.txt:3") {
		t.Errorf("log:\n%s", logs)
	}
	for _, k := range []string{"steady", "new-key", "old-key", "three"} {
		if strings.Contains(logs, k) {
			t.Errorf("the log quotes %q:\n%s", k, logs)
		}
	}
	m := get(t, hs, "", "/metrics", "").body
	for _, want := range []string{`costpipe_serve_keys_reload_total{result="ok"} 2`, `costpipe_serve_keys_reload_total{result="error"} 4`, "costpipe_serve_keys 2"} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	// A server given keys but no file cannot reload.
	opts.KeysFile = ""
	s2, err := New(w, analytics.New(w, analytics.DefaultOptions()), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.ReloadKeys(); err == nil {
		t.Error("ReloadKeys without a key file succeeded")
	}
}

// syncBuffer is the shared concurrent log buffer.
type syncBuffer = logtest.Buffer
