package notify

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test vector of the Standard Webhooks reference libraries
// (libraries/go/webhook_test.go, TestWebhookSign).
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignerPublishedVector(t *testing.T) {
	s, err := NewSigner(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sign(vectorID, time.Unix(vectorTS, 0), []byte(vectorBody)); got != vectorSig {
		t.Errorf("Sign = %q, want %q", got, vectorSig)
	}
}

// TestVerifierPublishedVector checks the test's independent verifier on
// the published vector, so a verifier bug cannot hide a signer bug.
func TestVerifierPublishedVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", vectorID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTS))
	h.Set("webhook-signature", vectorSig)
	now := time.Unix(vectorTS+60, 0)
	if err := verifyStandardWebhook(vectorSecret, h, []byte(vectorBody), now); err != nil {
		t.Fatalf("verifier rejects the published vector: %v", err)
	}
	if err := verifyStandardWebhook(vectorSecret, h, []byte(vectorBody+" "), now); err == nil {
		t.Fatal("verifier accepts a changed body")
	}
	if err := verifyStandardWebhook(vectorSecret, h, []byte(vectorBody), now.Add(10*time.Minute)); err == nil {
		t.Fatal("verifier accepts a stale timestamp")
	}
}

func TestSignerRotationSignsWithBoth(t *testing.T) {
	s, err := NewSigner(testSecret1, testSecret2)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1764320400, 0)
	body := []byte(`{"type":"alert.firing"}`)
	sig := s.Sign("id-1", ts, body)
	parts := strings.Split(sig, " ")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "v1,") || !strings.HasPrefix(parts[1], "v1,") || parts[0] == parts[1] {
		t.Fatalf("signature header %q, want two different v1 signatures", sig)
	}
	h := http.Header{}
	h.Set("webhook-id", "id-1")
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	for _, sec := range []string{testSecret1, testSecret2} {
		if err := verifyStandardWebhook(sec, h, body, ts); err != nil {
			t.Errorf("secret %s…: %v", sec[:12], err)
		}
	}
	if err := verifyStandardWebhook(testSecret3, h, body, ts); err == nil {
		t.Error("an unrelated secret verifies")
	}
}

func TestParseSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", n))) }
	raw := func(n int) string { return base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("k", n))) }
	for _, tc := range []struct {
		name, in, wantErr string
		wantLen           int
	}{
		{"24 bytes", "whsec_" + b64(24), "", 24},
		{"64 bytes", "whsec_" + b64(64), "", 64},
		{"padded 25", "whsec_" + b64(25), "", 25},
		{"unpadded 25", "whsec_" + raw(25), "", 25},
		{"no prefix", b64(32), `must start with "whsec_"`, 0},
		{"other prefix", "whsk_" + b64(32), `must start with "whsec_"`, 0},
		{"empty key", "whsec_", "nothing after", 0},
		{"too short", "whsec_" + b64(16), "16 bytes, want 24 to 64", 0},
		{"too long", "whsec_" + b64(65), "65 bytes, want 24 to 64", 0},
		{"far too long", "whsec_" + b64(100), "longer than 64 bytes", 0},
		{"not base64", "whsec_" + strings.Repeat("!", 32), "not standard base64", 0},
		{"url alphabet", "whsec_" + strings.Repeat("-_", 16), "not standard base64", 0},
		{"space inside", "whsec_" + b64(24)[:8] + " " + b64(24)[8:], "not standard base64", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSecret(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if rest := strings.TrimPrefix(tc.in, "whsec_"); len(rest) > 8 && strings.Contains(err.Error(), rest) {
					t.Errorf("error quotes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.key) != tc.wantLen {
				t.Errorf("key is %d bytes, want %d", len(s.key), tc.wantLen)
			}
			if strings.Contains(s.String(), strings.TrimPrefix(tc.in, "whsec_")) {
				t.Errorf("String shows the key: %s", s)
			}
		})
	}
}

func TestNewSignerCount(t *testing.T) {
	if _, err := NewSigner(); err == nil {
		t.Error("no secret accepted")
	}
	if _, err := NewSigner(testSecret1, testSecret2, testSecret3); err == nil || !strings.Contains(err.Error(), "at most 2") {
		t.Errorf("three secrets: err = %v", err)
	}
	if _, err := NewSigner(testSecret1, "whsec_x"); err == nil || !strings.Contains(err.Error(), "secret 2") {
		t.Errorf("bad second secret: err = %v", err)
	}
}

func TestValidateID(t *testing.T) {
	for id, ok := range map[string]bool{
		"9f2c1e0a":                      true,
		"budget:acme:2025-11:80:firing": true,
		"":                              false,
		"a.b":                           false,
		"a b":                           false,
		"a\nb":                          false,
		"é":                             false,
		strings.Repeat("x", 256):        true,
		strings.Repeat("x", 257):        false,
	} {
		if err := ValidateID(id); (err == nil) != ok {
			t.Errorf("ValidateID(%.20q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{testSecret1, testSecret2, "whsec_", "whsec_====", "whsec_" + strings.Repeat("A", 88),
		"whsec_" + strings.Repeat("A", 90), "whsec_AAAA\n", "whsec_" + base64.RawStdEncoding.EncodeToString(make([]byte, 25))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSecret(in)
		if err != nil {
			if rest := strings.TrimPrefix(in, "whsec_"); len(rest) >= 16 && strings.Contains(err.Error(), rest) {
				t.Fatalf("error quotes the secret: %v", err)
			}
			return
		}
		if n := len(s.key); n < MinSecretBytes || n > MaxSecretBytes {
			t.Fatalf("accepted a %d-byte key", n)
		}
		// The canonical form of the key parses to the same key.
		again, err := ParseSecret(SecretPrefix + base64.StdEncoding.EncodeToString(s.key))
		if err != nil || string(again.key) != string(s.key) {
			t.Fatalf("canonical form of an accepted secret: %v", err)
		}
		// An independent decoding agrees on the key.
		rest := strings.TrimPrefix(in, SecretPrefix)
		dec, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(rest, "="))
		if err != nil || string(dec) != string(s.key) {
			t.Fatalf("key differs from the base64 decoding of %q (%v)", rest, err)
		}
	})
}
