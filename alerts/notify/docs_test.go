package notify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docSnippet returns the first fenced block of the given language in
// docs/alerts-receivers.md.
func docSnippet(t *testing.T, lang string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "alerts-receivers.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(string(raw))
	if m == nil {
		t.Fatalf("no %s block in docs/alerts-receivers.md", lang)
	}
	return m[1]
}

// snippetCase is one check a documentation snippet must get right.
type snippetCase struct {
	Name    string            `json:"name"`
	Secrets []string          `json:"secrets"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"` // base64
	Now     int64             `json:"now"`
	Valid   bool              `json:"valid"`
}

// snippetCases delivers a real, doubly signed webhook and derives the
// cases: both secrets verify; a tampered body, a foreign secret and a stale
// clock do not.
func snippetCases(t *testing.T) []snippetCase {
	rec := newRecorder(t, nil)
	now := time.Date(2025, 11, 28, 9, 30, 0, 0, time.UTC)
	w := newTestWebhook(t, rec.srv.URL, func() time.Time { return now }, testSecret2, testSecret1)
	if err := w.Deliver(context.Background(), testNotification("cpa_0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	got := rec.requests()[0]
	h := map[string]string{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		h[k] = got.header.Get(k)
	}
	body := base64.StdEncoding.EncodeToString(got.body)
	tampered := base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(got.body), "812.5", "912.5", 1)))
	return []snippetCase{
		{"new secret", []string{testSecret2}, h, body, now.Unix(), true},
		{"old secret", []string{testSecret1}, h, body, now.Unix() + 60, true},
		{"foreign then old secret", []string{testSecret3, testSecret1}, h, body, now.Unix(), true},
		{"foreign secret", []string{testSecret3}, h, body, now.Unix(), false},
		{"tampered body", []string{testSecret1}, h, tampered, now.Unix(), false},
		{"stale", []string{testSecret1}, h, body, now.Unix() + 600, false},
	}
}

// TestDocSnippetsVerify runs the Go and Python verifiers of
// docs/alerts-receivers.md on real deliveries, so the documentation cannot
// drift from what the webhook receiver sends.
func TestDocSnippetsVerify(t *testing.T) {
	cases := snippetCases(t)
	input, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("python", func(t *testing.T) {
		py, err := exec.LookPath("python3")
		if err != nil {
			t.Skip("python3 not installed")
		}
		script := docSnippet(t, "python") + `
import json, sys
for c in json.load(sys.stdin):
    try:
        verify_webhook(c["secrets"], c["headers"], base64.b64decode(c["body"]), now=c["now"])
        ok = True
    except ValueError:
        ok = False
    print(c["name"], ok == c["valid"])
`
		checkSnippetOutput(t, exec.Command(py, "-c", script), input, cases)
	})
	t.Run("go", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds a program")
		}
		goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, err := os.Stat(goBin); err != nil {
			if goBin, err = exec.LookPath("go"); err != nil {
				t.Skip("go not found")
			}
		}
		dir := t.TempDir()
		prog := `package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

` + docSnippet(t, "go") + `
func main() {
	var cases []struct {
		Name    string
		Secrets []string
		Headers map[string]string
		Body    string
		Now     int64
		Valid   bool
	}
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	for _, c := range cases {
		h := http.Header{}
		for k, v := range c.Headers {
			h.Set(k, v)
		}
		body, _ := base64.StdEncoding.DecodeString(c.Body)
		err := verifyWebhook(c.Secrets, h, body, time.Unix(c.Now, 0))
		fmt.Println(c.Name, (err == nil) == c.Valid)
	}
}
`
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(prog), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(goBin, "run", "main.go")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GO111MODULE=off", "GOFLAGS=")
		checkSnippetOutput(t, cmd, input, cases)
	})
}

// checkSnippetOutput runs cmd with the cases on stdin and expects one
// "<name> True|true" line per case.
func checkSnippetOutput(t *testing.T, cmd *exec.Cmd, input []byte, cases []snippetCase) {
	t.Helper()
	cmd.Stdin = strings.NewReader(string(input))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d lines for %d cases:\n%s", len(lines), len(cases), out)
	}
	for i, c := range cases {
		if want := c.Name + " "; !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d = %q, want case %q", i, lines[i], c.Name)
			continue
		}
		if ok, _ := strconv.ParseBool(strings.ToLower(strings.TrimPrefix(lines[i], c.Name+" "))); !ok {
			t.Errorf("%s: the snippet says valid=%v", c.Name, !c.Valid)
		}
	}
}
