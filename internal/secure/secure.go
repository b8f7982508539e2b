// Package secure builds the TLS and SASL settings of costpipe's connections
// to Kafka and ClickHouse from files, and turns their failures into errors a
// person can act on: an untrusted certificate, a certificate for another
// name, a plaintext server behind a TLS setting, a wrong password.
//
// Only cmd/costpipe reads flags and the environment; it fills a TLS (and, for
// Kafka, a SASL) value, Validate checks it, and Config or Kafka.ClientOpts
// turn it into a *tls.Config or franz-go options. The values are plain data,
// safe to copy; the functions keep no state.
package secure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLS configures one side's TLS client. The zero value is TLS off.
type TLS struct {
	// Enabled turns TLS on. Any of CAFile, CertFile, KeyFile, ServerName
	// or InsecureSkipVerify turns it on too (a CA file is never meant for
	// a plaintext connection). Default false.
	Enabled bool
	// CAFile is a PEM bundle of the certificate authorities to trust
	// instead of the system's. Default "": the system roots.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate (with its chain)
	// and private key for servers that require mutual TLS; both or
	// neither. Default "": no client certificate.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry. Default
	// "": the host of the address dialed.
	ServerName string
	// InsecureSkipVerify accepts any server certificate. For tests and
	// emergencies only: the connection is encrypted but not authenticated.
	// Default false.
	InsecureSkipVerify bool
}

// On reports whether the settings ask for TLS.
func (t TLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// Validate reports the first setting that cannot work, without reading the
// files (Config does).
func (t TLS) Validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("a TLS client certificate needs both a certificate file and a key file, got certificate %q and key %q", t.CertFile, t.KeyFile)
	}
	return nil
}

// Config returns the client's *tls.Config, or nil when TLS is off. It
// reads the files and reports one that is missing or holds no usable PEM.
func (t TLS) Config() (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cannot use CA file %q: no PEM certificate in it", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load client certificate %q with key %q: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Error is a connection failure that retrying cannot fix: the server's
// certificate is not trusted or not for this name, one side speaks TLS and
// the other does not, or the credentials are refused. Its message says
// which and what to change; Unwrap gives the original error.
type Error struct {
	// Reason is a short, stable description: "untrusted certificate",
	// "certificate name mismatch", "no TLS at this address", "TLS
	// handshake refused", "authentication failed", …
	Reason string
	msg    string
	err    error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the original error.
func (e *Error) Unwrap() error { return e.err }

// Permanent reports whether err is (or wraps) an *Error: a failure of the
// connection's settings that retrying cannot fix.
func Permanent(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// hints names the settings an explanation refers to on one side.
type hints struct {
	what       string // "kafka", "clickhouse"
	caFile     string // the setting of TLS.CAFile
	serverName string // the setting of TLS.ServerName
	clientCert string // the settings of the client certificate
	noTLS      string // how to turn TLS off
}

// explainTLS classifies a TLS failure, or returns nil when err is none.
func explainTLS(err error, h hints) *Error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &unknown):
		return &Error{Reason: "untrusted certificate", err: err, msg: fmt.Sprintf(
			"%s: the server's TLS certificate is not trusted (signed by an unknown authority): give the CA that signed it with %s (%v)", h.what, h.caFile, err)}
	case errors.As(err, &hostname):
		return &Error{Reason: "certificate name mismatch", err: err, msg: fmt.Sprintf(
			"%s: the server's TLS certificate is not for the name dialed: connect by a name it carries or set %s (%v)", h.what, h.serverName, err)}
	case errors.As(err, &invalid):
		return &Error{Reason: "invalid certificate", err: err, msg: fmt.Sprintf(
			"%s: the server's TLS certificate is not valid (expired, not yet valid or not for server use) (%v)", h.what, err)}
	case errors.As(err, &verify):
		return &Error{Reason: "untrusted certificate", err: err, msg: fmt.Sprintf(
			"%s: the server's TLS certificate did not verify: check %s (%v)", h.what, h.caFile, err)}
	case errors.As(err, &record):
		return &Error{Reason: "no TLS at this address", err: err, msg: fmt.Sprintf(
			"%s: the server does not speak TLS at this address: use its TLS port, or %s (%v)", h.what, h.noTLS, err)}
	case errors.As(err, &alert):
		return &Error{Reason: "TLS handshake refused", err: err, msg: fmt.Sprintf(
			"%s: the server refused the TLS handshake; if it requires a client certificate, give one with %s (%v)", h.what, h.clientCert, err)}
	}
	return nil
}
