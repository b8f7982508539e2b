package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Receiver delivers notifications to one destination. Deliver is called by
// one dispatcher worker at a time per receiver, never concurrently for the
// same Receiver, and must return when ctx is done.
type Receiver interface {
	// Name is the receiver's configured name, unique within a Dispatcher.
	Name() string
	// Deliver sends n once. A nil error means the destination took it. An
	// error is retried with backoff, unless errors.Is(err, ErrPermanent).
	Deliver(ctx context.Context, n Notification) error
}

// ErrPermanent marks a delivery error that retrying cannot fix (a 4xx answer
// other than 408 and 429, a notification the receiver cannot encode, a
// record Kafka refuses for good): the dispatcher reports it dead at once.
var ErrPermanent = errors.New("permanent delivery failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds. It returns
// nil for a nil err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() + " (permanent, not retried)" }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// RetryAfter wraps a retryable err with the delay the destination asked for
// (HTTP Retry-After). The dispatcher waits at least that long, up to its
// maximum backoff, before the next attempt.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.err, e.after)
}
func (e *retryAfterError) Unwrap() error { return e.err }

// retryAfterOf returns the delay carried by RetryAfter in err's chain.
func retryAfterOf(err error) (time.Duration, bool) {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after, true
	}
	return 0, false
}

// maxErrorBody is how much of a refusing answer's body goes into the error.
const maxErrorBody = 512

// classifyResponse decides what an HTTP answer means for a delivery; it is
// the one place that decides for webhook and Slack receivers. 2xx: nil
// (delivered). 408, 429 and 5xx: a retryable error, with the Retry-After
// delay when the answer has one. Anything else (1xx, 3xx, other 4xx): a
// permanent error. It reads (part of) the body of a refusal and leaves
// closing it to the caller.
func classifyResponse(resp *http.Response, now time.Time) error {
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	err := fmt.Errorf("answered %s%s", statusText(code), bodySnippet(snippet))
	switch {
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
			return RetryAfter(err, d)
		}
		return err
	case code >= 300 && code <= 399:
		return Permanent(fmt.Errorf("%w (redirects are not followed: configure the final URL)", err))
	default:
		return Permanent(err)
	}
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return strconv.Itoa(code) + " " + t
	}
	return strconv.Itoa(code)
}

// bodySnippet quotes the start of an error answer's body, or returns "".
func bodySnippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if !utf8.ValidString(s) {
		return " (binary body)"
	}
	return fmt.Sprintf(": %q", s)
}

// maxRetryAfter bounds a Retry-After the destination sends; the dispatcher
// also caps it at its maximum backoff.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return min(d, maxRetryAfter), true
}

// postJSON sends body to rawURL with the given headers through client and
// classifies the answer. Errors never contain the URL (a Slack URL is a
// secret); what names the destination is the receiver's name.
func postJSON(ctx context.Context, client *http.Client, rawURL string, header http.Header, body []byte, now func() time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("cannot build request: %w", stripURL(err)))
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot POST: %w", stripURL(err))
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	return classifyResponse(resp, now())
}

// stripURL removes the URL from a *url.Error (it may hold a secret token),
// keeping the operation and the cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// noRedirects returns a shallow copy of c that does not follow redirects:
// Standard Webhooks treats a 3xx as a failure (update the URL instead).
func noRedirects(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}
