package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// validEvent sets every field, each at a value that passes.
func validEvent() Event {
	return Event{
		EventID:            "0b7e3f1c-5d2a-4e8f-9a61-3c4d5e6f7a8b",
		Timestamp:          time.Date(2025, 11, 28, 9, 7, 12, 345000000, time.UTC),
		Tenant:             "acme",
		Provider:           "anthropic",
		Model:              "claude-sonnet-4-5-20250929",
		Status:             StatusOK,
		ErrorType:          "timeout",
		Application:        "support",
		Operation:          "chat",
		Region:             "us-east-1",
		ServiceTier:        "priority",
		InputTokens:        1000,
		CachedInputTokens:  600,
		CacheWriteTokens:   400,
		CacheWrite1hTokens: 100,
		OutputTokens:       500,
		ReasoningTokens:    500,
		LatencyMs:          2314.7,
		HasLatency:         true,
		TTFTMs:             412.3,
		HasTTFT:            true,
		GPUMs:              1500,
		Attributes:         map[string]string{"env": "prod"},
	}
}

func TestValidateAcceptsLimits(t *testing.T) {
	for name, e := range map[string]Event{
		"all fields": validEvent(),
		"at every limit": func() Event {
			e := validEvent()
			e.EventID = strings.Repeat("i", MaxEventIDLen)
			e.Tenant = strings.Repeat("t", MaxTenantLen)
			e.Provider = strings.Repeat("p", MaxProviderLen)
			e.Model = strings.Repeat("m", MaxModelLen)
			e.ErrorType = strings.Repeat("e", MaxLabelLen)
			e.Application = strings.Repeat("a", MaxApplicationLen)
			e.Operation = strings.Repeat("o", MaxLabelLen)
			e.Region = strings.Repeat("r", MaxLabelLen)
			e.ServiceTier = strings.Repeat("s", MaxServiceTierLen)
			e.InputTokens, e.CachedInputTokens, e.CacheWriteTokens = MaxTokens, MaxTokens/2, MaxTokens/2
			e.CacheWrite1hTokens = MaxTokens / 2
			e.OutputTokens, e.ReasoningTokens = MaxTokens, MaxTokens
			e.LatencyMs, e.TTFTMs, e.GPUMs = MaxDurationMs, MaxDurationMs, MaxDurationMs
			e.Attributes = map[string]string{}
			for i := range MaxAttributes - 1 {
				e.Attributes[strconv.Itoa(i)] = ""
			}
			e.Attributes[strings.Repeat("k", MaxLabelLen)] = strings.Repeat("v", MaxLabelLen)
			e.Timestamp = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
			return e
		}(),
		"zero values of optional fields": minimalEvent(),
		"first instant":                  with(func(e *Event) { e.Timestamp = time.Unix(0, 0).UTC() }),
		"error status":                   with(func(e *Event) { e.Status = StatusError }),
		"absent durations may hold anything": with(func(e *Event) {
			e.LatencyMs, e.TTFTMs = math.NaN(), -1
		}),
		"zero durations": with(func(e *Event) { e.HasLatency, e.HasTTFT = true, true }),
		"every service tier character": with(func(e *Event) {
			e.ServiceTier = "abcdefghijklmnopqrstuvwxyz_-.09"
		}),
		"upper-case service tier": with(func(e *Event) { e.ServiceTier = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345" }),
		"all cache writes 1-hour": with(func(e *Event) {
			e.InputTokens, e.CacheWriteTokens, e.CacheWrite1hTokens = 10, 10, 10
		}),
	} {
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// And the decoder agrees.
		var got Event
		if err := DecodeJSON(AppendJSON(nil, &e), &got); err != nil {
			t.Errorf("%s: decoding the encoding: %v", name, err)
		}
	}
}

// TestValidateViolations covers every invariant of schema v1: Validate must
// report a *FieldError naming the field, and so must the decoder for the
// same event as JSON.
func TestValidateViolations(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n+1) }
	tests := []struct {
		name   string
		mutate func(e *Event)
		field  string
		json   string // input for the decoder when AppendJSON cannot express the event
	}{
		// required strings
		{"event_id missing", func(e *Event) { e.EventID = "" }, "event_id", ""},
		{"tenant missing", func(e *Event) { e.Tenant = "" }, "tenant", ""},
		{"provider missing", func(e *Event) { e.Provider = "" }, "provider", ""},
		{"model missing", func(e *Event) { e.Model = "" }, "model", ""},
		{"status missing", func(e *Event) { e.Status = StatusUnset }, "status", ""},
		{"status out of range", func(e *Event) { e.Status = 7 }, "status", ""},
		{"timestamp missing", func(e *Event) { e.Timestamp = time.Time{} }, "timestamp", ""},
		{"timestamp before 1970", func(e *Event) { e.Timestamp = time.Unix(-1, 0).UTC() }, "timestamp", ""},
		{"timestamp after 9999", func(e *Event) { e.Timestamp = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "timestamp", ""},

		// lengths
		{"event_id too long", func(e *Event) { e.EventID = long(MaxEventIDLen) }, "event_id", ""},
		{"tenant too long", func(e *Event) { e.Tenant = long(MaxTenantLen) }, "tenant", ""},
		{"provider too long", func(e *Event) { e.Provider = long(MaxProviderLen) }, "provider", ""},
		{"model too long", func(e *Event) { e.Model = long(MaxModelLen) }, "model", ""},
		{"error_type too long", func(e *Event) { e.ErrorType = long(MaxLabelLen) }, "error_type", ""},
		{"application too long", func(e *Event) { e.Application = long(MaxApplicationLen) }, "application", ""},
		{"operation too long", func(e *Event) { e.Operation = long(MaxLabelLen) }, "operation", ""},
		{"region too long", func(e *Event) { e.Region = long(MaxLabelLen) }, "region", ""},
		{"service_tier too long", func(e *Event) { e.ServiceTier = long(MaxServiceTierLen) }, "service_tier", ""},
		{"length counts bytes, not characters", func(e *Event) { e.Provider = strings.Repeat("é", MaxProviderLen/2+1) }, "provider", ""},

		// UTF-8
		{"event_id invalid UTF-8", func(e *Event) { e.EventID = "a\xff" }, "event_id", "event_id"},
		{"tenant invalid UTF-8", func(e *Event) { e.Tenant = "a\xff" }, "tenant", "tenant"},
		{"provider invalid UTF-8", func(e *Event) { e.Provider = "\xc3" }, "provider", "provider"},
		{"model invalid UTF-8", func(e *Event) { e.Model = "\xed\xa0\x80" }, "model", "model"},
		{"error_type invalid UTF-8", func(e *Event) { e.ErrorType = "\x80" }, "error_type", "error_type"},
		{"application invalid UTF-8", func(e *Event) { e.Application = "\xfe" }, "application", "application"},
		{"operation invalid UTF-8", func(e *Event) { e.Operation = "\xc0\xaf" }, "operation", "operation"},
		{"region invalid UTF-8", func(e *Event) { e.Region = "\xf8\x88\x80\x80\x80" }, "region", "region"},
		{"service_tier invalid UTF-8", func(e *Event) { e.ServiceTier = "flex\xff" }, "service_tier", "service_tier"},

		// service_tier characters
		{"service_tier with a space", func(e *Event) { e.ServiceTier = "on demand" }, "service_tier", ""},
		{"service_tier with a plus", func(e *Event) { e.ServiceTier = "a+b" }, "service_tier", ""},
		{"service_tier with a slash", func(e *Event) { e.ServiceTier = "tier/2" }, "service_tier", ""},
		{"service_tier with a colon", func(e *Event) { e.ServiceTier = "tier:2" }, "service_tier", ""},
		{"service_tier not ASCII", func(e *Event) { e.ServiceTier = "prïority" }, "service_tier", ""},
		{"service_tier dotless capital I", func(e *Event) { e.ServiceTier = "PR\u0130ORITY" }, "service_tier", ""},
		{"service_tier no-break space", func(e *Event) { e.ServiceTier = "flex\u00a0" }, "service_tier", ""},

		// token counts
		{"input_tokens negative", func(e *Event) { e.InputTokens = -1 }, "input_tokens", ""},
		{"cached_input_tokens negative", func(e *Event) { e.CachedInputTokens = -1 }, "cached_input_tokens", ""},
		{"cache_write_tokens negative", func(e *Event) { e.CacheWriteTokens = -1 }, "cache_write_tokens", ""},
		{"cache_write_1h_tokens negative", func(e *Event) { e.CacheWrite1hTokens = -1 }, "cache_write_1h_tokens", ""},
		{"output_tokens negative", func(e *Event) { e.OutputTokens = -1 }, "output_tokens", ""},
		{"reasoning_tokens negative", func(e *Event) { e.ReasoningTokens = -1 }, "reasoning_tokens", ""},
		{"input_tokens over 1e9", func(e *Event) { e.InputTokens = MaxTokens + 1 }, "input_tokens", ""},
		{"cached_input_tokens over 1e9", func(e *Event) { e.CachedInputTokens = MaxTokens + 1 }, "cached_input_tokens", ""},
		{"cache_write_tokens over 1e9", func(e *Event) { e.CacheWriteTokens = MaxTokens + 1 }, "cache_write_tokens", ""},
		{"cache_write_1h_tokens over 1e9", func(e *Event) { e.CacheWrite1hTokens = MaxTokens + 1 }, "cache_write_1h_tokens", ""},
		{"cache_write_1h_tokens near int64 min", func(e *Event) { e.CacheWrite1hTokens = math.MinInt64 }, "cache_write_1h_tokens", ""},
		{"output_tokens over 1e9", func(e *Event) { e.OutputTokens = MaxTokens + 1 }, "output_tokens", ""},
		{"reasoning_tokens over 1e9", func(e *Event) { e.ReasoningTokens = MaxTokens + 1 }, "reasoning_tokens", ""},
		{"token count near int64 max", func(e *Event) { e.InputTokens = math.MaxInt64 }, "input_tokens", ""},

		// cross-field invariants
		{"cached + cache_write > input", func(e *Event) { e.CacheWriteTokens = 401 }, "cached_input_tokens", ""},
		{"cached alone > input", func(e *Event) { e.CachedInputTokens, e.CacheWriteTokens = 1001, 0 }, "cached_input_tokens", ""},
		{"cache_write alone > input", func(e *Event) { e.CachedInputTokens, e.CacheWriteTokens = 0, 1001 }, "cached_input_tokens", ""},
		{"reasoning > output", func(e *Event) { e.ReasoningTokens = 501 }, "reasoning_tokens", ""},
		{"cache_write_1h > cache_write", func(e *Event) { e.CacheWrite1hTokens = 401 }, "cache_write_1h_tokens", ""},
		{"cache_write_1h without cache_write", func(e *Event) { e.CacheWriteTokens, e.CacheWrite1hTokens = 0, 1 }, "cache_write_1h_tokens", ""},
		{"cache_write_1h > cache_write but ≤ input", func(e *Event) {
			e.CachedInputTokens, e.CacheWriteTokens, e.CacheWrite1hTokens = 0, 10, 11
		}, "cache_write_1h_tokens", ""},

		// durations
		{"latency negative", func(e *Event) { e.LatencyMs = -0.001 }, "latency_ms", ""},
		{"latency NaN", func(e *Event) { e.LatencyMs = math.NaN() }, "latency_ms", ""},
		{"latency +Inf", func(e *Event) { e.LatencyMs = math.Inf(1) }, "latency_ms", ""},
		{"latency over 24h", func(e *Event) { e.LatencyMs = MaxDurationMs + 0.5 }, "latency_ms", ""},
		{"ttft negative", func(e *Event) { e.TTFTMs = -1 }, "ttft_ms", ""},
		{"ttft NaN", func(e *Event) { e.TTFTMs = math.NaN() }, "ttft_ms", ""},
		{"ttft -Inf", func(e *Event) { e.TTFTMs = math.Inf(-1) }, "ttft_ms", ""},
		{"ttft over 24h", func(e *Event) { e.TTFTMs = MaxDurationMs * 2 }, "ttft_ms", ""},
		{"gpu negative", func(e *Event) { e.GPUMs = -1 }, "gpu_ms", ""},
		{"gpu NaN", func(e *Event) { e.GPUMs = math.NaN() }, "gpu_ms", ""},
		{"gpu over 24h", func(e *Event) { e.GPUMs = MaxDurationMs + 1 }, "gpu_ms", ""},

		// attributes
		{"too many attributes", func(e *Event) {
			for i := range MaxAttributes {
				e.Attributes["k"+strconv.Itoa(i)] = "v"
			}
		}, "attributes", ""},
		{"empty attribute key", func(e *Event) { e.Attributes[""] = "v" }, "attributes", ""},
		{"attribute key too long", func(e *Event) { e.Attributes[long(MaxLabelLen)] = "v" }, "attributes", ""},
		{"attribute key invalid UTF-8", func(e *Event) { e.Attributes = map[string]string{"\xff": "v"} }, "attributes", "attributes"},
		{"attribute value too long", func(e *Event) { e.Attributes["team"] = long(MaxLabelLen) }, "attributes.team", ""},
		{"attribute value invalid UTF-8", func(e *Event) { e.Attributes["team"] = "\xff" }, "attributes.team", "attributes.team"},
		{"attribute value of a long key names a cut key", func(e *Event) {
			e.Attributes = map[string]string{strings.Repeat("k", 100): long(MaxLabelLen)}
		}, "attributes." + strings.Repeat("k", 64) + "…", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := validEvent()
			e.Attributes = map[string]string{"env": "prod"}
			tt.mutate(&e)
			err := e.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate: %v, want a *FieldError", err)
			}
			if fe.Field != tt.field {
				t.Fatalf("Validate named %q, want %q (%v)", fe.Field, tt.field, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "invalid field "+strconv.Quote(tt.field)) {
				t.Fatalf("message %q", msg)
			}

			// The same event through the decoder.
			data := AppendJSON(nil, &e)
			if tt.json != "" {
				data = rawUTF8JSON(t, &e, tt.json)
			}
			var got Event
			err = NewDecoder().Decode(data, &got)
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Decode(%s): %v, want a *FieldError on %q", data, err, tt.field)
			}
		})
	}
}

