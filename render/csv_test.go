package render

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/costpipe/costpipe/analytics"
	"github.com/costpipe/costpipe/pipelines/pricing"
)

func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "",
		"acme":                           "acme",
		"1-2":                            "1-2",
		"o'hare":                         "o'hare",
		"=1+1":                           "'=1+1",
		`=HYPERLINK("http://x","click")`: `'=HYPERLINK("http://x","click")`,
		"+SUM(A1:A9)":                    "'+SUM(A1:A9)",
		"-2+3":                           "'-2+3",
		"-cmd|' /C calc'!A0":             "'-cmd|' /C calc'!A0",
		"@SUM(1)":                        "'@SUM(1)",
		"\t=1":                           "'\t=1",
		"\r=1":                           "'\r=1",
		"-":                              "'-",
		"+":                              "'+",
		"-1e5x":                          "'-1e5x",
		"-1.":                            "'-1.",
		"-.5":                            "'-.5",
		// Numbers stay numbers.
		"-1.5":            "-1.5",
		"+2":              "+2",
		"-3e-7":           "-3e-7",
		"-0.000123456789": "-0.000123456789",
		"-12E+3":          "-12E+3",
		"42":              "42",
	} {
		if got := CSVCell(in); got != want {
			t.Errorf("CSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestUsageCSVNeutralisesFormulas: text cells that a spreadsheet would run
// get a leading quote, numbers (a negative cost too) do not.
func TestUsageCSVNeutralisesFormulas(t *testing.T) {
	by := []analytics.Dim{analytics.Dim("tenant"), analytics.Dim("model"), analytics.Dim("error_type")}
	rows := []analytics.UsageRow{{
		Group:    map[analytics.Dim]string{"tenant": `=HYPERLINK("http://evil","x")`, "model": "-2+3", "error_type": "@SUM(1)"},
		Requests: 3,
		CostUSD:  pricing.MustParsePico("-1.5"),
	}, {
		Group:    map[analytics.Dim]string{"tenant": "acme", "model": "+cmd", "error_type": "\t=1"},
		Requests: 1,
		CostUSD:  pricing.MustParsePico("0.25"),
	}}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, Usage(UsageReport{Scope: Scope{By: by}, Rows: rows})); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records:\n%s", len(recs), buf.String())
	}
	costCol := -1
	for i, h := range recs[0] {
		if h == "cost_usd" {
			costCol = i
		}
	}
	for _, c := range []struct {
		row, col int
		want     string
	}{
		{1, 0, `'=HYPERLINK("http://evil","x")`}, {1, 1, "'-2+3"}, {1, 2, "'@SUM(1)"}, {1, 3, "3"},
		{1, costCol, "-1.500000000000"},
		{2, 0, "acme"}, {2, 1, "'+cmd"}, {2, 2, "'\t=1"}, {2, costCol, "0.250000000000"},
	} {
		if got := recs[c.row][c.col]; got != c.want {
			t.Errorf("row %d %s = %q, want %q", c.row, recs[0][c.col], got, c.want)
		}
	}
}
