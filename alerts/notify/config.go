package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Receiver types of ReceiverConfig.Type.
const (
	TypeWebhook = "webhook"
	TypeSlack   = "slack"
	TypeKafka   = "kafka"
	TypeLog     = "log"
)

// MaxTimeout bounds ReceiverConfig.Timeout.
const MaxTimeout = 5 * time.Minute

// maxNameLen bounds a receiver's name (it is a metric label).
const maxNameLen = 64

// ReceiverConfig is one receiver of the rules file, decoded from YAML
// (gopkg.in/yaml.v3; timeout is a Go duration such as "15s").
type ReceiverConfig struct {
	// Name identifies the receiver in rules (notify:) and in metrics: 1 to
	// 64 characters of A-Z a-z 0-9 _ - . and unique in the file.
	Name string `yaml:"name"`
	// Type is webhook, slack, kafka or log.
	Type string `yaml:"type"`
	// URL is the webhook or Slack URL (http or https). Exactly one of URL
	// and URLFile for webhook and slack.
	URL string `yaml:"url"`
	// URLFile is a file holding the URL (Slack URLs are secrets); leading
	// and trailing white space is ignored.
	URLFile string `yaml:"url_file"`
	// Secrets are the webhook's signing secrets, whsec_<base64>: one, or
	// two during a rotation (every delivery is signed with both). A webhook
	// needs exactly one of Secrets and SecretsFile.
	Secrets []string `yaml:"secrets"`
	// SecretsFile is a file holding the secrets, one per line; blank lines
	// and lines starting with # are ignored.
	SecretsFile string `yaml:"secrets_file"`
	// Headers are extra HTTP headers for a webhook (an Authorization header
	// for a gateway, say). They cannot replace Content-Type, Content-Length,
	// Host, User-Agent or the webhook-* headers.
	Headers map[string]string `yaml:"headers"`
	// Topic is the Kafka receiver's topic. Default DefaultTopic
	// (costpipe.alerts).
	Topic string `yaml:"topic"`
	// Timeout bounds one delivery attempt of a webhook or Slack receiver, at
	// most MaxTimeout. Default 0: the dispatcher's attempt timeout (10 s)
	// alone.
	Timeout time.Duration `yaml:"timeout"`
}

// FieldError is what is wrong with one field of a receiver's
// configuration: "receiver NAME: FIELD: message". Field is the YAML name,
// with an index for an element of a list ("secrets[1]"), so a rules
// file's parser can point at it.
type FieldError struct {
	Receiver, Field, Msg string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("receiver %q: %s: %s", e.Receiver, e.Field, e.Msg)
}