// rawUTF8JSON encodes e with the invalid UTF-8 of one field kept raw, which
// AppendJSON would replace with U+FFFD.
func rawUTF8JSON(t *testing.T, e *Event, field string) []byte {
	t.Helper()
	c := *e
	var raw string
	const marker = "RAW-MARKER"
	switch field {
	case "event_id":
		raw, c.EventID = c.EventID, marker
	case "tenant":
		raw, c.Tenant = c.Tenant, marker
	case "provider":
		raw, c.Provider = c.Provider, marker
	case "model":
		raw, c.Model = c.Model, marker
	case "error_type":
		raw, c.ErrorType = c.ErrorType, marker
	case "application":
		raw, c.Application = c.Application, marker
	case "operation":
		raw, c.Operation = c.Operation, marker
	case "region":
		raw, c.Region = c.Region, marker
	case "service_tier":
		raw, c.ServiceTier = c.ServiceTier, marker
	case "attributes":
		for k, v := range c.Attributes {
			raw = k
			c.Attributes = map[string]string{marker: v}
		}
	case "attributes.team":
		raw = c.Attributes["team"]
		c.Attributes = map[string]string{"team": marker}
	default:
		t.Fatalf("no raw encoding for %s", field)
	}
	out := strings.Replace(string(AppendJSON(nil, &c)), marker, raw, 1)
	if !strings.Contains(out, raw) {
		t.Fatalf("marker not replaced in %s", out)
	}
	return []byte(out)
}

