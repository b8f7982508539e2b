package notify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/costpipe/costpipe/internal/nolisten"
)

// captured is one request a test server received.
type captured struct {
	header http.Header
	body   []byte
}

// recorder is a real HTTP server that records requests and answers with
// the status (and headers) its script gives for the n-th request (0-based).
type recorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []captured
	script func(n int, w http.ResponseWriter) int
}

func newRecorder(t *testing.T, script func(n int, w http.ResponseWriter) int) *recorder {
	t.Helper()
	r := &recorder{script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.reqs)
		r.reqs = append(r.reqs, captured{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		code := http.StatusNoContent
		if r.script != nil {
			code = r.script(n, w)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.reqs...)
}

func newTestWebhook(t *testing.T, url string, clock func() time.Time, secrets ...string) *Webhook {
	t.Helper()
	w, err := NewWebhook(ReceiverConfig{Name: "hook", Type: TypeWebhook, URL: url, Secrets: secrets,
		Headers: map[string]string{"Authorization": "Bearer gateway-token"}}, Deps{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWebhookDeliversSignedBody(t *testing.T) {
	rec := newRecorder(t, nil)
	now := time.Date(2025, 11, 28, 9, 30, 0, 0, time.UTC)
	w := newTestWebhook(t, rec.srv.URL+"/alerts", func() time.Time { return now }, testSecret1)
	n := testNotification("budget-acme-2025-11-80-firing")
	if err := w.Deliver(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	got := reqs[0]
	want, _ := n.Body()
	if string(got.body) != string(want) {
		t.Errorf("body = %s\nwant %s", got.body, want)
	}
	for k, v := range map[string]string{
		"Content-Type": "application/json", "webhook-id": n.ID,
		"webhook-timestamp": strconv.FormatInt(now.Unix(), 10), "Authorization": "Bearer gateway-token",
	} {
		if got.header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, got.header.Get(k), v)
		}
	}
	if err := verifyStandardWebhook(testSecret1, got.header, got.body, now); err != nil {
		t.Errorf("independent verifier: %v", err)
	}
	if strings.Contains(got.header.Get("webhook-signature"), " ") {
		t.Errorf("one secret, two signatures: %q", got.header.Get("webhook-signature"))
	}
}

func TestWebhookRotationAndTampering(t *testing.T) {
	rec := newRecorder(t, nil)
	now := time.Date(2025, 11, 28, 9, 30, 0, 0, time.UTC)
	w := newTestWebhook(t, rec.srv.URL, func() time.Time { return now }, testSecret2, testSecret1)
	if err := w.Deliver(context.Background(), testNotification("rot-1")); err != nil {
		t.Fatal(err)
	}
	got := rec.requests()[0]
	// A receiver holding only the old or only the new secret verifies.
	for _, sec := range []string{testSecret1, testSecret2} {
		if err := verifyStandardWebhook(sec, got.header, got.body, now); err != nil {
			t.Errorf("rotation: secret %s…: %v", sec[:12], err)
		}
	}
	if err := verifyStandardWebhook(testSecret3, got.header, got.body, now); err == nil {
		t.Error("a secret that is not configured verifies")
	}
	// Any change to the body, the id or the timestamp breaks the signature.
	tampered := append([]byte(nil), got.body...)
	tampered[strings.Index(string(tampered), "812.5")] = '9'
	if err := verifyStandardWebhook(testSecret1, got.header, tampered, now); err == nil {
		t.Error("a tampered body verifies")
	}
	h := got.header.Clone()
	h.Set("webhook-id", "rot-2")
	if err := verifyStandardWebhook(testSecret1, h, got.body, now); err == nil {
		t.Error("a changed webhook-id verifies")
	}
	h = got.header.Clone()
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10))
	if err := verifyStandardWebhook(testSecret1, h, got.body, now); err == nil {
		t.Error("a changed webhook-timestamp verifies")
	}
}

func TestWebhookAnswerClassification(t *testing.T) {
	now := time.Date(2025, 11, 28, 9, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		code       int
		retryAfter string
		want       string // "ok", "retry", "permanent"
		wantAfter  time.Duration
	}{
		{200, "", "ok", 0},
		{202, "", "ok", 0},
		{204, "", "ok", 0},
		{400, "", "permanent", 0},
		{401, "", "permanent", 0},
		{404, "", "permanent", 0},
		{410, "", "permanent", 0},
		{413, "", "permanent", 0},
		{408, "", "retry", 0},
		{429, "7", "retry", 7 * time.Second},
		{429, now.Add(90 * time.Second).Format(http.TimeFormat), "retry", 90 * time.Second},
		{429, "soon", "retry", 0},
		{500, "", "retry", 0},
		{502, "", "retry", 0},
		{503, "120", "retry", 2 * time.Minute},
		{504, "", "retry", 0},
	} {
		t.Run(strconv.Itoa(tc.code)+tc.retryAfter, func(t *testing.T) {
			rec := newRecorder(t, func(_ int, w http.ResponseWriter) int {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				return tc.code
			})
			w := newTestWebhook(t, rec.srv.URL, func() time.Time { return now }, testSecret1)
			err := w.Deliver(context.Background(), testNotification("c1"))
			after, hasAfter := retryAfterOf(err)
			switch tc.want {
			case "ok":
				if err != nil {
					t.Fatalf("err = %v, want delivered", err)
				}
			case "permanent":
				if !errors.Is(err, ErrPermanent) {
					t.Fatalf("err = %v, want permanent", err)
				}
			case "retry":
				if err == nil || errors.Is(err, ErrPermanent) {
					t.Fatalf("err = %v, want retryable", err)
				}
				if tc.wantAfter != 0 && (!hasAfter || after != tc.wantAfter) {
					t.Errorf("Retry-After = %s (%v), want %s", after, hasAfter, tc.wantAfter)
				}
				if tc.wantAfter == 0 && hasAfter {
					t.Errorf("Retry-After = %s, want none", after)
				}
			}
			if err != nil && !strings.Contains(err.Error(), strconv.Itoa(tc.code)) {
				t.Errorf("error does not name the status: %v", err)
			}
		})
	}
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	target := newRecorder(t, nil)
	redirect := newRecorder(t, func(_ int, w http.ResponseWriter) int {
		w.Header().Set("Location", target.srv.URL)
		return http.StatusTemporaryRedirect
	})
	w := newTestWebhook(t, redirect.srv.URL, time.Now, testSecret1)
	err := w.Deliver(context.Background(), testNotification("r1"))
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "307") {
		t.Errorf("err = %v, want a permanent 307", err)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("redirect followed: target got %d requests", n)
	}
}

func TestWebhookNetworkErrorIsRetryable(t *testing.T) {
	url := "http://" + nolisten.Addr(t) + "/hooks/T000/B000/secret-path-token" // nothing listens there
	w := newTestWebhook(t, url, time.Now, testSecret1)
	err := w.Deliver(context.Background(), testNotification("n1"))
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("err = %v, want retryable", err)
	}
	if strings.Contains(err.Error(), "secret-path-token") {
		t.Errorf("error shows the URL: %v", err)
	}
}

