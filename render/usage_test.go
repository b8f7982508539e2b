package render

import (
	"strings"
	"testing"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

// TestUsageWhatIfNoteSaysUnpricedCountZero: a what-if with a catalog of a
// few models leaves the others' calls unpriced, at 0, where `reprice`
// keeps their stored cost; the note says so, as a user compared a −63%
// what-if with a −20% reprice dry run of the same file.
func TestUsageWhatIfNoteSaysUnpricedCountZero(t *testing.T) {
	t.Parallel()
	row := analytics.UsageRow{Group: map[analytics.Dim]string{"model": "gpt-4o"}, Requests: 10, UnpricedRequests: 4,
		CostUSD: pricing.MustParsePico("1.5"), Reprice: &analytics.Repriced{CostUSD: pricing.MustParsePico("4")}}
	note := func(unpriced uint64) string {
		row.UnpricedRequests = unpriced
		tab := Usage(UsageReport{Scope: Scope{By: []analytics.Dim{"model"}}, Rows: []analytics.UsageRow{row}, Compare: true, RepricedWith: "negotiated.yaml"})
		return strings.Join(tab.Notes, "\n")
	}
	if n := note(4); !strings.Contains(n, "count 0 here (reprice would keep their stored cost)") {
		t.Errorf("notes with 4 unpriced calls:\n%s", n)
	}
	if n := note(0); strings.Contains(n, "count 0 here") {
		t.Errorf("notes with every call priced:\n%s", n)
	}
}
