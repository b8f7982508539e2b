package alerts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/analytics"
)

// TestFile is a rule unit test file (`costpipe alerts test`), in the
// spirit of promtool's: scripted input series, evaluation times and the
// alerts expected then.
type TestFile struct {
	RuleFiles          []string   `yaml:"rule_files"`
	EvaluationInterval string     `yaml:"evaluation_interval"`
	Tests              []RuleTest `yaml:"tests"`
}

// RuleTest is one test case.
type RuleTest struct {
	Name        string        `yaml:"name"`
	InputSeries []InputSeries `yaml:"input_series"`
	Checks      []AlertCheck  `yaml:"alert_rule_test"`
}

// InputSeries is one group's scripted values, one per Step from Start.
// Each field is a value list: numbers separated by spaces, "VxN" for N
// times V, "A+BxN" for N values from A in steps of B (A-BxN downwards),
// "_" (or "_xN") for steps without a value.
type InputSeries struct {
	Group      map[string]string `yaml:"group"`
	Start      time.Time         `yaml:"start"`
	Step       string            `yaml:"step"`
	Cost       string            `yaml:"cost"`
	Requests   string            `yaml:"requests"`
	Errors     string            `yaml:"errors"`
	Unpriced   string            `yaml:"unpriced"`
	Timed      string            `yaml:"timed"`
	Slow       string            `yaml:"slow"`
	LatencyP50 string            `yaml:"latency_p50"`
	LatencyP90 string            `yaml:"latency_p90"`
	LatencyP95 string            `yaml:"latency_p95"`
	LatencyP99 string            `yaml:"latency_p99"`
}

// AlertCheck is what one rule's alerts must be at EvalTime: exactly the
// listed pending and firing alerts (an empty list: none).
type AlertCheck struct {
	EvalTime time.Time       `yaml:"eval_time"`
	Rule     string          `yaml:"rule"`
	Expect   []ExpectedAlert `yaml:"exp_alerts"`
}

// ExpectedAlert is one expected alert; State defaults to firing.
type ExpectedAlert struct {
	Group     map[string]string `yaml:"group"`
	Threshold string            `yaml:"threshold"`
	State     State             `yaml:"state"`
}

// maxTestSteps bounds the evaluations of one test.
const maxTestSteps = 200000

// expandValues reads a value list; nan marks a step without a value.
func expandValues(s string) ([]*float64, error) {
	var out []*float64
	for _, tok := range strings.Fields(s) {
		base, count := tok, 1
		if i := strings.LastIndexByte(tok, 'x'); i > 0 {
			n, err := strconv.Atoi(tok[i+1:])
			if err != nil || n < 1 || n > 1_000_000 {
				return nil, fmt.Errorf("cannot parse %q: want VxN with N from 1 to 1000000", tok)
			}
			base, count = tok[:i], n
		}
		if len(out)+count > 1_000_000 {
			return nil, fmt.Errorf("more than 1000000 values")
		}
		if base == "_" {
			for range count {
				out = append(out, nil)
			}
			continue
		}
		start, inc := base, "0"
		if i := strings.LastIndexAny(base, "+-"); i > 0 {
			start, inc = base[:i], base[i:]
		}
		a, err1 := strconv.ParseFloat(start, 64)
		b, err2 := strconv.ParseFloat(inc, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("cannot parse value %q: want a number, VxN, A+BxN or _", tok)
		}
		for k := range count {
			v := a + float64(k)*b
			out = append(out, &v)
		}
	}
	return out, nil
}

// TestResult is the outcome of one RuleTest.
type TestResult struct {
	Name     string
	Failures []string
}

