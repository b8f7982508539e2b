package secure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms Kafka accepts, as Kafka names them.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms lists the SASL mechanisms SASL.Mechanism may name.
var Mechanisms = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512}

// SASL configures Kafka's SASL authentication. The zero value is none.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any case).
	// Default "": no SASL.
	Mechanism string
	// Username and Password are the credentials; both are required with a
	// mechanism. Default "".
	Username, Password string
}

// mechanism returns Mechanism in Kafka's spelling, "" for none.
func (s SASL) mechanism() string { return strings.ToUpper(strings.TrimSpace(s.Mechanism)) }

// Validate reports the first setting that cannot work.
func (s SASL) Validate() error {
	m := s.mechanism()
	switch {
	case m == "":
		if s.Username != "" || s.Password != "" {
			return fmt.Errorf("a SASL username or password without a SASL mechanism: choose one of %s", strings.Join(Mechanisms, ", "))
		}
		return nil
	case m != MechanismPlain && m != MechanismScramSHA256 && m != MechanismScramSHA512:
		return fmt.Errorf("unknown SASL mechanism %q: want one of %s", s.Mechanism, strings.Join(Mechanisms, ", "))
	case s.Username == "":
		return fmt.Errorf("SASL mechanism %s needs a username", m)
	case s.Password == "":
		return fmt.Errorf("SASL mechanism %s needs a password (from a file or the environment) for user %q", m, s.Username)
	}
	return nil
}

// Kafka is the security of every Kafka client of a process.
type Kafka struct {
	// TLS of the broker connections. Default off.
	TLS TLS
	// SASL authentication. Default none.
	SASL SASL
	// Hints name the settings in explanations (e.g. the flag names).
	// Default the flag names of cmd/costpipe.
	Hints KafkaHints
}

// KafkaHints name, in errors, the settings a user changes.
type KafkaHints struct {
	TLS, CAFile, CertFile, KeyFile, ServerName, SASLMechanism, SASLUsername, SASLPassword string
}

// DefaultKafkaHints are costpipe's flag names.
func DefaultKafkaHints() KafkaHints {
	return KafkaHints{TLS: "--kafka-tls", CAFile: "--kafka-ca-file", CertFile: "--kafka-cert-file", KeyFile: "--kafka-key-file",
		ServerName: "--kafka-server-name", SASLMechanism: "--kafka-sasl-mechanism", SASLUsername: "--kafka-sasl-username",
		SASLPassword: "--kafka-sasl-password-file or COSTPIPE_KAFKA_SASL_PASSWORD"}
}

func (k Kafka) hints() KafkaHints {
	if k.Hints == (KafkaHints{}) {
		return DefaultKafkaHints()
	}
	return k.Hints
}

// Configured reports whether TLS or SASL is on.
func (k Kafka) Configured() bool { return k.TLS.On() || k.SASL.mechanism() != "" }

// Validate reports the first setting that cannot work.
func (k Kafka) Validate() error {
	if err := k.TLS.Validate(); err != nil {
		return fmt.Errorf("kafka TLS: %w", err)
	}
	if err := k.SASL.Validate(); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// ClientOpts returns the franz-go options of the settings (none when
// neither TLS nor SASL is on), to append to a client's own options.
func (k Kafka) ClientOpts() ([]kgo.Opt, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	tc, err := k.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("kafka TLS: %w", err)
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	var mech sasl.Mechanism
	switch k.SASL.mechanism() {
	case MechanismPlain:
		mech = plain.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsMechanism()
	case MechanismScramSHA256:
		mech = scram.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsSha256Mechanism()
	case MechanismScramSHA512:
		mech = scram.Auth{User: k.SASL.Username, Pass: k.SASL.Password}.AsSha512Mechanism()
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// Check connects to brokers with the settings and asks one broker for its
// API versions, which goes through the TLS handshake and the SASL exchange.
// It returns an *Error (see Permanent) for a failure retrying cannot fix,
// another explained error for one it might (no broker reachable), or nil.
// It waits at most timeout.
func (k Kafka) Check(ctx context.Context, brokers []string, timeout time.Duration) error {
	opts, err := k.ClientOpts()
	if err != nil {
		return err
	}
	if err := ping(ctx, brokers, timeout, opts); err != nil {
		err = fmt.Errorf("cannot reach kafka at %q: %w", brokers, err)
		explained := k.Explain(err)
		if Permanent(explained) {
			return explained
		}
		if e := k.lessSecure(ctx, brokers, err); e != nil {
			return e
		}
		return explained
	}
	return nil
}

// ping connects to brokers with opts and asks one broker for its API
// versions, waiting at most timeout.
func ping(ctx context.Context, brokers []string, timeout time.Duration, opts []kgo.Opt) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RetryTimeout(timeout)}, opts...)...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client for %q: %w", brokers, err)
	}
	defer cl.Close()
	return cl.Ping(ctx)
}

