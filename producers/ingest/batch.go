package ingest

import (
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/schemas"
)

// Response is the JSON body of every answer to POST /v1/events.
type Response struct {
	// Accepted counts the events Kafka acknowledged for this request. It is
	// non-zero only with 202 and 400: a 400 batch had its valid events
	// accepted. Any other status accepted none.
	Accepted int `json:"accepted"`
	// Rejected lists the events that were not accepted because they are
	// invalid (400) or belong to a tenant the key may not write (403), in
	// request order; at most MaxListedRejections entries.
	Rejected []Rejection `json:"rejected"`
	// RejectedCount is the number of such events, even beyond the listed ones.
	RejectedCount int `json:"rejected_count"`
	// Error says why the request as a whole failed; empty on 202 and on a 400
	// caused only by invalid events.
	Error string `json:"error,omitempty"`
}

// Rejection is one event of a request that was not accepted.
type Rejection struct {
	// Index is the event's position in the request, from 0: the element
	// of a JSON array or CloudEvents batch, the line of an NDJSON body
	// (blank lines count), 0 for a single object.
	Index int `json:"index"`
	// EventID is the event's event_id when it could be read, else "".
	EventID string `json:"event_id"`
	// Error says what is wrong, naming the field and value.
	Error string `json:"error"`
}

// MaxListedRejections bounds Response.Rejected, so a body of a million bad
// elements cannot make a response of a million entries.
const MaxListedRejections = 1000

// format is how a request body carries events.
type format uint8

const (
	formatJSON            format = iota // one event object, or an array of them
	formatNDJSON                        // one event object per line
	formatCloudEvent                    // one CloudEvents envelope, event in "data"
	formatCloudEventBatch               // an array of CloudEvents envelopes
)

// parseFormat maps a Content-Type header to a format. An empty header means
// application/json.
func parseFormat(contentType string) (format, error) {
	if contentType == "" {
		return formatJSON, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, errors.New("cannot parse Content-Type " + quote(contentType) + ": " + err.Error())
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return 0, errors.New("cannot read charset " + quote(cs) + ": bodies must be UTF-8")
	}
	switch mt {
	case "application/json":
		return formatJSON, nil
	case "application/x-ndjson", "application/jsonl":
		return formatNDJSON, nil
	case "application/cloudevents+json":
		return formatCloudEvent, nil
	case "application/cloudevents-batch+json":
		return formatCloudEventBatch, nil
	}
	return 0, errors.New("cannot read Content-Type " + quote(mt) + ": want application/json, application/x-ndjson, " +
		"application/cloudevents+json or application/cloudevents-batch+json")
}

// quote quotes a value for an error message, cut to 128 bytes.
func quote(s string) string { return strconv.Quote(truncate(s, 128)) }

// span locates one accepted event's record in batch.arena: key [k, v),
// value [v, end).
type span struct{ k, v, end int }

// batch decodes one request body into the records to produce. It is reused
// across requests (see reset) and is not safe for concurrent use.
type batch struct {
	dec   *schemas.Decoder
	ev    schemas.Event
	stack []byte // scratch for the scanner

	tenant string     // the API key's tenant, or AnyTenant
	times  timeBounds // the event times the request accepts

	arena []byte // keys and values of the accepted events
	spans []span // one per accepted event, in request order
	recs  []kgo.Record

	rejected  []Rejection // listed rejections, at most MaxListedRejections
	nRejected int         // all rejections
	forbidden int         // rejections for a tenant the key may not write
}

// The intern table of a batch's decoder: a request's labels, not an
// aggregator's (schemas.NewDecoder's 65,536 strings and 4 MiB, kept by
// every pooled batch, were up to 0.5 GB outside --max-inflight-bytes).
const (
	batchInternEntries = 4096
	batchInternBytes   = 256 << 10
)

func newBatch() *batch {
	return &batch{dec: schemas.NewDecoderSized(batchInternEntries, batchInternBytes)}
}

// Largest arena and record slice kept for reuse.
const (
	maxPooledArena   = 4 << 20
	maxPooledRecords = 16 << 10
)

// reset readies b for a new request by a key bound to tenant, whose
// events' times must be within times.
func (b *batch) reset(tenant string, times timeBounds) {
	b.tenant, b.times = tenant, times
	if cap(b.arena) > maxPooledArena {
		b.arena = nil
	}
	if cap(b.recs) > maxPooledRecords {
		b.recs = nil
	}
	if cap(b.spans) > maxPooledRecords {
		b.spans = nil // one per event, as recs
	}
	clear(b.recs[:cap(b.recs)]) // drop references to the previous arena
	b.recs = b.recs[:0]
	b.arena = b.arena[:0]
	b.spans = b.spans[:0]
	clear(b.rejected)
	b.rejected = b.rejected[:0]
	b.nRejected, b.forbidden = 0, 0
}

