package alerts

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/alerts/notify"
	"github.com/costpipe/costpipe/analytics"
)

// Kind is a rule kind: what a rule measures and when it holds.
type Kind string

// The rule kinds, one file each (budget.go, forecast.go, growth.go,
// anomaly.go, latency.go, error_rate.go, unpriced.go).
const (
	KindBudget    Kind = "budget"
	KindForecast  Kind = "forecast"
	KindGrowth    Kind = "growth"
	KindAnomaly   Kind = "anomaly"
	KindLatency   Kind = "latency"
	KindErrorRate Kind = "error_rate"
	KindUnpriced  Kind = "unpriced"
)

// kinds maps a kind to the parser of its fields.
var kinds = map[Kind]func(p *parser, r *Rule, fields map[string]*yaml.Node) spec{
	KindBudget: parseBudget, KindForecast: parseForecast, KindGrowth: parseGrowth, KindAnomaly: parseAnomaly,
	KindLatency: parseLatency, KindErrorRate: parseErrorRate, KindUnpriced: parseUnpriced,
}

func kindNames() string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, string(k))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// scopeDims are the dimensions a rule's scope and by may name.
var scopeDims = []analytics.Dim{analytics.DimTenant, analytics.DimApplication, analytics.DimProvider, analytics.DimModel}

// Limits of a rules file, so a careless file cannot make the evaluator
// unbounded.
const (
	// MaxRules is the most rules one file may hold.
	MaxRules = 1000
	// MaxFileBytes is the largest rules file accepted.
	MaxFileBytes = 4 << 20
)

// Config is a parsed rules file: defaults, receivers and rules.
type Config struct {
	// File is the name the file was read as (used in errors).
	File string
	// Interval is how often `alerts run` evaluates every rule. Default 30s.
	Interval time.Duration
	// Location is the time zone of calendar periods (budget, forecast,
	// growth days); Default UTC. TZ is its name.
	Location *time.Location
	TZ       string
	// GroupWait delays the first notification of a rule's alerts after the
	// first of them fires, so alerts firing together go out together.
	// Default 30s.
	GroupWait time.Duration
	// GroupInterval is the least time between two sends of the same rule's
	// new notifications. Default 5m.
	GroupInterval time.Duration
	// RepeatInterval re-sends an alert that is still firing. Default 4h;
	// budget alerts are never repeated (they fire once per period and
	// threshold).
	RepeatInterval time.Duration
	// Receivers are the receivers rules may notify.
	Receivers []notify.ReceiverConfig
	// Rules in file order.
	Rules []*Rule
}

// MinInterval is the shortest evaluation interval, in the file (interval:)
// and on the command line (alerts run --interval): every evaluation queries
// ClickHouse.
const MinInterval = time.Second

