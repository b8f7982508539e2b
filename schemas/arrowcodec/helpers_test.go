package arrowcodec

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

var (
	t0        = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	providers = []string{"openai", "anthropic", "self-hosted", "google"}
	models    = []string{
		"gpt-4o", "gpt-4o-mini", "o3", "o4-mini", "gpt-4.1", "claude-sonnet-4", "claude-opus-4",
		"claude-haiku-3.5", "llama-3.1-70b", "llama-3.1-8b", "mistral-large", "qwen2.5-72b",
		"gemini-2.5-pro", "gemini-2.5-flash", "text-embedding-3-small", "text-embedding-3-large",
		"deepseek-r1", "phi-4", "gpt-4.1-nano", "command-r",
	}
	apps       = []string{"", "search", "support-bot", "codegen", "summarize"}
	operations = []string{"chat", "embeddings", "chat", "chat"}
	regions    = []string{"us-east-1", "eu-west-1", "ap-south-1"}
	errorTypes = []string{"rate_limited", "timeout", "server_error", "client_error"}
	// serviceTiers: mostly absent, as in production traffic.
	serviceTiers = []string{"", "", "", "", "", "", "batch", "flex", "priority", "default"}
)

// typicalEvents returns n events shaped like production traffic: ~20
// tenants and models, mostly ok, latency and TTFT present, a few with
// attributes, a UUID-sized event_id.
func typicalEvents(n int, seed uint64) []schemas.Event {
	r := rand.New(rand.NewPCG(seed, 42))
	evs := make([]schemas.Event, n)
	for i := range evs {
		e := &evs[i]
		e.EventID = fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff)
		e.Timestamp = t0.Add(time.Duration(i) * 1_234_567 * time.Nanosecond)
		e.Tenant = fmt.Sprintf("tenant-%02d", r.IntN(20))
		e.Provider = providers[r.IntN(len(providers))]
		e.Model = models[r.IntN(len(models))]
		e.Status = schemas.StatusOK
		if r.IntN(50) == 0 {
			e.Status = schemas.StatusError
			e.ErrorType = errorTypes[r.IntN(len(errorTypes))]
		}
		e.Application = apps[r.IntN(len(apps))]
		e.Operation = operations[r.IntN(len(operations))]
		e.Region = regions[r.IntN(len(regions))]
		e.InputTokens = int64(r.IntN(8000))
		e.CachedInputTokens = e.InputTokens / 4
		e.CacheWriteTokens = e.InputTokens / 8
		if i%4 == 0 { // not from r: the other fields stay as they were before these two
			e.CacheWrite1hTokens = e.CacheWriteTokens / 2
		}
		e.OutputTokens = int64(r.IntN(2000))
		e.ReasoningTokens = e.OutputTokens / 3
		e.LatencyMs, e.HasLatency = float64(r.IntN(30000))+0.25, true
		e.TTFTMs, e.HasTTFT = float64(r.IntN(2000))+0.5, true
		if e.Provider == "self-hosted" {
			e.GPUMs = e.LatencyMs * 0.9
		}
		if r.IntN(10) == 0 {
			e.Attributes = map[string]string{"user_tier": "pro", "experiment": fmt.Sprint(r.IntN(3))}
		}
		e.ServiceTier = serviceTiers[i*7%len(serviceTiers)]
	}
	return evs
}

// variedEvents covers every field and edge: absent optionals, zero and
// maximal values, unicode, attributes, both statuses.
func variedEvents() []schemas.Event {
	evs := variedEventsBeforeServiceTier()
	evs[0].ServiceTier, evs[0].CacheWrite1hTokens = "priority", 60
	evs[2].ServiceTier, evs[2].CacheWriteTokens, evs[2].CacheWrite1hTokens = "Flex-2.0_x", schemas.MaxTokens/2, schemas.MaxTokens/2
	evs[2].CachedInputTokens = schemas.MaxTokens / 2
	evs[4].ServiceTier = "priority" // the dictionary value of e-1 again
	return evs
}

// variedEventsBeforeServiceTier is what variedEvents was before the
// cache_write_1h_tokens and service_tier columns: the content of the golden
// stream written by that encoder.
func variedEventsBeforeServiceTier() []schemas.Event {
	return []schemas.Event{
		{
			EventID: "e-1", Timestamp: t0, Tenant: "acme", Provider: "openai", Model: "gpt-4o",
			Status: schemas.StatusOK, Application: "search", Operation: "chat", Region: "us-east-1",
			InputTokens: 1200, CachedInputTokens: 200, CacheWriteTokens: 100, OutputTokens: 300, ReasoningTokens: 50,
			LatencyMs: 812.5, HasLatency: true, TTFTMs: 95.25, HasTTFT: true,
			Attributes: map[string]string{"user": "u-1", "tier": "gold"},
		},
		{ // only required fields
			EventID: "e-2", Timestamp: time.Unix(0, 0).UTC(), Tenant: "acme", Provider: "anthropic",
			Model: "claude-sonnet-4", Status: schemas.StatusError,
		},
		{ // unicode everywhere, error type, gpu time, latency without ttft
			EventID: "é-3-日本語", Timestamp: time.Date(2262, 4, 11, 23, 47, 16, 854775807, time.UTC),
			Tenant: "Zürich-团队", Provider: "self-hosted", Model: "llama-3.1-70b-ünï", Status: schemas.StatusError,
			ErrorType: "timeout ⏱", Application: "应用", Region: "eu-west-1",
			InputTokens: schemas.MaxTokens, OutputTokens: schemas.MaxTokens, ReasoningTokens: schemas.MaxTokens,
			LatencyMs: schemas.MaxDurationMs, HasLatency: true, GPUMs: 1234.5678,
			Attributes: map[string]string{"ключ": "значение", "emoji": "🚀", "empty": ""},
		},
		{ // ttft without latency, zero latency present
			EventID: "e-4", Timestamp: time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC), Tenant: "t", Provider: "p",
			Model: "m", Status: schemas.StatusOK, TTFTMs: 0, HasTTFT: true, Operation: "embeddings",
			InputTokens: 5,
		},
		{ // same dictionary values as e-1, empty (not nil) attributes
			EventID: "e-5", Timestamp: t0.Add(time.Millisecond), Tenant: "acme", Provider: "openai", Model: "gpt-4o",
			Status: schemas.StatusOK, Application: "search", Attributes: map[string]string{},
			LatencyMs: 0, HasLatency: true,
		},
	}
}

func mustEncode(t testing.TB, evs []schemas.Event) []byte {
	t.Helper()
	b, err := NewEncoder(nil).Encode(evs)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// decodeCollect decodes data keeping valid events and invalid rows.
func decodeCollect(t testing.TB, data []byte) ([]schemas.Event, map[int]error, error) {
	t.Helper()
	var evs []schemas.Event
	bad := map[int]error{}
	err := NewDecoder().Decode(data, func(e schemas.Event) error {
		evs = append(evs, e)
		return nil
	}, func(row int, err error) { bad[row] = err })
	return evs, bad, err
}

func assertEqualEvents(t *testing.T, got, want []schemas.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(&want[i]) {
			t.Errorf("event %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}
