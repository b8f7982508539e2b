package alerts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/analytics"
)

const goodRules = `interval: 1m
tz: Europe/Berlin
group_wait: 10s
receivers:
  - name: ops
    type: log
rules:
  - name: acme-budget
    kind: budget
    scope: {tenant: acme}
    by: [tenant]
    period: month
    amount_usd: 1000
    thresholds: [50, 80, 100]
    labels: {team: platform}
    notify: [ops]
  - name: month-forecast
    kind: forecast
    amount_usd: 5000
    quantile: 0.9
  - name: fast-growth
    kind: growth
    by: [model]
    doubling_days: 14
    min_spend_usd: 50
  - name: spend-anomaly
    kind: anomaly
    by: [tenant]
    z: 4
    min_usd: 5
    min_pct: 100
  - name: slow-p99
    kind: latency
    by: [provider, model]
    percentile: 99
    threshold_ms: 8000
    window: 10m
    min_requests: 50
    for: 5m
  - name: latency-slo
    kind: latency
    by: [model]
    objective: "99% under 2000 ms"
  - name: provider-errors
    kind: error_rate
    by: [provider]
    threshold_pct: 5
    keep_firing_for: 10m
  - name: availability
    kind: error_rate
    objective: "99.5%"
    burn_rates: [{factor: 10, long: 2h, short: 10m}]
  - name: unpriced-models
    kind: unpriced
    by: [provider, model]
`

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig("r.yaml", []byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Interval != time.Minute || cfg.TZ != "Europe/Berlin" || cfg.GroupWait != 10*time.Second || cfg.RepeatInterval != DefaultRepeatInterval {
		t.Errorf("defaults: %+v", cfg)
	}
	if len(cfg.Rules) != 9 || len(cfg.Receivers) != 1 {
		t.Fatalf("%d rules, %d receivers", len(cfg.Rules), len(cfg.Receivers))
	}
	b := cfg.Rule("acme-budget")
	bs := b.Spec().(*BudgetSpec)
	if bs.AmountUSD != 1000 || len(bs.Thresholds) != 3 || bs.Period != analytics.PeriodMonth || b.Scope[analytics.DimTenant][0] != "acme" || b.Line != 8 {
		t.Errorf("budget: %+v %+v", b, bs)
	}
	if s := cfg.Rule("latency-slo").Spec().(*LatencySpec).SLO; s == nil || s.Objective != 0.99 || s.ThresholdMs != 2000 || len(s.BurnRates) != 2 {
		t.Errorf("latency slo: %+v", s)
	}
	if s := cfg.Rule("availability").Spec().(*ErrorRateSpec).SLO; s == nil || s.Objective != 0.995 || len(s.BurnRates) != 1 || s.BurnRates[0].Long != 2*time.Hour {
		t.Errorf("availability slo: %+v", s)
	}
	if a := cfg.Rule("spend-anomaly").Spec().(*AnomalySpec); a.Z != 4 || a.Window != time.Hour || a.ContributorsBy[0] != analytics.DimModel {
		t.Errorf("anomaly: %+v", a)
	}
}

