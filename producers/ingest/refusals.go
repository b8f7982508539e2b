package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costpipe/costpipe/internal/loglimit"
)

// This file is what the gateway does with a request it refuses: the
// answer's connection handling (refuse, for a body not read whole), the
// metric costpipe_ingest_refused_requests_total{endpoint,reason} and a
// log line at most once a minute per endpoint, reason and tenant.

// Reasons of refusal, the values of the reason label; the set is fixed.
const (
	reasonMissingKey       = "missing_key"           // 401: no Authorization header
	reasonBadAuthorization = "bad_authorization"     // 401: not "Bearer KEY"
	reasonUnknownKey       = "unknown_key"           // 401
	reasonUnsupported      = "unsupported_media"     // 415: Content-Type, charset or Content-Encoding
	reasonTooLarge         = "too_large"             // 413: the body, or what it decodes to
	reasonMaxInFlight      = "max_inflight"          // 429: every request slot taken
	reasonMaxInFlightBytes = "max_inflight_bytes"    // 429: the byte budget spent
	reasonMaxReceivingKey  = "max_receiving_per_key" // 429: the key's requests receiving their body at their limit
	reasonBadBody          = "bad_body"              // 400: the body as a whole is unusable
	reasonInvalidEvents    = "invalid_events"        // 400: some events invalid (the valid ones accepted)
	reasonForbiddenTenant  = "forbidden_tenant"      // 403
)

var refusalReasons = []string{
	reasonMissingKey, reasonBadAuthorization, reasonUnknownKey, reasonUnsupported, reasonTooLarge,
	reasonMaxInFlight, reasonMaxInFlightBytes, reasonMaxReceivingKey, reasonBadBody, reasonInvalidEvents,
	reasonForbiddenTenant,
}

// endpoints are the values of the endpoint label, by path.
var endpoints = map[string]string{"/v1/events": "events", "/v1/traces": "traces"}

// refusalLogEvery is how often at most one endpoint, reason and tenant is
// logged.
const refusalLogEvery = time.Minute

// maxRefusalLimits bounds the limiters kept (one per endpoint, reason and
// tenant); past it they are all forgotten, so a key file of many tenants
// cannot grow them without end. Unknown keys share one limiter per reason.
const maxRefusalLimits = 4096

// refusals counts and logs refused requests.
type refusals struct {
	total  *prometheus.CounterVec // by endpoint, reason
	mu     sync.Mutex
	limits map[refusalKey]*loglimit.Limit
}

type refusalKey struct{ path, reason, tenant string }

func newRefusals(reg *prometheus.Registry) *refusals {
	r := &refusals{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "costpipe_ingest_refused_requests_total",
			Help: "Requests refused as a whole or in part (400, 401, 403, 413, 415, 429), by endpoint (events, traces) " +
				"and reason; the log says which tenant, at most once a minute per endpoint, reason and tenant.",
		}, []string{"endpoint", "reason"}),
		limits: make(map[refusalKey]*loglimit.Limit),
	}
	for _, ep := range endpoints {
		for _, reason := range refusalReasons {
			r.total.WithLabelValues(ep, reason)
		}
	}
	reg.MustRegister(r.total)
	return r
}

// refused counts a refusal of r for reason, answered with code, and logs
// it unless a line of its endpoint, reason and tenant came less than
// refusalLogEvery ago. tenant is the key's ("" before authentication);
// for an unknown key, key is the key, of which only a fingerprint is
// logged. msg, the answer's error, is the line's example.
func (s *Server) refused(r *http.Request, reason string, code int, tenant, key, msg string) {
	ep, ok := endpoints[r.URL.Path]
	if !ok {
		return
	}
	s.refusals.total.WithLabelValues(ep, reason).Inc()
	who := tenant
	switch {
	case reason == reasonUnknownKey:
		who = "unknown key"
	case tenant == "":
		who = "no key"
	}
	k := refusalKey{r.URL.Path, reason, who}
	s.refusals.mu.Lock()
	l := s.refusals.limits[k]
	if l == nil {
		if len(s.refusals.limits) >= maxRefusalLimits {
			clear(s.refusals.limits)
		}
		l = &loglimit.Limit{}
		s.refusals.limits[k] = l
	}
	s.refusals.mu.Unlock()
	now := s.opts.Now()
	n, prev, due := l.Note(now, refusalLogEvery)
	if !due {
		return
	}
	attrs := []any{"endpoint", r.URL.Path, "reason", reason, "status", code, "tenant", who}
	if key != "" {
		attrs = append(attrs, "key_fingerprint", keyFingerprint(key))
	}
	attrs = append(attrs, "requests", n)
	if !prev.IsZero() {
		attrs = append(attrs, "in_the_last", now.Sub(prev).Round(time.Second))
	}
	attrs = append(attrs, "remote", r.RemoteAddr, "example", msg)
	s.log.Warn("ingest refused requests", attrs...)
}

// keyFingerprint names an API key in a log without revealing it: the first
// 4 bytes of its SHA-256, in hex ("sha256:1a2b3c4d"), enough to tell keys
// apart and to match a key one holds (printf %s KEY | sha256sum).
func keyFingerprint(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:4])
}

// refuse answers a request refused before its body was read whole: write
// writes the answer, which says Connection: close when there is a body
// left, and then drainBody reads the rest of it. Closing a connection with
// unread data resets it, and a client that sends its whole body before
// reading the answer would see the reset, not the answer. started tells
// that reading the body began (so a client that asked for 100-continue
// was told to send it).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, started bool, write func() int) int {
	drain := false
	if r.Body != nil && r.Body != http.NoBody {
		w.Header().Set("Connection", "close")
		// A client that asked for 100-continue and was not told to go on
		// has not sent the body; one larger than drainMax is not waited for.
		drain = started || !strings.EqualFold(r.Header.Get("Expect"), "100-continue") && r.ContentLength <= s.drainMax()
	}
	code := write()
	if drain {
		s.drainBody(w, r)
	}
	return code
}