// Defaults of a rules file's top-level settings.
const (
	DefaultInterval       = 30 * time.Second
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

// Rule is one alert rule.
type Rule struct {
	// Name is unique in the file: letters, digits, '_', '-' and ':'.
	Name string
	// Kind selects what the rule measures.
	Kind Kind
	// Scope keeps the calls whose dimension has one of the listed values
	// (tenant, application, provider, model).
	Scope map[analytics.Dim][]string
	// By fans the rule out per group of these dimensions.
	By []analytics.Dim
	// For is how long the condition must hold before the alert fires.
	For time.Duration
	// KeepFiringFor keeps a firing alert firing this long after the
	// condition stopped holding.
	KeepFiringFor time.Duration
	// Labels and Annotations are copied into every notification.
	Labels, Annotations map[string]string
	// Notify names the receivers of the rule's notifications.
	Notify []string
	// Line and Column locate the rule in its file.
	Line, Column int

	spec spec
}

// Spec returns the rule's kind-specific settings: *BudgetSpec,
// *ForecastSpec, *GrowthSpec, *AnomalySpec, *LatencySpec, *ErrorRateSpec
// or *UnpricedSpec.
func (r *Rule) Spec() any { return r.spec }

// Error is one problem of a rules file, located by line and column.
type Error struct {
	File         string
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Errors are all the problems found in a rules file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// ParseConfig parses and validates a rules file. file names it in errors.
// Every problem found is reported (an Errors, each with line and column),
// not only the first. It reads no other file: a receiver's url_file and
// secrets_file are only named (LoadConfig reads them).
func ParseConfig(file string, data []byte) (*Config, error) {
	return parseConfig(file, data, false)
}

// LoadConfig reads the rules file named file and parses it as ParseConfig
// does, and reads every receiver's url_file and secrets_file as `alerts
// run` needs them (notify.ReceiverConfig.ReadFiles): a file that is
// missing, a directory, empty, or holds a URL or secret the receiver would
// refuse is an Error at its field, among the file's other errors. The
// receivers come back with the URL and secrets in place of the files. An
// unreadable rules file is a plain error.
func LoadConfig(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read rules file: %w", err)
	}
	return parseConfig(file, data, true)
}

func parseConfig(file string, data []byte, readFiles bool) (*Config, error) {
	p := &parser{file: file}
	if len(data) > MaxFileBytes {
		return nil, Errors{{File: file, Line: 1, Column: 1, Msg: fmt.Sprintf("file has %d bytes, more than the %d accepted", len(data), MaxFileBytes)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, col, msg := yamlErrorPos(err)
		if l := yamlSyntaxLine(data, line); l != line {
			line, col = l, 1
		}
		return nil, Errors{{File: file, Line: line, Column: col, Msg: msg}}
	}
	cfg := &Config{File: file, Interval: DefaultInterval, Location: time.UTC, TZ: "UTC", GroupWait: DefaultGroupWait,
		GroupInterval: DefaultGroupInterval, RepeatInterval: DefaultRepeatInterval}
	if len(doc.Content) == 0 {
		p.errorf(&doc, "the file is empty: want a mapping with rules:")
		return nil, p.errs
	}
	root := doc.Content[0]
	fields := p.mapping(root, "the rules file", "interval", "tz", "group_wait", "group_interval", "repeat_interval", "receivers", "rules")
	if fields == nil {
		return nil, p.errs
	}
	p.duration(fields["interval"], &cfg.Interval, MinInterval, "interval")
	p.duration(fields["group_wait"], &cfg.GroupWait, 0, "group_wait")
	p.duration(fields["group_interval"], &cfg.GroupInterval, time.Second, "group_interval")
	p.duration(fields["repeat_interval"], &cfg.RepeatInterval, time.Minute, "repeat_interval")
	if n := fields["tz"]; n != nil {
		if s, ok := p.str(n, "tz"); ok {
			loc, err := time.LoadLocation(s)
			if err != nil || s == "" || s == "Local" {
				p.errorf(n, "unknown time zone %q for tz: want an IANA name such as Europe/Berlin or UTC", s)
			} else {
				cfg.Location, cfg.TZ = loc, s
			}
		}
	}
	// receivers are the names of the receivers defined, valid or not: a
	// rule notifying an invalid one is not a second error.
	receivers := map[string]bool{}
	if n := fields["receivers"]; n != nil {
		if p.kind(n, yaml.SequenceNode, "receivers", "a list of receivers") {
			for _, item := range n.Content {
				var rc notify.ReceiverConfig
				if item.Kind != yaml.MappingNode {
					p.errorf(item, "a receiver must be a mapping with name and type")
					continue
				}
				name := receiverName(item)
				if receivers[name] {
					p.errorf(item, "receiver %q is defined twice", name)
					continue
				}
				if name != "" {
					receivers[name] = true
				}
				// Unknown keys (a misspelt `headers` would send without
				// its authorization, every delivery a permanent 401).
				if errs := len(p.errs); p.mapping(item, "receiver "+strconv.Quote(name), receiverFields()...) == nil || len(p.errs) > errs {
					continue
				}
				if err := item.Decode(&rc); err != nil {
					line, col, msg := yamlErrorPos(err)
					if line == 0 {
						line, col = item.Line, item.Column
					}
					p.errs = append(p.errs, &Error{File: file, Line: line, Column: col, Msg: "receiver: " + msg})
					continue
				}
				var err error
				if readFiles {
					rc, err = rc.ReadFiles()
				} else {
					err = rc.Validate()
				}
				if err != nil {
					p.receiverError(item, err)
					continue
				}
				cfg.Receivers = append(cfg.Receivers, rc)
			}
		}
	}
	n := fields["rules"]
	if n == nil {
		p.errorf(root, "the file has no rules: list them under rules:")
		return nil, p.errs
	}
	if p.kind(n, yaml.SequenceNode, "rules", "a list of rules") {
		if len(n.Content) > MaxRules {
			p.errorf(n, "%d rules, more than the %d one file may hold", len(n.Content), MaxRules)
		}
		names := map[string]bool{}
		for i, item := range n.Content {
			if i >= MaxRules {
				break
			}
			r := p.rule(item)
			// A rule that cannot be used (an unknown kind, say) still
			// has its name and receivers checked, from the file as
			// written: every error is reported at once.
			name, notify := ruleRefs(item)
			if r != nil {
				name, notify = r.Name, r.Notify
			}
			if name != "" && names[name] {
				p.errorf(item, "rule %q is defined twice", name)
			}
			names[name] = true
			for _, rcv := range notify {
				if !receivers[rcv] {
					p.errorf(item, "rule %q notifies %q, which is not among the receivers", name, rcv)
				}
			}
			if r != nil {
				cfg.Rules = append(cfg.Rules, r)
			}
		}
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return nil, p.errs
	}
	return cfg, nil
}

// ruleRefs are the name and the notify list of a rule's mapping as written
// (scalars only), for the checks of a rule that could not be parsed.
func ruleRefs(item *yaml.Node) (name string, notify []string) {
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		switch {
		case k.Value == "name" && v.Kind == yaml.ScalarNode:
			name = v.Value
		case k.Value == "notify" && v.Kind == yaml.SequenceNode:
			for _, e := range v.Content {
				if e.Kind == yaml.ScalarNode {
					notify = append(notify, e.Value)
				}
			}
		case k.Value == "notify" && v.Kind == yaml.ScalarNode:
			notify = append(notify, v.Value)
		}
	}
	return name, notify
}

// receiverName is the name: of a receiver's mapping, or "".
func receiverName(item *yaml.Node) string {
	for i := 0; i+1 < len(item.Content); i += 2 {
		if k, v := item.Content[i], item.Content[i+1]; k.Value == "name" && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// receiverError reports a receiver's configuration error (it names the
// receiver) at the field it is about when the file has that field
// (notify.FieldError: "secrets_file", "secrets[1]"), else at the receiver.
func (p *parser) receiverError(item *yaml.Node, err error) {
	at := item
	var fe *notify.FieldError
	if errors.As(err, &fe) {
		field, idx := fe.Field, -1
		if i := strings.IndexByte(field, '['); i > 0 && strings.HasSuffix(field, "]") {
			if n, err := strconv.Atoi(field[i+1 : len(field)-1]); err == nil {
				field, idx = field[:i], n
			}
		}
		for i := 0; i+1 < len(item.Content); i += 2 {
			if k, v := item.Content[i], item.Content[i+1]; k.Value == field {
				at = v
				if idx >= 0 && v.Kind == yaml.SequenceNode && idx < len(v.Content) {
					at = v.Content[idx]
				}
			}
		}
	}
	p.errorf(at, "%v", err)
}

// Rule returns the rule named name, or nil.
func (c *Config) Rule(name string) *Rule {
	for _, r := range c.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

var yamlLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`line (\d+)(?:, column (\d+))?: `) })

// yamlErrorPos takes the position out of a yaml.v3 error message.
func yamlErrorPos(err error) (line, col int, msg string) {
	msg = err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLineRE().FindStringSubmatchIndex(msg); m != nil {
		line, _ = strconv.Atoi(msg[m[2]:m[3]])
		if m[4] >= 0 {
			col, _ = strconv.Atoi(msg[m[4]:m[5]])
		}
		msg = msg[:m[0]] + msg[m[1]:]
	}
	if line == 0 {
		line = 1
	}
	if col == 0 {
		col = 1
	}
	return line, col, strings.TrimSpace(msg)
}

// yamlSyntaxLine is the line of a syntax error that yaml.v3 reports at
// line: it names the line where the enclosing block starts (a misindented
// key on line 5 of a rules list is reported at line 1), so this finds the
// first line from there on whose addition makes the file's prefix fail to
// parse, by bisection (a prefix that ends inside a multi-line flow
// collection also fails, so the line found can be such a collection's
// first). It returns line when the prefix before it does not parse.
func yamlSyntaxLine(data []byte, line int) int {
	ends := []int{0} // ends[k]: the length of the first k lines
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if ends[len(ends)-1] < len(data) {
		ends = append(ends, len(data))
	}
	parses := func(k int) bool {
		var n yaml.Node
		return yaml.Unmarshal(data[:ends[k]], &n) == nil
	}
	lo, hi := max(line-1, 0), len(ends)-1 // parses(lo), !parses(hi)
	if lo >= hi || !parses(lo) || parses(hi) {
		return line
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; parses(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// parser collects the errors of one file.
type parser struct {
	file string
	errs Errors
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: max(n.Line, 1), Column: max(n.Column, 1), Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) kind(n *yaml.Node, k yaml.Kind, field, want string) bool {
	if n.Kind != k {
		p.errorf(n, "%s must be %s", field, want)
		return false
	}
	return true
}

// receiverFields are the keys of a receiver: notify.ReceiverConfig's yaml
// names.
var receiverFields = sync.OnceValue(func() []string {
	var out []string
	t := reflect.TypeFor[notify.ReceiverConfig]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
})

// mapping returns the values of n's keys, reporting keys not in allowed
// and keys given twice; nil when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping", what)
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: a key must be a string", what)
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			p.errorf(k, "unknown field %q in %s: want one of %s", k.Value, what, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errorf(k, "field %q is given twice in %s", k.Value, what)
			continue
		}
		out[k.Value] = v
	}
	return out
}

func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a string", field)
		return "", false
	}
	return n.Value, true
}

// float reads a finite number into dst.
func (p *parser) float(n *yaml.Node, dst *float64, field string) bool {
	if n == nil {
		return false
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s must be a number", field)
		return false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.errorf(n, "cannot parse %s %q: want a finite number", field, n.Value)
		return false
	}
	*dst = v
	return true
}

// positive reads a number > 0 (or ≥ 0 with zeroOK).
func (p *parser) positive(n *yaml.Node, dst *float64, field string, zeroOK bool) bool {
	var v float64
	if !p.float(n, &v, field) {
		return false
	}
	if v < 0 || v == 0 && !zeroOK {
		want := "> 0"
		if zeroOK {
			want = "≥ 0"
		}
		p.errorf(n, "%s %v: want a number %s", field, v, want)
		return false
	}
	*dst = v
	return true
}

func (p *parser) integer(n *yaml.Node, dst *int, field string, lo, hi int) bool {
	if n == nil {
		return false
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.errorf(n, "cannot parse %s %q: want a whole number", field, n.Value)
		return false
	}
	if v < lo || v > hi {
		p.errorf(n, "%s %d: want %d to %d", field, v, lo, hi)
		return false
	}
	*dst = v
	return true
}

// duration reads a Go duration ("90s", "5m", "1h") or a number of days
// ("7d") into dst, at least least (when least > 0: a positive one).
func (p *parser) duration(n *yaml.Node, dst *time.Duration, least time.Duration, field string) bool {
	if n == nil {
		return false
	}
	s, ok := p.str(n, field)
	if !ok {
		return false
	}
	d, err := parseDuration(s)
	if err != nil {
		p.errorf(n, "cannot parse %s %q: want a duration such as 30s, 5m, 1h or 7d", field, s)
		return false
	}
	if d < 0 || d < least {
		p.errorf(n, "%s %s: want at least %s", field, s, max(least, 0))
		return false
	}
	*dst = d
	return true
}

// window parses a rule's window of least to most: a window beyond most would
// read (and merge the histograms of) days of rollups at every evaluation.
func (p *parser) window(n *yaml.Node, dst *time.Duration, least, most time.Duration) {
	if p.duration(n, dst, least, "window") && *dst > most {
		p.errorf(n, "window %s: want at most %s", n.Value, fmtDuration(most))
	}
}

// MaxWindow is the longest window of an error_rate, latency or unpriced
// rule; a burn rate's long window may be up to MaxBurnWindow.
const (
	MaxWindow     = 24 * time.Hour
	MaxBurnWindow = 3 * 24 * time.Hour
)

// fmtDuration writes d as the rules file would: 24h, 3d, 90m.
func fmtDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

// parseDuration accepts Go durations and whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 3660 {
			return 0, fmt.Errorf("invalid days %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func (p *parser) strings(n *yaml.Node, field string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a string or a list of strings", field)
		return nil
	}
	var out []string
	for _, it := range n.Content {
		if s, ok := p.str(it, field); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) stringMap(n *yaml.Node, field string) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping of strings", field)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ks, ok1 := p.str(k, field+" key")
		vs, ok2 := p.str(v, field+"."+k.Value)
		if ok1 && ok2 {
			if _, dup := out[ks]; dup {
				p.errorf(k, "%s %q is given twice", field, ks)
			}
			out[ks] = vs
		}
	}
	return out
}

var ruleNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_:-]{1,128}$`) })

// commonFields are the fields every rule has; each kind adds its own.
var commonFields = []string{"name", "kind", "scope", "by", "for", "keep_firing_for", "labels", "annotations", "notify"}

// rule parses one rule; nil when it is unusable.
func (p *parser) rule(n *yaml.Node) *Rule {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "a rule must be a mapping with name and kind")
		return nil
	}
	r := &Rule{Line: n.Line, Column: n.Column, Labels: map[string]string{}, Annotations: map[string]string{}}
	// Find the kind first: it decides which fields are allowed.
	var kindNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			kindNode = n.Content[i+1]
		}
	}
	if kindNode == nil {
		p.errorf(n, "rule has no kind: want one of %s", kindNames())
		return nil
	}
	kind := Kind(kindNode.Value)
	parse, ok := kinds[kind]
	if !ok {
		p.errorf(kindNode, "unknown rule kind %q: want one of %s", kindNode.Value, kindNames())
		return nil
	}
	r.Kind = kind
	allowed := append(slices.Clone(commonFields), kindFields[kind]...)
	article := "a"
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		article = "an" // an error_rate rule
	}
	fields := p.mapping(n, fmt.Sprintf("%s %s rule", article, kind), allowed...)
	if fields == nil {
		return nil
	}
	before := len(p.errs)
	if nn := fields["name"]; nn == nil {
		p.errorf(n, "rule has no name")
	} else if s, ok := p.str(nn, "name"); ok {
		if !ruleNameRE().MatchString(s) {
			p.errorf(nn, "invalid rule name %q: want 1 to 128 letters, digits, '_', '-' or ':'", s)
		}
		r.Name = s
	}
	if sn := fields["scope"]; sn != nil {
		r.Scope = p.scope(sn)
	}
	if bn := fields["by"]; bn != nil {
		for _, s := range p.strings(bn, "by") {
			d := analytics.Dim(s)
			if !slices.Contains(scopeDims, d) {
				p.errorf(bn, "cannot group by %q: want tenant, application, provider or model", s)
				continue
			}
			if slices.Contains(r.By, d) {
				p.errorf(bn, "by names %q twice", s)
				continue
			}
			r.By = append(r.By, d)
		}
	}
	p.duration(fields["for"], &r.For, 0, "for")
	p.duration(fields["keep_firing_for"], &r.KeepFiringFor, 0, "keep_firing_for")
	if ln := fields["labels"]; ln != nil {
		r.Labels = p.stringMap(ln, "labels")
	}
	if an := fields["annotations"]; an != nil {
		r.Annotations = p.stringMap(an, "annotations")
	}
	if nn := fields["notify"]; nn != nil {
		r.Notify = p.strings(nn, "notify")
	}
	r.spec = parse(p, r, fields)
	if b, ok := r.spec.(*BudgetSpec); ok && r.For > 0 {
		// A budget alert lasts until its period ends: one that must hold
		// for the whole period (the shortest month) never fires.
		if shortest := map[analytics.Period]time.Duration{analytics.PeriodDay: 24 * time.Hour,
			analytics.PeriodWeek: 7 * 24 * time.Hour}[b.Period]; shortest == 0 && r.For >= 28*24*time.Hour || shortest > 0 && r.For >= shortest {
			period := cmp.Or(b.Period, analytics.PeriodMonth)
			p.errorf(fields["for"], "for %s: a budget alert lasts at most its %s, so it would never fire", fields["for"].Value, period)
		}
	}
	if len(p.errs) > before || r.spec == nil {
		return nil
	}
	return r
}

func (p *parser) scope(n *yaml.Node) map[analytics.Dim][]string {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "scope must be a mapping such as {tenant: acme, model: [gpt-4o, gpt-4o-mini]}")
		return nil
	}
	out := map[analytics.Dim][]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		d := analytics.Dim(k.Value)
		if !slices.Contains(scopeDims, d) {
			p.errorf(k, "cannot scope by %q: want tenant, application, provider or model", k.Value)
			continue
		}
		if _, dup := out[d]; dup {
			p.errorf(k, "scope names %q twice", k.Value)
			continue
		}
		vals := p.strings(v, "scope."+k.Value)
		if len(vals) == 0 {
			p.errorf(v, "scope.%s needs at least one value", k.Value)
			continue
		}
		out[d] = vals
	}
	return out
}

// kindFields are the fields of each kind beyond the common ones.
var kindFields = map[Kind][]string{
	KindBudget:    {"period", "amount_usd", "thresholds", "late_data_grace"},
	KindForecast:  {"period", "amount_usd", "quantile", "history_days"},
	KindGrowth:    {"doubling_days", "min_spend_usd", "window_days"},
	KindAnomaly:   {"window", "z", "min_usd", "min_pct", "weeks", "contributors_by", "top"},
	KindLatency:   {"percentile", "threshold_ms", "window", "min_requests", "objective", "burn_rates"},
	KindErrorRate: {"threshold_pct", "window", "min_requests", "objective", "burn_rates"},
	KindUnpriced:  {"window", "min_requests"},
}

func (p *parser) require(r *Rule, fields map[string]*yaml.Node, names ...string) bool {
	ok := true
	for _, name := range names {
		if fields[name] == nil {
			p.errs = append(p.errs, &Error{File: p.file, Line: r.Line, Column: r.Column,
				Msg: fmt.Sprintf("%s rule %q needs %s", r.Kind, r.Name, name)})
			ok = false
		}
	}
	return ok
}

func (p *parser) period(n *yaml.Node, dst *analytics.Period) {
	*dst = analytics.PeriodMonth
	if n == nil {
		return
	}
	s, ok := p.str(n, "period")
	if !ok {
		return
	}
	switch per := analytics.Period(s); per {
	case analytics.PeriodDay, analytics.PeriodWeek, analytics.PeriodMonth:
		*dst = per
	default:
		p.errorf(n, "unknown period %q: want day, week or month", s)
	}
}
