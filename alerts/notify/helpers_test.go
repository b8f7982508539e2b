package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// verifyStandardWebhook is an independent Standard Webhooks verifier,
// written from the specification (spec/standard-webhooks.md, "Verifying
// signatures") without using this package's signer: it decodes the whsec_
// secret, recomputes base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
// and accepts when any "v1," signature of the space-separated header
// matches in constant time and the timestamp is within 5 minutes of now.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	const tolerance = 5 * time.Minute
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return errors.New("verifier: secret without whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("verifier: secret: %w", err)
	}
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("verifier: missing webhook-id, webhook-timestamp or webhook-signature")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("verifier: timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("verifier: timestamp %d is %s from now", secs, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, s := range strings.Split(sigs, " ") {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return errors.New("verifier: no matching signature")
}

// Secrets for tests: 24, 32 and 32 random-looking bytes.
const (
	testSecret1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	testSecret2 = "whsec_c2VjcmV0LXR3by1mb3Itcm90YXRpb24tMDEyMzQ1Njc="
	testSecret3 = "whsec_dW5yZWxhdGVkLXNlY3JldC1ub3QtY29uZmlndXJlZCE="
)

// fakeClock is a Clock whose Sleep advances Now at once and records the
// wait. With block set, Sleep waits until its ctx is done instead.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	block  bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	block := c.block
	if !block {
		c.now = c.now.Add(d)
	}
	c.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return ctx.Err()
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// withJitter replaces the dispatcher's random source.
func withJitter(f func() float64) Opt { return func(o *options) { o.jitter = f } }

// results collects Results from a Dispatcher.
type results struct {
	mu  sync.Mutex
	all []Result
	ch  chan Result
}

func newResults() *results { return &results{ch: make(chan Result, 1024)} }

func (r *results) add(res Result) {
	r.mu.Lock()
	r.all = append(r.all, res)
	r.mu.Unlock()
	r.ch <- res
}

func (r *results) snapshot() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.all...)
}

// next waits for the next Result, failing the test after 10 s (a deadline
// against a hang, not a timing assumption).
func (r *results) next(t *testing.T) Result {
	t.Helper()
	select {
	case res := <-r.ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no Result within 10 s")
		return Result{}
	}
}

// metricValue reads a counter or gauge (or a histogram's sample count)
// from reg with exactly the given labels; -1 when absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// testNotification is a firing budget alert with every field set.
func testNotification(id string) Notification {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	return Notification{
		ID: id, Type: TypeFiring, Rule: "monthly-spend", Kind: "budget",
		Group: map[string]string{"tenant": "acme"}, Value: 812.5, Threshold: 800,
		PeriodStart: time.Date(2025, 11, 1, 0, 0, 0, 0, berlin),
		PeriodEnd:   time.Date(2025, 12, 1, 0, 0, 0, 0, berlin),
		StartedAt:   time.Date(2025, 11, 24, 9, 0, 0, 0, time.UTC),
		Summary:     "acme spent $812.50 of its $800 monthly budget",
		Labels:      map[string]string{"severity": "page"},
		Annotations: map[string]string{"runbook_url": "https://runbooks.example/budget"},
	}
}
