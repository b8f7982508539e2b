package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Standard Webhooks symmetric secret.
const SecretPrefix = "whsec_"

// Secret key lengths accepted by ParseSecret, in bytes after decoding
// (Standard Webhooks: at least 24 bytes, at most 512 bits).
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// MaxSecrets is how many secrets a webhook signs with: the current one and,
// during a rotation, the previous one.
const MaxSecrets = 2

// Secret is a Standard Webhooks signing key. Its String never shows the key.
type Secret struct{ key []byte }

// ParseSecret reads a secret written whsec_<base64> (standard alphabet,
// padding optional) whose key is 24 to 64 bytes. Errors never quote the
// secret.
func ParseSecret(s string) (Secret, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("cannot parse webhook secret: it must start with %q (Standard Webhooks form whsec_<base64>)", SecretPrefix)
	}
	if rest == "" {
		return Secret{}, errors.New("cannot parse webhook secret: nothing after " + SecretPrefix)
	}
	// The longest valid key is 64 bytes (88 base64 characters); refuse
	// longer input before decoding it.
	if len(rest) > base64.StdEncoding.EncodedLen(MaxSecretBytes) {
		return Secret{}, fmt.Errorf("cannot parse webhook secret: the key is longer than %d bytes", MaxSecretBytes)
	}
	enc := base64.StdEncoding
	if !strings.HasSuffix(rest, "=") && len(rest)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	key, err := enc.Strict().DecodeString(rest)
	if err != nil {
		return Secret{}, fmt.Errorf("cannot parse webhook secret: the part after %s is not standard base64: %w", SecretPrefix, err)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return Secret{}, fmt.Errorf("cannot parse webhook secret: the key is %d bytes, want %d to %d", len(key), MinSecretBytes, MaxSecretBytes)
	}
	return Secret{key: key}, nil
}

// String returns "whsec_<redacted>" so a Secret can be logged safely.
func (Secret) String() string { return SecretPrefix + "<redacted>" }

// GoString is String, for %#v.
func (s Secret) GoString() string { return s.String() }

// Signer signs webhook deliveries with one or two secrets. It is immutable
// and safe for concurrent use.
type Signer struct{ secrets []Secret }

// NewSigner parses 1 to MaxSecrets secrets (whsec_<base64>). With two, every
// delivery carries two signatures, so a receiver verifies with either the
// old or the new secret while it rotates.
func NewSigner(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, errors.New("cannot sign webhooks without a secret")
	}
	if len(secrets) > MaxSecrets {
		return nil, fmt.Errorf("cannot sign webhooks with %d secrets: at most %d (the current and the previous one)", len(secrets), MaxSecrets)
	}
	s := &Signer{}
	for i, raw := range secrets {
		sec, err := ParseSecret(raw)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		s.secrets = append(s.secrets, sec)
	}
	return s, nil
}

// Sign returns the webhook-signature header value for a delivery: one
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" per secret, separated by
// a space. timestamp is the webhook-timestamp header (unix seconds).
func (s *Signer) Sign(id string, timestamp time.Time, body []byte) string {
	ts := strconv.FormatInt(timestamp.Unix(), 10)
	sigs := make([]string, 0, len(s.secrets))
	for _, sec := range s.secrets {
		mac := hmac.New(sha256.New, sec.key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}

// maxIDLen bounds Notification.ID on the wire.
const maxIDLen = 256

// ValidateID reports whether id can be a Notification.ID (a webhook-id): 1 to 256 printable ASCII
// characters without '.' (the signed content is id "." timestamp "." body)
// or spaces.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("notification has no ID (the idempotency key)")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("notification ID is %d bytes, at most %d", len(id), maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || c == '.' {
			return fmt.Errorf("notification ID %q has %q at byte %d: only printable ASCII without '.' or spaces", id, c, i)
		}
	}
	return nil
}