// decode splits body by format and decodes every event in it. It returns a
// *framingError when the body's shape is broken; the batch must then be
// discarded as a whole.
func (b *batch) decode(f format, body []byte) error {
	if skipSpace(body, 0) == len(body) {
		return errors.New("cannot read events: the request body is empty")
	}
	if b.arena == nil {
		b.arena = make([]byte, 0, min(len(body)+len(body)/4+1024, maxPooledArena))
	}
	switch f {
	case formatNDJSON:
		splitLines(body, b.addEvent)
		return nil
	case formatCloudEvent:
		b.addCloudEvent(0, body)
		return nil
	case formatCloudEventBatch:
		var err error
		b.stack, err = splitArray(body, b.stack, b.addCloudEvent)
		return err
	}
	if body[skipSpace(body, 0)] != '[' {
		b.addEvent(0, body)
		return nil
	}
	var err error
	b.stack, err = splitArray(body, b.stack, b.addEvent)
	return err
}

func (b *batch) addCloudEvent(index int, elem []byte) {
	data, stack, err := cloudEventData(elem, b.stack)
	b.stack = stack
	if err != nil {
		b.reject(index, "", err.Error())
		return
	}
	b.addEvent(index, data)
}

// addEvent decodes and validates one event. An event without a tenant
// takes the key's tenant (unless the key is for every tenant); an event
// for another tenant than the key's is rejected as forbidden.
func (b *batch) addEvent(index int, elem []byte) {
	err := b.dec.Decode(elem, &b.ev)
	if err != nil && b.tenant != AnyTenant && missingTenant(err) {
		// The decoder validates only once the whole object has parsed,
		// so b.ev is complete here: fill the tenant in and validate again,
		// which reports the next violation, if any, exactly.
		b.ev.Tenant = b.tenant
		err = b.ev.Validate()
	}
	// An event for another tenant is forbidden whether or not it is
	// valid otherwise: the whole request is 403, not 400.
	if b.tenant != AnyTenant && b.ev.Tenant != b.tenant && (err == nil || b.ev.Tenant != "") {
		b.forbidden++
		b.reject(index, b.ev.EventID, "cannot write tenant "+quote(b.ev.Tenant)+": the API key is bound to tenant "+quote(b.tenant))
		return
	}
	if err != nil {
		b.reject(index, b.ev.EventID, err.Error())
		return
	}
	if err := b.times.check(b.ev.Timestamp); err != nil {
		b.reject(index, b.ev.EventID, err.Error())
		return
	}
	k := len(b.arena)
	b.arena = append(b.arena, b.ev.Tenant...)
	b.arena = append(b.arena, 0)
	b.arena = append(b.arena, b.ev.Model...)
	v := len(b.arena)
	b.arena = schemas.AppendJSON(b.arena, &b.ev)
	b.spans = append(b.spans, span{k: k, v: v, end: len(b.arena)})
}

// timeBounds are the event times a request accepts, [now − maxAge,
// now + maxFuture]: the aggregator's --max-event-age and --max-future
// (consumers, checkAge), which send an event outside them to the DLQ. now
// is read once per request. The zero value accepts every time (tests of
// the decoding alone).
type timeBounds struct {
	now               time.Time
	maxAge, maxFuture time.Duration
}

// timeBounds reads the clock for one request.
func (s *Server) timeBounds() timeBounds {
	return timeBounds{now: s.opts.Now(), maxAge: s.opts.MaxEventAge, maxFuture: s.opts.MaxFuture}
}

// check returns a *schemas.FieldError about timestamp when ts is outside
// the bounds, naming the flag it breaks; nil otherwise.
func (tb *timeBounds) check(ts time.Time) error {
	if tb.now.IsZero() || !tb.outside(ts) {
		return nil
	}
	var reason string
	if age := tb.now.Sub(ts); age > tb.maxAge {
		reason = fmt.Sprintf("%s old, beyond --max-event-age %s: the aggregator would send it to its DLQ", schemas.FormatAge(age), tb.maxAge)
	} else {
		reason = fmt.Sprintf("%s in the future, beyond --max-future %s: the aggregator would send it to its DLQ (is the sender's clock right?)",
			schemas.FormatAge(ts.Sub(tb.now)), tb.maxFuture)
	}
	if ms := ts.UnixMilli(); ms >= 0 && ms < 1e11 && !tb.outside(time.Unix(ms, 0)) {
		// A number is read as Unix milliseconds; this one is in range as seconds.
		reason += "; a number is Unix milliseconds, this one looks like seconds: multiply it by 1000"
	}
	return &schemas.FieldError{Field: "timestamp", Value: ts.UTC().Format(time.RFC3339Nano), Reason: reason}
}

// outside reports whether ts is before now − maxAge or after now + maxFuture.
func (tb *timeBounds) outside(ts time.Time) bool {
	return tb.now.Sub(ts) > tb.maxAge || ts.Sub(tb.now) > tb.maxFuture
}

// missingTenant reports the validation error of an absent or empty tenant.
// A tenant of the wrong type is a *FieldError too, but it quotes the value.
func missingTenant(err error) bool {
	var fe *schemas.FieldError
	return errors.As(err, &fe) && fe.Field == "tenant" && fe.Value == ""
}

func (b *batch) reject(index int, eventID, msg string) {
	b.nRejected++
	if len(b.rejected) >= MaxListedRejections {
		return
	}
	if !utf8.ValidString(eventID) || len(eventID) > schemas.MaxEventIDLen {
		eventID = strings.ToValidUTF8(truncate(eventID, schemas.MaxEventIDLen), "\uFFFD")
	}
	b.rejected = append(b.rejected, Rejection{Index: index, EventID: eventID, Error: msg})
}