func TestFieldErrorMessage(t *testing.T) {
	e := validEvent()
	e.ReasoningTokens = 12
	e.OutputTokens = 10
	const want = `invalid field "reasoning_tokens" = "12": exceeds output_tokens (10)`
	if err := e.Validate(); err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	for _, c := range []struct {
		edit func(e *Event)
		want string
	}{
		{func(e *Event) { e.CacheWrite1hTokens = 401 },
			`invalid field "cache_write_1h_tokens" = "401": exceeds cache_write_tokens (400)`},
		{func(e *Event) { e.ServiceTier = "on demand" },
			`invalid field "service_tier" = "on demand": character ' ' (U+0020) at byte 2 (only ASCII letters, digits, '_', '-' and '.' are allowed)`},
		{func(e *Event) { e.ServiceTier = "😀" },
			`invalid field "service_tier" = "😀": character '😀' (U+1F600) at byte 0 (only ASCII letters, digits, '_', '-' and '.' are allowed)`},
		{func(e *Event) { e.ServiceTier = "priority-processing-tier-2025-ab" + "c" },
			`invalid field "service_tier" = "priority-processing-tier-2025-abc": longer than 32 bytes (33)`},
	} {
		e := validEvent()
		c.edit(&e)
		if err := e.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("got %v, want %s", err, c.want)
		}
	}
}

