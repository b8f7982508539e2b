package secure_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costpipe/costpipe/broker"
	"github.com/costpipe/costpipe/internal/kafkatest"
	"github.com/costpipe/costpipe/internal/nolisten"
	"github.com/costpipe/costpipe/internal/secure"
	"github.com/costpipe/costpipe/internal/testpki"
)

// secureBroker starts the embedded broker with TLS (a certificate of pki)
// and SASL/SCRAM-SHA-256 user "costpipe" / "s3cret", and a plain one.
func secureBroker(t *testing.T, pki testpki.PKI) *broker.Broker {
	return kafkatest.StartWithOptions(t, 2, func(o *broker.Options) {
		o.TLS = pki.ServerConfig(t)
		o.Users = []broker.User{
			{Mechanism: "SCRAM-SHA-256", Name: "costpipe", Password: "s3cret"},
			{Mechanism: "SCRAM-SHA-512", Name: "costpipe512", Password: "s3cret512"},
			{Mechanism: "PLAIN", Name: "plainuser", Password: "plainpass"},
		}
	})
}

// TestKafkaCheck connects to a TLS + SASL broker with good and bad
// settings; each bad one must say what is wrong.
func TestKafkaCheck(t *testing.T) {
	pki := testpki.New(t, "costpipe test CA")
	other := testpki.New(t, "another CA")
	b := secureBroker(t, pki)
	good := secure.Kafka{TLS: secure.TLS{CAFile: pki.CAFile}, SASL: secure.SASL{Mechanism: "scram-sha-256", Username: "costpipe", Password: "s3cret"}}

	for _, tc := range []struct {
		name    string
		addr    string
		edit    func(*secure.Kafka)
		reason  string // "" = success
		message string // in the error
	}{
		{name: "good SCRAM-SHA-256", addr: b.Addr(), edit: func(*secure.Kafka) {}},
		{name: "good SCRAM-SHA-512", addr: b.Addr(), edit: func(k *secure.Kafka) {
			k.SASL = secure.SASL{Mechanism: "SCRAM-SHA-512", Username: "costpipe512", Password: "s3cret512"}
		}},
		{name: "good PLAIN", addr: b.Addr(), edit: func(k *secure.Kafka) {
			k.SASL = secure.SASL{Mechanism: "PLAIN", Username: "plainuser", Password: "plainpass"}
		}},
		{name: "wrong password", addr: b.Addr(), edit: func(k *secure.Kafka) { k.SASL.Password = "wrong" },
			reason: "authentication failed", message: `SASL authentication as "costpipe" with SCRAM-SHA-256 failed: wrong username or password`},
		{name: "unknown user", addr: b.Addr(), edit: func(k *secure.Kafka) { k.SASL.Username = "nobody" },
			reason: "authentication failed", message: "wrong username or password"},
		{name: "wrong PLAIN password", addr: b.Addr(), edit: func(k *secure.Kafka) {
			k.SASL = secure.SASL{Mechanism: "PLAIN", Username: "plainuser", Password: "nope"}
		}, reason: "authentication failed", message: "wrong username or password"},
		{name: "untrusted certificate", addr: b.Addr(), edit: func(k *secure.Kafka) { k.TLS.CAFile = other.CAFile },
			reason: "untrusted certificate", message: "the server's TLS certificate is not trusted (signed by an unknown authority): give the CA that signed it with --kafka-ca-file"},
		{name: "system roots", addr: b.Addr(), edit: func(k *secure.Kafka) { k.TLS.CAFile = ""; k.TLS.Enabled = true },
			reason: "untrusted certificate", message: "not trusted"},
		{name: "wrong server name", addr: b.Addr(), edit: func(k *secure.Kafka) { k.TLS.ServerName = "kafka.example.com" },
			reason: "certificate name mismatch", message: "--kafka-server-name"},
		{name: "insecure skip verify", addr: b.Addr(), edit: func(k *secure.Kafka) { k.TLS.CAFile = ""; k.TLS.InsecureSkipVerify = true }},
		{name: "TLS to a plaintext server", addr: notTLS(t), edit: func(k *secure.Kafka) { k.SASL = secure.SASL{} },
			reason: "no TLS at this address", message: "does not speak TLS at this address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := good
			tc.edit(&k)
			err := k.Check(t.Context(), []string{tc.addr}, 10*time.Second)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				produceOne(t, tc.addr, k)
				return
			}
			var e *secure.Error
			if err == nil || !secure.Permanent(err) {
				t.Fatalf("Check = %v, want a permanent error %q", err, tc.reason)
			}
			if !asError(err, &e) || e.Reason != tc.reason || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("Check = %v (reason %q), want reason %q and %q in the message", err, e.Reason, tc.reason, tc.message)
			}
		})
	}

	// A Kafka listener with less than the settings ask for: it never
	// answers a TLS hello and closes on a SASL handshake, which looked
	// like a broker not up yet (the command waited, then timed out).
	plain := kafkatest.Start(t, 1)
	for _, tc := range []struct {
		name, reason, message string
		k                     secure.Kafka
	}{
		{"TLS to a plaintext Kafka broker", "no TLS at this address", "speak plaintext Kafka, not TLS: use the port of their TLS listener, or drop --kafka-tls",
			secure.Kafka{TLS: secure.TLS{Enabled: true}}},
		{"TLS and SASL to a plaintext Kafka broker", "no TLS at this address", "drop --kafka-tls", good},
		{"SASL to a broker without SASL", "SASL not enabled", "answer without SASL and close the connection when asked for SCRAM-SHA-256: their listener does not enable SASL",
			secure.Kafka{SASL: good.SASL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.k.Check(t.Context(), []string{plain.Addr()}, 3*time.Second)
			var e *secure.Error
			if !asError(err, &e) || e.Reason != tc.reason || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("Check = %v, want a permanent error %q saying %q", err, tc.reason, tc.message)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		err := good.Check(t.Context(), []string{nolisten.Addr(t)}, time.Second)
		if err == nil || secure.Permanent(err) {
			t.Errorf("Check = %v, want an error left to the command's retries", err)
		}
	})

	t.Run("plaintext to the TLS broker", func(t *testing.T) {
		err := secure.Kafka{SASL: good.SASL}.Check(t.Context(), []string{b.Addr()}, 3*time.Second)
		if err == nil || secure.Permanent(err) || !strings.Contains(err.Error(), "does it require TLS (--kafka-tls)") {
			t.Errorf("Check = %v, want a hint that the broker may require TLS", err)
		}
	})
	t.Run("TLS without SASL", func(t *testing.T) {
		err := secure.Kafka{TLS: good.TLS}.Check(t.Context(), []string{b.Addr()}, 3*time.Second)
		if err == nil || !strings.Contains(err.Error(), "SASL") {
			t.Errorf("Check = %v, want an error naming SASL", err)
		}
	})
}

