package litellm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// FuzzImport checks that Import never panics and that whatever it accepts
// is a valid catalog with one entry per imported model, written the same
// way every time; and that Strict accepts exactly the lists that need no
// rounding, with the same catalog.
func FuzzImport(f *testing.F) {
	for _, s := range []string{
		`{"sample_spec": {}, "last_updated": "2026-07-24T18:23:43+00:00", "gpt-5": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-07, "input_cost_per_token_flex": 6.25e-07, "input_cost_per_token_above_272k_tokens": 2.5e-06, "input_cost_per_token_above_272k_tokens_priority": 5e-06, "output_cost_per_token_priority": 2e-05}}`,
		`{"claude-sonnet-4-5": {"litellm_provider": "anthropic", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05, "cache_creation_input_token_cost": 3.75e-06, "cache_creation_input_token_cost_above_1hr": 6e-06, "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-05, "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_reasoning_token": 1.5e-05, "input_cost_per_request": 0.001}}`,
		`{"dashscope/q": {"litellm_provider": "dashscope", "tiered_pricing": [{"input_cost_per_token": 1e-06, "range": [0, 32000.0]}, {"input_cost_per_token": 2e-06, "cache_read_input_token_cost": 0, "range": [32000, 1e6]}]}}`,
		`{"gemini/x": {"litellm_provider": "gemini", "input_cost_per_token": 1e-06}, "palm/x": {"litellm_provider": "palm", "input_cost_per_token": 2e-06}, "x": {"litellm_provider": "gemini", "input_cost_per_token": 0}, "google/x": {"litellm_provider": "google", "input_cost_per_token": 0}}`,
		`{"a: b\n\u2028": {"litellm_provider": "p #1", "input_cost_per_token": 1E-6, "input_cost_per_token_cache_hit": 2e-6}}`,
		`{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-19}}`,
		`{"databricks/m": {"litellm_provider": "databricks", "input_cost_per_token": 2.9999900000000002e-06, "output_cost_per_token": 1.5000020000000002e-05}}`,
		`{"a\nmodels: []\n#": {"litellm_provider": "p", "input_cost_per_token": 1.5e-18, "input_cost_per_token_cache_hit": 2.5e-19}}`,
		`{"deepseek/x": {"litellm_provider": "deepseek", "input_cost_per_token": 1.4e-07, "input_cost_per_token_cache_hit": 1.4e-08}}`,
		`{"m": {"litellm_provider": "p", "input_cost_per_token": 1e-06, "input_cost_per_token_above_0_tokens": 1e-06, "input_cost_per_token_above_9999999999k_tokens": 1e-06}}`,
		`[]`, `{`, `{"m": 1}`, `{"m": {"tiered_pricing": [{"range": [1, 0]}]}}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, strict bool) {
		res, err := Import(bytes.NewReader(data), Options{Strict: strict})
		if err != nil {
			return
		}
		if strict && len(res.Stats.Rounded) > 0 {
			t.Fatalf("Strict rounded %v", res.Stats.Rounded)
		}
		if !strict {
			sres, serr := Import(bytes.NewReader(data), Options{Strict: true})
			var ie *InexactError
			switch {
			case len(res.Stats.Rounded) == 0 && (serr != nil || !bytes.Equal(sres.YAML, res.YAML)):
				t.Fatalf("nothing rounded, but Strict gives %v", serr)
			case len(res.Stats.Rounded) > 0 && !errors.As(serr, &ie):
				t.Fatalf("%d prices rounded, but Strict gives %v, not an InexactError", len(res.Stats.Rounded), serr)
			}
		}
		cat, err := pricing.Parse("fuzz.yaml", res.YAML)
		if err != nil {
			t.Fatalf("imported catalog does not parse: %v\n%s", err, res.YAML)
		}
		if n := len(cat.Entries()); n != res.Stats.Imported {
			t.Fatalf("%d entries, %d imported", n, res.Stats.Imported)
		}
		again, err := Import(bytes.NewReader(data), Options{Strict: strict})
		if err != nil || !bytes.Equal(again.YAML, res.YAML) {
			t.Fatalf("second import differs: %v", err)
		}
	})
}
