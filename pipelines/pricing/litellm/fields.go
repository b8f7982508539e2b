package litellm

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// providerNames maps LiteLLM's `litellm_provider` to costpipe's provider
// name, the `provider` of the catalog entry (and of the events it prices).
// Providers not listed keep their LiteLLM name, and so does every
// `vertex_ai-*` provider but through ProviderName, which maps them all to
// vertex_ai. The table is documented in pipelines/pricing/README.md
// (TestProviderTableInREADME keeps the two equal).
var providerNames = map[string]string{
	"bedrock_converse":              "bedrock",
	"gemini":                        "google", // costpipe's name for the Gemini API
	"palm":                          "google",
	"text-completion-openai":        "openai",
	"azure_text":                    "azure",
	"together_ai":                   "together",
	"fireworks_ai":                  "fireworks",
	"fireworks_ai-embedding-models": "fireworks",
	"cohere_chat":                   "cohere",
	"text-completion-codestral":     "codestral",
	"text-completion-inception":     "inception",
}

// ProviderName returns costpipe's provider name for a LiteLLM
// `litellm_provider`: vertex_ai and every vertex_ai-* become vertex_ai,
// the providers of the table in pipelines/pricing/README.md are renamed,
// the others are unchanged.
func ProviderName(litellmProvider string) string {
	if litellmProvider == "vertex_ai" || strings.HasPrefix(litellmProvider, "vertex_ai-") {
		return "vertex_ai"
	}
	if p, ok := providerNames[litellmProvider]; ok {
		return p
	}
	return litellmProvider
}

// field is a rate of a catalog price level, in the order the catalog
// writes them.
type field uint8

const (
	fInput field = iota
	fCachedInput
	fCacheWrite
	fCacheWrite1h
	fOutput
	fReasoning
	fRequest
	numFields
)

// fieldNames are the catalog's names of the fields.
var fieldNames = [numFields]string{
	fInput: "input", fCachedInput: "cached_input", fCacheWrite: "cache_write",
	fCacheWrite1h: "cache_write_1h", fOutput: "output", fReasoning: "reasoning", fRequest: "request",
}

// litellmFields are LiteLLM's names of the fields (per token, except
// input_cost_per_request: USD per call).
var litellmFields = [numFields]string{
	fInput:        "input_cost_per_token",
	fCachedInput:  "cache_read_input_token_cost",
	fCacheWrite:   "cache_creation_input_token_cost",
	fCacheWrite1h: "cache_creation_input_token_cost_above_1hr",
	fOutput:       "output_cost_per_token",
	fReasoning:    "output_cost_per_reasoning_token",
	fRequest:      "input_cost_per_request",
}

// shift is the power of ten that converts the field's LiteLLM unit to the
// catalog's: per token → per 1M tokens, except the per-call request.
func (f field) shift() int {
	if f == fRequest {
		return 0
	}
	return 6
}

// serviceTierSuffixes maps LiteLLM's service-tier key suffixes to the
// catalog's service tier names.
var serviceTierSuffixes = map[string]string{
	"flex":     "flex",
	"priority": "priority",
	"batches":  "batch",
}

// priceKey matches the keys of a LiteLLM entry that the importer reads:
// a field, optionally a long-context threshold `_above_<N>k_tokens` or
// `_above_<N>_tokens`, optionally a service tier suffix. The alternation
// lists cache_creation_input_token_cost_above_1hr before its prefix; the
// rest of the key decides between them (1hr is not a threshold).
var priceKey = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|` +
		`cache_creation_input_token_cost_above_1hr|cache_creation_input_token_cost|output_cost_per_reasoning_token|` +
		`input_cost_per_request)(?:_above_([0-9]+)(k?)_tokens)?(?:_(flex|priority|batches))?$`)
})

// keyInfo is a parsed price key.
type keyInfo struct {
	f       field
	above   int64  // 0: no threshold
	service string // catalog service tier name; "": standard
}

// maxAbove bounds a threshold (the catalog's bound on `above`).
const maxAbove = 1_000_000_000

// parseKey parses a LiteLLM key; ok is false for keys the importer does not
// read. A threshold of 0 or above maxAbove gives above = -1.
func parseKey(k string) (keyInfo, bool) {
	m := priceKey().FindStringSubmatch(k)
	if m == nil {
		return keyInfo{}, false
	}
	var ki keyInfo
	for f := field(0); f < numFields; f++ {
		if litellmFields[f] == m[1] {
			ki.f = f
		}
	}
	if m[2] != "" {
		n, err := strconv.ParseInt(m[2], 10, 64)
		if m[3] == "k" {
			if n > maxAbove/1000 {
				err = strconv.ErrRange
			}
			n *= 1000
		}
		if err != nil || n < 1 || n > maxAbove {
			n = -1
		}
		ki.above = n
	}
	if m[4] != "" {
		ki.service = serviceTierSuffixes[m[4]]
	}
	return ki, true
}

// ProviderRenames lists the renamings of ProviderName as LiteLLM name →
// costpipe name pairs, sorted by LiteLLM name, "vertex_ai-*" included
// (for help texts).
func ProviderRenames() [][2]string {
	out := [][2]string{{"vertex_ai-*", "vertex_ai"}}
	for from, to := range providerNames {
		out = append(out, [2]string{from, to})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// FieldNames lists the LiteLLM fields Import reads with the catalog field
// each becomes, in the catalog's order (for help texts).
func FieldNames() [][2]string {
	out := make([][2]string, 0, numFields)
	for f := field(0); f < numFields; f++ {
		out = append(out, [2]string{litellmFields[f], fieldNames[f]})
	}
	return out
}