// TestValidateTimestampYearIsUTC: the year bounds apply to the UTC instant, so
// an event valid in its own zone but before 1970 in UTC is rejected (its
// encoding could not be decoded again).
func TestValidateTimestampYearIsUTC(t *testing.T) {
	e := Event{EventID: "e", Tenant: "t", Provider: "p", Model: "m", Status: StatusOK,
		Timestamp: time.Date(1970, 1, 1, 0, 30, 0, 0, time.FixedZone("+01", 3600))}
	var fe *FieldError
	if err := e.Validate(); !errors.As(err, &fe) || fe.Field != "timestamp" {
		t.Errorf("Validate() = %v, want a timestamp FieldError", err)
	}
	e.Timestamp = time.Date(1970, 1, 1, 1, 30, 0, 0, time.FixedZone("+01", 3600))
	if err := e.Validate(); err != nil {
		t.Errorf("Validate() = %v for 1970-01-01T00:30Z", err)
	}
}

// textFaultReference is textFault written the obvious way: the first
// invalid UTF-8 or unicode.IsControl rune (C0, DEL and C1).
func textFaultReference(s string) (int, rune) {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i, r
			}
		}
		if unicode.IsControl(r) {
			return i, r
		}
	}
	return -1, 0
}

func TestValidText(t *testing.T) {
	var cases []string
	for r := rune(0); r < 0x800; r++ {
		cases = append(cases, string(r), "abcdefgh"+string(r), "abcdefg"+string(r)+"tail", "é"+string(r)+"0123456789")
	}
	for _, s := range []string{"", "plain ascii", "a\x00", "\x1f", " ~", "\x7f", "\u2028\u2029\u00a0\ufeff", "😀",
		"\xff", "abc\xc3", "\xed\xa0\x80", "01234567\xff", "0123456789abcde\x01", "\xc2\x85", "\xc2", "\xe2\x80",
		"ab\xff\x1b", "𝄞𝄞𝄞𝄞\t", strings.Repeat("x", 300) + "\x1b"} {
		cases = append(cases, s)
	}
	for _, s := range cases {
		off, r := textFault(s)
		wantOff, wantR := textFaultReference(s)
		if off != wantOff || r != wantR {
			t.Errorf("textFault(%q) = %d, %U; want %d, %U", s, off, r, wantOff, wantR)
		}
		if ValidText(s) != (wantOff < 0) {
			t.Errorf("ValidText(%q) = %v", s, ValidText(s))
		}
	}
}