func TestParseErrorsNameLineAndColumn(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, want string }{
		{"rules:\n  - name: x\n    kind: budgett\n", `r.yaml:3:11: unknown rule kind "budgett"`},
		{"rules:\n  - name: x\n    kind: budget\n    amount_usd: lots\n", `r.yaml:4:17: cannot parse amount_usd "lots"`},
		{"rules:\n  - name: x\n    kind: budget\n", `r.yaml:2:5: budget rule "x" needs amount_usd`},
		{"rules:\n  - name: x\n    kind: budget\n    amount_usd: 5\n    thresold: [1]\n", `r.yaml:5:5: unknown field "thresold"`},
		{"receivers:\n  - name: hook\n    type: webhook\n    url: https://example.com/h\n    header: {Authorization: x}\nrules:\n  - {name: x, kind: unpriced, notify: [hook]}\n", `r.yaml:5:5: unknown field "header" in receiver "hook"`},
		{"rules:\n  - name: x\n    kind: latency\n    objective: 99 percent\n", `r.yaml:4:16: cannot parse objective "99 percent"`},
		{"rules:\n  - name: x\n    kind: unpriced\n    by: [region]\n", `r.yaml:4:9: cannot group by "region"`},
		{"rules:\n  - name: x\n    kind: latency\n    objective: 99% under 2 s\n    percentile: 95\n", `r.yaml:5:17: percentile does not apply to an SLO rule (objective)`},
		{"rules:\n  - name: x\n    kind: error_rate\n    objective: 99%\n    window: 1h\n", `r.yaml:5:13: window does not apply to an SLO rule (objective)`},
		{"rules:\n  - name: x\n    kind: latency\n    threshold_ms: 900\n    burn_rates: []\n", `r.yaml:5:17: burn_rates need an objective such as "99% under 2000 ms"`},
		{"rules:\n  - name: x\n    kind: error_rate\n    threshold_pct: 5\n    burn_rates: []\n", `r.yaml:5:17: burn_rates need an objective such as "99.5%"`},
		{"rules:\n  - name: x\n    kind: unpriced\n    notify: [pager]\n", `r.yaml:2:5: rule "x" notifies "pager"`},
		{"rules:\n  - name: x\n    kind: unpriced\n  - name: x\n    kind: unpriced\n", `r.yaml:4:5: rule "x" is defined twice`},
		{"tz: Mars/Olympus\nrules: []\n", `r.yaml:1:5: unknown time zone "Mars/Olympus"`},
		// Syntax errors at the line that holds them (yaml.v3 names the line
		// where the enclosing block starts).
		{"rules:\n  - name: x\n\tkind: budget\n", `r.yaml:3:1: found a tab character that violates indentation`},
		{"interval: 30s\nrules:\n  - name: x\n    kind: unpriced\n   by: [tenant]\n", `r.yaml:5:1: did not find expected '-' indicator`},
		{"interval: 30s\nrules:\n  - name: x\n    kind: unpriced\n  - {name: y, kind: unpriced\n", `r.yaml:5:1: did not find expected ',' or '}'`},
		{"rules:\n  - {name: x,\n     kind: unpriced}\n  - name: y\n    kind: unpriced\n   by: [tenant]\n", `r.yaml:6:1: did not find expected '-' indicator`},
		{"rules:\n  - name: x\n    kind: error_rate\n    threshold_pct: 5\n    for: 5 minutes\n", `r.yaml:5:10: cannot parse for "5 minutes"`},
		{"receivers:\n  - name: w\n    type: webhook\nrules: []\n", `r.yaml:2:5: receiver "w"`},
		{"rules:\n  - name: x\n    kind: anomaly\n    window: 10h\n", `r.yaml:4:13: anomaly window 10h0m0s`},
		// Settings that can never fire.
		{"rules:\n  - name: x\n    kind: error_rate\n    threshold_pct: 100\n", `r.yaml:4:20: threshold_pct 100: want below 100`},
		{"rules:\n  - name: x\n    kind: latency\n    objective: 80% under 2 s\n", `r.yaml:4:16: objective 80% under 2 s: no default burn rate can hold (each needs more than 100% of calls bad); set burn_rates with factors up to 5`},
		{"rules:\n  - name: x\n    kind: error_rate\n    objective: 99%\n    burn_rates: [{factor: 6, long: 6h, short: 30m}, {factor: 120, long: 1h, short: 5m}]\n", `r.yaml:5:53: burn rate factor 120 can never hold with objective 99%: it needs 120% of calls bad (at most 100 with this objective)`},
		{"rules:\n  - name: x\n    kind: error_rate\n    objective: 99%\n    burn_rates: [{factor: 1, long: 30d, short: 1h}]\n", `r.yaml:5:36: long 30d: want at most 3d`},
		{"rules:\n  - name: x\n    kind: budget\n    period: day\n    amount_usd: 5\n    for: 25h\n", `r.yaml:6:10: for 25h: a budget alert lasts at most its day, so it would never fire`},
		{"rules:\n  - name: x\n    kind: budget\n    amount_usd: 5\n    for: 30d\n", `r.yaml:5:10: for 30d: a budget alert lasts at most its month`},
		{"rules:\n  - name: x\n    kind: error_rate\n    threshold_pct: 5\n    window: 30d\n", `r.yaml:5:13: window 30d: want at most 1d`},
	} {
		_, err := ParseConfig("r.yaml", []byte(tc.src))
		var es Errors
		if !errors.As(err, &es) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
	// Several problems are all reported, in file order.
	_, err := ParseConfig("r.yaml", []byte("rules:\n  - name: a\n    kind: budget\n    amount_usd: -1\n  - name: b\n    kind: nope\n"))
	if es, ok := err.(Errors); !ok || len(es) != 2 || es[0].Line != 4 || es[1].Line != 6 {
		t.Errorf("two errors: %v", err)
	}
	// A rule of an unknown kind still has its name and receivers checked:
	// they were reported only once the kind was fixed.
	_, err = ParseConfig("r.yaml", []byte("rules:\n  - {name: a, kind: unpriced}\n  - {name: a, kind: nope, notify: [pager]}\n"))
	for _, want := range []string{`unknown rule kind "nope"`, `rule "a" is defined twice`, `rule "a" notifies "pager", which is not among the receivers`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("unknown kind, duplicate name, unknown receiver: %v; want it to say %q", err, want)
		}
	}
}

