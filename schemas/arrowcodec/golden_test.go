package arrowcodec

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The golden stream pins the wire format: the encoder must keep producing
// these bytes (or the change is deliberate: run with -update and review),
// and the decoder must keep reading them, whatever the encoder becomes.
func TestGoldenStream(t *testing.T) {
	path := filepath.Join("testdata", "events_v1.arrows")
	evs := variedEvents()
	data := mustEncode(t, evs)
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGoldenStream -update to create it)", err)
	}
	if !bytes.Equal(data, golden) {
		t.Errorf("Encode output differs from %s (%d bytes, golden %d): if the format change is deliberate, run with -update", path, len(data), len(golden))
	}
	got, err := DecodeAll(golden)
	if err != nil {
		t.Fatal(err)
	}
	assertEqualEvents(t, got, evs)
}

// The stream the encoder wrote before the cache_write_1h_tokens and
// service_tier columns existed (19 columns) must keep decoding, with both
// fields zero: Kafka holds records of older producers, and the decoder
// treats every optional column as possibly missing. Never regenerate it.
func TestGoldenStreamBeforeServiceTier(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "events_v1_before_service_tier.arrows"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAll(golden)
	if err != nil {
		t.Fatal(err)
	}
	want := variedEventsBeforeServiceTier()
	assertEqualEvents(t, got, want)
	for i := range got {
		if got[i].ServiceTier != "" || got[i].CacheWrite1hTokens != 0 {
			t.Errorf("event %d: service tier %q, 1-hour cache writes %d; want absent", i, got[i].ServiceTier, got[i].CacheWrite1hTokens)
		}
	}
	// It really is the old format, and re-encoding it gives today's.
	for _, c := range []string{ColCacheWrite1hTokens, ColServiceTier} {
		if bytes.Contains(golden, []byte(c)) {
			t.Errorf("the old golden stream has a column %q", c)
		}
	}
	if _, err := NewEncoder(nil).Encode(got); err != nil {
		t.Fatal(err)
	}
}
