package report

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// mapParams is Params from a map, named as a URL's query names them.
type mapParams map[string][]string

func (m mapParams) Value(name string) string {
	if v := m[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}
func (m mapParams) Values(name string) []string { return m[name] }
func (m mapParams) IsSet(name string) bool      { _, ok := m[name]; return ok }
func (m mapParams) Name(name string) string     { return name }

var testNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// TestParseTimeRangeBeforeEpoch: a range from before 1970, Go's zero time
// included, starts in 1970 (no row is older); 0001-01-01 read as no start
// and failed with "usage query needs a start time".
func TestParseTimeRangeBeforeEpoch(t *testing.T) {
	for _, from := range []string{"0001-01-01", "0001-01-01T00:00:00Z", "1960-05-01"} {
		f, to, err := ParseTimeRange(mapParams{"from": {from}}, testNow)
		if err != nil || !f.Equal(time.Unix(0, 0)) || !to.Equal(testNow) {
			t.Errorf("from %s: [%s, %s), %v; want [1970-01-01, now)", from, f, to, err)
		}
	}
	_, _, err := ParseTimeRange(mapParams{"from": {"1960-01-01"}, "to": {"1969-01-01"}}, testNow)
	var pe *ParamError
	if !errors.As(err, &pe) || pe.Param != "from" || !strings.Contains(err.Error(), "empty range") {
		t.Errorf("a range before 1970: %v, want an empty range", err)
	}
}

// FuzzParseUsage: no parameters make the parsers panic; an accepted range
// is non-empty and starts in 1970 or later; a refusal is a *ParamError.
func FuzzParseUsage(f *testing.F) {
	f.Add("2026-01-01", "2026-02-01", "", "model,tenant", "tenant=acme", "auto", "1h", "cost")
	f.Add("", "", "7d", "", "", "", "1d", "tokens")
	f.Add("0001-01-01", "", "", "nope", "x", "hour", "0s", "")
	f.Fuzz(func(t *testing.T, from, to, since, by, where, gran, step, metric string) {
		p := mapParams{}
		for k, v := range map[string]string{"from": from, "to": to, "since": since, "by": by, "where": where,
			"granularity": gran, "step": step, "metric": metric} {
			if v != "" {
				p[k] = []string{v}
			}
		}
		check := func(what string, r Range, err error) {
			if err != nil {
				var pe *ParamError
				if !errors.As(err, &pe) {
					t.Errorf("%s: %v is not a *ParamError", what, err)
				}
				return
			}
			if !r.From.Before(r.To) || r.From.Before(time.Unix(0, 0)) {
				t.Errorf("%s: accepted [%s, %s)", what, r.From, r.To)
			}
		}
		u, err := ParseUsage(p, testNow)
		check("usage", u.Range, err)
		s, err := ParseSeries(p, testNow)
		check("series", s.Range, err)
		tp, err := ParseTop(p, testNow, 100)
		check("top", tp.Range, err)
		ParseGrowth(p, testNow)
		ParseForecast(p, testNow)
	})
}
