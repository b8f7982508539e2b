package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// addGoldenSeeds adds the golden inputs in testdata/json to the corpus.
func addGoldenSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "json", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeJSON feeds arbitrary bytes to the decoder. It must not panic;
// what it accepts must be valid JSON (json.Valid) and must survive an
// encode/decode round trip unchanged; and it may reject valid JSON objects
// only for content reasons (a *FieldError) or for the documented extra
// strictness (invalid UTF-8, nesting beyond maxSkipDepth).
func FuzzDecodeJSON(f *testing.F) {
	addGoldenSeeds(f)
	for _, s := range []string{
		benchEvent, ev(""), ev(`,"x":{"a":[1,"\ud83d\ude00",{"b":null}]}`), ev(`,"attributes":{"k":"v"}`),
		ev(`,"latency_ms":1e-7,"input_tokens":12.0`), `{}`, `{"event_id":"\u0000"}`, `[]`, `{"a":}`, "{\"a\":\"\xff\"}",
		`{"timestamp":"2025-01-02t03:04:05.999999999999+23:59"}`,
		ev(`,"input_tokens":9,"cache_write_tokens":5,"cache_write_1h_tokens":5,"service_tier":"Priority"`),
		ev(`,"cache_write_1h_tokens":1,"service_tier":"on demand"`), ev(`,"service_tier":"fl\u00e9x","cache_write_1h_tokens":null`),
	} {
		f.Add([]byte(s))
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Event
		err := d.Decode(data, &e)
		if err != nil {
			var se *SyntaxError
			var fe *FieldError
			switch {
			case errors.As(err, &se):
				if se.Offset < 0 || se.Offset > len(data) {
					t.Fatalf("offset %d outside the input of %d bytes", se.Offset, len(data))
				}
				if json.Valid(data) && utf8.Valid(data) && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) &&
					!strings.Contains(se.Msg, "nesting deeper") {
					t.Fatalf("rejected a valid JSON object: %v\n%q", err, data)
				}
			case errors.As(err, &fe):
				if fe.Field == "" || len(fe.Value) > maxErrValueLen+len("…") {
					t.Fatalf("field error %+v", fe)
				}
			default:
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded an invalid event: %v", err)
		}
		enc := AppendJSON(nil, &e)
		var e2 Event
		if err := DecodeJSON(enc, &e2); err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if !e2.Equal(&e) {
			t.Fatalf("round trip changed the event:\n %+v\n %+v", e, e2)
		}
		if enc2 := AppendJSON(nil, &e2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not canonical:\n %s\n %s", enc, enc2)
		}
		// encoding/json reads the same event_id, unless its case-insensitive
		// key matching can see a key this decoder ignores (possibly hidden
		// behind an escape).
		if !bytes.Contains(data, []byte{'\\'}) && !caseFold(data) {
			var std stdlibEvent
			if json.Unmarshal(data, &std) == nil && std.EventID != e.EventID {
				t.Fatalf("event_id %q, encoding/json %q", e.EventID, std.EventID)
			}
		}
	})
}

// caseFold reports whether data may hold a key that encoding/json matches to
// event_id case-insensitively but this decoder does not.
func caseFold(data []byte) bool {
	return bytes.Count(bytes.ToLower(data), []byte("event_id")) != bytes.Count(data, []byte("event_id"))
}

