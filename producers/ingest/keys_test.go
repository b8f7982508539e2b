package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	t.Parallel()
	k := testKeys(t)
	if k.Len() != 3 {
		t.Errorf("Len = %d, want 3", k.Len())
	}
	for _, tc := range []struct {
		key, tenant string
		ok          bool
	}{
		{"key-acme", "acme", true},
		{"key-globex", "globex", true}, // trailing comment dropped
		{"key-admin", AnyTenant, true},
		{"key-acm", "", false},
		{"key-acme ", "", false},
		{"", "", false},
		{"#", "", false},
	} {
		if tenant, ok := k.Tenant(tc.key); tenant != tc.tenant || ok != tc.ok {
			t.Errorf("Tenant(%q) = %q, %v; want %q, %v", tc.key, tenant, ok, tc.tenant, tc.ok)
		}
	}
	// A "#" inside a key is part of it; tabs separate fields.
	k, err := ParseKeys(strings.NewReader("ab#cd\tt1\r\n\n   # only a comment\n"), "k")
	if err != nil {
		t.Fatal(err)
	}
	if tenant, ok := k.Tenant("ab#cd"); !ok || tenant != "t1" {
		t.Errorf("Tenant(ab#cd) = %q, %v; want t1", tenant, ok)
	}
}

func TestParseKeysErrorsNameFileAndLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"one field", "# c\nk1 t1\nlonely\n", `keys.txt:3: cannot parse API key line: want "KEY TENANT", found 1 fields`},
		{"three fields", "k1 t1 extra\n", "keys.txt:1: cannot parse API key line"},
		{"duplicate", "k1 t1\n\nk1 t2\n", "keys.txt:3: cannot use API key: it is already on line 1"},
		{"empty", "# nothing\n\n", "keys.txt: cannot use API key file: it holds no keys"},
		{"tenant too long", "k1 " + strings.Repeat("t", 129) + "\n", "keys.txt:1: cannot use tenant"},
		{"invalid utf-8", "k1 t\xff\n", "keys.txt:1: cannot use tenant"},
		{"control character", "k0 acme\nk1 t\x01x\n", `keys.txt:2: cannot use tenant "t\x01x": control character U+0001 at byte 1`},
		{"escape", "k1 t\x1b[31m\n", `keys.txt:1: cannot use tenant "t\x1b[31m": control character U+001B at byte 1`},
		{"DEL", "k1 t\x7f\n", "keys.txt:1: cannot use tenant \"t\\x7f\": control character U+007F at byte 1"},
		{"C1 control", "k1 t\u0080\n", `keys.txt:1: cannot use tenant "t\u0080": control character U+0080 at byte 1`},
		{"line too long", "k1 t1\n" + strings.Repeat("x", 70<<10) + "\n", "keys.txt:2: cannot read API key file: line longer than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeys(strings.NewReader(tc.in), "keys.txt")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want prefix %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "k1") {
				t.Errorf("error %q reveals a key", err)
			}
		})
	}
}

func TestLoadKeys(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys")
	if _, err := LoadKeys(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("missing file: error %v, want one naming %s", err, path)
	}
	os.WriteFile(path, []byte("k1 acme\nk2\n"), 0o600)
	if _, err := LoadKeys(path); err == nil || !strings.HasPrefix(err.Error(), path+":2:") {
		t.Errorf("bad file: error %v, want prefix %s:2:", err, path)
	}
	os.WriteFile(path, []byte("k1 acme\n"), 0o600)
	k, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if tenant, ok := k.Tenant("k1"); !ok || tenant != "acme" {
		t.Errorf("Tenant(k1) = %q, %v", tenant, ok)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	base := DefaultOptions()
	base.InsecureNoAuth = true
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults with InsecureNoAuth: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no brokers", func(o *Options) { o.Brokers = nil }, "empty list of Kafka brokers"},
		{"broker list in one", func(o *Options) { o.Brokers = []string{"a:1,b:2"} }, `"a:1,b:2"`},
		{"no topic", func(o *Options) { o.Topic = "" }, "empty topic"},
		{"no auth", func(o *Options) { o.InsecureNoAuth = false }, "without API keys"},
		{"body 0", func(o *Options) { o.MaxBodyBytes = 0 }, "body limit of 0 bytes"},
		{"inflight 0", func(o *Options) { o.MaxInFlight = 0 }, "0 in-flight requests"},
		{"bytes under body", func(o *Options) { o.MaxInFlightBytes = 1 << 20 }, "at least the body limit"},
		{"produce timeout", func(o *Options) { o.ProduceTimeout = 10 * 1e6 }, "produce timeout 10ms"},
		{"linger", func(o *Options) { o.ProducerLinger = -1 }, "producer linger"},
		{"retry after", func(o *Options) { o.RetryAfter = 0 }, "Retry-After"},
		{"per key", func(o *Options) { o.MaxReceivingPerKey = -1 }, "-1 requests receiving per key"},
		{"negative delay", func(o *Options) { o.ShutdownDelay = -1 }, "shutdown delay -1ns"},
		{"delay at timeout", func(o *Options) { o.ShutdownDelay = o.ShutdownTimeout }, "below the shutdown timeout 50s"},
	} {
		o := base
		tc.edit(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}