// FuzzValidText compares the eight-bytes-at-a-time scan with the reference.
func FuzzValidText(f *testing.F) {
	for _, s := range []string{"", "acme-corp", "claude-sonnet-4-5-20250929\x1b[31m", "Zürich\u0085", "\x7f", "0123456789abcdef\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		off, r := textFault(s)
		wantOff, wantR := textFaultReference(s)
		if off != wantOff || r != wantR {
			t.Fatalf("textFault(%q) = %d, %U; want %d, %U", s, off, r, wantOff, wantR)
		}
	})
}

// TestValidateControlCharacters: a control character in any string field,
// attribute keys and values included, is a *FieldError naming the field and
// the byte offset, from Validate and from the decoder alike.
func TestValidateControlCharacters(t *testing.T) {
	setters := map[string]func(e *Event, s string){
		"event_id":     func(e *Event, s string) { e.EventID = s },
		"tenant":       func(e *Event, s string) { e.Tenant = s },
		"provider":     func(e *Event, s string) { e.Provider = s },
		"model":        func(e *Event, s string) { e.Model = s },
		"error_type":   func(e *Event, s string) { e.ErrorType = s },
		"application":  func(e *Event, s string) { e.Application = s },
		"operation":    func(e *Event, s string) { e.Operation = s },
		"region":       func(e *Event, s string) { e.Region = s },
		"service_tier": func(e *Event, s string) { e.ServiceTier = s },
		"attributes":   func(e *Event, s string) { e.Attributes = map[string]string{s: "v"} },
		"attributes.team": func(e *Event, s string) {
			e.Attributes = map[string]string{"team": s}
		},
	}
	for _, c := range []struct {
		value string
		off   int
		r     rune
	}{
		{"acme\x1b[31m", 4, 0x1b}, // a terminal escape
		{"\t", 0, '\t'},
		{"two\nlines", 3, '\n'},
		{"cr\r", 2, '\r'},
		{"nul\x00", 3, 0},
		{"\x01", 0, 1},
		{"unit\x1f", 4, 0x1f},
		{"del\x7f", 3, 0x7f},
		{"zürich\u0085", 7, 0x85}, // NEL: a C1 control, after a 2-byte ü
		{"\u009b31m", 0, 0x9b},    // 8-bit CSI
		{"a-long-model-name-20250929\x1b", 26, 0x1b},
	} {
		for field, set := range setters {
			e := validEvent()
			set(&e, c.value)
			wantReason := fmt.Sprintf("control character U+%04X at byte %d (not allowed in strings)", c.r, c.off)
			if field == "attributes" {
				wantReason = "key: " + wantReason
			}
			var fe *FieldError
			err := e.Validate()
			if !errors.As(err, &fe) || fe.Field != field || fe.Value != c.value || fe.Reason != wantReason {
				t.Errorf("%s = %q: Validate() = %#v, want field %q, reason %q", field, c.value, err, field, wantReason)
				continue
			}
			if strings.ContainsRune(err.Error(), c.r) {
				t.Errorf("%s = %q: the message %q carries the raw control character", field, c.value, err)
			}
			data := AppendJSON(nil, &e)
			derr := NewDecoder().Decode(data, new(Event))
			if !errors.As(derr, &fe) || fe.Field != field || derr.Error() != err.Error() {
				t.Errorf("%s = %q: Decode(%s) = %v, want %v", field, c.value, data, derr, err)
			}
		}
	}
	// Near misses stay valid: space, tilde, no-break space, line and
	// paragraph separators, BOM, replacement character, emoji.
	e := validEvent()
	e.Tenant, e.Model, e.Region = " ~", "\u00a0\u2028\u2029\ufeff", "\ufffd😀"
	e.Attributes = map[string]string{"k ~": "\u00a0"}
	if err := e.Validate(); err != nil {
		t.Errorf("near misses: %v", err)
	}
}