// Validate checks the configuration without reading files or the network,
// and says which field is wrong and why (a *FieldError, but for a missing
// or invalid name). Errors never quote a secret or a Slack URL. ReadFiles
// checks what url_file and secrets_file hold.
func (c ReceiverConfig) Validate() error {
	if err := validateName(c.Name); err != nil {
		return err
	}
	fail := func(field, format string, args ...any) error {
		return &FieldError{Receiver: c.Name, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		return fail("timeout", "%s is out of range: want 0 (the dispatcher's) to %s", c.Timeout, MaxTimeout)
	}
	switch c.Type {
	case TypeWebhook, TypeSlack:
		if err := c.validateURL(fail); err != nil {
			return err
		}
	case TypeKafka, TypeLog:
		for _, f := range []struct{ name, v string }{{"url", c.URL}, {"url_file", c.URLFile}} {
			if f.v != "" {
				return fail(f.name, "not used by a %s receiver", c.Type)
			}
		}
	case "":
		return fail("type", "missing: want webhook, slack, kafka or log")
	default:
		return fail("type", "unknown type %q: want webhook, slack, kafka or log", c.Type)
	}
	if c.Type == TypeWebhook {
		switch {
		case len(c.Secrets) > 0 && c.SecretsFile != "":
			return fail("secrets", "give secrets or secrets_file, not both")
		case len(c.Secrets) == 0 && c.SecretsFile == "":
			return fail("secrets", "a webhook is always signed: give secrets (whsec_<base64>) or secrets_file")
		case len(c.Secrets) > MaxSecrets:
			return fail("secrets", "%d secrets, at most %d (the current and, while rotating, the previous one)", len(c.Secrets), MaxSecrets)
		}
		for i, s := range c.Secrets {
			if _, err := ParseSecret(s); err != nil {
				return fail(fmt.Sprintf("secrets[%d]", i), "%v", err)
			}
		}
		for k, v := range c.Headers {
			if err := validateHeader(k, v); err != nil {
				return fail("headers", "%v", err)
			}
		}
	} else {
		if len(c.Secrets) > 0 || c.SecretsFile != "" {
			return fail("secrets", "only a webhook receiver is signed")
		}
		if len(c.Headers) > 0 {
			return fail("headers", "only a webhook receiver sends extra headers")
		}
	}
	if c.Type == TypeKafka {
		if c.Topic != "" {
			if err := validateTopic(c.Topic); err != nil {
				return fail("topic", "%v", err)
			}
		}
		if c.Timeout != 0 {
			return fail("timeout", "not used by a kafka receiver (the dispatcher's attempt timeout bounds a produce)")
		}
	} else if c.Topic != "" {
		return fail("topic", "only a kafka receiver has a topic")
	}
	return nil
}

func validateName(name string) error {
	if name == "" {
		return errors.New("receiver without a name: name is required")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("receiver %.20q…: name: longer than %d characters", name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("receiver %q: name: %q at byte %d is not allowed (A-Z a-z 0-9 _ - .)", name, c, i)
		}
	}
	return nil
}

// validateURL checks url and url_file of a webhook or Slack receiver.
func (c ReceiverConfig) validateURL(fail func(field, format string, args ...any) error) error {
	switch {
	case c.URL != "" && c.URLFile != "":
		return fail("url", "give url or url_file, not both")
	case c.URL == "" && c.URLFile == "":
		return fail("url", "missing: a %s receiver needs url or url_file", c.Type)
	case c.URL != "":
		if err := checkURL(c.URL); err != nil {
			return fail("url", "%v", err)
		}
	}
	return nil
}

// checkURL accepts an absolute http or https URL with a host. Its errors
// show the scheme and host at most: the path of a Slack URL is a secret.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("cannot parse the URL (value not shown: it may hold a secret)")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %.10q: want http or https", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("the URL has no host")
	}
	if u.User != nil {
		return fmt.Errorf("the URL for host %q has user information: use headers (Authorization) instead", u.Hostname())
	}
	if u.Fragment != "" {
		return fmt.Errorf("the URL for host %q has a fragment (#…), which is never sent", u.Hostname())
	}
	return nil
}

// reservedHeaders are set by the webhook receiver itself.
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true, "User-Agent": true,
	"Transfer-Encoding": true, "Connection": true,
	http.CanonicalHeaderKey(HeaderID): true, http.CanonicalHeaderKey(HeaderTimestamp): true,
	http.CanonicalHeaderKey(HeaderSignature): true,
}

