package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
)

var testNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

func newGen(t testing.TB, edit func(*Options)) *Generator {
	t.Helper()
	o := DefaultOptions()
	o.Now = fixedClock
	if edit != nil {
		edit(&o)
	}
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func generate(g *Generator, n int) []schemas.Event {
	evs := make([]schemas.Event, n)
	for i := range evs {
		g.Next(&evs[i])
	}
	return evs
}

func TestReproducibleWithSeed(t *testing.T) {
	for _, sc := range []Scenario{Steady, Growth} {
		t.Run(string(sc), func(t *testing.T) {
			edit := func(o *Options) { o.Scenario = sc; o.Seed = 42; o.DuplicateRate = 0.01 }
			a := generate(newGen(t, edit), 1000)
			b := generate(newGen(t, edit), 1000)
			for i := range a {
				if !a[i].Equal(&b[i]) {
					t.Fatalf("event %d differs between two runs with seed 42:\n%+v\n%+v", i, a[i], b[i])
				}
			}
			c := generate(newGen(t, func(o *Options) { edit(o); o.Seed = 43 }), 1000)
			same := 0
			for i := range a {
				if a[i].EventID == c[i].EventID || a[i].InputTokens == c[i].InputTokens && a[i].Model == c[i].Model {
					same++
				}
			}
			if same > 50 {
				t.Errorf("seeds 42 and 43 agree on %d of 1000 events", same)
			}
		})
	}
}

func TestEventsAreValidAndPricedAsCounted(t *testing.T) {
	cat := pricing.Default()
	for _, sc := range []Scenario{Steady, Growth} {
		t.Run(string(sc), func(t *testing.T) {
			const n = 100_000
			g := newGen(t, func(o *Options) { o.Scenario = sc; o.Rate = n; o.Duration = time.Second })
			var e schemas.Event
			var unpriced, errs int64
			ids := make(map[string]bool, n)
			for i := 0; i < n; i++ {
				g.Next(&e)
				if err := e.Validate(); err != nil {
					t.Fatalf("event %d is invalid: %v\n%+v", i, err, e)
				}
				if e.HasTTFT && e.TTFTMs > e.LatencyMs {
					t.Fatalf("event %d: ttft %v > latency %v", i, e.TTFTMs, e.LatencyMs)
				}
				if ent := cat.Lookup(e.Provider, e.Model); ent == nil {
					unpriced++
				} else if _, ok := ent.PriceAt(e.Timestamp); !ok {
					t.Fatalf("event %d: model %s/%s has no price at %v", i, e.Provider, e.Model, e.Timestamp)
				}
				if e.Status == schemas.StatusError {
					errs++
				}
				if ids[e.EventID] {
					t.Fatalf("event_id %q repeated without duplicates enabled", e.EventID)
				}
				ids[e.EventID] = true
			}
			c := g.Counts()
			if c.Unpriced != unpriced || c.Errors != errs || c.Events != n || c.Duplicates != 0 {
				t.Errorf("counts %+v, events show %d unpriced and %d errors", c, unpriced, errs)
			}
			if share := float64(unpriced) / n; share < 0.003 || share > 0.007 {
				t.Errorf("unpriced share %.4f, want about 0.005", share)
			}
			// 1% baseline plus incidents (≈2% of slots at 20–60%).
			if share := float64(errs) / n; share < 0.005 || share > 0.05 {
				t.Errorf("error share %.4f, want about 0.01–0.02", share)
			}
		})
	}
}

func TestProfilesMatchTheDefaultCatalog(t *testing.T) {
	cat := pricing.Default()
	for _, p := range knownProfiles {
		if !pricedAt(cat, p.provider, p.model, testNow.Add(-60*24*time.Hour)) {
			t.Errorf("profile %s/%s is not priced by the default catalog", p.provider, p.model)
		}
	}
	for _, p := range unpricedProfiles {
		if cat.Lookup(p.provider, p.model) != nil {
			t.Errorf("profile %s/%s should be unpriced but the default catalog prices it", p.provider, p.model)
		}
	}
	// The embedded catalog (thousands of models) yields the table, not
	// thousands of generic models; its service tiers are known.
	priced, _ := selectProfiles(cat, testNow)
	if len(priced) != len(knownProfiles) {
		t.Errorf("%d models generated with the default catalog, want the %d of the table", len(priced), len(knownProfiles))
	}
	tiers := map[string]bool{}
	for _, p := range priced {
		for _, st := range p.tiers {
			tiers[st] = true
		}
	}
	if !tiers["batch"] || !tiers["flex"] || !tiers["priority"] {
		t.Errorf("service tiers of the table's models: %v, want batch, flex and priority among them", tiers)
	}
}

func TestServiceTiersAndHourCacheWrites(t *testing.T) {
	g := newGen(t, func(o *Options) { o.ErrorRate = 0; o.UnpricedRate = 0 })
	cat := pricing.Default()
	n, onTier, hour := 20_000, 0, 0
	for _, e := range generate(g, n) {
		if e.ServiceTier != "" {
			onTier++
			p, _ := cat.Lookup(e.Provider, e.Model).PriceAt(e.Timestamp)
			if !slices.Contains(p.ServiceTierNames(), e.ServiceTier) {
				t.Fatalf("%s/%s on service tier %q, which the catalog does not price", e.Provider, e.Model, e.ServiceTier)
			}
		}
		if e.CacheWrite1hTokens > 0 {
			hour++
			if e.CacheWrite1hTokens > e.CacheWriteTokens || e.Provider != "anthropic" {
				t.Fatalf("1-hour cache writes %+v", e)
			}
		}
	}
	if onTier == 0 || onTier > n/4 || hour == 0 {
		t.Errorf("%d of %d calls on a service tier (want some, under 25%%), %d with 1-hour cache writes", onTier, n, hour)
	}
}

func TestCustomCatalogChoosesModels(t *testing.T) {
	cat, err := pricing.Parse("test.yaml", []byte(`
models:
  - provider: openai
    model: gpt-4o
    prices: [{from: 2024-01-01, input: "2.50", output: "10"}]
  - provider: acme-ai
    model: acme-large
    prices: [{from: 2024-01-01, input: "1", output: "2"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	g := newGen(t, func(o *Options) { o.Catalog = cat; o.UnpricedRate = 0 })
	seen := map[string]int{}
	for _, e := range generate(g, 5000) {
		seen[e.Provider+"/"+e.Model]++
	}
	if len(seen) != 2 || seen["openai/gpt-4o"] == 0 || seen["acme-ai/acme-large"] == 0 {
		t.Errorf("models generated %v, want exactly the catalog's two", seen)
	}
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func TestDistributionsPerModel(t *testing.T) {
	g := newGen(t, func(o *Options) { o.Tenants = 200; o.ErrorRate = 0; o.UnpricedRate = 0 })
	byModel := map[string]*profile{}
	for i := range g.priced {
		byModel[g.priced[i].model] = &g.priced[i]
	}
	in := map[string][]float64{}
	out := map[string][]float64{}
	lat := map[string][]float64{}
	for _, e := range generate(g, 300_000) {
		if e.Status != schemas.StatusOK {
			continue
		}
		p := byModel[e.Model]
		in[e.Model] = append(in[e.Model], float64(e.InputTokens))
		out[e.Model] = append(out[e.Model], float64(e.OutputTokens))
		lat[e.Model] = append(lat[e.Model], e.LatencyMs)
		switch {
		case p.reasoning > 0 && e.ReasoningTokens == 0 && e.OutputTokens > 20:
			t.Fatalf("%s is a reasoning model, event without reasoning tokens: %+v", e.Model, e)
		case p.reasoning == 0 && e.ReasoningTokens > 0:
			t.Fatalf("%s is not a reasoning model, event with reasoning tokens: %+v", e.Model, e)
		case p.embedding && (e.OutputTokens != 0 || e.HasTTFT || e.Operation != "embeddings"):
			t.Fatalf("embedding event with output or TTFT: %+v", e)
		case p.gpus > 0 && e.GPUMs < e.LatencyMs:
			t.Fatalf("self-hosted event with gpu_ms %v < latency %v", e.GPUMs, e.LatencyMs)
		}
	}
	checked := 0
	for model, xs := range in {
		if len(xs) < 500 {
			continue
		}
		checked++
		p := byModel[model]
		if m := median(xs); m < p.inMed/1.3 || m > p.inMed*1.3 {
			t.Errorf("%s: median input tokens %v, profile %v", model, m, p.inMed)
		}
		if p.embedding {
			continue
		}
		if m := median(out[model]); m < p.outMed/1.3 || m > p.outMed*1.3 {
			t.Errorf("%s: median output tokens %v, profile %v", model, m, p.outMed)
		}
		// Latency grows with output: compare the events above and below
		// the median output.
		mo := median(out[model])
		var lo, hi []float64
		for i, o := range out[model] {
			if o < mo/2 {
				lo = append(lo, lat[model][i])
			} else if o > mo*2 {
				hi = append(hi, lat[model][i])
			}
		}
		if len(lo) > 20 && len(hi) > 20 && median(hi) < 1.5*median(lo) {
			t.Errorf("%s: median latency %v for long outputs, %v for short ones: want clearly longer", model, median(hi), median(lo))
		}
	}
	if checked < 15 {
		t.Errorf("only %d models had enough events to check", checked)
	}
}

func TestGrowthCompoundsOverTheSpan(t *testing.T) {
	const n = 300_000
	g := newGen(t, func(o *Options) {
		o.Scenario = Growth
		o.Rate, o.Duration = n, time.Second
		o.GrowthFactor = 100
		o.SimulatedSpan = 30 * 24 * time.Hour
	})
	start := testNow.Add(-30 * 24 * time.Hour)
	var first, last int
	var byHour [24]int
	for _, e := range generate(g, n) {
		if e.Timestamp.Before(start) || e.Timestamp.After(testNow) {
			t.Fatalf("timestamp %v outside the span [%v, %v]", e.Timestamp, start, testNow)
		}
		switch d := e.Timestamp.Sub(start); {
		case d < 24*time.Hour:
			first++
		case d >= 29*24*time.Hour:
			last++
		}
		byHour[e.Timestamp.Hour()]++
	}
	ratio := float64(last) / float64(first)
	t.Logf("first day %d events, last day %d: ratio %.1f", first, last, ratio)
	if ratio < 80 || ratio > 120 {
		t.Errorf("last/first day = %d/%d = %.1f, want 100 ± 20%%", last, first, ratio)
	}
	if byHour[15] < 2*byHour[3] {
		t.Errorf("diurnal shape: %d events at 15h, %d at 3h; want the afternoon clearly busier", byHour[15], byHour[3])
	}
}

func TestDuplicates(t *testing.T) {
	const n = 50_000
	g := newGen(t, func(o *Options) { o.DuplicateRate = 0.05 })
	byID := map[string]schemas.Event{}
	repeats := 0
	for _, e := range generate(g, n) {
		if orig, ok := byID[e.EventID]; ok {
			repeats++
			if !orig.Equal(&e) {
				t.Fatalf("duplicate %q differs from its original:\n%+v\n%+v", e.EventID, orig, e)
			}
			continue
		}
		byID[e.EventID] = e
	}
	if c := g.Counts(); int64(repeats) != c.Duplicates {
		t.Errorf("%d repeated event_ids, Counts.Duplicates %d", repeats, c.Duplicates)
	}
	if share := float64(repeats) / n; share < 0.04 || share > 0.06 {
		t.Errorf("duplicate share %.4f, want about 0.05", share)
	}
}

// Growth traffic with duplicates still reaches the end of its span: a
// duplicate takes a place in the span, not the span's last minutes (it cut
// the last 0.2% of a 35-day span, 17–31 minutes, and the demo's current
// day stayed empty until half past midnight).
func TestGrowthWithDuplicatesReachesNow(t *testing.T) {
	const n = 10_000
	g := newGen(t, func(o *Options) {
		o.Scenario = Growth
		o.Rate, o.Duration = n, time.Second
		o.DuplicateRate = 0.05
		o.SimulatedSpan = 35 * 24 * time.Hour
	})
	var newest time.Time
	for _, e := range generate(g, n) {
		if e.Timestamp.After(newest) {
			newest = e.Timestamp
		}
	}
	// 10,000 events over 35 days: about 5 minutes apart at the end.
	if gap := testNow.Sub(newest); gap > 30*time.Minute {
		t.Errorf("the newest event is %v before the end of the span", gap)
	}
}

func TestRunWritesJSONLinesAtRate(t *testing.T) {
	g := newGen(t, func(o *Options) { o.Now = nil; o.Duration = 300 * time.Millisecond })
	var buf bytes.Buffer
	var progress []Stats
	g.opts.Progress = func(s Stats) { progress = append(progress, s) }
	start := time.Now()
	st, err := Run(context.Background(), g, NewWriterSink(&buf), 5000)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 290*time.Millisecond || d > 2*time.Second {
		t.Errorf("Run took %v, want about 300ms", d)
	}
	if st.Written != 1500 || st.Events != 1500 {
		t.Errorf("stats %+v, want 1500 written", st)
	}
	if len(progress) == 0 || progress[len(progress)-1].Written != 1500 {
		t.Errorf("progress calls %+v, want the final stats last", progress)
	}
	sc := bufio.NewScanner(&buf)
	lines := 0
	var e schemas.Event
	for sc.Scan() {
		if err := schemas.DecodeJSON(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", lines+1, err)
		}
		if d := time.Since(e.Timestamp); d < 0 || d > 5*time.Second {
			t.Fatalf("line %d: steady timestamp %v is not now", lines+1, e.Timestamp)
		}
		lines++
	}
	if lines != 1500 {
		t.Errorf("wrote %d lines, want 1500", lines)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	g := newGen(t, func(o *Options) { o.Duration = 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var buf bytes.Buffer
	st, err := Run(ctx, g, NewWriterSink(&buf), 1000)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("Run = %v before ctx ended", err)
	}
	if st.Written < 150 || st.Written > 250 {
		t.Errorf("wrote %d events in 200ms at 1000/s", st.Written)
	}
	if got := int64(strings.Count(buf.String(), "\n")); got != st.Written {
		t.Errorf("sink holds %d lines, stats say %d written: not flushed", got, st.Written)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"defaults", func(*Options) {}, ""},
		{"rate", func(o *Options) { o.Rate = 0 }, "rate 0"},
		{"rate nan", func(o *Options) { o.Rate = math.NaN() }, "rate NaN"},
		{"rate inf", func(o *Options) { o.Rate = math.Inf(1) }, "rate +Inf"},
		{"rate beyond any generator", func(o *Options) { o.Rate = 1e300 }, "at most 100000000"},
		{"duration", func(o *Options) { o.Duration = -time.Second }, "-1s"},
		{"tenants", func(o *Options) { o.Tenants = 0 }, "0 tenants"},
		{"scenario", func(o *Options) { o.Scenario = "spiky" }, `scenario "spiky"`},
		{"growth forever", func(o *Options) { o.Scenario, o.Duration = Growth, 0 }, "without a duration"},
		{"factor", func(o *Options) { o.GrowthFactor = 0.5 }, "growth factor 0.5"},
		{"span", func(o *Options) { o.SimulatedSpan = time.Minute }, "span of 1m0s"},
		{"diurnal", func(o *Options) { o.DiurnalAmplitude = 1 }, "amplitude 1"},
		{"errors", func(o *Options) { o.ErrorRate = 1.5 }, "error rate 1.5"},
		{"duplicates", func(o *Options) { o.DuplicateRate = -0.1 }, "duplicate rate -0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.edit(&o)
			err := o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			if _, err := New(o); err == nil {
				t.Fatal("New accepted invalid options")
			}
		})
	}
}

// BenchmarkNext measures generation on one goroutine (target: several
// million events/s).
func BenchmarkNext(b *testing.B) {
	for _, sc := range []Scenario{Steady, Growth} {
		b.Run(string(sc), func(b *testing.B) {
			o := DefaultOptions()
			o.Scenario = sc
			o.Rate, o.Duration = 1e6, time.Minute
			g, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			var e schemas.Event
			b.ReportAllocs()
			for b.Loop() {
				g.Next(&e)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
