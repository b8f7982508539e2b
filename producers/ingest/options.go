package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/schemas"
)

// Options configures a Server. Start from DefaultOptions and change what you
// need; zero values are not replaced by defaults.
type Options struct {
	// Brokers are the Kafka seed brokers, host:port each.
	// Default ["127.0.0.1:9092"].
	Brokers []string

	// Topic receives the accepted events. Default "costpipe.events".
	Topic string

	// ClientOpts are extra franz-go options of the Kafka client (TLS,
	// SASL). Default nil.
	ClientOpts []kgo.Opt

	// Keys are the API keys the gateway accepts, each bound to one tenant
	// or to every tenant. Default nil: no keys, which Validate refuses
	// unless InsecureNoAuth is set.
	Keys *Keys

	// KeysFile is the file Keys were read from, if any: Server.ReloadKeys
	// reads it again while serving (`costpipe ingest` on SIGHUP). Default
	// "": ReloadKeys fails.
	KeysFile string

	// InsecureNoAuth, when Keys is nil, accepts requests without an
	// Authorization header, for any tenant; events without a tenant are
	// rejected. Ignored when Keys is set. Default false.
	InsecureNoAuth bool

	// MaxBodyBytes bounds a request body, both as sent and after gzip
	// decompression; a larger one is answered 413. After that answer, as
	// after every refusal (401, 415, 429, …) before the body was read
	// whole, up to twice MaxBodyBytes more (at least 4 MiB) are read and
	// discarded for at most 5 s, so a client that sends its whole body
	// before reading sees the answer rather than a connection reset.
	// Default 5 MiB.
	MaxBodyBytes int64

	// MaxInFlight bounds the requests (POST /v1/events and /v1/traces)
	// being processed at once; one more is answered 429 at once. Default 64.
	MaxInFlight int

	// MaxReceivingPerKey bounds the requests of one API key still receiving
	// their body at once (from admission until the body is read), so that
	// slow connections of one key, which declare a large Content-Length and
	// send nothing, cannot take every request slot nor, since a request
	// reserves the bytes it declares, the whole byte budget until
	// ReadTimeout: keep MaxReceivingPerKey × MaxBodyBytes well below
	// MaxInFlightBytes. One more is answered 429. Requests whose body is in
	// (decoding, waiting for Kafka) do not count. 0: no limit. Default 8
	// (8 × 5 MiB of 64 MiB).
	MaxReceivingPerKey int

	// MaxInFlightBytes bounds the request data held in memory at once,
	// over all requests: each request reserves its decompressed body, then
	// what the body decodes to, before decoding it: for /v1/events the
	// records (about 1.25 times the body, and ~200 bytes an event), for
	// /v1/traces the decoded spans, priced by counting them and their
	// attributes (otlp_cost.go), and the records. A request that does not
	// fit now is answered 429 at once; one that could never fit, even
	// alone, 413. The Kafka producer buffers at most twice as many bytes of
	// records, and fails a request at once when that buffer is full. Peak
	// memory for request data is therefore a small multiple of this value.
	// Default 64 MiB.
	MaxInFlightBytes int64

	// ProduceTimeout bounds how long a request waits for Kafka to
	// acknowledge its events (and for room in the producer buffer); past it
	// the request is answered 503. It is also the record delivery timeout of
	// the producer. Default 10 s.
	ProduceTimeout time.Duration

	// ProducerLinger is how long the producer waits for more records before
	// sending a partition's batch. Requests are batches already, so a short
	// linger only adds latency. Default 0.
	ProducerLinger time.Duration

	// RetryAfter is the delay sent in the Retry-After header of 429 and 503
	// answers, rounded up to whole seconds (at least 1). Default 1 s.
	RetryAfter time.Duration

	// ReadTimeout bounds reading one request, headers and body, so a slow
	// client cannot hold an in-flight slot forever. Default 30 s.
	ReadTimeout time.Duration

	// ShutdownTimeout bounds the shutdown when Serve's context ends, from
	// then to Serve's return: the ShutdownDelay, then the drain of in-flight
	// requests (requests still running at its end are cut off and Serve
	// returns an error) and the producer's flush. Keep it above
	// ShutdownDelay + ReadTimeout + ProduceTimeout + 1 s to never cut a
	// request. Default 50 s.
	ShutdownTimeout time.Duration

	// ShutdownDelay is how long, once Serve's context ends, GET /readyz
	// answers 503 while requests, on new connections too, are still
	// served, so that load balancers stop sending before the listener
	// closes; it counts in ShutdownTimeout, and must be below it. 0: close
	// the listener at once. Default 5 s.
	ShutdownDelay time.Duration

	// PrivateMetrics leaves GET /metrics out of Handler (the public
	// listener's routes): serve OpsHandler on an operator's listener
	// instead. The metrics count keys and refusals, which the public need
	// not see. Default false (Handler serves /metrics too).
	PrivateMetrics bool

	// OTLPTenantAttribute names the resource attribute that gives the
	// tenant of OTLP spans (POST /v1/traces) sent with a key for every
	// tenant; a span of a resource without it is rejected. With a key bound
	// to one tenant the attribute may be absent; a resource naming another
	// tenant has its spans rejected (a 200 with partial_success), and a
	// request all of whose gen_ai spans are such is refused (403). Default
	// "costpipe.tenant".
	OTLPTenantAttribute string

	// OTLPSkipOperations are gen_ai.operation.name values of spans that
	// aggregate other calls; their usage is ignored (counted as skipped)
	// so that an agent's total and its inference calls are not billed
	// twice. Default invoke_agent, create_agent, execute_tool, workflow,
	// invoke_workflow.
	OTLPSkipOperations []string

	// MaxEventAge refuses events whose timestamp is further in the past
	// than this, by Now: the aggregator sends them to its DLQ (its
	// --max-event-age), so the client learns it from the answer instead.
	// It must match the aggregators' (`costpipe ingest` reads the same
	// flag and environment variable). Default 7 days, the aggregator's.
	MaxEventAge time.Duration

	// MaxFuture refuses events whose timestamp is further in the future
	// than this, by Now (the aggregator's --max-future). Default 5 min.
	MaxFuture time.Duration

	// Now is the clock event times are checked against, read once per
	// request. Default time.Now.
	Now func() time.Time

	// Logger receives the gateway's log lines. Default nil: discard.
	Logger *slog.Logger
}