func validateHeader(k, v string) error {
	if k == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(k); i++ {
		if !isTokenChar(k[i]) {
			return fmt.Errorf("header name %q: %q at byte %d is not allowed in an HTTP header name", k, k[i], i)
		}
	}
	if reservedHeaders[http.CanonicalHeaderKey(k)] {
		return fmt.Errorf("header %q is set by costpipe and cannot be configured", k)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("header %q: value has control character %q at byte %d", k, c, i)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP header name (RFC 9110
// token).
func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validateTopic applies Kafka's topic name rules.
func validateTopic(t string) error {
	if t == "." || t == ".." {
		return fmt.Errorf("%q is reserved", t)
	}
	if len(t) > 249 {
		return fmt.Errorf("%.20q… is longer than 249 characters", t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%q: %q at byte %d is not allowed in a topic name (A-Z a-z 0-9 _ - .)", t, c, i)
		}
	}
	return nil
}

// Deps are what receivers share with the rest of the process.
type Deps struct {
	// HTTP sends webhook and Slack deliveries. Default: a new http.Client
	// (no overall timeout: each attempt has its own). Redirects are never
	// followed.
	HTTP *http.Client
	// Kafka produces the kafka receivers' records; required only when one
	// is configured. Its owner closes it after the Dispatcher.
	Kafka *kgo.Client
	// Logger is where log receivers write. Default slog.Default().
	Logger *slog.Logger
	// Clock gives webhook-timestamp and the time Retry-After dates are
	// measured from. Default time.Now.
	Clock func() time.Time
}

// Build validates every configuration, reads url_file and secrets_file
// (ReadFiles), and returns the receivers in order. Names must be unique.
func Build(cfgs []ReceiverConfig, deps Deps) ([]Receiver, error) {
	seen := make(map[string]bool, len(cfgs))
	out := make([]Receiver, 0, len(cfgs))
	for i, c := range cfgs {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("receivers[%d]: %w", i, err)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("receivers[%d]: receiver %q: name: defined twice", i, c.Name)
		}
		seen[c.Name] = true
		r, err := build(c, deps)
		if err != nil {
			return nil, fmt.Errorf("receivers[%d]: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadFiles returns c, valid (Validate), with the URL of its url_file and
// the secrets of its secrets_file in place of the files, read now. Its
// errors are *FieldErrors of the field naming the file: one that cannot be
// read (missing, a directory), is empty, or holds a URL or secret that
// url or secrets would refuse. They never quote a secret or a URL.
func (c ReceiverConfig) ReadFiles() (ReceiverConfig, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	fail := func(field, format string, args ...any) (ReceiverConfig, error) {
		return c, &FieldError{Receiver: c.Name, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if c.URLFile != "" {
		raw, err := os.ReadFile(c.URLFile)
		if err != nil {
			return fail("url_file", "cannot read: %v", err)
		}
		u := strings.TrimSpace(string(raw))
		if u == "" {
			return fail("url_file", "%q is empty", c.URLFile)
		}
		if err := checkURL(u); err != nil {
			return fail("url_file", "the URL in %q: %v", c.URLFile, err)
		}
		c.URL, c.URLFile = u, ""
	}
	if c.SecretsFile != "" {
		secrets, lines, err := readSecrets(c.SecretsFile)
		if err != nil {
			return fail("secrets_file", "%v", err)
		}
		if len(secrets) > MaxSecrets {
			return fail("secrets_file", "%q holds %d secrets, at most %d (the current and, while rotating, the previous one)", c.SecretsFile, len(secrets), MaxSecrets)
		}
		for i, sec := range secrets {
			if _, err := ParseSecret(sec); err != nil {
				return fail("secrets_file", "%q, line %d: %v", c.SecretsFile, lines[i], err)
			}
		}
		c.Secrets, c.SecretsFile = secrets, ""
	}
	return c, nil
}

func build(c ReceiverConfig, deps Deps) (Receiver, error) {
	c, err := c.ReadFiles()
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case TypeWebhook:
		return NewWebhook(c, deps)
	case TypeSlack:
		return NewSlack(c, deps)
	case TypeKafka:
		return NewKafka(c, deps.Kafka)
	default:
		return NewLog(c.Name, deps.Logger), nil
	}
}

// readSecrets reads one secret per line, skipping blank and # lines, and
// returns the secrets with their line numbers.
func readSecrets(path string) (secrets []string, lines []int, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read: %w", err)
	}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		secrets, lines = append(secrets, line), append(lines, i+1)
	}
	if len(secrets) == 0 {
		return nil, nil, fmt.Errorf("%q holds no secret", path)
	}
	return secrets, lines, nil
}
