package schemas

import (
	"strings"
	"testing"
)

// The Decoder remembers which interned labels are valid text and skips
// checking them again; a label that is not valid text is rejected every
// time it comes, whichever field it is in, and event ids cut from the arena
// stay intact while later events are decoded.
func TestDecoderInternedTextStillValidated(t *testing.T) {
	d := NewDecoder()
	good := ev(`,"application":"rag-qa","region":"eu-west-1"`)
	var ids []string
	for i := range 3 {
		var e Event
		if err := d.Decode([]byte(good), &e); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		ids = append(ids, e.EventID)
	}
	for _, bad := range []string{
		ev(`,"application":"rag\u001b[31m"`),
		ev(`,"region":"eu\u0085west"`),
		strings.Replace(ev(""), `"tenant":"`, `"tenant":"\u0007`, 1),
		ev(`,"operation":"chat","operation":"ch\u007fat"`), // the last of a repeated key is checked
	} {
		for i := range 3 {
			var e Event
			if err := d.Decode([]byte(bad), &e); err == nil {
				t.Fatalf("round %d accepted %s", i, bad)
			}
		}
	}
	// A valid label after an invalid one of the same key: the later wins.
	var e Event
	if err := d.Decode([]byte(ev(`,"operation":"ch\u007fat","operation":"chat"`)), &e); err != nil || e.Operation != "chat" {
		t.Fatalf("operation %q: %v", e.Operation, err)
	}
	for i, id := range ids {
		if want := (Event{}); id == want.EventID || id != ids[0] {
			t.Fatalf("event id %d = %q, want %q", i, id, ids[0])
		}
	}
}

// A sized Decoder's intern table stays within its bounds however many
// distinct labels it decodes (one per request in the ingest gateway: with
// NewDecoder's bounds, 64 requests of unique labels held 0.5 GB of tables
// outside the gateway's byte budget), and decodes them all correctly.
func TestNewDecoderSizedBoundsItsTable(t *testing.T) {
	d := NewDecoderSized(100, 4096)
	for i := range 5000 {
		app := "app-" + strings.Repeat("x", i%50) + "-" + string(rune('a'+i%26)) + strings.Repeat("y", i%7)
		var e Event
		if err := d.Decode([]byte(ev(`,"application":"`+app+`"`)), &e); err != nil || e.Application != app {
			t.Fatalf("event %d: application %q, %v; want %q", i, e.Application, err, app)
		}
		if len(d.strs) > 100 || d.strBytes > 4096 {
			t.Fatalf("after %d events the table holds %d strings, %d bytes; want at most 100 and 4096", i+1, len(d.strs), d.strBytes)
		}
	}
}