func TestExampleRulesParse(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"../docs/alerts-example.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseConfig(f, b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// FuzzParseConfig: any input gives a config or located errors, never a
// panic; every error has a positive line and column.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodRules))
	f.Add([]byte("rules:\n  - {name: x, kind: budget, amount_usd: 1, thresholds: [1, 1]}\n"))
	f.Add([]byte("rules: [{kind: latency, objective: '99% under 2 s', burn_rates: [{factor: 1, long: 1m, short: 2m}]}]"))
	f.Add([]byte("receivers: [{name: a, type: slack, url: 'http://x'}]\nrules: [{name: a, kind: anomaly, window: 7d}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("f.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			for _, r := range cfg.Rules {
				if r.spec == nil || r.Name == "" {
					t.Fatalf("rule without spec or name: %+v", r)
				}
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error is not Errors: %T %v", err, err)
		}
		for _, e := range es {
			if e.Line < 1 || e.Column < 1 {
				t.Fatalf("error without position: %v", e)
			}
		}
	})
}

// TestDocsRulesParse: every rule example of docs/alerts.md parses.
func TestDocsRulesParse(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/alerts.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block = block[:strings.Index(block, "```")]
		if !strings.HasPrefix(block, "- name:") {
			continue
		}
		var sb strings.Builder
		sb.WriteString("rules:\n")
		for _, l := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
			sb.WriteString("  " + l + "\n")
		}
		cfg, err := ParseConfig("docs/alerts.md", []byte(sb.String()))
		if err != nil {
			t.Errorf("%v\n%s", err, sb.String())
			continue
		}
		n += len(cfg.Rules)
	}
	if n < 9 {
		t.Errorf("%d rule examples in docs/alerts.md, want one of every kind (9 with the SLO forms)", n)
	}
}

// A receiver's error names it once, at the field it is about, and a rule
// notifying that (defined but invalid) receiver is not a second error.
func TestReceiverErrorsOnceAtTheField(t *testing.T) {
	t.Parallel()
	src := "receivers:\n  - name: wh3\n    type: webhook\n    url: ftp://hooks.example.com/x\n    secrets: [whsec_x]\n" +
		"rules:\n  - {name: u, kind: unpriced, notify: [wh3]}\n  - {name: v, kind: unpriced, notify: [nope]}\n"
	_, err := ParseConfig("r.yaml", []byte(src))
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	if got, want := es[0].Error(), `r.yaml:4:10: receiver "wh3": url: scheme "ftp": want http or https`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got, want := es[1].Error(), `r.yaml:8:5: rule "v" notifies "nope", which is not among the receivers`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// An element of a list is pointed at.
	_, err = ParseConfig("r.yaml", []byte("receivers:\n  - name: w\n    type: webhook\n    url: https://h.example\n    secrets: [whsec_dGVzdA==, whsec_x]\nrules: []\n"))
	if err == nil || !strings.HasPrefix(err.Error(), `r.yaml:5:15: receiver "w": secrets[0]: cannot parse webhook secret`) {
		t.Errorf("got %v", err)
	}
}

