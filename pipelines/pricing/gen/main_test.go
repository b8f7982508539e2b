package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/pricing/litellm"
)

// TestGeneratedCatalogIsFresh fails when the committed default catalog is
// not what its sources generate: run go generate ./pipelines/pricing/.
func TestGeneratedCatalogIsFresh(t *testing.T) {
	want, err := generate("..")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../" + outputFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("../%s is not what ../source generates: run go generate ./pipelines/pricing/", outputFile)
	}
	again, err := generate("..")
	if err != nil || !bytes.Equal(again, want) {
		t.Fatalf("two generations differ (%v)", err)
	}
}

func TestMerge(t *testing.T) {
	imported := `# importer's header
source: "s"
updated: "2026-07-24"
models:
  - provider: "a"
    model: "x"
    prices: [{from: "1970-01-01", input: "1", output: "1"}]
  - provider: "a"
    model: "y"
    prices: [{from: "1970-01-01", input: "2", output: "2"}]
`
	overrides := `providers:
  a:
    service_tiers:
      batch: {multiplier: "0.5"}
models:
  # replaces a/y in place
  - provider: a
    model: y
    prices: [{from: 2024-01-01, input: "3", output: "3"}]
  - provider: a
    match: '^x'
    prices: [{from: 2024-01-01, input: "4", output: "4"}]
tenants:
  t: {discount: "0.1"}
`
	root, err := merge([]byte(imported), []byte(overrides))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := litellm.Encode(&b, root); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "importer's header") || !strings.Contains(out, "# replaces a/y in place") {
		t.Errorf("comments:\n%s", out)
	}
	cat, err := pricing.Parse("merged.yaml", b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var names []string
	for _, e := range cat.Entries() {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "x y ^x" || cat.Lookup("a", "y").Prices[0].Input != pricing.MustParsePico("3") ||
		len(cat.Tenants()) != 1 || len(cat.ProviderServiceTiers("a")) != 1 || cat.Source() != "s" {
		t.Errorf("merged catalog: entries %v\n%s", names, out)
	}
	for _, bad := range []string{"model: [x]", "models: {}", "other: 1", "models: [{model: m}]", "models: [{provider: p, model: m, match: x}]"} {
		if _, err := merge([]byte(imported), []byte(bad)); err == nil {
			t.Errorf("merge accepted overrides %q", bad)
		}
	}
}
