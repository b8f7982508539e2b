package serve

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/costpipe/costpipe/report"
)

// The parameters of each endpoint; where is the only repeatable one.
var (
	rangeParams    = []string{"since", "from", "to", "by", "where", "granularity"}
	usageParams    = rangeParams
	latencyParams  = append(slices.Clone(rangeParams), "step")
	topParams      = append(slices.Clone(rangeParams), "metric", "limit")
	seriesParams   = []string{"since", "from", "to", "by", "where", "step", "metric"}
	trendParams    = []string{"by", "where", "metric", "tz", "at"}
	growthParams   = append(slices.Clone(trendParams), "window")
	forecastParams = append(slices.Clone(trendParams), "period", "budget", "horizon", "history")
	pricesParams   = []string{"since", "stale-after", "where", "all"}
	alertsParams   = []string{"state"}
	logParams      = []string{"since", "limit"}
)

// safeName is a parameter name an error may quote.
var safeName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_-]{1,32}$`) })

// urlParams are a URL's query parameters as report parameters.
type urlParams struct{ v url.Values }

// newParams checks q against the endpoint's parameters: each known (an
// unknown one is an error, not silently ignored) and given at most once,
// but where.
func newParams(q url.Values, allowed []string) (urlParams, error) {
	for name, vals := range q {
		if !slices.Contains(allowed, name) {
			pe := &report.ParamError{Msg: "unknown parameter: this endpoint takes " + strings.Join(allowed, ", ")}
			if safeName().MatchString(name) {
				pe.Param = name
				pe.Msg = fmt.Sprintf("unknown parameter %q: this endpoint takes %s", name, strings.Join(allowed, ", "))
			}
			return urlParams{}, pe
		}
		if name != "where" && len(vals) > 1 {
			return urlParams{}, &report.ParamError{Param: name, Msg: fmt.Sprintf("parameter %s given %d times: give it once", name, len(vals))}
		}
	}
	return urlParams{q}, nil
}

// Value returns the parameter's value, "" when not given.
func (p urlParams) Value(name string) string { return p.v.Get(name) }

// Values returns every value of the parameter.
func (p urlParams) Values(name string) []string { return p.v[name] }

// IsSet reports whether the parameter was given.
func (p urlParams) IsSet(name string) bool { return len(p.v[name]) > 0 }

// Name is the parameter's name as is.
func (p urlParams) Name(name string) string { return name }