// LoadConfig reads the receivers' files as `alerts run` does, so `alerts
// check` reports what run would refuse, at the field; ParseConfig (alerts
// test, backtest) does not read them.
func TestLoadConfigReadsReceiverFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := write("good-secrets", "# dev\nwhsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
	noPrefix := write("no-prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
	slackURL := write("slack-url", "https://hooks.slack.com/services/T0/B0/X\n")
	rules := func(secrets, url string) string {
		return write("rules.yaml", "receivers:\n"+
			"  - name: wh\n    type: webhook\n    url: https://hooks.example.com/x\n    secrets_file: "+secrets+"\n"+
			"  - name: team\n    type: slack\n    url_file: "+url+"\n"+
			"rules:\n  - {name: u, kind: unpriced, notify: [wh, team]}\n")
	}
	f := rules(good, slackURL)
	cfg, err := LoadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Receivers; len(r) != 2 || r[0].SecretsFile != "" || len(r[0].Secrets) != 1 || r[1].URL != "https://hooks.slack.com/services/T0/B0/X" {
		t.Errorf("receivers %+v", r)
	}
	for _, tc := range []struct {
		name, secrets, url string
		want               []string
	}{
		{"missing secrets_file", filepath.Join(dir, "nope"), slackURL, []string{`:5:19: receiver "wh": secrets_file: cannot read: open ` + filepath.Join(dir, "nope")}},
		{"secret without whsec_", noPrefix, slackURL, []string{`:5:19: receiver "wh": secrets_file: "` + noPrefix + `", line 1: cannot parse webhook secret: it must start with "whsec_"`}},
		{"url_file a directory", good, dir, []string{`:8:15: receiver "team": url_file: cannot read: read ` + dir + `: is a directory`}},
		{"both", filepath.Join(dir, "nope"), filepath.Join(dir, "nope"), []string{`:5:19: receiver "wh": secrets_file: cannot read`, `:8:15: receiver "team": url_file: cannot read`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := rules(tc.secrets, tc.url)
			if _, err := ParseConfig(f, mustRead(t, f)); err != nil {
				t.Fatalf("ParseConfig reads no receiver file, but: %v", err)
			}
			_, err := LoadConfig(f)
			var es Errors
			if !errors.As(err, &es) || len(es) != len(tc.want) {
				t.Fatalf("LoadConfig = %v, want %d error(s)", err, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(es[i].Error(), f+w) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, es[i], f+w)
				}
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(dir, "none.yaml")); err == nil || !strings.Contains(err.Error(), "cannot read rules file") {
		t.Errorf("missing rules file: %v", err)
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The default burn rates that can hold with a low objective are kept (a
// 90% objective keeps 6×: 60% of calls bad; 14.4× would need 144%), and a
// factor of exactly 1/(1 − objective) can hold (every call bad).
func TestDefaultBurnRatesThatCanHold(t *testing.T) {
	t.Parallel()
	cfg, err := ParseConfig("r.yaml", []byte(`rules:
  - {name: l, kind: latency, objective: "90% under 2 s"}
  - {name: e, kind: error_rate, objective: "99%", burn_rates: [{factor: 100, long: 1h, short: 5m}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if br := cfg.Rule("l").spec.(*LatencySpec).SLO.BurnRates; len(br) != 1 || br[0].Factor != 6 {
		t.Errorf("90%% objective: burn rates %+v, want the 6× one", br)
	}
	if br := DefaultBurnRates; len(br) != 2 {
		t.Errorf("the defaults were changed: %+v", br)
	}
}