func TestWebhookRefusesBadID(t *testing.T) {
	rec := newRecorder(t, nil)
	w := newTestWebhook(t, rec.srv.URL, time.Now, testSecret1)
	err := w.Deliver(context.Background(), testNotification("rule.with.dots"))
	if !errors.Is(err, ErrPermanent) {
		t.Errorf("err = %v, want permanent", err)
	}
	if n := len(rec.requests()); n != 0 {
		t.Errorf("%d requests sent with an invalid webhook-id", n)
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w, err := NewWebhook(ReceiverConfig{Name: "slow", Type: TypeWebhook, URL: srv.URL, Secrets: []string{testSecret1},
		Timeout: 50 * time.Millisecond}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Deliver(context.Background(), testNotification("t1"))
	if err == nil || errors.Is(err, ErrPermanent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a retryable deadline error", err)
	}
}

func TestRefusalQuotesTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("unknown tenant " + strings.Repeat("x", 2000)))
	}))
	defer srv.Close()
	err := newTestWebhook(t, srv.URL, time.Now, testSecret1).Deliver(context.Background(), testNotification("e1"))
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), `400 Bad Request: "unknown tenant xxx`) {
		t.Fatalf("err = %v", err)
	}
	if len(err.Error()) > maxErrorBody+200 {
		t.Errorf("error is %d bytes: the answer's body is not bounded", len(err.Error()))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 12 ", 12 * time.Second, true},
		{"-5", 0, false},
		{"99999999999", maxRetryAfter, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter, true},
		{"tomorrow", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