// The defaults of Options.MaxEventAge and MaxFuture: the aggregator's
// (consumers.DefaultOptions), which cmd/costpipe's tests compare them with.
const (
	DefaultMaxEventAge = 7 * 24 * time.Hour
	DefaultMaxFuture   = 5 * time.Minute
)

// DefaultOTLPTenantAttribute is the default Options.OTLPTenantAttribute.
const DefaultOTLPTenantAttribute = "costpipe.tenant"

// DefaultOTLPSkipOperations returns the default Options.OTLPSkipOperations.
func DefaultOTLPSkipOperations() []string {
	return []string{"invoke_agent", "create_agent", "execute_tool", "workflow", "invoke_workflow"}
}

// DefaultOptions returns the default Options: brokers 127.0.0.1:9092, topic
// costpipe.events, no keys (so Validate fails until Keys or InsecureNoAuth
// is set), 5 MiB bodies, 64 requests (8 of a key receiving their body) and
// 64 MiB in flight,
// 10 s produce timeout, no linger, Retry-After 1 s, 30 s read timeout, a
// 50 s shutdown whose first 5 s still serve,
// OTLP tenant attribute costpipe.tenant and the default skipped operations,
// events from 7 days ago to 5 minutes ahead by time.Now (the aggregator's
// defaults).
func DefaultOptions() Options {
	return Options{
		Brokers:            []string{"127.0.0.1:9092"},
		Topic:              schemas.DefaultTopic,
		MaxBodyBytes:       5 << 20,
		MaxInFlight:        64,
		MaxReceivingPerKey: 8,
		MaxInFlightBytes:   64 << 20,
		ProduceTimeout:     10 * time.Second,
		RetryAfter:         time.Second,
		ReadTimeout:        30 * time.Second,
		ShutdownTimeout:    50 * time.Second,
		ShutdownDelay:      5 * time.Second,
		MaxEventAge:        DefaultMaxEventAge,
		MaxFuture:          DefaultMaxFuture,
		Now:                time.Now,

		OTLPTenantAttribute: DefaultOTLPTenantAttribute,
		OTLPSkipOperations:  DefaultOTLPSkipOperations(),
	}
}

