package notify

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"
)

func TestValidate(t *testing.T) {
	hook := func(edit func(*ReceiverConfig)) ReceiverConfig {
		c := ReceiverConfig{Name: "ops-hook", Type: TypeWebhook, URL: "https://hooks.example.com/costpipe",
			Secrets: []string{testSecret1}}
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     ReceiverConfig
		wantErr string // "" valid
	}{
		{"webhook", hook(func(*ReceiverConfig) {}), ""},
		{"webhook rotation", hook(func(c *ReceiverConfig) { c.Secrets = []string{testSecret1, testSecret2} }), ""},
		{"webhook secrets file", hook(func(c *ReceiverConfig) { c.Secrets, c.SecretsFile = nil, "/run/secrets/hook" }), ""},
		{"webhook url file", hook(func(c *ReceiverConfig) { c.URL, c.URLFile = "", "/run/secrets/url" }), ""},
		{"webhook headers", hook(func(c *ReceiverConfig) { c.Headers = map[string]string{"Authorization": "Bearer x"} }), ""},
		{"slack", ReceiverConfig{Name: "team", Type: TypeSlack, URLFile: "/run/secrets/slack", Timeout: 15 * time.Second}, ""},
		{"kafka", ReceiverConfig{Name: "bus", Type: TypeKafka}, ""},
		{"kafka topic", ReceiverConfig{Name: "bus", Type: TypeKafka, Topic: "team.alerts"}, ""},
		{"log", ReceiverConfig{Name: "log", Type: TypeLog}, ""},

		{"no name", ReceiverConfig{Type: TypeLog}, "name is required"},
		{"bad name", ReceiverConfig{Name: "ops hook", Type: TypeLog}, `receiver "ops hook": name: ' '`},
		{"long name", ReceiverConfig{Name: strings.Repeat("n", 65), Type: TypeLog}, "longer than 64"},
		{"no type", ReceiverConfig{Name: "x"}, `receiver "x": type: missing`},
		{"bad type", ReceiverConfig{Name: "x", Type: "email"}, `type: unknown type "email"`},
		{"no url", hook(func(c *ReceiverConfig) { c.URL = "" }), "url: missing"},
		{"both urls", hook(func(c *ReceiverConfig) { c.URLFile = "/f" }), "url: give url or url_file, not both"},
		{"ftp", hook(func(c *ReceiverConfig) { c.URL = "ftp://example.com/x" }), `url: scheme "ftp"`},
		{"relative", hook(func(c *ReceiverConfig) { c.URL = "/hooks" }), "url: scheme"},
		{"no host", hook(func(c *ReceiverConfig) { c.URL = "https:///x" }), "url: the URL has no host"},
		{"userinfo", hook(func(c *ReceiverConfig) { c.URL = "https://u:p@example.com/" }), "url: the URL for host \"example.com\" has user information"},
		{"no secret", hook(func(c *ReceiverConfig) { c.Secrets = nil }), "secrets: a webhook is always signed"},
		{"three secrets", hook(func(c *ReceiverConfig) { c.Secrets = []string{testSecret1, testSecret2, testSecret3} }), "secrets: 3 secrets, at most 2"},
		{"both secrets", hook(func(c *ReceiverConfig) { c.SecretsFile = "/f" }), "secrets: give secrets or secrets_file, not both"},
		{"bad secret", hook(func(c *ReceiverConfig) { c.Secrets = []string{testSecret1, "whsec_c2hvcnQ="} }), "secrets[1]: cannot parse webhook secret: the key is 5 bytes"},
		{"reserved header", hook(func(c *ReceiverConfig) { c.Headers = map[string]string{"Webhook-Signature": "x"} }), `headers: header "Webhook-Signature" is set by costpipe`},
		{"content-type header", hook(func(c *ReceiverConfig) { c.Headers = map[string]string{"content-type": "text/plain"} }), "is set by costpipe"},
		{"bad header name", hook(func(c *ReceiverConfig) { c.Headers = map[string]string{"X Y": "1"} }), `headers: header name "X Y"`},
		{"header injection", hook(func(c *ReceiverConfig) { c.Headers = map[string]string{"X-A": "1\r\nX-B: 2"} }), `headers: header "X-A": value has control character`},
		{"webhook topic", hook(func(c *ReceiverConfig) { c.Topic = "t" }), "topic: only a kafka receiver"},
		{"negative timeout", hook(func(c *ReceiverConfig) { c.Timeout = -time.Second }), "timeout: -1s is out of range"},
		{"huge timeout", hook(func(c *ReceiverConfig) { c.Timeout = time.Hour }), "timeout: 1h0m0s is out of range"},
		{"slack secrets", ReceiverConfig{Name: "s", Type: TypeSlack, URL: "https://hooks.slack.com/x", Secrets: []string{testSecret1}}, "secrets: only a webhook"},
		{"slack headers", ReceiverConfig{Name: "s", Type: TypeSlack, URL: "https://hooks.slack.com/x", Headers: map[string]string{"A": "b"}}, "headers: only a webhook"},
		{"kafka url", ReceiverConfig{Name: "k", Type: TypeKafka, URL: "https://x"}, "url: not used by a kafka receiver"},
		{"kafka bad topic", ReceiverConfig{Name: "k", Type: TypeKafka, Topic: "a/b"}, `topic: "a/b": '/'`},
		{"kafka dot topic", ReceiverConfig{Name: "k", Type: TypeKafka, Topic: ".."}, "topic: \"..\" is reserved"},
		{"kafka timeout", ReceiverConfig{Name: "k", Type: TypeKafka, Timeout: time.Second}, "timeout: not used by a kafka receiver"},
		{"log url file", ReceiverConfig{Name: "l", Type: TypeLog, URLFile: "/f"}, "url_file: not used by a log receiver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateNeverQuotesSecrets(t *testing.T) {
	const token = "XoXoSecretTokenPath"
	for _, c := range []ReceiverConfig{
		{Name: "s", Type: TypeSlack, URL: "ftp://hooks.slack.com/services/" + token},
		{Name: "s", Type: TypeSlack, URL: "https://hooks.slack.com/services/" + token + "#frag"},
		{Name: "s", Type: TypeSlack, URL: "https://hooks.slack.com/services/%zz" + token},
		{Name: "h", Type: TypeWebhook, URL: "https://x.example", Secrets: []string{"whsec_" + token + "!!"}},
		{Name: "h", Type: TypeWebhook, URL: "https://x.example", Secrets: []string{token}},
	} {
		err := c.Validate()
		if err == nil {
			t.Errorf("%+v accepted", c)
			continue
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("error quotes a secret: %v", err)
		}
	}
}

func TestBuildFromYAML(t *testing.T) {
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "slack-url")
	secretsFile := filepath.Join(dir, "hook-secrets")
	if err := os.WriteFile(urlFile, []byte("https://hooks.slack.com/services/T0/B0/X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretsFile, []byte("# new, then old\n"+testSecret2+"\n\n"+testSecret1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `
receivers:
  - name: ops-hook
    type: webhook
    url: https://hooks.example.com/costpipe
    secrets_file: ` + secretsFile + `
    headers: {Authorization: "Bearer t"}
    timeout: 15s
  - name: team
    type: slack
    url_file: ` + urlFile + `
  - name: bus
    type: kafka
  - name: audit
    type: log
`
	var file struct {
		Receivers []ReceiverConfig `yaml:"receivers"`
	}
	if err := yaml.Unmarshal([]byte(doc), &file); err != nil {
		t.Fatal(err)
	}
	if file.Receivers[0].Timeout != 15*time.Second {
		t.Errorf("timeout = %v", file.Receivers[0].Timeout)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rs, err := Build(file.Receivers, Deps{Kafka: cl})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Name())
	}
	if strings.Join(names, ",") != "ops-hook,team,bus,audit" {
		t.Errorf("names %v", names)
	}
	w := rs[0].(*Webhook)
	if len(w.signer.secrets) != 2 || w.timeout != 15*time.Second || w.header.Get("Authorization") != "Bearer t" {
		t.Errorf("webhook %+v", w)
	}
	if s := rs[1].(*Slack); s.url != "https://hooks.slack.com/services/T0/B0/X" {
		t.Errorf("slack url %q", s.url)
	}
	if k := rs[2].(*Kafka); k.Topic() != DefaultTopic {
		t.Errorf("topic %q", k.Topic())
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n# nothing\n"), 0o600)
	blank := filepath.Join(dir, "blank")
	_ = os.WriteFile(blank, []byte(" \n"), 0o600)
	badURL := filepath.Join(dir, "bad-url")
	_ = os.WriteFile(badURL, []byte("hooks.slack.com/services/SECRETPATH"), 0o600)
	badSecret := filepath.Join(dir, "bad-secret")
	_ = os.WriteFile(badSecret, []byte("whsec_dG9vc2hvcnQ=\n"), 0o600)
	log := ReceiverConfig{Name: "l", Type: TypeLog}
	for _, tc := range []struct {
		name    string
		cfgs    []ReceiverConfig
		wantErr string
	}{
		{"invalid", []ReceiverConfig{log, {Name: "x"}}, "receivers[1]: receiver \"x\": type: missing"},
		{"duplicate", []ReceiverConfig{log, log}, `receivers[1]: receiver "l": name: defined twice`},
		{"kafka without client", []ReceiverConfig{{Name: "k", Type: TypeKafka}}, "needs a Kafka client"},
		{"missing url file", []ReceiverConfig{{Name: "s", Type: TypeSlack, URLFile: filepath.Join(dir, "nope")}}, "url_file: cannot read"},
		{"empty url file", []ReceiverConfig{{Name: "s", Type: TypeSlack, URLFile: blank}}, "is empty"},
		{"bad url in file", []ReceiverConfig{{Name: "s", Type: TypeSlack, URLFile: badURL}}, "url_file: the URL in"},
		{"no secret in file", []ReceiverConfig{{Name: "h", Type: TypeWebhook, URL: "https://x.example", SecretsFile: empty}}, "holds no secret"},
		{"bad secret in file", []ReceiverConfig{{Name: "h", Type: TypeWebhook, URL: "https://x.example", SecretsFile: badSecret}}, `secrets_file: "` + badSecret + `", line 1: cannot parse webhook secret`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.cfgs, Deps{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Build = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "SECRETPATH") {
				t.Errorf("error quotes the URL: %v", err)
			}
		})
	}
}

// FuzzReceiverConfigValidate: Validate never panics, never quotes a
// secret, and whatever it accepts (inline, without files) Build builds.
func FuzzReceiverConfigValidate(f *testing.F) {
	f.Add("hook", "webhook", "https://hooks.example.com/x", testSecret1, "", "Authorization", "Bearer x", "", int64(0))
	f.Add("team", "slack", "https://hooks.slack.com/services/T/B/X", "", "", "", "", "", int64(15e9))
	f.Add("bus", "kafka", "", "", "", "", "", "costpipe.alerts", int64(0))
	f.Add("log", "log", "", "", "", "", "", "", int64(-1))
	f.Add("hook", "webhook", "http://[::1]:8080/a?b=c", testSecret1, testSecret2, "X-Tenant", "acme", "", int64(1))
	f.Add("a b", "webhook", "https://u@h/", "whsec_", "whsec_!!", "Host", "\r\n", "..", int64(1<<62))
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		f.Fatal(err)
	}
	defer cl.Close()
	f.Fuzz(func(t *testing.T, name, typ, url, secret1, secret2, hk, hv, topic string, timeout int64) {
		c := ReceiverConfig{Name: name, Type: typ, URL: url, Topic: topic, Timeout: time.Duration(timeout)}
		for _, s := range []string{secret1, secret2} {
			if s != "" {
				c.Secrets = append(c.Secrets, s)
			}
		}
		if hk != "" {
			c.Headers = map[string]string{hk: hv}
		}
		err := c.Validate()
		if err != nil {
			for _, s := range c.Secrets {
				if rest := strings.TrimPrefix(s, SecretPrefix); len(rest) >= 16 && strings.Contains(err.Error(), rest) {
					t.Fatalf("error quotes a secret: %v", err)
				}
			}
			return
		}
		rs, err := Build([]ReceiverConfig{c}, Deps{Kafka: cl})
		if err != nil {
			t.Fatalf("Validate accepted %+v but Build failed: %v", c, err)
		}
		if len(rs) != 1 || rs[0].Name() != name {
			t.Fatalf("Build = %v", rs)
		}
	})
}

// ReadFiles puts what url_file and secrets_file hold in place of the files,
// and its errors are FieldErrors of the file's field, for a rules file's
// position: a directory, a missing file, a secret without whsec_.
func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	_ = os.WriteFile(secrets, []byte("# rotated 2026-03\n"+testSecret1+"\n\n"+testSecret2+"\n"), 0o600)
	noPrefix := filepath.Join(dir, "no-prefix")
	_ = os.WriteFile(noPrefix, []byte("# the current one\n"+strings.TrimPrefix(testSecret1, SecretPrefix)+"\n"), 0o600)
	three := filepath.Join(dir, "three")
	_ = os.WriteFile(three, []byte(testSecret1+"\n"+testSecret2+"\n"+testSecret1+"\n"), 0o600)
	urlFile := filepath.Join(dir, "url")
	_ = os.WriteFile(urlFile, []byte(" https://hooks.slack.com/services/T0/B0/SECRETPATH\n"), 0o600)

	got, err := ReceiverConfig{Name: "h", Type: TypeWebhook, URLFile: urlFile, SecretsFile: secrets}.ReadFiles()
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != "https://hooks.slack.com/services/T0/B0/SECRETPATH" || got.URLFile != "" || got.SecretsFile != "" ||
		len(got.Secrets) != 2 || got.Secrets[1] != testSecret2 {
		t.Errorf("ReadFiles = %+v", got)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("the result does not validate: %v", err)
	}
	for _, tc := range []struct {
		name  string
		c     ReceiverConfig
		field string
		want  string
	}{
		{"url_file a directory", ReceiverConfig{Name: "s", Type: TypeSlack, URLFile: dir}, "url_file", "is a directory"},
		{"url_file missing", ReceiverConfig{Name: "s", Type: TypeSlack, URLFile: filepath.Join(dir, "nope")}, "url_file", "no such file"},
		{"secrets_file missing", ReceiverConfig{Name: "h", Type: TypeWebhook, URL: "https://x.example", SecretsFile: filepath.Join(dir, "nope")}, "secrets_file", "no such file"},
		{"secret without whsec_", ReceiverConfig{Name: "h", Type: TypeWebhook, URL: "https://x.example", SecretsFile: noPrefix}, "secrets_file",
			`"` + noPrefix + `", line 2: cannot parse webhook secret: it must start with "whsec_"`},
		{"three secrets", ReceiverConfig{Name: "h", Type: TypeWebhook, URL: "https://x.example", SecretsFile: three}, "secrets_file", "holds 3 secrets, at most 2"},
		{"invalid inline", ReceiverConfig{Name: "h", Type: TypeWebhook, URL: "ftp://x.example", SecretsFile: secrets}, "url", `scheme "ftp"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.ReadFiles()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || fe.Receiver != tc.c.Name || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadFiles = %v, want a FieldError of %s with %q", err, tc.field, tc.want)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(testSecret1, SecretPrefix)) {
				t.Errorf("error quotes a secret: %v", err)
			}
		})
	}
}
