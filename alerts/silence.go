package alerts

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/schemas"
)

// Silence mutes the notifications of the alerts it matches from StartsAt
// until EndsAt. The alerts keep their state; a silenced alert still firing
// when the silence ends is notified then.
type Silence struct {
	ID string
	// Matchers must all equal the alert's: "rule", "kind", a group
	// dimension (tenant, application, provider, model) or a rule label.
	Matchers  map[string]string
	StartsAt  time.Time
	EndsAt    time.Time
	CreatedBy string
	Comment   string
}

var matcherRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`) })

// ParseMatchers reads "name=value" matchers.
func ParseMatchers(ms []string) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range ms {
		if !schemas.ValidText(m) {
			return nil, fmt.Errorf("matcher %q has a control character or is not UTF-8 (%s)", m, noControls)
		}
		sm := matcherRE().FindStringSubmatch(strings.TrimSpace(m))
		if sm == nil {
			return nil, fmt.Errorf("cannot parse matcher %q: want name=value, e.g. tenant=acme or rule=monthly-budget", m)
		}
		if _, dup := out[sm[1]]; dup {
			return nil, fmt.Errorf("matcher %q names %q twice", m, sm[1])
		}
		out[sm[1]] = sm[2]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("a silence needs at least one matcher (name=value)")
	}
	return out, nil
}

// UnknownMatcherNames returns the names of matchers that no alert has
// unless a rule gives it as a label: not rule, kind or a dimension
// (tenant, model, …). A typo (tennant=acme) silences nothing.
func UnknownMatcherNames(m map[string]string) []string {
	var out []string
	for k := range m {
		if k == "rule" || k == "kind" || analytics.Dim(k).Valid() {
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// noControls says which characters silences refuse.
const noControls = "control characters, tabs and line breaks included, are not allowed: silences are shown in terminals"

// Validate checks what a silence must be to be stored: an id, at least one
// matcher, StartsAt before EndsAt, both within MinTime..MaxTime (outside, a
// DateTime column would store them wrapped), and matchers, author and
// comment without control characters (schemas.ValidText: `alerts silence
// list` prints them to a terminal). The errors name the field.
func (s Silence) Validate() error {
	if s.ID == "" || !schemas.ValidText(s.ID) {
		return fmt.Errorf("a silence needs an id of printable text, not %q", s.ID)
	}
	if len(s.Matchers) == 0 {
		return fmt.Errorf("a silence needs at least one matcher (name=value)")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Matchers)) {
		if !schemas.ValidText(k) {
			return fmt.Errorf("matcher name %q has a control character or is not UTF-8 (%s)", k, noControls)
		}
		if v := s.Matchers[k]; !schemas.ValidText(v) {
			return fmt.Errorf("matcher %s: value %q has a control character or is not UTF-8 (%s)", k, v, noControls)
		}
	}
	for _, f := range []struct{ name, v string }{{"created_by", s.CreatedBy}, {"comment", s.Comment}} {
		if !schemas.ValidText(f.v) {
			return fmt.Errorf("%s %q has a control character or is not UTF-8 (%s)", f.name, f.v, noControls)
		}
	}
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"starts_at", s.StartsAt}, {"ends_at", s.EndsAt}} {
		if err := checkStored(f.t); err != nil {
			return fmt.Errorf("%s %w", f.name, err)
		}
	}
	if !s.EndsAt.After(s.StartsAt) {
		return fmt.Errorf("ends_at %s is not after starts_at %s", s.EndsAt.UTC().Format(time.RFC3339), s.StartsAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkStored says why t cannot be stored in the alerts tables, or nil.
func checkStored(t time.Time) error {
	switch {
	case t.Before(MinTime):
		return fmt.Errorf("%s is before %s, the earliest time stored", t.UTC().Format(time.RFC3339), MinTime.Format(time.RFC3339))
	case t.After(MaxTime):
		return fmt.Errorf("%s is after %s, the latest time stored correctly", t.UTC().Format(time.RFC3339), MaxTime.Format(time.RFC3339))
	}
	return nil
}

// Active reports whether the silence mutes at now.
func (s Silence) Active(now time.Time) bool { return !now.Before(s.StartsAt) && now.Before(s.EndsAt) }

// Matches reports whether every matcher equals the alert's value.
func (s Silence) Matches(a *Alert, r *Rule) bool {
	for k, v := range s.Matchers {
		var got string
		var ok bool
		switch k {
		case "rule":
			got, ok = a.Rule, true
		case "kind":
			got, ok = string(a.Kind), true
		default:
			if got, ok = a.Group[k]; !ok && r != nil {
				got, ok = r.Labels[k]
			}
		}
		if !ok || got != v {
			return false
		}
	}
	return true
}

// MatchersText is "rule=x tenant=acme".
func (s Silence) MatchersText() string {
	keys := slices.Sorted(maps.Keys(s.Matchers))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + s.Matchers[k]
	}
	return strings.Join(parts, " ")
}

// silencedBy returns a func reporting whether any active silence of ss
// mutes an alert at now.
func silencedBy(ss []Silence, now time.Time) func(*Alert, *Rule) bool {
	return func(a *Alert, r *Rule) bool {
		for _, s := range ss {
			if s.Active(now) && s.Matches(a, r) {
				return true
			}
		}
		return false
	}
}