// TestJSONSchemaTextRule: every string field of event.schema.json refers to
// $defs/text, whose pattern (a control character anywhere) matches exactly
// what ValidText rejects in valid UTF-8.
func TestJSONSchemaTextRule(t *testing.T) {
	raw, err := os.ReadFile("event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	type strSchema struct {
		Ref string `json:"$ref"`
	}
	var schema struct {
		Defs struct {
			Text struct {
				Not struct {
					Type    string `json:"type"`
					Pattern string `json:"pattern"`
				} `json:"not"`
			} `json:"text"`
		} `json:"$defs"`
		Properties map[string]struct {
			strSchema
			PropertyNames        *strSchema `json:"propertyNames"`
			AdditionalProperties *strSchema `json:"additionalProperties"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	const ref = "#/$defs/text"
	for _, f := range []string{"event_id", "tenant", "provider", "model", "error_type", "application", "operation", "region", "service_tier"} {
		if got := schema.Properties[f].Ref; got != ref {
			t.Errorf("%s: $ref %q, want %q", f, got, ref)
		}
	}
	a := schema.Properties["attributes"]
	if a.PropertyNames == nil || a.PropertyNames.Ref != ref || a.AdditionalProperties == nil || a.AdditionalProperties.Ref != ref {
		t.Errorf("attributes keys and values do not refer to %s", ref)
	}
	not := schema.Defs.Text.Not
	if not.Type != "string" {
		t.Errorf("$defs/text: not.type %q, want string (so null stays valid)", not.Type)
	}
	re, err := regexp.Compile(not.Pattern)
	if err != nil {
		t.Fatalf("$defs/text pattern: %v", err)
	}
	for r := rune(0); r < 0x3000; r++ {
		for _, s := range []string{string(r), "ab" + string(r) + "cd"} {
			if re.MatchString(s) == ValidText(s) {
				t.Errorf("%q: pattern matches %v, ValidText %v", s, re.MatchString(s), ValidText(s))
			}
		}
	}
}
