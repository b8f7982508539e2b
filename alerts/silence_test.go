package alerts

import (
	"strings"
	"testing"
	"time"
)

// Matcher values, comments and authors are shown by `alerts silence list`
// in a terminal: control characters (an ESC sequence, a tab, a line
// break) are refused, naming the field, instead of being stored.
func TestSilenceRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ matcher, want string }{
		{"tenant=a\x1b[2Jb", `matcher "tenant=a\x1b[2Jb" has a control character`},
		{"tenant=a\tb", `matcher "tenant=a\tb" has a control character`},
		{"rule=x\n", `matcher "rule=x\n" has a control character`},
		{"rule=x\u0085", `matcher "rule=x\u0085" has a control character`},
	} {
		if _, err := ParseMatchers([]string{tc.matcher}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMatchers(%q) = %v, want %q", tc.matcher, err, tc.want)
		}
	}
	if m, err := ParseMatchers([]string{"tenant=o'hare & co", "rule=é"}); err != nil || m["tenant"] != "o'hare & co" {
		t.Errorf("printable matchers: %v %v", m, err)
	}

	now := time.Now().Truncate(time.Second)
	ok := Silence{ID: "s", Matchers: map[string]string{"tenant": "acme"}, StartsAt: now, EndsAt: now.Add(time.Hour), CreatedBy: "me", Comment: "load test, ünïcode"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		change func(*Silence)
		want   string
	}{
		{func(s *Silence) { s.Comment = "a\x1b[2Jb" }, `comment "a\x1b[2Jb" has a control character`},
		{func(s *Silence) { s.Comment = "two\tcolumns" }, `comment "two\tcolumns" has a control character`},
		{func(s *Silence) { s.CreatedBy = "me\r" }, `created_by "me\r" has a control character`},
		{func(s *Silence) { s.Matchers = map[string]string{"tenant": "a\x00"} }, `matcher tenant: value "a\x00" has a control character`},
		{func(s *Silence) { s.Matchers = map[string]string{"ten\x1bant": "a"} }, `matcher name "ten\x1bant"`},
	} {
		s := ok
		tc.change(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
}
