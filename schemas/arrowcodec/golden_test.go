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