// notTLS listens on a free port and answers every connection with a
// line of text, as a plaintext server does to a TLS client hello.
func notTLS(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func asError(err error, e **secure.Error) bool {
	for err != nil {
		if x, ok := err.(*secure.Error); ok {
			*e = x
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// produceOne produces a record and consumes it back with the settings.
func produceOne(t *testing.T, addr string, k secure.Kafka) {
	t.Helper()
	opts, err := k.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(broker.EventsTopic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	want := "hello " + t.Name()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: broker.EventsTopic, Value: []byte(want)}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("record not consumed back: %v", err)
		}
		for _, r := range fs.Records() {
			if string(r.Value) == want {
				return
			}
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		k    secure.Kafka
		want string
	}{
		{secure.Kafka{SASL: secure.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, `unknown SASL mechanism "GSSAPI"`},
		{secure.Kafka{SASL: secure.SASL{Mechanism: "PLAIN", Password: "p"}}, "needs a username"},
		{secure.Kafka{SASL: secure.SASL{Mechanism: "PLAIN", Username: "u"}}, `needs a password (from a file or the environment) for user "u"`},
		{secure.Kafka{SASL: secure.SASL{Username: "u"}}, "without a SASL mechanism"},
		{secure.Kafka{TLS: secure.TLS{CertFile: "c.pem"}}, "needs both a certificate file and a key file"},
	} {
		if err := tc.k.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate = %v, want %q", tc.k, err, tc.want)
		}
	}
	if _, err := (secure.TLS{CAFile: "/nonexistent/ca.pem"}).Config(); err == nil || !strings.Contains(err.Error(), "/nonexistent/ca.pem") {
		t.Errorf("missing CA file: %v", err)
	}
	if c, err := (secure.TLS{}).Config(); c != nil || err != nil {
		t.Errorf("TLS off: Config = %v, %v; want nil, nil", c, err)
	}
}
