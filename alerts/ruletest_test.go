package alerts

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestExampleRuleTestsPass(t *testing.T) {
	t.Parallel()
	res, err := RunTestFile(context.Background(), "../docs/alerts-example.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("%d tests", len(res))
	}
	for _, r := range res {
		for _, f := range r.Failures {
			t.Errorf("%s: %s", r.Name, f)
		}
	}
}

// A wrong expectation fails, naming the rule, the time and both lists.
func TestRuleTestFailureIsReported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("rules:\n  - {name: u, kind: unpriced, by: [model]}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(`rule_files: [r.yaml]
tests:
  - name: wrong
    input_series:
      - {group: {model: m}, start: 2026-01-01T00:00:00Z, unpriced: "1 1 1"}
    alert_rule_test:
      - {eval_time: 2026-01-01T00:02:00Z, rule: u, exp_alerts: []}
`), 0o644)
	res, err := RunTestFile(context.Background(), filepath.Join(dir, "t.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || len(res[0].Failures) != 1 || !strings.Contains(res[0].Failures[0], "got  {model=m}  firing") {
		t.Errorf("%+v", res)
	}
}

func TestExpandValues(t *testing.T) {
	t.Parallel()
	v, err := expandValues("1 2x3 _ 5+5x3 10-1x2 _x2")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range v {
		if p == nil {
			got = append(got, "_")
		} else {
			got = append(got, strings.TrimSuffix(strings.TrimRight(strings.TrimRight(fmtF(*p), "0"), "."), "."))
		}
	}
	if strings.Join(got, " ") != "1 2 2 2 _ 5 10 15 10 9 _ _" {
		t.Errorf("%v", got)
	}
	for _, bad := range []string{"x", "1x", "1x0", "a+b", "1xx2", "_x600000 1x600000"} {
		if _, err := expandValues(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func fmtF(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

// Backtest on a script: a daily budget crossed on two days of three fires
// twice, each episode ending when the day rolls over.
func TestBacktestScript(t *testing.T) {
	t.Parallel()
	s := NewScript()
	fill(t, s, "acme", "m", ts("2026-03-01T00:00:00Z"), ts("2026-03-04T00:00:00Z"), time.Hour, func(at time.Time) Point {
		if at.Day() == 2 {
			return Point{Cost: 1}
		}
		return Point{Cost: 10}
	})
	cfg := mustConfig(t, "rules:\n  - {name: d, kind: budget, period: day, amount_usd: 100}\n  - {name: u, kind: unpriced}\n")
	res, err := Backtest(context.Background(), cfg, s, BacktestOptions{From: ts("2026-03-01T00:00:00Z"), To: ts("2026-03-04T00:00:00Z"), Step: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d := res[0]
	if d.Evaluations != 72 || len(d.Episodes) != 2 || len(res[1].Episodes) != 0 {
		t.Fatalf("%+v", res)
	}
	// USD 100 reached after 10 hours: at 10:00 (usage of [00:00, 10:00)).
	if !d.Episodes[0].Start.Equal(ts("2026-03-01T10:00:00Z")) || !d.Episodes[0].End.Equal(ts("2026-03-02T00:00:00Z")) ||
		!d.Episodes[1].Start.Equal(ts("2026-03-03T10:00:00Z")) || !d.Episodes[1].End.IsZero() || d.FiringFor != 28*time.Hour {
		t.Errorf("episodes %+v firing %s", d.Episodes, d.FiringFor)
	}
}

// FuzzExpandValues: any value list gives values or an error, never a
// panic or more than the bound.
func FuzzExpandValues(f *testing.F) {
	for _, s := range []string{"1 2x3 _ 5+5x3 10-1x2 _x2", "1e3x2", "-1+-1x3", "x", "_x1000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := expandValues(s)
		if err == nil && len(v) > 1_000_000 {
			t.Fatalf("%d values", len(v))
		}
	})
}