// FuzzJSONRoundTrip builds events from fuzzed fields: every valid one must
// decode from its encoding to an Equal event, and every encoding, valid
// event or not, must be valid JSON.
func FuzzJSONRoundTrip(f *testing.F) {
	f.Add("id", int64(1764320832345000000), "tenant", "openai", "gpt-4o", uint8(1), "", "app", "chat", "eu", "priority",
		int64(100), int64(50), int64(10), int64(4), int64(20), int64(5), 12.5, true, 0.25, false, 0.0, "k", "v")
	f.Add("é\"\\\n\x00\u2028", int64(0), "t", "p", "m", uint8(2), "timeout", "", "", "", "",
		int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), 0.0, true, 0.0, true, 1e-300, "", "")
	f.Add("x", int64(253402300799999999), "\xff", "p", "m", uint8(0), "", "", "", "", "on demand\x1b",
		int64(-1), int64(0), int64(0), int64(1), int64(1e9), int64(1e9), math.NaN(), true, math.Inf(1), true, -1.0, "\x01", "\xc3")
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, id string, tsNanos int64, tenant, provider, model string, status uint8,
		errType, app, op, region, tier string, in, cached, cacheWrite, cacheWrite1h, out, reasoning int64,
		latency float64, hasLatency bool, ttft float64, hasTTFT bool, gpu float64, attrK, attrV string) {
		e := Event{
			EventID: id, Timestamp: time.Unix(0, tsNanos).UTC(), Tenant: tenant, Provider: provider, Model: model,
			Status: Status(status % 4), ErrorType: errType, Application: app, Operation: op, Region: region,
			ServiceTier: tier, InputTokens: in, CachedInputTokens: cached, CacheWriteTokens: cacheWrite,
			CacheWrite1hTokens: cacheWrite1h, OutputTokens: out, ReasoningTokens: reasoning, LatencyMs: latency,
			HasLatency: hasLatency, TTFTMs: ttft, HasTTFT: hasTTFT, GPUMs: gpu,
		}
		if attrK != "" || attrV != "" {
			e.Attributes = map[string]string{attrK: attrV, "fixed": attrV}
		}
		enc := AppendJSON(nil, &e)
		if !json.Valid(enc) {
			t.Fatalf("invalid JSON %q", enc)
		}
		var got Event
		err := d.Decode(enc, &got)
		if e.Validate() != nil {
			// An invalid event stays invalid once encoded, except for
			// invalid UTF-8, which the encoder replaces with U+FFFD.
			if err == nil && allValidUTF8(id, tenant, provider, model, errType, app, op, region, tier, attrK, attrV) {
				t.Fatalf("invalid event %+v (%v) decoded from %s", e, e.Validate(), enc)
			}
			return
		}
		if err != nil {
			t.Fatalf("decoding %s: %v", enc, err)
		}
		if !got.Equal(&e) {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", enc, got, e)
		}
	})
}

func allValidUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

var strictRFC3339 = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)

// FuzzParseRFC3339 compares the hand-written timestamp parser with
// time.Parse: on strings of the strict RFC 3339 shape both must agree, and
// nothing else may be accepted. The Decoder's cached parse must agree too.
func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2025-01-02T03:04:05Z", "2025-01-02T03:04:05.123456789+05:30", "2024-02-29t00:00:00z",
		"0000-01-01T00:00:00-23:59", "9999-12-31T23:59:59.9999999999Z", "2025-02-29T00:00:00Z", "2025-01-02T3:04:05Z"} {
		f.Add(s)
	}
	var d Decoder // its prefix cache carries over from input to input
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339([]byte(s))
		if got2, ok2 := d.parseTimestamp([]byte(s)); ok2 != ok || !got2.Equal(got) {
			t.Fatalf("%q: cached parse %v %v, uncached %v %v", s, got2, ok2, got, ok)
		}
		strict := strictRFC3339.MatchString(s)
		if ok && !strict {
			t.Fatalf("accepted %q", s)
		}
		if !strict {
			return
		}
		if n := len(s); s[n-1]|0x20 != 'z' && (s[n-5:n-3] >= "24" || s[n-2:] >= "60") {
			// time.Parse does not check offset ranges (go.dev/issue/54580);
			// this parser rejects hours ≥ 24 and minutes ≥ 60.
			if ok {
				t.Fatalf("accepted offset out of range in %q", s)
			}
			return
		}
		want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
		if (err == nil) != ok {
			t.Fatalf("%q: ok %v, time.Parse %v", s, ok, err)
		}
		if ok && (!got.Equal(want) || got.Location() != time.UTC) {
			t.Fatalf("%q: got %v, time.Parse %v", s, got, want)
		}
	})
}