// maxMaxBody bounds MaxBodyBytes: a body is held in memory whole.
const maxMaxBody = 1 << 30

// Validate reports the first invalid option.
func (o Options) Validate() error {
	if len(o.Brokers) == 0 {
		return errors.New("cannot use an empty list of Kafka brokers")
	}
	for _, b := range o.Brokers {
		if strings.TrimSpace(b) == "" || strings.ContainsAny(b, " ,") {
			return fmt.Errorf("cannot use Kafka broker address %q: want host:port", b)
		}
	}
	if o.Topic == "" {
		return errors.New("cannot produce to an empty topic name")
	}
	if o.Keys == nil && !o.InsecureNoAuth {
		return errors.New("cannot start without API keys: give a key file, or explicitly disable authentication")
	}
	if o.MaxBodyBytes < 1 || o.MaxBodyBytes > maxMaxBody {
		return fmt.Errorf("cannot use a body limit of %d bytes: must be from 1 to %d", o.MaxBodyBytes, maxMaxBody)
	}
	if o.MaxInFlight < 1 {
		return fmt.Errorf("cannot use %d in-flight requests: must be at least 1", o.MaxInFlight)
	}
	if o.MaxReceivingPerKey < 0 {
		return fmt.Errorf("cannot use %d requests receiving per key: must be 0 (no limit) or more", o.MaxReceivingPerKey)
	}
	if o.MaxInFlightBytes < o.MaxBodyBytes {
		return fmt.Errorf("cannot use %d in-flight bytes: must be at least the body limit (%d)", o.MaxInFlightBytes, o.MaxBodyBytes)
	}
	if o.ProduceTimeout < time.Second {
		return fmt.Errorf("cannot use produce timeout %s: must be at least 1s", o.ProduceTimeout)
	}
	if o.ProducerLinger < 0 || o.ProducerLinger > time.Second {
		return fmt.Errorf("cannot use producer linger %s: must be from 0 to 1s", o.ProducerLinger)
	}
	if o.RetryAfter <= 0 {
		return fmt.Errorf("cannot use Retry-After %s: must be positive", o.RetryAfter)
	}
	if o.ReadTimeout <= 0 {
		return fmt.Errorf("cannot use read timeout %s: must be positive", o.ReadTimeout)
	}
	if o.ShutdownTimeout <= 0 {
		return fmt.Errorf("cannot use shutdown timeout %s: must be positive", o.ShutdownTimeout)
	}
	if o.ShutdownDelay < 0 || o.ShutdownDelay >= o.ShutdownTimeout {
		return fmt.Errorf("cannot use shutdown delay %s: must be from 0 to below the shutdown timeout %s, which it counts in", o.ShutdownDelay, o.ShutdownTimeout)
	}
	if o.MaxEventAge <= 0 {
		return fmt.Errorf("cannot use max event age %s: must be positive", o.MaxEventAge)
	}
	if o.MaxFuture < 0 {
		return fmt.Errorf("cannot use max future %s: must be 0 or more", o.MaxFuture)
	}
	if o.Now == nil {
		return errors.New("cannot check event times without a clock: Now is nil")
	}
	if o.OTLPTenantAttribute == "" || len(o.OTLPTenantAttribute) > schemas.MaxLabelLen || !schemas.ValidText(o.OTLPTenantAttribute) {
		return fmt.Errorf("cannot use OTLP tenant attribute %q: must be 1 to %d bytes of text", o.OTLPTenantAttribute, schemas.MaxLabelLen)
	}
	for _, op := range o.OTLPSkipOperations {
		if op == "" {
			return errors.New("cannot skip an empty OTLP operation name")
		}
	}
	return nil
}
