package loadgen

import (
	"strings"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
)

// profile is how one model's calls look: log-normal token counts and
// latencies (a median and the σ of the underlying normal), prompt caching,
// reasoning, and the model's share of traffic.
type profile struct {
	provider, model string
	weight          float64 // relative popularity
	embedding       bool    // an embeddings model: no output, no TTFT

	inMed, inSigma   float64 // input tokens
	outMed, outSigma float64 // output tokens (visible + reasoning)
	cacheProb        float64 // chance that part of the prompt is read from cache
	cacheWriteProb   float64 // chance that part of the prompt is written to cache
	reasoning        float64 // median share of the output that is reasoning
	ttftMed          float64 // ms before the first (visible) token, without reasoning
	tokPerSec        float64 // output tokens per second
	gpus             float64 // self-hosted: GPUs per call, for gpu_ms; 0 for hosted models

	unpriced bool   // deliberately not priced by the catalog
	provHash uint64 // strHash(provider), set by New
	// tiers are the service tiers the catalog prices for the model (batch,
	// flex, priority, …), set by selectProfiles; a few calls use them.
	tiers []string
}

// knownProfiles are realistic concrete model names and traffic shapes. For a
// catalog regex entry they name a concrete model it matches (a dated
// snapshot), as an application would report it. New keeps those the catalog
// prices at the start of the generated time range.
var knownProfiles = []profile{
	// OpenAI
	{provider: "openai", model: "gpt-4o", weight: 8, inMed: 1500, inSigma: 1.0, outMed: 350, outSigma: 0.8, cacheProb: 0.3, ttftMed: 450, tokPerSec: 90},
	{provider: "openai", model: "gpt-4o-2024-08-06", weight: 3, inMed: 1800, inSigma: 1.0, outMed: 300, outSigma: 0.8, cacheProb: 0.3, ttftMed: 450, tokPerSec: 90},
	{provider: "openai", model: "gpt-4o-mini", weight: 12, inMed: 1200, inSigma: 1.1, outMed: 250, outSigma: 0.9, cacheProb: 0.3, ttftMed: 350, tokPerSec: 120},
	{provider: "openai", model: "gpt-4.1-2025-04-14", weight: 5, inMed: 3000, inSigma: 1.2, outMed: 400, outSigma: 0.9, cacheProb: 0.4, ttftMed: 500, tokPerSec: 80},
	{provider: "openai", model: "gpt-4.1-mini", weight: 6, inMed: 2000, inSigma: 1.1, outMed: 300, outSigma: 0.9, cacheProb: 0.4, ttftMed: 400, tokPerSec: 110},
	{provider: "openai", model: "gpt-4.1-nano", weight: 3, inMed: 800, inSigma: 1.0, outMed: 120, outSigma: 0.8, cacheProb: 0.2, ttftMed: 250, tokPerSec: 180},
	{provider: "openai", model: "o3-2025-04-16", weight: 2, inMed: 2500, inSigma: 1.1, outMed: 1800, outSigma: 0.9, cacheProb: 0.3, reasoning: 0.7, ttftMed: 600, tokPerSec: 60},
	{provider: "openai", model: "o4-mini", weight: 4, inMed: 1500, inSigma: 1.0, outMed: 1200, outSigma: 0.9, cacheProb: 0.3, reasoning: 0.65, ttftMed: 400, tokPerSec: 120},
	{provider: "openai", model: "gpt-5", weight: 6, inMed: 2500, inSigma: 1.2, outMed: 1200, outSigma: 1.0, cacheProb: 0.4, reasoning: 0.5, ttftMed: 600, tokPerSec: 70},
	{provider: "openai", model: "gpt-5-mini-2025-08-07", weight: 5, inMed: 1500, inSigma: 1.1, outMed: 800, outSigma: 1.0, cacheProb: 0.4, reasoning: 0.5, ttftMed: 400, tokPerSec: 110},
	{provider: "openai", model: "gpt-5-nano", weight: 2, inMed: 800, inSigma: 1.0, outMed: 500, outSigma: 0.9, cacheProb: 0.3, reasoning: 0.5, ttftMed: 300, tokPerSec: 160},
	{provider: "openai", model: "text-embedding-3-small", weight: 8, embedding: true, inMed: 400, inSigma: 0.9},
	{provider: "openai", model: "text-embedding-3-large", weight: 2, embedding: true, inMed: 500, inSigma: 0.9},
	// Anthropic
	{provider: "anthropic", model: "claude-sonnet-4-5-20250929", weight: 10, inMed: 4000, inSigma: 1.1, outMed: 500, outSigma: 0.9, cacheProb: 0.6, cacheWriteProb: 0.15, ttftMed: 900, tokPerSec: 70},
	{provider: "anthropic", model: "claude-sonnet-4-20250514", weight: 3, inMed: 3500, inSigma: 1.1, outMed: 450, outSigma: 0.9, cacheProb: 0.5, cacheWriteProb: 0.15, ttftMed: 900, tokPerSec: 70},
	{provider: "anthropic", model: "claude-haiku-4-5-20251001", weight: 6, inMed: 2500, inSigma: 1.0, outMed: 300, outSigma: 0.9, cacheProb: 0.5, cacheWriteProb: 0.1, ttftMed: 500, tokPerSec: 150},
	{provider: "anthropic", model: "claude-opus-4-1-20250805", weight: 1.5, inMed: 5000, inSigma: 1.1, outMed: 600, outSigma: 0.9, cacheProb: 0.6, cacheWriteProb: 0.15, ttftMed: 1500, tokPerSec: 40},
	{provider: "anthropic", model: "claude-3-5-haiku-20241022", weight: 2, inMed: 1500, inSigma: 1.0, outMed: 250, outSigma: 0.8, cacheProb: 0.3, cacheWriteProb: 0.1, ttftMed: 500, tokPerSec: 120},
	// Google
	{provider: "google", model: "gemini-2.5-pro", weight: 3, inMed: 6000, inSigma: 1.3, outMed: 900, outSigma: 1.0, cacheProb: 0.3, reasoning: 0.4, ttftMed: 1200, tokPerSec: 80},
	{provider: "google", model: "gemini-2.5-flash", weight: 8, inMed: 3000, inSigma: 1.2, outMed: 500, outSigma: 1.0, cacheProb: 0.3, reasoning: 0.2, ttftMed: 500, tokPerSec: 180},
	{provider: "google", model: "gemini-2.5-flash-lite", weight: 3, inMed: 1500, inSigma: 1.1, outMed: 200, outSigma: 0.9, cacheProb: 0.2, ttftMed: 300, tokPerSec: 250},
	{provider: "google", model: "gemini-2.0-flash-001", weight: 2, inMed: 2000, inSigma: 1.1, outMed: 300, outSigma: 0.9, cacheProb: 0.2, ttftMed: 350, tokPerSec: 200},
	{provider: "google", model: "gemini-embedding-001", weight: 2, embedding: true, inMed: 350, inSigma: 0.9},
	// Mistral
	{provider: "mistral", model: "mistral-large-2411", weight: 1.5, inMed: 2000, inSigma: 1.0, outMed: 400, outSigma: 0.9, ttftMed: 500, tokPerSec: 60},
	{provider: "mistral", model: "mistral-small-latest", weight: 2, inMed: 1200, inSigma: 1.0, outMed: 250, outSigma: 0.9, ttftMed: 300, tokPerSec: 130},
	{provider: "mistral", model: "codestral-2501", weight: 1, inMed: 2500, inSigma: 1.1, outMed: 200, outSigma: 1.0, ttftMed: 250, tokPerSec: 150},
	// DeepSeek
	{provider: "deepseek", model: "deepseek-chat", weight: 3, inMed: 2000, inSigma: 1.1, outMed: 400, outSigma: 0.9, cacheProb: 0.5, ttftMed: 700, tokPerSec: 50},
	{provider: "deepseek", model: "deepseek-reasoner", weight: 2, inMed: 2000, inSigma: 1.1, outMed: 2000, outSigma: 0.9, cacheProb: 0.5, reasoning: 0.75, ttftMed: 800, tokPerSec: 45},
	// Hosted open models
	{provider: "groq", model: "llama-3.3-70b-versatile", weight: 2, inMed: 1500, inSigma: 1.0, outMed: 300, outSigma: 0.9, ttftMed: 150, tokPerSec: 280},
	{provider: "groq", model: "llama-3.1-8b-instant", weight: 1.5, inMed: 800, inSigma: 1.0, outMed: 200, outSigma: 0.9, ttftMed: 100, tokPerSec: 600},
	{provider: "together", model: "meta-llama/Llama-3.3-70B-Instruct-Turbo", weight: 1.5, inMed: 1500, inSigma: 1.0, outMed: 300, outSigma: 0.9, ttftMed: 300, tokPerSec: 120},
	{provider: "fireworks", model: "accounts/fireworks/models/llama-v3p1-8b-instruct", weight: 1, inMed: 800, inSigma: 1.0, outMed: 200, outSigma: 0.9, ttftMed: 200, tokPerSec: 250},
	{provider: "bedrock", model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", weight: 2, inMed: 4000, inSigma: 1.1, outMed: 500, outSigma: 0.9, ttftMed: 1000, tokPerSec: 65},
	{provider: "bedrock", model: "meta.llama3-3-70b-instruct-v1:0", weight: 1, inMed: 1500, inSigma: 1.0, outMed: 300, outSigma: 0.9, ttftMed: 400, tokPerSec: 90},
	// Self-hosted, priced per GPU-hour
	{provider: "self-hosted", model: "llama-3.1-8b-instruct", weight: 2, inMed: 1000, inSigma: 1.0, outMed: 250, outSigma: 0.9, ttftMed: 120, tokPerSec: 150, gpus: 1},
	{provider: "self-hosted", model: "qwen2.5-72b-instruct", weight: 1, inMed: 2000, inSigma: 1.0, outMed: 400, outSigma: 0.9, ttftMed: 350, tokPerSec: 40, gpus: 4},
}

// unpricedProfiles are models that catalogs typically do not price:
// fine-tuned snapshots and providers without an entry. New keeps those the
// catalog indeed leaves unpriced.
var unpricedProfiles = []profile{
	{provider: "openai", model: "ft:gpt-4o-mini-2024-07-18:acme-corp::A1b2C3d4", weight: 1, inMed: 900, inSigma: 0.9, outMed: 150, outSigma: 0.8, ttftMed: 350, tokPerSec: 120, unpriced: true},
	// An Azure deployment reports its own name, which no public list knows.
	{provider: "azure", model: "acme-gpt4o-prod", weight: 1, inMed: 2000, inSigma: 1.0, outMed: 400, outSigma: 0.9, ttftMed: 500, tokPerSec: 80, unpriced: true},
	{provider: "fireworks", model: "accounts/acme-corp/models/support-ft-v3", weight: 1, inMed: 2500, inSigma: 1.0, outMed: 300, outSigma: 0.9, ttftMed: 400, tokPerSec: 60, unpriced: true},
}

// maxGeneric bounds the catalog models without a known profile that a
// custom catalog adds to the traffic.
const maxGeneric = 256

// genericProfile is the shape of a catalog model the table does not know.
func genericProfile(provider, model string) profile {
	p := profile{provider: provider, model: model, weight: 1, inMed: 1500, inSigma: 1.0, outMed: 300, outSigma: 0.9,
		cacheProb: 0.2, ttftMed: 500, tokPerSec: 90}
	if strings.Contains(model, "embed") {
		p = profile{provider: provider, model: model, weight: 1, embedding: true, inMed: 400, inSigma: 0.9}
	}
	if provider == "self-hosted" {
		p.gpus = 1
	}
	return p
}

// pricedAt reports whether cat prices the model at t.
func pricedAt(cat *pricing.Catalog, provider, model string, t time.Time) bool {
	e := cat.Lookup(provider, model)
	if e == nil {
		return false
	}
	_, ok := e.PriceAt(t)
	return ok
}

// selectProfiles returns the priced and the unpriced models to generate:
// the known profiles the catalog prices from `from` on; when the catalog
// prices fewer than half of them (a catalog of one's own models), also its
// exactly-named entries the table lacks (with a generic shape, at most
// maxGeneric); and the unpriced profiles the catalog does not price. If the
// catalog prices none of them, the table's models are used anyway (and will
// show as unpriced). A big public catalog (the embedded one has thousands
// of models) thus yields the realistic table, not thousands of models.
func selectProfiles(cat *pricing.Catalog, from time.Time) (priced, unpriced []profile) {
	have := map[[2]string]bool{}
	for _, p := range knownProfiles {
		if pricedAt(cat, p.provider, p.model, from) {
			priced = append(priced, p)
			have[[2]string{p.provider, p.model}] = true
		}
	}
	if len(priced) < len(knownProfiles)/2 {
		generic := 0
		for _, e := range cat.Entries() {
			if generic == maxGeneric {
				break
			}
			if e.Model == "" || have[[2]string{e.Provider, e.Model}] || !pricedAt(cat, e.Provider, e.Model, from) {
				continue
			}
			priced = append(priced, genericProfile(e.Provider, e.Model))
			have[[2]string{e.Provider, e.Model}] = true
			generic++
		}
	}
	for i := range priced {
		if p, ok := cat.Lookup(priced[i].provider, priced[i].model).PriceAt(from); ok {
			priced[i].tiers = p.ServiceTierNames()
		}
	}
	if len(priced) == 0 {
		priced = append(priced, knownProfiles...)
	}
	for _, p := range unpricedProfiles {
		if cat.Lookup(p.provider, p.model) == nil {
			unpriced = append(unpriced, p)
		}
	}
	if len(unpriced) == 0 {
		p := unpricedProfiles[0]
		p.provider, p.model = "unpriced-provider", "unpriced-model"
		unpriced = append(unpriced, p)
	}
	return priced, unpriced
}
