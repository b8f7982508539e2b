package notify

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// userAgent identifies costpipe's deliveries.
const userAgent = "costpipe-alerts/1"

// Webhook delivers notifications as signed Standard Webhooks: a POST of
// Notification.Body with the webhook-id, webhook-timestamp and
// webhook-signature headers. Safe for concurrent use.
type Webhook struct {
	name    string
	url     string
	header  http.Header // extra configured headers, canonical keys
	signer  *Signer
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

// NewWebhook builds a webhook receiver from a validated configuration whose
// URL and secrets are inline (Build reads url_file and secrets_file first).
// deps.HTTP (default: a new http.Client) is used without following
// redirects; deps.Clock (default time.Now) gives webhook-timestamp.
func NewWebhook(cfg ReceiverConfig, deps Deps) (*Webhook, error) {
	signer, err := NewSigner(cfg.Secrets...)
	if err != nil {
		return nil, fmt.Errorf("receiver %q: %w", cfg.Name, err)
	}
	h := make(http.Header, len(cfg.Headers))
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	return &Webhook{
		name: cfg.Name, url: cfg.URL, header: h, signer: signer,
		client: noRedirects(deps.HTTP), timeout: cfg.Timeout, now: nowOr(deps.Clock),
	}, nil
}

// Name returns the receiver's configured name.
func (w *Webhook) Name() string { return w.name }

// Deliver POSTs n's body, signed. 2xx: delivered; 408, 429 (honouring
// Retry-After), 5xx and network errors: retryable; any other answer, an ID
// that cannot be a webhook-id, or a body that cannot be encoded: permanent.
// A retry is signed again with the time of the attempt.
func (w *Webhook) Deliver(ctx context.Context, n Notification) error {
	if err := ValidateID(n.ID); err != nil {
		return Permanent(fmt.Errorf("webhook %q: %w", w.name, err))
	}
	body, err := n.Body()
	if err != nil {
		return Permanent(fmt.Errorf("webhook %q: %w", w.name, err))
	}
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	ts := w.now()
	h := w.header.Clone()
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	h[HeaderID] = []string{n.ID}
	h[HeaderTimestamp] = []string{strconv.FormatInt(ts.Unix(), 10)}
	h[HeaderSignature] = []string{w.signer.Sign(n.ID, ts, body)}
	if err := postJSON(ctx, w.client, w.url, h, body, w.now); err != nil {
		return fmt.Errorf("webhook %q: %w", w.name, err)
	}
	return nil
}

func nowOr(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
