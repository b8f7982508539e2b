package schemas

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchEvent is a typical event as a gateway emits it (about 440 bytes).
const benchEvent = `{"event_id":"0b7e3f1c-5d2a-4e8f-9a61-3c4d5e6f7a8b","timestamp":"2025-11-28T09:07:12.345Z",` +
	`"tenant":"acme-corp","provider":"anthropic","model":"claude-sonnet-4-5-20250929","status":"ok",` +
	`"application":"support-assistant","operation":"chat","region":"us-east-1",` +
	`"input_tokens":1834,"cached_input_tokens":1024,"cache_write_tokens":256,"output_tokens":412,` +
	`"reasoning_tokens":128,"latency_ms":2314.7,"ttft_ms":412.3}`

func reportEventsPerSec(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeJSON measures Decoder.Decode, which includes Validate.
func BenchmarkDecodeJSON(b *testing.B) {
	data := []byte(benchEvent)
	d := NewDecoder()
	var e Event
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(data, &e); err != nil {
			b.Fatal(err)
		}
	}
	reportEventsPerSec(b)
}

// BenchmarkDecodeJSONMixed decodes a rotation of 1024 distinct events (40
// tenants, 12 models, 4 providers, 6 regions, varied numbers and timestamps),
// so the intern cache sees realistic collisions and misses.
func BenchmarkDecodeJSONMixed(b *testing.B) {
	var events [][]byte
	size := 0
	for i := range 1024 {
		e := Event{
			EventID:     fmt.Sprintf("%08x-5d2a-4e8f-9a61-%012x", i*2654435761, i*40503),
			Timestamp:   time.Date(2025, 11, 28, 9, 7, 12, 0, time.UTC).Add(time.Duration(i) * 1733 * time.Millisecond),
			Tenant:      fmt.Sprintf("tenant-%02d", i*7%40),
			Provider:    []string{"anthropic", "openai", "google", "self-hosted"}[i%4],
			Model:       []string{"claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06", "gemini-2.5-pro", "llama-3.1-70b-instruct"}[i%4] + fmt.Sprint(i%3),
			Status:      StatusOK,
			Application: fmt.Sprintf("app-%d", i%9),
			Operation:   []string{"chat", "embeddings"}[i%2],
			Region:      []string{"us-east-1", "eu-west-1", "ap-south-1"}[i%3],
			InputTokens: int64(200 + i*37%5000), CachedInputTokens: int64(i * 13 % 100), CacheWriteTokens: int64(i % 50),
			OutputTokens: int64(50 + i*11%2000), ReasoningTokens: int64(i % 50),
			LatencyMs: float64(500+i*97%5000) + 0.1*float64(i%10), HasLatency: true,
			TTFTMs: float64(50+i%400) + 0.5, HasTTFT: true,
		}
		if i%10 == 0 {
			e.Status, e.ErrorType = StatusError, "rate_limited"
		}
		buf := AppendJSON(nil, &e)
		size += len(buf)
		events = append(events, buf)
	}
	d := NewDecoder()
	var e Event
	b.SetBytes(int64(size / len(events)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := d.Decode(events[i&1023], &e); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportEventsPerSec(b)
}

// BenchmarkDecodeJSONServiceTier is BenchmarkDecodeJSON with 1-hour cache
// writes and a service tier.
func BenchmarkDecodeJSONServiceTier(b *testing.B) {
	data := []byte(strings.Replace(benchEvent, `"reasoning_tokens":128,`,
		`"reasoning_tokens":128,"cache_write_1h_tokens":200,"service_tier":"priority",`, 1))
	d := NewDecoder()
	var e Event
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(data, &e); err != nil {
			b.Fatal(err)
		}
	}
	reportEventsPerSec(b)
}

// BenchmarkDecodeJSONNoIntern measures DecodeJSON, which allocates every string.
func BenchmarkDecodeJSONNoIntern(b *testing.B) {
	data := []byte(benchEvent)
	var e Event
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeJSON(data, &e); err != nil {
			b.Fatal(err)
		}
	}
	reportEventsPerSec(b)
}

// BenchmarkEncodeJSON measures AppendJSON into a reused buffer.
func BenchmarkEncodeJSON(b *testing.B) {
	var e Event
	if err := DecodeJSON([]byte(benchEvent), &e); err != nil {
		b.Fatal(err)
	}
	buf := AppendJSON(nil, &e)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &e)
	}
	reportEventsPerSec(b)
}

// stdlibEvent mirrors the contract for encoding/json, for comparison only.
type stdlibEvent struct {
	EventID            string            `json:"event_id"`
	Timestamp          string            `json:"timestamp"`
	Tenant             string            `json:"tenant"`
	Provider           string            `json:"provider"`
	Model              string            `json:"model"`
	Status             string            `json:"status"`
	ErrorType          string            `json:"error_type"`
	Application        string            `json:"application"`
	Operation          string            `json:"operation"`
	Region             string            `json:"region"`
	InputTokens        int64             `json:"input_tokens"`
	CachedInputTokens  int64             `json:"cached_input_tokens"`
	CacheWriteTokens   int64             `json:"cache_write_tokens"`
	OutputTokens       int64             `json:"output_tokens"`
	ReasoningTokens    int64             `json:"reasoning_tokens"`
	CacheWrite1hTokens int64             `json:"cache_write_1h_tokens"`
	ServiceTier        string            `json:"service_tier"`
	LatencyMs          *float64          `json:"latency_ms"`
	TTFTMs             *float64          `json:"ttft_ms"`
	GPUMs              float64           `json:"gpu_ms"`
	Attributes         map[string]string `json:"attributes"`
}

// BenchmarkStdlibDecodeJSON is encoding/json into a mirror struct, without
// timestamp parsing or validation: a lower bound on what it would cost.
func BenchmarkStdlibDecodeJSON(b *testing.B) {
	data := []byte(benchEvent)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var e stdlibEvent
		if err := json.Unmarshal(data, &e); err != nil {
			b.Fatal(err)
		}
	}
	reportEventsPerSec(b)
}