// RunTestFile runs the tests of the file at path; rule files are relative
// to it. It fails on a file that cannot be read or parsed.
func RunTestFile(ctx context.Context, path string) ([]TestResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read test file: %w", err)
	}
	var tf TestFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		line, col, msg := yamlErrorPos(err)
		var te *yaml.TypeError
		if l := yamlSyntaxLine(data, line); !errors.As(err, &te) && l != line {
			line, col = l, 1
		}
		return nil, &Error{File: path, Line: line, Column: col, Msg: msg}
	}
	if len(tf.RuleFiles) != 1 {
		return nil, fmt.Errorf("%s: rule_files must name exactly one rules file, got %d", path, len(tf.RuleFiles))
	}
	rf := tf.RuleFiles[0]
	if !filepath.IsAbs(rf) {
		rf = filepath.Join(filepath.Dir(path), rf)
	}
	rdata, err := os.ReadFile(rf)
	if err != nil {
		return nil, fmt.Errorf("cannot read rules file: %w", err)
	}
	cfg, err := ParseConfig(rf, rdata)
	if err != nil {
		return nil, err
	}
	interval := cfg.Interval
	if tf.EvaluationInterval != "" {
		if interval, err = parseDuration(tf.EvaluationInterval); err != nil || interval <= 0 {
			return nil, fmt.Errorf("%s: cannot parse evaluation_interval %q: want a duration such as 1m", path, tf.EvaluationInterval)
		}
	}
	var out []TestResult
	for _, tc := range tf.Tests {
		res, err := runTest(ctx, cfg, interval, tc)
		if err != nil {
			return nil, fmt.Errorf("%s: test %q: %w", path, tc.Name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func runTest(ctx context.Context, cfg *Config, interval time.Duration, tc RuleTest) (TestResult, error) {
	res := TestResult{Name: tc.Name}
	s := NewScript()
	var start time.Time
	for i, in := range tc.InputSeries {
		step := time.Minute
		if in.Step != "" {
			d, err := parseDuration(in.Step)
			if err != nil || d <= 0 {
				return res, fmt.Errorf("input_series[%d]: cannot parse step %q", i, in.Step)
			}
			step = d
		}
		if in.Start.IsZero() {
			return res, fmt.Errorf("input_series[%d] has no start", i)
		}
		if start.IsZero() || in.Start.Before(start) {
			start = in.Start
		}
		g := map[analytics.Dim]string{}
		for k, v := range in.Group {
			g[analytics.Dim(k)] = v
		}
		fields := []struct {
			name string
			src  string
			set  func(p *Point, v float64)
		}{
			{"cost", in.Cost, func(p *Point, v float64) { p.Cost = v }},
			{"requests", in.Requests, func(p *Point, v float64) { p.Requests = v }},
			{"errors", in.Errors, func(p *Point, v float64) { p.Errors = v }},
			{"unpriced", in.Unpriced, func(p *Point, v float64) { p.Unpriced = v }},
			{"timed", in.Timed, func(p *Point, v float64) { p.Timed = v }},
			{"slow", in.Slow, func(p *Point, v float64) { p.Slow = v }},
			{"latency_p50", in.LatencyP50, func(p *Point, v float64) { p.Latency.P50 = v }},
			{"latency_p90", in.LatencyP90, func(p *Point, v float64) { p.Latency.P90 = v }},
			{"latency_p95", in.LatencyP95, func(p *Point, v float64) { p.Latency.P95 = v }},
			{"latency_p99", in.LatencyP99, func(p *Point, v float64) { p.Latency.P99 = v }},
		}
		points := map[int]*Point{}
		for _, f := range fields {
			vals, err := expandValues(f.src)
			if err != nil {
				return res, fmt.Errorf("input_series[%d].%s: %w", i, f.name, err)
			}
			for k, v := range vals {
				if v == nil {
					continue
				}
				p := points[k]
				if p == nil {
					p = &Point{}
					points[k] = p
				}
				f.set(p, *v)
			}
		}
		for k, p := range points {
			if err := s.Add(g, in.Start.Add(time.Duration(k)*step), *p); err != nil {
				return res, fmt.Errorf("input_series[%d]: %w", i, err)
			}
		}
	}
	checks := slices.Clone(tc.Checks)
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].EvalTime.Before(checks[j].EvalTime) })
	for _, c := range checks {
		if cfg.Rule(c.Rule) == nil {
			return res, fmt.Errorf("alert_rule_test names rule %q, which is not in the rules file", c.Rule)
		}
		if c.EvalTime.IsZero() {
			return res, fmt.Errorf("alert_rule_test for %q has no eval_time", c.Rule)
		}
	}
	if len(checks) == 0 {
		return res, nil
	}
	if start.IsZero() || start.After(checks[0].EvalTime) {
		start = checks[0].EvalTime
	}
	if n := checks[len(checks)-1].EvalTime.Sub(start) / interval; n > maxTestSteps {
		return res, fmt.Errorf("%d evaluations from %s to the last eval_time at evaluation_interval %s, more than %d: set a longer evaluation_interval",
			n, start.Format(time.RFC3339), interval, maxTestSteps)
	}
	e := NewEngine(cfg, s)
	t := start
	for _, c := range checks {
		for ; !t.After(c.EvalTime); t = t.Add(interval) {
			if _, failed := e.Eval(ctx, t); len(failed) > 0 {
				return res, failed[0].Err
			}
		}
		if !t.Add(-interval).Equal(c.EvalTime) { // eval_time between steps: evaluate there too
			if _, failed := e.Eval(ctx, c.EvalTime); len(failed) > 0 {
				return res, failed[0].Err
			}
		}
		var got, want []string
		for _, a := range e.Alerts() {
			if a.Rule == c.Rule && (a.State == StateFiring || a.State == StatePending) {
				got = append(got, fmt.Sprintf("{%s} %s %s", groupKey(a.Group), a.Threshold, a.State))
			}
		}
		for _, x := range c.Expect {
			st := x.State
			if st == "" {
				st = StateFiring
			}
			want = append(want, fmt.Sprintf("{%s} %s %s", groupKey(x.Group), x.Threshold, st))
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			res.Failures = append(res.Failures, fmt.Sprintf("rule %s at %s:\n      got  %s\n      want %s", c.Rule,
				c.EvalTime.Format(time.RFC3339), listOrNone(got), listOrNone(want)))
		}
	}
	return res, nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "(no alerts)"
	}
	return strings.Join(s, ", ")
}
