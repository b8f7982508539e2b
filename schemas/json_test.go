package schemas

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/json")

// minimal holds the required fields; tests splice extra fields in front of
// its closing brace.
const minimal = `{"event_id":"e1","timestamp":"2025-01-02T03:04:05Z","tenant":"t","provider":"p","model":"m","status":"ok"`

func ev(extra string) string { return minimal + extra + "}" }

func minimalEvent() Event {
	return Event{
		EventID:   "e1",
		Timestamp: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Tenant:    "t",
		Provider:  "p",
		Model:     "m",
		Status:    StatusOK,
	}
}

func with(f func(e *Event)) Event {
	e := minimalEvent()
	f(&e)
	return e
}

func mustDecode(t *testing.T, s string) Event {
	t.Helper()
	var e Event
	if err := NewDecoder().Decode([]byte(s), &e); err != nil {
		t.Fatalf("Decode(%s): %v", s, err)
	}
	return e
}

func TestDecodeValid(t *testing.T) {
	ts := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{"minimal", ev(""), minimalEvent()},
		{"full", `{"event_id":"0b7e3f1c","timestamp":"2025-11-28T09:07:12.345Z","tenant":"acme","provider":"anthropic",` +
			`"model":"claude-sonnet-4-5-20250929","status":"error","error_type":"timeout","application":"support",` +
			`"operation":"chat","region":"us-east-1","input_tokens":1834,"cached_input_tokens":1024,"cache_write_tokens":256,` +
			`"output_tokens":412,"reasoning_tokens":128,"cache_write_1h_tokens":200,"service_tier":"priority",` +
			`"latency_ms":2314.7,"ttft_ms":412.3,"gpu_ms":1500.25,"attributes":{"env":"prod","team":"search"}}`,
			Event{EventID: "0b7e3f1c", Timestamp: ts("2025-11-28T09:07:12.345Z"), Tenant: "acme", Provider: "anthropic",
				Model: "claude-sonnet-4-5-20250929", Status: StatusError, ErrorType: "timeout", Application: "support",
				Operation: "chat", Region: "us-east-1", ServiceTier: "priority", InputTokens: 1834, CachedInputTokens: 1024,
				CacheWriteTokens: 256, CacheWrite1hTokens: 200, OutputTokens: 412, ReasoningTokens: 128, LatencyMs: 2314.7,
				HasLatency: true, TTFTMs: 412.3, HasTTFT: true, GPUMs: 1500.25,
				Attributes: map[string]string{"env": "prod", "team": "search"}}},
		{"fields in reverse order", `{"attributes":{"a":"b"},"gpu_ms":1,"ttft_ms":2,"latency_ms":3,"service_tier":"flex",` +
			`"cache_write_1h_tokens":5,"reasoning_tokens":4,` +
			`"output_tokens":5,"cache_write_tokens":6,"cached_input_tokens":7,"input_tokens":13,"region":"r","operation":"o",` +
			`"application":"a","error_type":"x","status":"ok","model":"m","provider":"p","tenant":"t",` +
			`"timestamp":"2025-01-02T03:04:05Z","event_id":"e1"}`,
			with(func(e *Event) {
				e.Attributes = map[string]string{"a": "b"}
				e.GPUMs, e.TTFTMs, e.HasTTFT, e.LatencyMs, e.HasLatency = 1, 2, true, 3, true
				e.ServiceTier, e.CacheWrite1hTokens = "flex", 5
				e.ReasoningTokens, e.OutputTokens, e.CacheWriteTokens, e.CachedInputTokens, e.InputTokens = 4, 5, 6, 7, 13
				e.Region, e.Operation, e.Application, e.ErrorType = "r", "o", "a", "x"
			})},
		{"new fields next to their kin", ev(`,"region":"r","service_tier":"batch","input_tokens":10,"cache_write_tokens":8,` +
			`"cache_write_1h_tokens":8,"output_tokens":1`),
			with(func(e *Event) {
				e.Region, e.ServiceTier, e.InputTokens, e.CacheWriteTokens, e.CacheWrite1hTokens, e.OutputTokens = "r", "batch", 10, 8, 8, 1
			})},
		{"some fields, in contract order", ev(`,"application":"a","input_tokens":3,"service_tier":"flex","gpu_ms":2`),
			with(func(e *Event) { e.Application, e.InputTokens, e.ServiceTier, e.GPUMs = "a", 3, "flex", 2 })},
		{"whitespace everywhere", " \t\r\n{ \"event_id\" :\n\"e1\" , \"timestamp\"\t:\"2025-01-02T03:04:05Z\",\"tenant\":\"t\"," +
			"\"provider\":\"p\",\"model\":\"m\",\"status\":\"ok\" , \"attributes\" : { \"k\" : \"v\" } , \"x\" : [ 1 , { } , [ ] ] \n} \r\n\t",
			with(func(e *Event) { e.Attributes = map[string]string{"k": "v"} })},

		// timestamps
		{"unix millis", `{"event_id":"e1","timestamp":1735787045123,"tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = time.UnixMilli(1735787045123).UTC() })},
		{"unix millis zero", `{"event_id":"e1","timestamp":0,"tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = time.Unix(0, 0).UTC() })},
		{"unix millis written as float", `{"event_id":"e1","timestamp":1.735787045123e12,"tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = time.UnixMilli(1735787045123).UTC() })},
		{"positive offset", `{"event_id":"e1","timestamp":"2025-01-02T08:34:05+05:30","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			minimalEvent()},
		{"negative offset crossing a year", `{"event_id":"e1","timestamp":"2024-12-31T19:04:05-08:00","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = time.Date(2025, 1, 1, 3, 4, 5, 0, time.UTC) })},
		{"minus zero offset", `{"event_id":"e1","timestamp":"2025-01-02T03:04:05-00:00","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			minimalEvent()},
		{"millisecond fraction", `{"event_id":"e1","timestamp":"2025-01-02T03:04:05.123Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = e.Timestamp.Add(123 * time.Millisecond) })},
		{"one-digit fraction", `{"event_id":"e1","timestamp":"2025-01-02T03:04:05.5Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = e.Timestamp.Add(500 * time.Millisecond) })},
		{"nanosecond fraction", `{"event_id":"e1","timestamp":"2025-01-02T03:04:05.000000007Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = e.Timestamp.Add(7) })},
		{"fraction beyond nanoseconds is truncated", `{"event_id":"e1","timestamp":"2025-01-02T03:04:05.1234567899999Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = e.Timestamp.Add(123456789) })},
		{"fraction with offset", `{"event_id":"e1","timestamp":"2025-01-02T04:04:05.25+01:00","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = e.Timestamp.Add(250 * time.Millisecond) })},
		{"lower-case t and z", `{"event_id":"e1","timestamp":"2025-01-02t03:04:05z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			minimalEvent()},
		{"leap day", `{"event_id":"e1","timestamp":"2024-02-29T00:00:00Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC) })},
		{"last instant", `{"event_id":"e1","timestamp":"9999-12-31T23:59:59.999999999Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.Timestamp = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) })},
		{"escaped timestamp", `{"event_id":"e1","timestamp":"2025-01-02T03:04:05\u005a","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			minimalEvent()},

		// strings
		{"escapes", `{"event_id":"a\"b\\c\/d","timestamp":"2025-01-02T03:04:05Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.EventID = "a\"b\\c/d" })},
		{"unicode escapes", `{"event_id":"caf\u00e9 \u00E9 \u4e16 \ud83d\ude00","timestamp":"2025-01-02T03:04:05Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.EventID = "café é 世 😀" })},
		{"raw UTF-8", `{"event_id":"café 世 😀","timestamp":"2025-01-02T03:04:05Z","tenant":"Zürich","provider":"p","model":"m","status":"ok"}`,
			with(func(e *Event) { e.EventID, e.Tenant = "café 世 😀", "Zürich" })},
		{"lone surrogate in an unknown field", ev(`,"note":"a\ud83db"`), minimalEvent()},
		{"lone surrogate in an unknown key", ev(`,"a\ude00":1`), minimalEvent()},
		{"escaped key", `{"\u0065vent_id":"e1","timestamp":"2025-01-02T03:04:05Z","tenant":"t","provider":"p","model":"m","st\u0061tus":"ok"}`,
			minimalEvent()},
		{"escaped status", ev(`,"status":"\u006fk"`), minimalEvent()},
		{"long string", ev(`,"model":"` + strings.Repeat("x", 256) + `"`),
			with(func(e *Event) { e.Model = strings.Repeat("x", 256) })},

		// unknown fields
		{"unknown scalar fields", ev(`,"future":1,"x":"y","b":true,"c":false,"n":null,"f":-1.5e-3`), minimalEvent()},
		{"unknown nested fields", ev(`,"meta":{"a":[1,2,{"b":"}]\"{["},[[]],{}],"c":{"d":{"e":null}}},"arr":[[[[["x"]]]]]`), minimalEvent()},
		{"unknown field with escapes and UTF-8", ev(`,"n\u00e4me":"v\u00e4lue \ud83d\ude00 ✓"`), minimalEvent()},
		{"keys are case-sensitive", ev(`,"Tenant":"other","MODEL":"x"`), minimalEvent()},
		{"deep unknown nesting", ev(`,"deep":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000)), minimalEvent()},

		// null and duplicates
		{"null optional fields", ev(`,"error_type":null,"application":null,"operation":null,"region":null,"input_tokens":null,` +
			`"cached_input_tokens":null,"cache_write_tokens":null,"output_tokens":null,"reasoning_tokens":null,` +
			`"cache_write_1h_tokens":null,"service_tier":null,` +
			`"latency_ms":null,"ttft_ms":null,"gpu_ms":null,"attributes":null`), minimalEvent()},
		{"duplicate key: last wins", ev(`,"tenant":"t2","input_tokens":5,"input_tokens":7`),
			with(func(e *Event) { e.Tenant, e.InputTokens = "t2", 7 })},
		{"duplicate key: null after a value clears it", ev(`,"latency_ms":5,"latency_ms":null,"region":"r","region":null`), minimalEvent()},
		{"duplicate attributes: last object replaces", ev(`,"attributes":{"a":"1","b":"2"},"attributes":{"c":"3"}`),
			with(func(e *Event) { e.Attributes = map[string]string{"c": "3"} })},
		{"duplicate attribute key: last wins", ev(`,"attributes":{"a":"1","a":"2"}`),
			with(func(e *Event) { e.Attributes = map[string]string{"a": "2"} })},
		{"empty attributes", ev(`,"attributes":{}`), minimalEvent()},
		{"attribute escapes", ev(`,"attributes":{"k\/":"v\"\u00e9"}`),
			with(func(e *Event) { e.Attributes = map[string]string{"k/": "v\"é"} })},

		// numbers
		{"zero latency is present", ev(`,"latency_ms":0,"ttft_ms":0.0`),
			with(func(e *Event) { e.HasLatency, e.HasTTFT = true, true })},
		{"durations in every JSON number form", ev(`,"latency_ms":1.5e3,"ttft_ms":2E-1,"gpu_ms":0.000001`),
			with(func(e *Event) { e.LatencyMs, e.HasLatency, e.TTFTMs, e.HasTTFT, e.GPUMs = 1500, true, 0.2, true, 1e-6 })},
		{"duration at the limit", ev(`,"latency_ms":86400000`),
			with(func(e *Event) { e.LatencyMs, e.HasLatency = 86400000, true })},
		{"duration with many digits", ev(`,"latency_ms":123.45678901234567890123`),
			with(func(e *Event) { e.LatencyMs, e.HasLatency = 123.45678901234567890123, true })},
		{"integral tokens written as floats", ev(`,"input_tokens":12.0,"output_tokens":1e3,"reasoning_tokens":2.5E2`),
			with(func(e *Event) { e.InputTokens, e.OutputTokens, e.ReasoningTokens = 12, 1000, 250 })},
		{"negative zero tokens", ev(`,"input_tokens":-0`), minimalEvent()},
		{"token limit", ev(`,"input_tokens":1000000000,"output_tokens":1000000000,"reasoning_tokens":1000000000`),
			with(func(e *Event) { e.InputTokens, e.OutputTokens, e.ReasoningTokens = 1e9, 1e9, 1e9 })},
		{"status error", ev(`,"status":"error"`), with(func(e *Event) { e.Status = StatusError })},

		// service_tier and cache_write_1h_tokens
		{"service tier kept as sent", ev(`,"service_tier":"Priority"`), with(func(e *Event) { e.ServiceTier = "Priority" })},
		{"service tier of every allowed character", ev(`,"service_tier":"AZaz09_-.x"`), with(func(e *Event) { e.ServiceTier = "AZaz09_-.x" })},
		{"service tier at the limit", ev(`,"service_tier":"` + strings.Repeat("t", MaxServiceTierLen) + `"`),
			with(func(e *Event) { e.ServiceTier = strings.Repeat("t", MaxServiceTierLen) })},
		{"service tier escaped", ev(`,"service_tier":"\u0062atch"`), with(func(e *Event) { e.ServiceTier = "batch" })},
		{"empty service tier is absent", ev(`,"service_tier":""`), minimalEvent()},
		{"standard service tier kept", ev(`,"service_tier":"standard"`), with(func(e *Event) { e.ServiceTier = "standard" })},
		{"1-hour cache writes up to all cache writes", ev(`,"input_tokens":100,"cache_write_tokens":60,"cache_write_1h_tokens":60`),
			with(func(e *Event) { e.InputTokens, e.CacheWriteTokens, e.CacheWrite1hTokens = 100, 60, 60 })},
		{"1-hour cache writes written as float", ev(`,"input_tokens":100,"cache_write_tokens":60,"cache_write_1h_tokens":2e1`),
			with(func(e *Event) { e.InputTokens, e.CacheWriteTokens, e.CacheWrite1hTokens = 100, 60, 20 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, dec := range []struct {
				name string
				fn   func([]byte, *Event) error
			}{{"Decoder", NewDecoder().Decode}, {"DecodeJSON", DecodeJSON}, {"zero Decoder", new(Decoder).Decode}} {
				var got Event
				if err := dec.fn([]byte(tt.in), &got); err != nil {
					t.Fatalf("%s: %v", dec.name, err)
				}
				if !got.Equal(&tt.want) {
					t.Fatalf("%s:\n got %+v\nwant %+v", dec.name, got, tt.want)
				}
				if got.Timestamp.Location() != time.UTC {
					t.Errorf("%s: timestamp location %v, want UTC", dec.name, got.Timestamp.Location())
				}
				// Equal compares durations only when present: check the raw values too.
				if got.LatencyMs != tt.want.LatencyMs || got.TTFTMs != tt.want.TTFTMs {
					t.Errorf("%s: latency %v ttft %v, want %v %v", dec.name, got.LatencyMs, got.TTFTMs, tt.want.LatencyMs, tt.want.TTFTMs)
				}
			}
		})
	}
}

// TestDecodeReusesEvent checks that Decode resets the event: nothing of a
// previous decode leaks into the next one.
func TestDecodeReusesEvent(t *testing.T) {
	d := NewDecoder()
	var e Event
	full := ev(`,"region":"r","latency_ms":5,"attributes":{"a":"b"},"input_tokens":3`)
	if err := d.Decode([]byte(full), &e); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte(ev("")), &e); err != nil {
		t.Fatal(err)
	}
	want := minimalEvent()
	if !e.Equal(&want) || e.Attributes != nil || e.LatencyMs != 0 {
		t.Fatalf("got %+v, want %+v", e, want)
	}
}

func TestDecodeSyntaxErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		offset int
		msg    string // substring of the message
	}{
		{"empty", ``, 0, "expected '{' at the start of an event, found end of input"},
		{"only whitespace", "  \n", 3, "found end of input"},
		{"null", `null`, 0, "expected '{' at the start of an event, found 'n'"},
		{"array", `[{}]`, 0, "expected '{'"},
		{"string", `"x"`, 0, "expected '{'"},
		{"unterminated object", `{"event_id":"e1"`, 16, "expected ',' or '}' after object value, found end of input"},
		{"missing colon", `{"event_id" "e1"}`, 12, `expected ':' after object key, found '"'`},
		{"missing value", `{"event_id":}`, 12, "found '}'"},
		{"value at end", `{"event_id":`, 12, "expected a value after ':', found end of input"},
		{"trailing comma", `{"event_id":"e1",}`, 17, `expected '"' to start an object key, found '}'`},
		{"unquoted key", `{event_id:"e1"}`, 1, `expected '"' to start an object key, found 'e'`},
		{"single quotes", `{'event_id':'e1'}`, 1, "found '''"},
		{"trailing garbage", `{} x`, 3, "unexpected data after the event object, found 'x'"},
		{"two objects", `{}{}`, 2, "unexpected data after the event object"},
		{"missing comma", `{"a":1 "b":2}`, 7, "expected ',' or '}' after object value"},
		{"unterminated string", `{"event_id":"e1`, 15, "unterminated string"},
		{"unterminated key", `{"event_id`, 10, "unterminated string"},
		{"raw newline in string", "{\"event_id\":\"a\nb\"}", 14, "control character in string"},
		{"raw tab in key", "{\"a\tb\":1}", 3, "control character in string"},
		{"control char after escape", "{\"a\":\"\\n\x01\"}", 8, "control character in string"},
		{"invalid escape", `{"event_id":"a\x"}`, 15, "invalid escape in string, found 'x'"},
		{"short unicode escape", `{"event_id":"\u12"}`, 13, `invalid \u escape`},
		{"non-hex unicode escape", `{"event_id":"\u12g4"}`, 13, `invalid \u escape`},
		{"backslash at end", `{"event_id":"\`, 14, "unterminated string"},
		{"invalid UTF-8 in key", "{\"a\xffb\":1}", 1, "invalid UTF-8 in object key"},
		{"invalid UTF-8 in unknown string", "{\"x\":\"a\xc3\"}", 5, "invalid UTF-8 in string"},
		{"invalid UTF-8 in nested unknown key", "{\"x\":{\"\xed\xa0\x80\":1}}", 6, "invalid UTF-8 in object key"},
		{"leading zero", `{"x":012}`, 6, "expected ',' or '}' after object value, found '1'"},
		{"leading zero in token", `{"input_tokens":012}`, 17, "found '1'"},
		{"leading zero in duration", `{"latency_ms":00.5}`, 15, "found '0'"},
		{"plus sign", `{"x":+1}`, 5, "expected a value, found '+'"},
		{"plus sign in token", `{"input_tokens":+1}`, 16, "expected a value, found '+'"},
		{"bare minus", `{"x":-}`, 6, "invalid number, expected a digit, found '}'"},
		{"bare minus in token", `{"input_tokens":-}`, 17, "invalid number, expected a digit"},
		{"minus letter in duration", `{"latency_ms":-x}`, 15, "invalid number, expected a digit"},
		{"dot without digits", `{"x":1.}`, 7, "expected a digit after '.'"},
		{"dot without digits in duration", `{"latency_ms":1.}`, 16, "expected a digit after '.'"},
		{"dot without digits in token", `{"input_tokens":1.e5}`, 18, "expected a digit after '.'"},
		{"leading dot", `{"x":.5}`, 5, "expected a value, found '.'"},
		{"empty exponent", `{"x":1e}`, 7, "expected a digit in the exponent"},
		{"exponent sign only", `{"latency_ms":1e+}`, 17, "expected a digit in the exponent"},
		{"hex number", `{"x":0x10}`, 6, "found 'x'"},
		{"NaN literal", `{"latency_ms":NaN}`, 14, "expected a value, found 'N'"},
		{"Infinity literal", `{"x":Infinity}`, 5, "expected a value"},
		{"bad literal", `{"x":nul}`, 5, "expected a value, found 'n'"},
		{"bad literal true", `{"x":tru}`, 5, "expected a value"},
		{"literal prefix", `{"x":nullx}`, 9, "expected ',' or '}' after object value, found 'x'"},
		{"bad nested array", `{"x":[1,]}`, 8, "expected a value, found ']'"},
		{"unclosed nested array", `{"x":[1,2}`, 9, "expected ',' or ']' after array element, found '}'"},
		{"unclosed nested object", `{"x":{"a":1]}`, 11, "expected ',' or '}' after object value, found ']'"},
		{"nested missing colon", `{"x":{"a" 1}}`, 10, "expected ':' after object key"},
		{"nested trailing comma", `{"x":{"a":1,}}`, 12, `expected '"' to start an object key`},
		{"nested unterminated", `{"x":[[`, 7, "expected a value, found end of input"},
		{"too deep", `{"x":` + strings.Repeat("[", maxSkipDepth+1) + strings.Repeat("]", maxSkipDepth+1) + `}`, 5 + maxSkipDepth, "nesting deeper than 10000 levels"},
		{"attributes missing colon", `{"attributes":{"a" "b"}}`, 19, "expected ':' after object key"},
		{"attributes trailing comma", `{"attributes":{"a":"b",}}`, 23, `expected '"' to start an object key`},
		{"attributes unterminated", `{"attributes":{"a":"b"`, 22, "expected ',' or '}' after object value, found end of input"},
		{"attributes bad key", `{"attributes":{1:"b"}}`, 15, `expected '"' to start an object key, found '1'`},
		{"wrong type with bad syntax inside", `{"tenant":[1,}`, 13, "expected a value, found '}'"},
		{"syntax error after a type error is not reached", `{"tenant":"t"` + "\x00", 13, "found byte 0x0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			err := NewDecoder().Decode([]byte(tt.in), &e)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want *SyntaxError", err, err)
			}
			if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
				t.Fatalf("got offset %d %q, want offset %d containing %q", se.Offset, se.Msg, tt.offset, tt.msg)
			}
			if want := "cannot parse event JSON at offset " + strconv.Itoa(tt.offset) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("message %q does not start with %q", err, want)
			}
		})
	}
}

// TestSyntaxErrorMessage pins one message exactly, as users see it.
func TestSyntaxErrorMessage(t *testing.T) {
	err := DecodeJSON([]byte(`{"event_id":"e1","tenant" "t"}`), new(Event))
	const want = `cannot parse event JSON at offset 26: expected ':' after object key, found '"'`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestDecodeFieldErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		field string
		value string
		msg   string // exact Error() when not empty
	}{
		{"token as string", ev(`,"input_tokens":"12"`), "input_tokens", `"12"`, `invalid field "input_tokens" = "\"12\"": must be an integer`},
		{"token with fraction", ev(`,"output_tokens":12.5`), "output_tokens", "12.5", `invalid field "output_tokens" = "12.5": must be an integer`},
		{"token with negative exponent", ev(`,"reasoning_tokens":1e-3`), "reasoning_tokens", "1e-3", ""},
		{"token true", ev(`,"cached_input_tokens":true`), "cached_input_tokens", "true", ""},
		{"token huge", ev(`,"cache_write_tokens":123456789012345678901234567890`), "cache_write_tokens", "123456789012345678901234567890", `invalid field "cache_write_tokens" = "123456789012345678901234567890": out of range`},
		{"token 19 digits", ev(`,"input_tokens":1000000000000000000`), "input_tokens", "1000000000000000000", ""},
		{"token huge negative", ev(`,"input_tokens":-1e300`), "input_tokens", "-1e300", ""},
		{"token above limit", ev(`,"input_tokens":1000000001`), "input_tokens", "1000000001", `invalid field "input_tokens" = "1000000001": exceeds the limit of 10^9 tokens`},
		{"token negative", ev(`,"output_tokens":-1`), "output_tokens", "-1", `invalid field "output_tokens" = "-1": must be ≥ 0`},
		{"string as number", ev(`,"tenant":12`), "tenant", "12", `invalid field "tenant" = "12": must be a string`},
		{"string as object", ev(`,"model":{"a":[1,2]}`), "model", `{"a":[1,2]}`, ""},
		{"string as array", ev(`,"region":["x"]`), "region", `["x"]`, ""},
		{"event_id as number", `{"event_id":12345}`, "event_id", "12345", ""},
		{"status unknown", ev(`,"status":"maybe"`), "status", "maybe", `invalid field "status" = "maybe": must be "ok" or "error"`},
		{"status upper case", ev(`,"status":"OK"`), "status", "OK", ""},
		{"status empty", ev(`,"status":""`), "status", "", ""},
		{"status null", ev(`,"status":null`), "status", "", `invalid field "status": required: "ok" or "error"`},
		{"status number", ev(`,"status":1`), "status", "1", ""},
		{"duration as string", ev(`,"latency_ms":"5"`), "latency_ms", `"5"`, `invalid field "latency_ms" = "\"5\"": must be a number`},
		{"duration as bool", ev(`,"ttft_ms":false`), "ttft_ms", "false", ""},
		{"duration overflow", ev(`,"gpu_ms":1e400`), "gpu_ms", "1e400", `invalid field "gpu_ms" = "1e400": out of range`},
		{"duration negative", ev(`,"ttft_ms":-0.5`), "ttft_ms", "-0.5", ""},
		{"duration over 24h", ev(`,"latency_ms":86400000.001`), "latency_ms", "8.6400000001e+07", ""},
		{"attributes as array", ev(`,"attributes":["a"]`), "attributes", `["a"]`, `invalid field "attributes" = "[\"a\"]": must be an object of strings`},
		{"attributes as string", ev(`,"attributes":"a=b"`), "attributes", `"a=b"`, ""},
		{"attribute value number", ev(`,"attributes":{"k":1}`), "attributes.k", "1", `invalid field "attributes.k" = "1": must be a string`},
		{"attribute value null", ev(`,"attributes":{"k":null}`), "attributes.k", "null", ""},
		{"attribute value object", ev(`,"attributes":{"k":{"x":"y"}}`), "attributes.k", `{"x":"y"}`, ""},
		{"too many attributes", ev(`,"attributes":{` + manyAttrs(MaxAttributes+1) + `}`), "attributes", "65 entries", `invalid field "attributes" = "65 entries": more than 64 attributes`},
		{"empty attribute key", ev(`,"attributes":{"":"v"}`), "attributes", "", ""},
		{"timestamp as bool", ev(`,"timestamp":true`), "timestamp", "true", `invalid field "timestamp" = "true": must be an RFC 3339 string or integer unix milliseconds`},
		{"timestamp as fraction of a millisecond", ev(`,"timestamp":1735787045123.5`), "timestamp", "1735787045123.5", `invalid field "timestamp" = "1735787045123.5": must be an integer`},
		{"timestamp negative millis", ev(`,"timestamp":-1`), "timestamp", "-1", `invalid field "timestamp" = "-1": outside years 1970–9999`},
		{"timestamp millis after 9999", ev(`,"timestamp":253402300800000`), "timestamp", "253402300800000", ""},
		{"timestamp millis huge", ev(`,"timestamp":1e30`), "timestamp", "1e30", ""},
		{"timestamp null", ev(`,"timestamp":null`), "timestamp", "", `invalid field "timestamp": required`},
		{"timestamp before 1970", ev(`,"timestamp":"1969-12-31T23:59:59Z"`), "timestamp", "1969-12-31T23:59:59Z", `invalid field "timestamp" = "1969-12-31T23:59:59Z": outside years 1970–9999`},
		{"timestamp at Go's zero time", ev(`,"timestamp":"0001-01-01T00:00:00Z"`), "timestamp", "0001-01-01T00:00:00Z", `invalid field "timestamp" = "0001-01-01T00:00:00Z": outside years 1970–9999`},
		{"timestamp at Go's zero time with an offset", ev(`,"timestamp":"0001-01-01T01:00:00+01:00"`), "timestamp", "0001-01-01T01:00:00+01:00", ""},
		{"required missing", `{"event_id":"e1","timestamp":1,"provider":"p","model":"m","status":"ok"}`, "tenant", "", `invalid field "tenant": required and must not be empty`},
		{"required null", ev(`,"model":null`), "model", "", ""},
		{"invalid UTF-8 in tenant", ev(",\"tenant\":\"a\xffb\""), "tenant", "a\xffb", `invalid field "tenant" = "a\xffb": not valid UTF-8 at byte 1`},
		// Escaped lone surrogates: each would decode to U+FFFD, so the
		// three ids would be one and two of the events dropped as its
		// duplicates.
		{"lone high surrogate in event_id", `{"event_id":"a\ud83db","timestamp":"2025-01-02T03:04:05Z","tenant":"t","provider":"p","model":"m","status":"ok"}`,
			"event_id", "a\uFFFDb", "invalid field \"event_id\" = \"a\uFFFDb\": holds an escaped lone UTF-16 surrogate (shown as U+FFFD), which is not a character: escape a character above U+FFFF as a surrogate pair, or send it as UTF-8"},
		{"lone low surrogate in event_id", `{"event_id":"a\ude00b"}`, "event_id", "a\uFFFDb", ""},
		{"high surrogate then non-surrogate escape", `{"event_id":"\ud83d\u0041"}`, "event_id", "\uFFFDA", ""},
		{"two high surrogates", `{"event_id":"\ud83d\ud83d\ude00"}`, "event_id", "\uFFFD😀", ""},
		{"lone surrogate in tenant", ev(`,"tenant":"\udfff"`), "tenant", "\uFFFD", ""},
		{"lone surrogate as model", ev(`,"model":"gpt\ud800"`), "model", "gpt\uFFFD", ""},
		{"lone surrogate in an attribute value", ev(`,"attributes":{"k":"\ud800"}`), "attributes.k", "\uFFFD", ""},
		{"lone surrogate in an attribute key", ev(`,"attributes":{"\ud800":"v"}`), "attributes", "\uFFFD", ""},
		{"invalid UTF-8 in event_id", "{\"event_id\":\"\xc0\xaf\"}", "event_id", "\xc0\xaf", ""},
		{"invalid UTF-8 in attribute value", ev(",\"attributes\":{\"k\":\"\xed\xa0\x80\"}"), "attributes.k", "\xed\xa0\x80", ""},
		{"invalid UTF-8 in attribute key", ev(",\"attributes\":{\"\xff\":\"v\"}"), "attributes", "\xff", ""},
		{"cross-field invariant", ev(`,"input_tokens":10,"cached_input_tokens":8,"cache_write_tokens":3`), "cached_input_tokens", "8", ""},
		{"1-hour cache writes exceed cache writes", ev(`,"input_tokens":10,"cache_write_tokens":3,"cache_write_1h_tokens":4`),
			"cache_write_1h_tokens", "4", `invalid field "cache_write_1h_tokens" = "4": exceeds cache_write_tokens (3)`},
		{"1-hour cache writes without cache writes", ev(`,"input_tokens":10,"cache_write_1h_tokens":1`),
			"cache_write_1h_tokens", "1", `invalid field "cache_write_1h_tokens" = "1": exceeds cache_write_tokens (0)`},
		{"1-hour cache writes negative", ev(`,"cache_write_1h_tokens":-1`), "cache_write_1h_tokens", "-1",
			`invalid field "cache_write_1h_tokens" = "-1": must be ≥ 0`},
		{"1-hour cache writes above limit", ev(`,"input_tokens":1000000000,"cache_write_tokens":1000000000,"cache_write_1h_tokens":1000000001`),
			"cache_write_1h_tokens", "1000000001", `invalid field "cache_write_1h_tokens" = "1000000001": exceeds the limit of 10^9 tokens`},
		{"1-hour cache writes as string", ev(`,"cache_write_1h_tokens":"4"`), "cache_write_1h_tokens", `"4"`,
			`invalid field "cache_write_1h_tokens" = "\"4\"": must be an integer`},
		{"1-hour cache writes with fraction", ev(`,"cache_write_1h_tokens":0.5`), "cache_write_1h_tokens", "0.5", ""},
		{"service tier as number", ev(`,"service_tier":1`), "service_tier", "1", `invalid field "service_tier" = "1": must be a string`},
		{"service tier as array", ev(`,"service_tier":["batch"]`), "service_tier", `["batch"]`, ""},
		{"service tier with a space", ev(`,"service_tier":"batch tier"`), "service_tier", "batch tier",
			`invalid field "service_tier" = "batch tier": character ' ' (U+0020) at byte 5 (only ASCII letters, digits, '_', '-' and '.' are allowed)`},
		{"service tier with a slash", ev(`,"service_tier":"a/b"`), "service_tier", "a/b",
			`invalid field "service_tier" = "a/b": character '/' (U+002F) at byte 1 (only ASCII letters, digits, '_', '-' and '.' are allowed)`},
		{"service tier with a colon", ev(`,"service_tier":"tier:1"`), "service_tier", "tier:1", ""},
		{"service tier not ASCII", ev(`,"service_tier":"flé"`), "service_tier", "flé",
			`invalid field "service_tier" = "flé": character 'é' (U+00E9) at byte 2 (only ASCII letters, digits, '_', '-' and '.' are allowed)`},
		{"service tier with an escaped quote", ev(`,"service_tier":"a\"b"`), "service_tier", `a"b`,
			`invalid field "service_tier" = "a\"b": character '"' (U+0022) at byte 1 (only ASCII letters, digits, '_', '-' and '.' are allowed)`},
		{"service tier too long", ev(`,"service_tier":"` + strings.Repeat("t", MaxServiceTierLen+1) + `"`), "service_tier", "ttt",
			`invalid field "service_tier" = "` + strings.Repeat("t", MaxServiceTierLen+1) + `": longer than 32 bytes (33)`},
		{"service tier with a control character", ev(`,"service_tier":"batch\u001b"`), "service_tier", "batch\x1b",
			`invalid field "service_tier" = "batch\x1b": control character U+001B at byte 5 (not allowed in strings)`},
		{"service tier invalid UTF-8", ev(",\"service_tier\":\"a\xffb\""), "service_tier", "a\xffb",
			`invalid field "service_tier" = "a\xffb": not valid UTF-8 at byte 1`},
		{"first error wins", ev(`,"tenant":1,"model":2`), "tenant", "1", ""},
		{"long value is cut", ev(`,"tenant":[` + strings.Repeat(`"x",`, 100) + `1]`), "tenant", `["x","x"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			err := NewDecoder().Decode([]byte(tt.in), &e)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want *FieldError", err, err)
			}
			if fe.Field != tt.field || !strings.HasPrefix(fe.Value, tt.value) {
				t.Fatalf("got field %q value %q, want %q %q (%v)", fe.Field, fe.Value, tt.field, tt.value, err)
			}
			if len(fe.Value) > maxErrValueLen+len("…") {
				t.Errorf("value of %d bytes kept in the error", len(fe.Value))
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Fatalf("message\n got %s\nwant %s", err, tt.msg)
			}
		})
	}
}

// TestErrValueCut checks that offending values are kept whole up to
// maxErrValueLen bytes and cut at a character boundary beyond.
func TestErrValueCut(t *testing.T) {
	for n := maxErrValueLen - 2; n <= maxErrValueLen+6; n++ {
		for _, fill := range []string{"x", "é", "😀"} {
			v := strings.Repeat(fill, n/len(fill)+1)[:n]
			if !utf8.ValidString(v) {
				v = strings.ToValidUTF8(v, "")
			}
			got := errValue([]byte(v))
			switch {
			case len(v) <= maxErrValueLen && got != v:
				t.Fatalf("%d bytes of %q: got %q", len(v), fill, got)
			case len(v) > maxErrValueLen && (!strings.HasSuffix(got, "…") || !strings.HasPrefix(v, strings.TrimSuffix(got, "…")) ||
				len(got) > maxErrValueLen+len("…") || !utf8.ValidString(got)):
				t.Fatalf("%d bytes of %q: got %q", len(v), fill, got)
			}
		}
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"v"`, i)
	}
	return b.String()
}

// TestDecodeKnowsEveryField probes each contract field with a value of the
// wrong type: the error must name the field, so the decoder recognises it.
func TestDecodeKnowsEveryField(t *testing.T) {
	for _, f := range eventFields {
		var e Event
		err := DecodeJSON([]byte(ev(`,"`+f+`":[true]`)), &e)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != f || fe.Value != "[true]" {
			t.Errorf("field %s: got %v", f, err)
		}
	}
}

// TestDecodeNoAlias checks that decoded strings survive the caller reusing
// its buffer, with and without escapes and interning.
func TestDecodeNoAlias(t *testing.T) {
	in := `{"event_id":"id-1","timestamp":"2025-01-02T03:04:05Z","tenant":"te\u006eant","provider":"prov",` +
		`"model":"mod","status":"ok","error_type":"boom","application":"app","operation":"op","region":"reg",` +
		`"service_tier":"fl\u0065x","attributes":{"k\u0031":"v1","k2":"v\u0032"}}`
	for _, d := range []*Decoder{NewDecoder(), new(Decoder)} {
		buf := []byte(in)
		var e Event
		if err := d.Decode(buf, &e); err != nil {
			t.Fatal(err)
		}
		want := e
		want.Attributes = map[string]string{"k1": "v1", "k2": "v2"}
		for i := range buf {
			buf[i] = 'X'
		}
		// A second decode reuses the decoder's scratch space too.
		var e2 Event
		if err := d.Decode([]byte(ev(`,"tenant":"\u0058\u0058\u0058\u0058\u0058\u0058","attributes":{"\u0059\u0059":"\u0059\u0059"}`)), &e2); err != nil {
			t.Fatal(err)
		}
		if e.EventID != "id-1" || e.Tenant != "tenant" || e.Provider != "prov" || e.Model != "mod" || e.ErrorType != "boom" ||
			e.Application != "app" || e.Operation != "op" || e.Region != "reg" || e.ServiceTier != "flex" || !e.Equal(&want) {
			t.Fatalf("decoded strings changed with the buffer: %+v", e)
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	d := NewDecoder()
	var e Event
	data := []byte(benchEvent)
	allocs := testing.AllocsPerRun(100, func() {
		if err := d.Decode(data, &e); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 { // event_id
		t.Fatalf("%v allocations per decode, want ≤ 1", allocs)
	}
	// service_tier is interned like the other labels.
	withTier := []byte(strings.Replace(benchEvent, `"reasoning_tokens":128,`,
		`"reasoning_tokens":128,"cache_write_1h_tokens":200,"service_tier":"priority",`, 1))
	allocs = testing.AllocsPerRun(100, func() {
		if err := d.Decode(withTier, &e); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 || e.ServiceTier != "priority" || e.CacheWrite1hTokens != 200 {
		t.Fatalf("%v allocations per decode with a service tier (%q, %d), want ≤ 1", allocs, e.ServiceTier, e.CacheWrite1hTokens)
	}
	withAttrs := []byte(ev(`,"attributes":{"env":"prod"}`))
	allocs = testing.AllocsPerRun(100, func() {
		if err := d.Decode(withAttrs, &e); err != nil {
			t.Fatal(err)
		}
	})
	// event_id, map header and group, attribute value, and the field name
	// Validate builds for each attribute ("attributes." + key).
	if allocs > 5 {
		t.Fatalf("%v allocations per decode with an attribute, want ≤ 5", allocs)
	}
}

func TestInternBounded(t *testing.T) {
	d := NewDecoder()
	var e Event
	n := internMaxEntries + 1000
	for i := range n {
		if err := d.Decode([]byte(ev(`,"tenant":"tenant-`+strconv.Itoa(i)+`"`)), &e); err != nil {
			t.Fatal(err)
		}
		if len(d.strs) > internMaxEntries {
			t.Fatalf("intern table has %d entries after %d events", len(d.strs), i+1)
		}
	}
	if want := "tenant-" + strconv.Itoa(n-1); e.Tenant != want {
		t.Fatalf("tenant %q, want %q", e.Tenant, want)
	}
	// Long strings hit the byte budget: it is cleared, never exceeded.
	long := strings.Repeat("x", MaxApplicationLen-8)
	for i := range internMaxBytes/len(long) + 100 {
		if err := d.Decode([]byte(ev(`,"application":"`+long+strconv.Itoa(i)+`"`)), &e); err != nil {
			t.Fatal(err)
		}
		if d.strBytes > internMaxBytes {
			t.Fatalf("intern table holds %d bytes", d.strBytes)
		}
	}
	// Strings over the intern limit are not kept.
	d = NewDecoder()
	for range 3 {
		if err := d.Decode([]byte(ev(`,"error_type":"`+strings.Repeat("y", MaxLabelLen+1)+`"`)), &e); err == nil {
			t.Fatal("over-long error_type accepted")
		}
	}
	for s := range d.strs {
		if len(s) > internMaxLen {
			t.Fatalf("interned a string of %d bytes", len(s))
		}
	}
}

// TestInternShares checks that repeated strings come back as one allocation.
func TestInternShares(t *testing.T) {
	d := NewDecoder()
	var a, b Event
	if err := d.Decode([]byte(ev(`,"region":"eu-west-1"`)), &a); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte(ev(`,"region":"eu-west-\u0031"`)), &b); err != nil {
		t.Fatal(err)
	}
	if a.Region != b.Region || unsafe.StringData(a.Region) != unsafe.StringData(b.Region) {
		t.Fatalf("region not shared: %q %q", a.Region, b.Region)
	}
	if err := d.Decode([]byte(ev(`,"service_tier":"priority"`)), &a); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode([]byte(ev(`,"service_tier":"priorit\u0079"`)), &b); err != nil {
		t.Fatal(err)
	}
	if a.ServiceTier != b.ServiceTier || unsafe.StringData(a.ServiceTier) != unsafe.StringData(b.ServiceTier) {
		t.Fatalf("service_tier not shared: %q %q", a.ServiceTier, b.ServiceTier)
	}
}

func TestParseRFC3339(t *testing.T) {
	valid := []string{
		"2025-01-02T03:04:05Z", "2025-01-02T03:04:05.1Z", "2025-01-02T03:04:05.123456789Z",
		"2025-01-02T03:04:05+00:00", "2025-01-02T03:04:05-00:00", "2025-01-02T03:04:05+23:59",
		"2025-01-02T03:04:05-23:59", "2025-12-31T23:59:59.999+14:00", "1970-01-01T00:00:00Z",
		"0000-01-01T00:00:00Z", "0000-02-29T12:00:00Z", "0001-03-01T00:00:00+01:00", "9999-12-31T23:59:59Z",
		"2000-02-29T00:00:00Z", "2024-02-29T23:59:59Z", "1900-02-28T00:00:00Z", "2025-06-30T12:00:00.000Z",
	}
	for _, s := range valid {
		got, ok := parseRFC3339([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: got %v %v, time.Parse %v %v", s, got, ok, want, err)
		}
	}
	// Lower case (which time.Parse rejects) and fractions beyond nanoseconds.
	for s, want := range map[string]string{
		"2025-01-02t03:04:05z":                "2025-01-02T03:04:05Z",
		"2025-01-02t03:04:05.5+01:00":         "2025-01-02T03:04:05.5+01:00",
		"2025-01-02T03:04:05.12345678912345Z": "2025-01-02T03:04:05.123456789Z",
	} {
		got, ok := parseRFC3339([]byte(s))
		w, _ := time.Parse(time.RFC3339Nano, want)
		if !ok || !got.Equal(w) {
			t.Errorf("%s: got %v %v, want %v", s, got, ok, w)
		}
	}
	invalid := []string{
		"", "2025-01-02", "2025-01-02T03:04:05", "2025-01-02 03:04:05Z", "2025-01-02T03:04:05ZZ",
		"2025-13-02T03:04:05Z", "2025-00-02T03:04:05Z", "2025-01-00T03:04:05Z", "2025-01-32T03:04:05Z",
		"2025-02-29T03:04:05Z", "1900-02-29T03:04:05Z", "2025-04-31T03:04:05Z", "2025-01-02T24:00:00Z",
		"2025-01-02T03:60:05Z", "2025-01-02T03:04:60Z", "2025-01-02T03:04:05.Z", "2025-01-02T03:04:05,5Z",
		"2025-01-02T03:04:05+24:00", "2025-01-02T03:04:05+01:60", "2025-01-02T03:04:05+0100", "2025-01-02T03:04:05+01",
		"2025-01-02T03:04:05 +01:00", "2025-1-02T03:04:05Z", "2025-01-02T3:04:05Z", "+2025-01-02T03:04:05Z",
		"20250-01-02T03:04:05Z", "2025/01/02T03:04:05Z", "2025-01-02T03.04.05Z", "２025-01-02T03:04:05Z",
		"2025-01-02T03:04:05.5.5Z", "2025-01-02T03:04:05.-5Z", "2025-01-02T03:04:05-01:0a", "abcd-ef-ghTij:kl:mnZ",
		"2025-01-02T03:04:05UTC", "2025-01-02T03:04:05Z ", " 2025-01-02T03:04:05Z",
	}
	for _, s := range invalid {
		if got, ok := parseRFC3339([]byte(s)); ok {
			t.Errorf("%q accepted as %v", s, got)
		}
	}
	// The Decoder's prefix cache must give the same answers whatever was
	// parsed before: prime it with each string, then parse every other one.
	all := append(append([]string{}, valid...), invalid...)
	all = append(all, "2025-01-02T03:04:60Z", "2025-01-02T03:04:59.5-01:00", "2025-01-02T03:04:5xZ", "2025-01-02T03:04+05:00")
	for _, prime := range all {
		for _, s := range all {
			var d Decoder
			d.parseTimestamp([]byte(prime))
			got, ok := d.parseTimestamp([]byte(s))
			want, wantOK := parseRFC3339([]byte(s))
			if ok != wantOK || !got.Equal(want) {
				t.Fatalf("after %q, %q gave %v %v, want %v %v", prime, s, got, ok, want, wantOK)
			}
		}
	}
}

// TestDaysFromCivil compares the date arithmetic with package time over the
// whole range RFC 3339 can express.
func TestDaysFromCivil(t *testing.T) {
	for y := 0; y <= 9999; y++ {
		for _, md := range [][2]int{{1, 1}, {2, 28}, {3, 1}, {12, 31}} {
			want := time.Date(y, time.Month(md[0]), md[1], 0, 0, 0, 0, time.UTC).Unix() / 86400
			if got := daysFromCivil(y, md[0], md[1]); got != want {
				t.Fatalf("%04d-%02d-%02d: got %d, want %d", y, md[0], md[1], got, want)
			}
		}
	}
}

// TestFloatValueExact checks the decimal fast path against strconv.ParseFloat
// on many random decimals, including the boundaries of the fast path.
func TestFloatValueExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(s string) {
		t.Helper()
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		data := []byte(s + ",")
		got, next, err := floatValue(data, 0)
		if err != nil || next != len(s) || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%s: got %v (next %d, %v), want %v", s, got, next, err, want)
		}
	}
	for _, s := range []string{"0", "-0", "0.0", "-0.0", "1", "0.1", "0.3", "2314.7", "412.3", "86400000",
		"999999999999999", "99999999999999.9", "0.000000000000001", "9007199254740993", "1234567890123456",
		"0.1234567890123456", "1e5", "1.5E-3", "123456789012345678901234567890", "4.9e-324", "1.7976931348623157e308"} {
		check(s)
	}
	for range 200000 {
		intDigits := r.IntN(12)
		fracDigits := r.IntN(18)
		var b strings.Builder
		if r.IntN(4) == 0 {
			b.WriteByte('-')
		}
		if intDigits == 0 {
			b.WriteByte('0')
		} else {
			b.WriteByte(byte('1' + r.IntN(9)))
			for range intDigits - 1 {
				b.WriteByte(byte('0' + r.IntN(10)))
			}
		}
		if fracDigits > 0 {
			b.WriteByte('.')
			for range fracDigits {
				b.WriteByte(byte('0' + r.IntN(10)))
			}
		}
		check(b.String())
	}
}

func TestIntValue(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		reason string
	}{
		{"0", 0, ""}, {"-0", 0, ""}, {"7", 7, ""}, {"-7", -7, ""}, {"123456789012345678", 123456789012345678, ""},
		{"1234567890123456789", 0, "out of range"}, {"12.0", 12, ""}, {"1e3", 1000, ""}, {"1E+3", 1000, ""},
		{"12.5", 0, "must be an integer"}, {"1e-1", 0, "must be an integer"}, {"-3.0", -3, ""},
		{"999999999999999", 999999999999999, ""}, {"1e15", 1e15, ""}, {"1.5e15", 0, "out of range"},
	}
	for _, tt := range tests {
		v, next, reason, err := intValue([]byte(tt.in+"}"), 0)
		if err != nil || next != len(tt.in) || v != tt.want || reason != tt.reason {
			t.Errorf("%s: got %d next %d %q %v, want %d %q", tt.in, v, next, reason, err, tt.want, tt.reason)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	full := Event{EventID: "id", Timestamp: time.Date(2025, 11, 28, 9, 7, 12, 345000000, time.UTC), Tenant: "acme",
		Provider: "anthropic", Model: "claude", Status: StatusError, ErrorType: "timeout", Application: "app",
		Operation: "chat", Region: "eu", ServiceTier: "Flex", InputTokens: 10, CachedInputTokens: 4, CacheWriteTokens: 2,
		CacheWrite1hTokens: 1, OutputTokens: 8, ReasoningTokens: 3, LatencyMs: 2314.7, HasLatency: true, TTFTMs: 0.5,
		HasTTFT: true, GPUMs: 1e-7,
		Attributes: map[string]string{"z": "1", "a": "2", "m": ""}}
	tests := []struct {
		name string
		e    Event
		want string
	}{
		{"minimal", minimalEvent(), `{"event_id":"e1","timestamp":"2025-01-02T03:04:05Z","tenant":"t","provider":"p","model":"m","status":"ok"}`},
		{"full", full, `{"event_id":"id","timestamp":"2025-11-28T09:07:12.345Z","tenant":"acme","provider":"anthropic",` +
			`"model":"claude","status":"error","error_type":"timeout","application":"app","operation":"chat","region":"eu",` +
			`"input_tokens":10,"cached_input_tokens":4,"cache_write_tokens":2,"output_tokens":8,"reasoning_tokens":3,` +
			`"cache_write_1h_tokens":1,"service_tier":"Flex",` +
			`"latency_ms":2314.7,"ttft_ms":0.5,"gpu_ms":1e-7,"attributes":{"a":"2","m":"","z":"1"}}`},
		{"zero durations kept when present", with(func(e *Event) { e.HasLatency, e.HasTTFT = true, true }),
			`{"event_id":"e1","timestamp":"2025-01-02T03:04:05Z","tenant":"t","provider":"p","model":"m","status":"ok","latency_ms":0,"ttft_ms":0}`},
		{"absent durations omitted", with(func(e *Event) { e.LatencyMs, e.TTFTMs = 5, 6 }), minimal + "}"},
		{"nanoseconds", with(func(e *Event) { e.Timestamp = e.Timestamp.Add(1) }), strings.Replace(minimal, "05Z", "05.000000001Z", 1) + "}"},
		{"fraction trimmed", with(func(e *Event) { e.Timestamp = e.Timestamp.Add(120 * time.Microsecond) }), strings.Replace(minimal, "05Z", "05.00012Z", 1) + "}"},
		{"converted to UTC", with(func(e *Event) { e.Timestamp = e.Timestamp.In(time.FixedZone("X", -8*3600)) }), minimal + "}"},
		{"escaping", with(func(e *Event) { e.EventID = "a\"b\\c\nd\re\tf\x00g\x1f<>&/é😀\u2028\u2029\x7f" }),
			`{"event_id":"a\"b\\c\nd\re\tf\u0000g\u001f<>&/é😀\u2028\u2029` + "\x7f" + `","timestamp":"2025-01-02T03:04:05Z","tenant":"t","provider":"p","model":"m","status":"ok"}`},
		{"invalid UTF-8 replaced", with(func(e *Event) { e.Tenant = "a\xffb\xc3" }),
			`{"event_id":"e1","timestamp":"2025-01-02T03:04:05Z","tenant":"a\ufffdb\ufffd","provider":"p","model":"m","status":"ok"}`},
		{"non-finite durations", with(func(e *Event) {
			e.LatencyMs, e.HasLatency, e.TTFTMs, e.HasTTFT, e.GPUMs = math.NaN(), true, math.Inf(1), true, math.Inf(-1)
		}), minimal + `,"latency_ms":"NaN","ttft_ms":"+Inf","gpu_ms":"-Inf"}`},
		{"large and small floats", with(func(e *Event) {
			e.LatencyMs, e.HasLatency, e.TTFTMs, e.HasTTFT, e.GPUMs = 1e21, true, 123456789.125, true, -2.5e-10
		}), minimal + `,"latency_ms":1e+21,"ttft_ms":123456789.125,"gpu_ms":-2.5e-10}`},
		{"unset status", with(func(e *Event) { e.Status = StatusUnset }), strings.Replace(minimal, `"ok"`, `""`, 1) + "}"},
		{"year out of range", with(func(e *Event) { e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
			strings.Replace(minimal, "2025-01-02T03:04:05Z", "10000-01-01T00:00:00Z", 1) + "}"},
		{"zero time", with(func(e *Event) { e.Timestamp = time.Time{} }),
			strings.Replace(minimal, "2025-01-02T03:04:05Z", "0001-01-01T00:00:00Z", 1) + "}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendJSON([]byte("prefix"), &tt.e)
			if string(got) != "prefix"+tt.want {
				t.Fatalf("\n got %s\nwant %s", got[6:], tt.want)
			}
			if !json.Valid(got[6:]) {
				t.Fatalf("not valid JSON: %s", got[6:])
			}
		})
	}
}

// TestAppendJSONInvalidStaysInvalid checks that encoding never turns an
// invalid event into a valid one, for the values JSON cannot carry as is.
func TestAppendJSONInvalidStaysInvalid(t *testing.T) {
	for _, e := range []Event{
		with(func(e *Event) { e.LatencyMs, e.HasLatency = math.NaN(), true }),
		with(func(e *Event) { e.TTFTMs, e.HasTTFT = math.Inf(1), true }),
		with(func(e *Event) { e.GPUMs = math.NaN() }),
		with(func(e *Event) { e.Status = StatusUnset }),
		with(func(e *Event) { e.Timestamp = time.Time{} }),
		with(func(e *Event) { e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
	} {
		verr := e.Validate()
		var want *FieldError
		if !errors.As(verr, &want) {
			t.Fatalf("%+v: Validate gave %v", e, verr)
		}
		var got Event
		err := DecodeJSON(AppendJSON(nil, &e), &got)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != want.Field {
			t.Errorf("%+v: decoding the encoding gave %v, want an error on %q", e, err, want.Field)
		}
	}
}

func TestAppendFloatRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 100000 {
		var f float64
		switch i % 3 {
		case 0:
			f = r.Float64() * math.Pow(10, float64(r.IntN(40)-20))
		case 1:
			f = math.Float64frombits(r.Uint64())
		default:
			f = float64(r.IntN(86400000)) / float64(1+r.IntN(1000))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		b := appendFloat(nil, f)
		if !json.Valid(b) {
			t.Fatalf("%v: invalid JSON %s", f, b)
		}
		got, next, err := floatValue(append(b, '}'), 0)
		if err != nil || next != len(b) || got != f {
			t.Fatalf("%v: %s decoded as %v (%v)", f, b, got, err)
		}
	}
}

// TestStdlibCrossCheck decodes a corpus with both this decoder and
// encoding/json and compares every field.
func TestStdlibCrossCheck(t *testing.T) {
	strs := []string{
		`plain`, `with space`, `q\"uote`, `back\\slash`, `\/slash`, `\b\f\n\r\t`, `\u0000\u001f\u007f`,
		`caf\u00e9`, `\u00E9\u00e9`, `\u4e16\u754c`, `\ud83d\ude00`, `\ud83d`, `\ude00`, `\ud83d\u0041`, `\ud83dx`,
		`\ud83d\ud83d\ude00`, `\udbff\udfff`, `\ud800\udc00`, `\uFFFD\uFEFF`, `raw é 世 😀`, `\u2028\u2029`,
		`<>&`, `\u003c\u003e\u0026`, `mixed \u00e9 é \n x`, `  leading and trailing  `, `\\u0041`,
	}
	nums := []string{"0", "1", "-0", "12.0", "1e3", "1E+2", "2.5e2", "1000000000"}
	floats := []string{"0", "0.1", "2314.7", "1e-7", "1.5E3", "86399999.99999999", "123.45678901234567890123", "0.000001", "5e-324"}
	for i, s := range strs {
		in := fmt.Sprintf(`{"event_id":"%s","timestamp":"2025-01-02T03:04:05Z","tenant":"t%s","provider":"p","model":"m%s",`+
			`"status":"ok","region":"%s","input_tokens":%s,"output_tokens":%s,"latency_ms":%s,"gpu_ms":%s,"attributes":{"%s":"%s"}}`,
			s, s, s, s, nums[i%len(nums)], nums[(i+3)%len(nums)], floats[i%len(floats)], floats[(i+5)%len(floats)], s, s)
		// Parse without validating: some of the strings hold control
		// characters, which Validate rejects.
		var std stdlibEvent
		if err := json.Unmarshal([]byte(strings.NewReplacer("12.0", "12", "1e3", "1000", "1E+2", "100", "2.5e2", "250").Replace(in)), &std); err != nil {
			t.Fatalf("encoding/json: %s: %v", in, err)
		}
		var got Event
		err := new(Decoder).decodeObject([]byte(in), &got)
		if hasLoneSurrogate(s) {
			// encoding/json makes it U+FFFD; a known field refuses it.
			if err == nil || !strings.Contains(err.Error(), "lone UTF-16 surrogate") {
				t.Errorf("%s: err = %v, want a lone surrogate refused", in, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got.EventID != std.EventID || got.Tenant != std.Tenant || got.Model != std.Model || got.Region != std.Region ||
			got.InputTokens != std.InputTokens || got.OutputTokens != std.OutputTokens || got.LatencyMs != *std.LatencyMs ||
			got.GPUMs != std.GPUMs || !maps2Equal(got.Attributes, std.Attributes) {
			t.Errorf("%s:\n got %+v\n std %+v", in, got, std)
		}
		// Decode rejects exactly the control characters, naming event_id
		// (checked first).
		err = DecodeJSON([]byte(in), new(Event))
		var fe *FieldError
		if ValidText(std.EventID) != (err == nil) || err != nil && (!errors.As(err, &fe) || fe.Field != "event_id") {
			t.Errorf("%s: DecodeJSON: %v", in, err)
		}
		// And what we encode, encoding/json reads back the same.
		var back stdlibEvent
		if err := json.Unmarshal(AppendJSON(nil, &got), &back); err != nil || back.EventID != got.EventID ||
			back.Tenant != got.Tenant || !maps2Equal(back.Attributes, got.Attributes) || *back.LatencyMs != got.LatencyMs {
			t.Errorf("%s: encoding/json reads our encoding as %+v (%v)", in, back, err)
		}
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestMarshalUnmarshalJSON(t *testing.T) {
	e := with(func(e *Event) { e.LatencyMs, e.HasLatency, e.Attributes = 12.5, true, map[string]string{"k": "v"} })
	want := string(AppendJSON(nil, &e))
	for name, v := range map[string]any{"value": e, "pointer": &e, "slice": []Event{e}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if name == "slice" {
			want := "[" + want + "]"
			if string(b) != want {
				t.Fatalf("%s: got %s, want %s", name, b, want)
			}
			continue
		}
		if string(b) != want {
			t.Fatalf("%s: got %s, want %s", name, b, want)
		}
	}
	var out []Event
	if err := json.Unmarshal([]byte("["+want+","+want+"]"), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || !out[0].Equal(&e) || !out[1].Equal(&e) {
		t.Fatalf("got %+v", out)
	}
	// Invalid events are refused both ways, with the field named.
	bad := with(func(e *Event) { e.Tenant = "" })
	_, err := json.Marshal(bad)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "tenant" {
		t.Fatalf("Marshal of an invalid event: %v", err)
	}
	var one Event
	err = json.Unmarshal([]byte(ev(`,"input_tokens":"3"`)), &one)
	if !errors.As(err, &fe) || fe.Field != "input_tokens" {
		t.Fatalf("Unmarshal: %v", err)
	}
	// null is a no-op, as encoding/json expects of an Unmarshaler.
	var p struct{ E Event }
	p.E = e
	if err := json.Unmarshal([]byte(`{"E":null}`), &p); err != nil || !p.E.Equal(&e) {
		t.Fatalf("null: %v %+v", err, p.E)
	}
}

// TestGolden decodes testdata/json/*.json and compares the canonical
// re-encoding (ok-*) or the error text (bad-*) with the .golden file next to
// it. Run with -update to rewrite the golden files.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "json", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("only %d golden inputs", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var e Event
			err = NewDecoder().Decode(in, &e)
			var got []byte
			switch {
			case strings.HasPrefix(name, "ok-"):
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				got = append(AppendJSON(nil, &e), '\n')
				// Canonical means a fixed point.
				var again Event
				if err := DecodeJSON(got, &again); err != nil || !again.Equal(&e) || string(AppendJSON(nil, &again))+"\n" != string(got) {
					t.Fatalf("re-encoding is not a fixed point: %v", err)
				}
			case strings.HasPrefix(name, "bad-"):
				if err == nil {
					t.Fatalf("decoded an invalid event: %+v", e)
				}
				got = []byte("error: " + err.Error() + "\n")
			default:
				t.Fatalf("golden input %s must be named ok-* or bad-*", file)
			}
			golden := strings.TrimSuffix(file, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestJSONSchema checks that event.schema.json describes exactly the fields
// the decoder knows, with the contract's limits.
func TestJSONSchema(t *testing.T) {
	raw, err := os.ReadFile("event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	type prop struct {
		Type      any      `json:"type"`
		MinLength *int     `json:"minLength"`
		MaxLength *int     `json:"maxLength"`
		Minimum   *float64 `json:"minimum"`
		Maximum   *float64 `json:"maximum"`
		Enum      []string `json:"enum"`
		MaxProps  *int     `json:"maxProperties"`
		Pattern   string   `json:"pattern"`
	}
	var schema struct {
		Schema     string          `json:"$schema"`
		Type       string          `json:"type"`
		Required   []string        `json:"required"`
		Properties map[string]prop `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Schema != "https://json-schema.org/draft/2020-12/schema" || schema.Type != "object" {
		t.Fatalf("$schema %q type %q", schema.Schema, schema.Type)
	}
	var keys []string
	for k := range schema.Properties {
		keys = append(keys, k)
	}
	known := eventFields[:]
	if !sameSet(keys, known) {
		t.Fatalf("schema properties %v\n  decoder fields %v", sorted(keys), sorted(known))
	}
	if want := []string{"event_id", "timestamp", "tenant", "provider", "model", "status"}; !sameSet(schema.Required, want) {
		t.Fatalf("required %v, want %v", schema.Required, want)
	}
	maxLen := map[string]int{"event_id": MaxEventIDLen, "tenant": MaxTenantLen, "provider": MaxProviderLen,
		"model": MaxModelLen, "application": MaxApplicationLen, "error_type": MaxLabelLen, "operation": MaxLabelLen, "region": MaxLabelLen,
		"service_tier": MaxServiceTierLen}
	for f, n := range maxLen {
		if p := schema.Properties[f]; p.MaxLength == nil || *p.MaxLength != n {
			t.Errorf("%s: maxLength %v, want %d", f, p.MaxLength, n)
		}
	}
	for _, f := range []string{"input_tokens", "cached_input_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens", "reasoning_tokens"} {
		if p := schema.Properties[f]; p.Minimum == nil || *p.Minimum != 0 || p.Maximum == nil || *p.Maximum != MaxTokens {
			t.Errorf("%s: bounds %v %v", f, p.Minimum, p.Maximum)
		}
	}
	for _, f := range []string{"latency_ms", "ttft_ms", "gpu_ms"} {
		if p := schema.Properties[f]; p.Minimum == nil || *p.Minimum != 0 || p.Maximum == nil || *p.Maximum != MaxDurationMs {
			t.Errorf("%s: bounds %v %v", f, p.Minimum, p.Maximum)
		}
	}
	if p := schema.Properties["status"]; !sameSet(p.Enum, []string{StatusOK.String(), StatusError.String()}) {
		t.Errorf("status enum %v", p.Enum)
	}
	if p := schema.Properties["attributes"]; p.MaxProps == nil || *p.MaxProps != MaxAttributes {
		t.Errorf("attributes maxProperties %v", p.MaxProps)
	}
	// service_tier's pattern and maxLength (characters, which are bytes
	// here: the pattern allows ASCII only) accept exactly what
	// ValidServiceTier and Validate do.
	p := schema.Properties["service_tier"]
	re, err := regexp.Compile(p.Pattern)
	if err != nil || p.MaxLength == nil {
		t.Fatalf("service_tier pattern %q: %v", p.Pattern, err)
	}
	tiers := []string{"", "batch", "flex", "priority", "on_demand", "Standard", "v1.2-x_Y", strings.Repeat("t", MaxServiceTierLen),
		strings.Repeat("t", MaxServiceTierLen+1), "batch tier", "a/b", "é", "x\n", "x\x00", " ", "a+b", "tier:1", "\u0130", "K\u212a"}
	for c := range 256 {
		tiers = append(tiers, "t"+string(rune(c)), "t"+string([]byte{byte(c)}))
	}
	for _, s := range tiers {
		schemaOK := utf8.ValidString(s) && re.MatchString(s) && utf8.RuneCountInString(s) <= *p.MaxLength
		if schemaOK != ValidServiceTier(s) {
			t.Errorf("service_tier %q: schema accepts %v, ValidServiceTier %v", s, schemaOK, ValidServiceTier(s))
		}
		if e := with(func(e *Event) { e.ServiceTier = s }); (e.Validate() == nil) != ValidServiceTier(s) {
			t.Errorf("service_tier %q: Validate %v, ValidServiceTier %v", s, e.Validate(), ValidServiceTier(s))
		}
	}
}

func sameSet(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestEncodeDecodeRandom round-trips random valid events.
func TestEncodeDecodeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	d := NewDecoder()
	pick := func(opts ...string) string { return opts[r.IntN(len(opts))] }
	for range 20000 {
		in := r.Int64N(MaxTokens + 1)
		out := r.Int64N(MaxTokens + 1)
		cached := r.Int64N(in + 1)
		cacheWrite := r.Int64N(in - cached + 1)
		e := Event{
			EventID: pick("a", "0b7e3f1c-5d2a-4e8f-9a61-3c4d5e6f7a8b", "é\\\"x", "\u00a0\u2028", "😀"),
			// A day away from the ends of the range: Validate checks the year
			// in the timestamp's own location, the encoding is in UTC.
			Timestamp:          time.Unix(86400+r.Int64N(253402300799-2*86400), r.Int64N(1e9)).In(time.FixedZone("", 3600*(r.IntN(25)-12))),
			Tenant:             pick("t", "acme", "ünïcode", "<script>&"),
			Provider:           pick("openai", "anthropic"),
			Model:              pick("m", "claude-sonnet-4-5-20250929", "\u2028"),
			Status:             Status(1 + r.IntN(2)),
			ErrorType:          pick("", "timeout"),
			Application:        pick("", "app"),
			Operation:          pick("", "chat"),
			Region:             pick("", "eu x"),
			ServiceTier:        pick("", "batch", "Priority", "on_demand", "v1.2-x"),
			InputTokens:        in,
			CachedInputTokens:  cached,
			CacheWriteTokens:   cacheWrite,
			CacheWrite1hTokens: r.Int64N(cacheWrite + 1),
			OutputTokens:       out,
			ReasoningTokens:    r.Int64N(out + 1),
			LatencyMs:          r.Float64() * MaxDurationMs,
			HasLatency:         r.IntN(2) == 0,
			TTFTMs:             float64(r.IntN(1000)) / 8,
			HasTTFT:            r.IntN(2) == 0,
			GPUMs:              pick2(r, 0, r.Float64()*1e-3, r.NormFloat64()*r.NormFloat64()*1e6),
		}
		if e.GPUMs < 0 {
			e.GPUMs = -e.GPUMs
		}
		if e.GPUMs > MaxDurationMs {
			e.GPUMs = MaxDurationMs
		}
		if r.IntN(3) == 0 {
			e.Attributes = map[string]string{"k": "v", pick("a", "é", "\""): pick("", "x")}
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("generated an invalid event: %v", err)
		}
		b := AppendJSON(nil, &e)
		var got Event
		if err := d.Decode(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !got.Equal(&e) {
			t.Fatalf("%s:\n got %+v\nwant %+v", b, got, e)
		}
	}
}

func pick2(r *rand.Rand, v ...float64) float64 { return v[r.IntN(len(v))] }

// TestSurrogateMatchesStdlib compares every combination of two \u escapes
// from an interesting set with encoding/json.
func TestSurrogateMatchesStdlib(t *testing.T) {
	units := []string{"0041", "00e9", "d7ff", "d800", "d83d", "dbff", "dc00", "de00", "dfff", "e000", "fffd", "ffff"}
	for _, a := range units {
		for _, b := range units {
			for _, mid := range []string{"", "x"} {
				s := `\u` + a + mid + `\u` + b
				var std string
				if err := json.Unmarshal([]byte(`"`+s+`"`), &std); err != nil {
					t.Fatal(err)
				}
				var e Event
				err := DecodeJSON([]byte(strings.Replace(ev(""), `"e1"`, `"`+s+`"`, 1)), &e)
				if hasLoneSurrogate(s) {
					var fe *FieldError
					if !errors.As(err, &fe) || fe.Field != "event_id" || fe.Value != std {
						t.Errorf("%s: err = %v, want event_id %q refused", s, err, std)
					}
				} else if err != nil {
					t.Fatalf("%s: %v", s, err)
				} else if e.EventID != std || !utf8.ValidString(e.EventID) {
					t.Errorf("%s: got %q, encoding/json %q", s, e.EventID, std)
				}
			}
		}
	}
}

// hasLoneSurrogate reports whether the JSON string content s has a \u
// escape of a surrogate that is not half of a high-low pair.
func hasLoneSurrogate(s string) bool {
	var prev rune = -1 // a high surrogate just before, or -1
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			if prev >= 0 {
				return true
			}
			i++
			continue
		}
		if s[i+1] != 'u' {
			if prev >= 0 {
				return true
			}
			i += 2
			continue
		}
		r, _ := strconv.ParseUint(s[i+2:i+6], 16, 32)
		u := rune(r)
		switch {
		case prev >= 0 && u >= 0xdc00 && u <= 0xdfff:
			prev = -1
		case prev >= 0:
			return true
		case u >= 0xd800 && u <= 0xdbff:
			prev = u
		case u >= 0xdc00 && u <= 0xdfff:
			return true
		}
		i += 6
	}
	return prev >= 0
}
