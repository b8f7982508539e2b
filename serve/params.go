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

// queryError is a query string that is not URL-encoded. Param names the
// parameter when its name could be read (and may be quoted), else "".
// Its message never quotes a value: a where value may name a tenant.
type queryError struct {
	Param string
	Msg   string
}

// Error returns the message.
func (e *queryError) Error() string { return e.Msg }

// parseQuery reads a URL's raw query string as url.ParseQuery does, but
// fails on the first pair it cannot decode instead of leaving it out:
// r.URL.Query() drops "where=model=gpt%" and answers for every model. A
// ";" is refused as net/url refuses it (it separates nothing; "%3B" is a
// semicolon in a value), and so is a "%" not followed by two hex digits.
// The error is a *queryError naming the parameter when it can.
func parseQuery(raw string) (url.Values, error) {
	q := url.Values{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil || strings.Contains(k, ";") {
			return nil, &queryError{Msg: "invalid query string: a parameter name is not URL-encoded (" + encodingFault(k) + ")"}
		}
		if strings.Contains(v, ";") {
			return nil, badlyEncoded(name, encodingFault(v))
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, badlyEncoded(name, encodingFault(v))
		}
		q[name] = append(q[name], value)
	}
	return q, nil
}

// badlyEncoded is the error of parameter name's value that is not
// URL-encoded for the reason why; it names the parameter when its name may
// be quoted.
func badlyEncoded(name, why string) error {
	if !safeName().MatchString(name) {
		return &queryError{Msg: "invalid query string: a parameter's value is not URL-encoded (" + why + ")"}
	}
	return &queryError{Param: name, Msg: "invalid " + name + ": its value is not URL-encoded (" + why + ")"}
}

// encodingFault says what is wrong with s, a name or value that does not
// decode: a ";" or a "%" without two hex digits after it.
func encodingFault(s string) string {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';':
			return `a ";" does not separate parameters: write "&" between them and %3B for a ";" in a value`
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return `a "%" must be followed by two hex digits: write %25 for a "%"`
			}
		}
	}
	return "it does not decode"
}

// isHex reports whether c is a hex digit.
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

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