// lessSecureTimeout bounds each of lessSecure's checks.
const lessSecureTimeout = 5 * time.Second

// lessSecure finds out, after a check that failed for a reason Explain
// could not name (cause), whether the brokers answer with less than the
// settings ask for, and returns an *Error saying so (nil otherwise). A
// plaintext Kafka listener never answers a TLS client hello (it waits for
// the rest of a request of the hello's "size") and one without SASL
// closes the connection on a SASL handshake, so either would otherwise
// look like a broker that is not up yet.
func (k Kafka) lessSecure(ctx context.Context, brokers []string, cause error) error {
	h := k.hints()
	if k.TLS.On() && ping(ctx, brokers, lessSecureTimeout, nil) == nil {
		return &Error{Reason: "no TLS at this address", err: cause, msg: fmt.Sprintf(
			"kafka: the brokers at %q speak plaintext Kafka, not TLS: use the port of their TLS listener, or drop %s (%v)",
			brokers, h.TLS, cause)}
	}
	if k.SASL.mechanism() == "" {
		return nil
	}
	var opts []kgo.Opt
	if tc, err := k.TLS.Config(); err == nil && tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if ping(ctx, brokers, lessSecureTimeout, opts) == nil {
		return &Error{Reason: "SASL not enabled", err: cause, msg: fmt.Sprintf(
			"kafka: the brokers at %q answer without SASL and close the connection when asked for %s: their listener does not enable SASL; use the port of their SASL listener, or drop %s (%v)",
			brokers, k.SASL.mechanism(), h.SASLMechanism, cause)}
	}
	return nil
}

// Explain returns err with what it means for these settings: an *Error for
// a certificate, TLS or authentication failure, err with a hint when the
// broker closed the connection, err itself otherwise (nil for nil).
func (k Kafka) Explain(err error) error {
	if err == nil || Permanent(err) {
		return err
	}
	h := k.hints()
	if e := explainTLS(err, hints{what: "kafka", caFile: h.CAFile, serverName: h.ServerName,
		clientCert: h.CertFile + " and " + h.KeyFile, noTLS: "drop " + h.TLS}); e != nil {
		return e
	}
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return &Error{Reason: "authentication failed", err: err, msg: fmt.Sprintf(
			"kafka: SASL authentication as %q with %s failed: wrong username or password (%s, %s), or the user has no %s credentials (%v)",
			k.SASL.Username, k.SASL.mechanism(), h.SASLUsername, h.SASLPassword, k.SASL.mechanism(), err)}
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return &Error{Reason: "SASL mechanism not enabled", err: err, msg: fmt.Sprintf(
			"kafka: the broker does not enable SASL mechanism %s: choose another with %s (%v)", k.SASL.mechanism(), h.SASLMechanism, err)}
	case errors.Is(err, kerr.IllegalSaslState):
		return &Error{Reason: "SASL required", err: err, msg: fmt.Sprintf(
			"kafka: the broker requires SASL authentication: set %s, %s and %s (%v)", h.SASLMechanism, h.SASLUsername, h.SASLPassword, err)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		var missing []string
		if !k.TLS.On() {
			missing = append(missing, "TLS ("+h.TLS+")")
		}
		if k.SASL.mechanism() == "" {
			missing = append(missing, "SASL ("+h.SASLMechanism+")")
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w (the broker closed the connection: does it require %s?)", err, strings.Join(missing, " or "))
		}
	}
	return err
}
