package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/costpipe/costpipe/schemas"
)

// HTTPOptions configure an HTTPSink.
type HTTPOptions struct {
	// URL of the ingest gateway, e.g. "http://127.0.0.1:8080"; the path
	// /v1/events is appended unless the URL already ends with it.
	// Required: default "".
	URL string
	// APIKey is sent as "Authorization: Bearer KEY". Default "": no header
	// (a gateway run with --insecure-no-auth).
	APIKey string
	// BatchEvents is the number of events per request. Default 500.
	BatchEvents int
	// MaxRetries is how often one request is sent again after 429, 503,
	// 500, 502, 504 or a network error, waiting Retry-After (at most a
	// minute) or an exponential backoff from 100 ms to 10 s. Default 10.
	MaxRetries int
	// Client sends the requests. Default nil: a client with a 30 s timeout.
	Client *http.Client
}

// DefaultHTTPOptions returns the defaults documented on each HTTPOptions
// field.
func DefaultHTTPOptions() HTTPOptions {
	return HTTPOptions{BatchEvents: 500, MaxRetries: 10}
}

// Validate reports the first invalid option.
func (o HTTPOptions) Validate() error {
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("cannot use gateway URL %q: %w", o.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("cannot use gateway URL %q: want http://HOST:PORT or https://HOST:PORT", o.URL)
	}
	if o.BatchEvents < 1 || o.BatchEvents > 100_000 {
		return fmt.Errorf("cannot send batches of %d events: must be from 1 to 100000", o.BatchEvents)
	}
	if o.MaxRetries < 0 {
		return fmt.Errorf("cannot retry %d times: must be ≥ 0", o.MaxRetries)
	}
	return nil
}

// HTTPStats count what an HTTPSink did.
type HTTPStats struct {
	Requests int64 // requests answered (retries included)
	Retries  int64 // requests sent again
	Accepted int64 // events the gateway acknowledged
	Rejected int64 // events the gateway rejected as invalid (400)
}

// HTTPSink posts events to the HTTP ingest gateway as NDJSON
// (application/x-ndjson), BatchEvents per request. It is not safe for
// concurrent use.
type HTTPSink struct {
	opts     HTTPOptions
	endpoint string
	client   *http.Client
	body     []byte
	n        int
	stats    HTTPStats
}

// NewHTTPSink validates opts and returns a sink.
func NewHTTPSink(opts HTTPOptions) (*HTTPSink, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &HTTPSink{opts: opts, client: opts.Client, endpoint: strings.TrimSuffix(opts.URL, "/")}
	if !strings.HasSuffix(s.endpoint, "/v1/events") {
		s.endpoint += "/v1/events"
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 30 * time.Second}
	}
	return s, nil
}

// Stats returns the counters.
func (s *HTTPSink) Stats() HTTPStats { return s.stats }

// Write adds evs to the current batch, posting each batch that fills up.
// When a post fails it returns the events of evs it took: with the batch,
// kept for Flush when ctx ended (see post); without those of the batch
// when the post failed for good and the batch was dropped (its events of
// earlier Writes stay counted by them).
func (s *HTTPSink) Write(ctx context.Context, evs []schemas.Event) (int, error) {
	for i := range evs {
		s.body = append(schemas.AppendJSON(s.body, &evs[i]), '\n')
		s.n++
		if s.n >= s.opts.BatchEvents {
			batch := s.n
			if err := s.post(ctx); err != nil {
				if s.n > 0 { // kept
					return i + 1, err
				}
				return max(0, i+1-batch), err
			}
		}
	}
	return len(evs), nil
}

// Flush posts the partial batch.
func (s *HTTPSink) Flush(ctx context.Context) error {
	if s.n == 0 {
		return nil
	}
	return s.post(ctx)
}

// gatewayAnswer is the body of every POST /v1/events answer.
type gatewayAnswer struct {
	Accepted      int64  `json:"accepted"`
	RejectedCount int64  `json:"rejected_count"`
	Error         string `json:"error"`
	Rejected      []struct {
		Index   int    `json:"index"`
		EventID string `json:"event_id"`
		Error   string `json:"error"`
	} `json:"rejected"`
}

// post sends the batch, retrying transient failures, and empties it;
// unless ctx ended first: then the batch is kept for a Flush with another
// context (a stopped run still delivers what it made; the gateway may have
// taken a batch whose answer never came, and its events come again with
// the same event_ids, which the aggregator drops as duplicates).
func (s *HTTPSink) post(ctx context.Context) error {
	n := s.n
	sent := false
	defer func() {
		if sent || ctx.Err() == nil {
			s.body, s.n = s.body[:0], 0
		}
	}()
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		wait, err := s.try(ctx, n)
		if err == nil {
			sent = true
			return nil
		}
		var re *retryable
		if !errors.As(err, &re) || attempt >= s.opts.MaxRetries || ctx.Err() != nil {
			if re != nil {
				err = re.err
			}
			return fmt.Errorf("cannot send %d events to %s (attempt %d): %w", n, s.endpoint, attempt+1, err)
		}
		if wait <= 0 {
			wait = backoff
			backoff = min(2*backoff, 10*time.Second)
		}
		s.stats.Retries++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cannot send %d events to %s: %w", n, s.endpoint, ctx.Err())
		case <-t.C:
		}
	}
}

// retryable marks a failure worth another attempt.
type retryable struct{ err error }

func (r *retryable) Error() string { return r.err.Error() }

// try sends the batch once. It returns a *retryable error (and the wait the
// server asked for, 0 if none) for transient failures.
func (s *HTTPSink) try(ctx context.Context, n int) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(s.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if s.opts.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.opts.APIKey)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, &retryable{err}
	}
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	s.stats.Requests++
	var ans gatewayAnswer
	jerr := json.Unmarshal(data, &ans)
	status := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	switch resp.StatusCode {
	case http.StatusAccepted:
		if jerr != nil {
			ans.Accepted = int64(n) // 202 means all; the body is informative
		}
		s.stats.Accepted += ans.Accepted
		return 0, nil
	case http.StatusBadRequest:
		if jerr == nil && ans.Error == "" { // some events invalid, the rest accepted
			s.stats.Accepted += ans.Accepted
			s.stats.Rejected += ans.RejectedCount
			return 0, nil
		}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return retryAfter(resp.Header.Get("Retry-After")), &retryable{fmt.Errorf("gateway answered %s%s", status, reason(&ans, data, jerr))}
	}
	if rerr != nil {
		return 0, &retryable{rerr}
	}
	return 0, fmt.Errorf("gateway answered %s%s", status, reason(&ans, data, jerr))
}

// reason is ": why" from a gateway answer, or an excerpt of a foreign body.
func reason(ans *gatewayAnswer, data []byte, jerr error) string {
	switch {
	case jerr == nil && ans.Error != "":
		return ": " + ans.Error
	case jerr == nil && len(ans.Rejected) > 0:
		return fmt.Sprintf(": %d events rejected, first %q: %s", ans.RejectedCount, ans.Rejected[0].EventID, ans.Rejected[0].Error)
	case len(bytes.TrimSpace(data)) > 0:
		s := strings.TrimSpace(string(data))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return ": " + strconv.Quote(s)
	}
	return ""
}

// retryAfter parses a Retry-After header (seconds or an HTTP date), capped
// at a minute; 0 when absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return max(0, min(d, time.Minute))
}
