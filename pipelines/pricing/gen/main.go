// Command gen generates the embedded price catalog, default_prices.yaml of
// package pricing, from LiteLLM's price list in source/ (imported by package
// litellm) merged with the hand-written source/overrides.yaml. It runs in
// the pricing package's directory:
//
//	go generate ./pipelines/pricing/   (default.go: //go:generate go run ./gen)
//	cd pipelines/pricing && go run ./gen [-check]
//
// The output is a pure function of the two source files (no clock), so
// TestGeneratedCatalogIsFresh can tell whether the committed catalog is
// what they generate. The generator refuses to write a catalog that
// pricing.Parse rejects.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/pipelines/pricing/litellm"
)

// Paths relative to the pricing package's directory.
const (
	sourceDir     = "source"
	listGlob      = "litellm-model-prices-*.json"
	overridesFile = "overrides.yaml"
	outputFile    = pricing.DefaultName
)

func main() {
	dir := flag.String("dir", ".", "the pricing package's directory: reads source/, writes "+outputFile)
	check := flag.Bool("check", false, "do not write: fail if "+outputFile+" is not what the sources generate")
	flag.Parse()
	out, err := generate(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	path := filepath.Join(*dir, outputFile)
	if *check {
		old, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(old, out) {
			fmt.Fprintf(os.Stderr, "gen: %s is out of date: run go generate ./pipelines/pricing/\n", path)
			os.Exit(1)
		}
		return
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

var snapshotName = regexp.MustCompile(`^litellm-model-prices-(\d{4}-\d{2}-\d{2})\.json$`)

// generate returns the catalog the sources in dir/source generate.
func generate(dir string) ([]byte, error) {
	lists, err := filepath.Glob(filepath.Join(dir, sourceDir, listGlob))
	if err != nil {
		return nil, err
	}
	if len(lists) != 1 {
		return nil, fmt.Errorf("want exactly one %s in %s, found %d", listGlob, filepath.Join(dir, sourceDir), len(lists))
	}
	listName := filepath.Base(lists[0])
	m := snapshotName.FindStringSubmatch(listName)
	if m == nil {
		return nil, fmt.Errorf("cannot read the snapshot date from %q: want litellm-model-prices-YYYY-MM-DD.json", listName)
	}
	snapshot := m[1]
	if _, err := time.Parse(time.DateOnly, snapshot); err != nil {
		return nil, fmt.Errorf("cannot read the snapshot date from %q: %w", listName, err)
	}
	f, err := os.Open(lists[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The importer's default: a price with more than 12 fraction digits per
	// 1M tokens is rounded (and listed in the header), not an error.
	res, err := litellm.Import(f, litellm.Options{
		Source: "LiteLLM model_prices_and_context_window.json (snapshot " + snapshot + ") and overrides.yaml",
	})
	if err != nil {
		return nil, fmt.Errorf("cannot import %s: %w", listName, err)
	}
	overrides, err := os.ReadFile(filepath.Join(dir, sourceDir, overridesFile))
	if err != nil {
		return nil, err
	}
	root, err := merge(res.YAML, overrides)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writeHeader(&b, listName, snapshot, res)
	b.WriteString("\n")
	if err := litellm.Encode(&b, root); err != nil {
		return nil, err
	}
	out := b.Bytes()
	if _, err := pricing.Parse(outputFile, out); err != nil {
		return nil, fmt.Errorf("the generated catalog is not valid: %w", err)
	}
	return out, nil
}

// merge returns the catalog of imported with overrides merged in: an
// override entry with the same provider and model (or match) as an
// imported one replaces it in place, the others are appended in their
// order; `providers` and `tenants` come from overrides.
func merge(imported, overrides []byte) (*yaml.Node, error) {
	im, err := rootOf(imported, "the imported catalog")
	if err != nil {
		return nil, err
	}
	if len(im.Content) > 0 {
		im.Content[0].HeadComment = "" // the importer's header: ours replaces it
	}
	ov, err := rootOf(overrides, overridesFile)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(ov.Content); i += 2 {
		if k := ov.Content[i].Value; k != "providers" && k != "models" && k != "tenants" {
			return nil, fmt.Errorf("%s:%d: unknown field %q (want providers, models, tenants)", overridesFile, ov.Content[i].Line, k)
		}
	}
	models := valueOf(im, "models")
	if models == nil || models.Kind != yaml.SequenceNode {
		return nil, errors.New("the imported catalog has no models")
	}
	index := make(map[string]int)
	for i, e := range models.Content {
		k, err := entryKey(e)
		if err != nil {
			return nil, fmt.Errorf("the imported catalog: %w", err)
		}
		index[k] = i
	}
	if om := valueOf(ov, "models"); om != nil {
		if om.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%s:%d: models must be a list", overridesFile, om.Line)
		}
		for _, e := range om.Content {
			k, err := entryKey(e)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", overridesFile, e.Line, err)
			}
			if i, ok := index[k]; ok {
				models.Content[i] = e
				continue
			}
			index[k] = len(models.Content)
			models.Content = append(models.Content, e)
		}
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	copyField := func(from *yaml.Node, key string) {
		for i := 0; i+1 < len(from.Content); i += 2 {
			if from.Content[i].Value == key {
				root.Content = append(root.Content, from.Content[i], from.Content[i+1])
			}
		}
	}
	copyField(im, "source")
	copyField(im, "updated")
	copyField(ov, "providers")
	copyField(im, "models")
	copyField(ov, "tenants")
	return root, nil
}

// rootOf parses data and returns its top-level mapping.
func rootOf(data []byte, name string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("cannot parse %s: %w", name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("cannot parse %s: want a mapping", name)
	}
	return doc.Content[0], nil
}

func valueOf(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// entryKey identifies a `models` item: its provider and model, or match.
func entryKey(e *yaml.Node) (string, error) {
	if e.Kind != yaml.MappingNode {
		return "", errors.New("a models item must be a mapping")
	}
	p, m, r := valueOf(e, "provider"), valueOf(e, "model"), valueOf(e, "match")
	switch {
	case p == nil || p.Kind != yaml.ScalarNode:
		return "", errors.New("a models item has no provider")
	case m != nil && r == nil && m.Kind == yaml.ScalarNode:
		return p.Value + "\x00model\x00" + m.Value, nil
	case r != nil && m == nil && r.Kind == yaml.ScalarNode:
		return p.Value + "\x00match\x00" + r.Value, nil
	}
	return "", fmt.Errorf("models item of provider %q: want exactly one of model and match", p.Value)
}

// writeHeader writes the catalog's header comment.
func writeHeader(b *bytes.Buffer, listName, snapshot string, res *litellm.Result) {
	s := res.Stats
	fmt.Fprintf(b, `# costpipe default price catalog, embedded in the binary.
#
# GENERATED FILE: do not edit. Generated by pipelines/pricing/gen from
#   source/%s: LiteLLM's community price list,
#     model_prices_and_context_window.json of https://github.com/BerriAI/litellm
#     (snapshot of %s, last_updated %s), MIT licence,
#     Copyright (c) 2023 Berri AI; see source/README.md;
#   source/overrides.yaml: hand-written provider defaults and entries.
# Regenerate after editing either: go generate ./pipelines/pricing/
#   (or: cd pipelines/pricing && go run ./gen).
#
# List prices in USD per 1M tokens (gpu_hour: USD per GPU-hour; request: USD
# per call). LiteLLM's list has no effective dates: every imported price
# applies from 1970-01-01, i.e. the snapshot's prices price all history.
# Prices change and lists have mistakes: check them against your invoices and
# pass your own catalog with --prices FILE (COSTPIPE_PRICES) to replace this
# one; `+"`costpipe prices check FILE`"+` validates a catalog; the format is in
# docs/contracts.md §2, the import rules in pipelines/pricing/README.md.
#
# Imported %d of the list's %d entries (%d from tiered_pricing tables, %d with
# long-context tiers); %d name conflicts resolved (the loser keeps its full
# LiteLLM key as its model name).
`, listName, snapshot, res.LastUpdated, s.Imported, s.Entries, s.FromTieredPricing, s.WithLongContext, len(s.Conflicts))
	if n := len(s.CacheHitAsCacheRead); n > 0 {
		fmt.Fprintf(b, "# %d entries without cache_read_input_token_cost take their cache-read price\n", n)
		b.WriteString("# (cached_input) from input_cost_per_token_cache_hit.\n")
	}
	if n := len(s.AnthropicCacheWrite1h); n > 0 {
		fmt.Fprintf(b, "# %d Claude entries without cache_creation_input_token_cost_above_1hr take their\n", n)
		b.WriteString("# 1-hour cache write price (cache_write_1h) from Anthropic's rule, 2 × input\n")
		b.WriteString("# (their 5-minute cache write is Anthropic's 1.25 × input).\n")
	}
	if len(s.Rounded) > 0 {
		entries := map[string]bool{}
		for _, r := range s.Rounded {
			entries[r.Key] = true
		}
		fmt.Fprintf(b, "# %d prices of %d entries have more than 12 fraction digits per 1M tokens (float\n", len(s.Rounded), len(entries))
		b.WriteString("# artefacts of the list); the list's USD per token -> the catalog's USD per 1M\n")
		b.WriteString("# tokens, rounded half to even to 12 fraction digits per 1M tokens:\n")
		for _, line := range litellm.RoundedLines(s.Rounded) {
			b.WriteString("#   " + line + "\n")
		}
	}
}
