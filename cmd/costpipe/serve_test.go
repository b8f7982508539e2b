package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/internal/nolisten"
)

// TestServeStartsBeforeClickHouse: serve starts while nothing answers at
// its ClickHouse address (a compose stack starting, an outage), or while
// something accepts connections there and never answers them (a server
// hung or starting, a port forward to nothing), is alive (/healthz 200) but
// not ready (/readyz 503), and answers API requests 503 with Retry-After
// instead of exiting at start.
func TestServeStartsBeforeClickHouse(t *testing.T) {
	t.Parallel()
	for _, silent := range []bool{false, true} {
		t.Run(map[bool]string{false: "nothing listens", true: "never answers"}[silent], func(t *testing.T) {
			t.Parallel()
			serveWithoutClickHouse(t, silent)
		})
	}
}

func serveWithoutClickHouse(t *testing.T, silent bool) {
	addr := ""
	if silent {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // the kernel accepts; nothing reads or answers
		addr = ln.Addr().String()
	} else {
		addr = nolisten.Addr(t) // nothing listens there
	}
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte("root *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "clickhouse://"+addr+"/costpipe", keys)
	get := func(path string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", p.url+path, nil)
		req.Header.Set("Authorization", "Bearer root")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	if code, _, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz with ClickHouse down: %d %s; want 200 (the process is alive)", code, body)
	}
	if code, _, body := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with ClickHouse down: %d %s; want 503", code, body)
	}
	code, h, body := get("/api/v1/usage?since=1d&by=model")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "ClickHouse is unreachable") {
		t.Errorf("API with ClickHouse down: %d, Retry-After %q, %s; want 503 saying ClickHouse is unreachable", code, h.Get("Retry-After"), body)
	}
}
