// Package loadgen generates realistic inference-call traffic for costpipe:
// load tests, demos and benchmarks of the whole pipeline.
//
// A Generator makes events, one per Next call: tenants of Zipf-distributed
// size, each using a few models of the price catalog (concrete model names,
// dated snapshots for the catalog's regex entries), log-normal token counts
// and latencies per model (prompt caching, reasoning tokens for reasoning
// models, TTFT, latency growing with the output), a baseline error rate with
// error bursts (10-minute incidents of one provider), a small share of calls
// to models the catalog does not price (they must show as unpriced), and
// optionally re-sent duplicates with the same event_id.
//
// The steady scenario stamps events with the clock's current time. The
// growth scenario backdates them across Options.SimulatedSpan, which ends at
// the clock's time when New is called: the Rate × Duration events of a run
// are spread with a density that compounds exponentially, so the last
// simulated day carries GrowthFactor times the traffic of the first, with a
// diurnal swing (peak at 15:00 UTC). Events past Rate × Duration start
// another pass over the span.
//
// Everything but the steady scenario's timestamps is a function of
// Options.Seed: the same seed gives the same events, event_id included.
// (Provider incidents, bursts of failed calls, are drawn per 10-minute slot
// of the event time, so steady events started in another slot fail
// differently, and so differ after the first that does.)
//
// Run paces a Generator at a rate into a Sink: the Kafka producer SDK
// (KafkaSink), the HTTP ingest gateway (HTTPSink) or JSON lines on an
// io.Writer (WriterSink).
package loadgen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/costpipe/costpipe/pipelines/pricing"
	"github.com/costpipe/costpipe/schemas"
)

// Scenario selects the shape of the traffic over time.
type Scenario string

const (
	// Steady stamps each event with the clock's current time.
	Steady Scenario = "steady"
	// Growth backdates events across SimulatedSpan with compounding traffic.
	Growth Scenario = "growth"
)

// Options configure a Generator (and, for Duration and Progress, Run).
// Start from DefaultOptions; zero values are not replaced by defaults,
// except the nil Catalog and Now.
type Options struct {
	// Rate is the target events per second of a run. The growth scenario
	// spreads Rate × Duration events over the simulated span. Default 1000.
	Rate float64
	// Duration of a run; 0 runs until the context ends (steady only).
	// Default 10s.
	Duration time.Duration
	// Tenants is the number of tenants, from 1 to 100 000. Default 20.
	Tenants int
	// Seed makes runs reproducible. Default 1.
	Seed uint64
	// IDSalt changes the event ids, and only them: two runs with the same
	// Seed and different salts send the same traffic as different calls
	// (the second is not deduplicated away as a retry of the first). Zero
	// keeps the ids Seed alone gives.
	IDSalt uint64
	// Scenario is Steady or Growth. Default Steady.
	Scenario Scenario
	// GrowthFactor is how many times more traffic the last simulated day
	// has than the first (growth scenario), from 1 to 10^6. Default 100.
	GrowthFactor float64
	// SimulatedSpan is the time range growth events are spread over, ending
	// now, from 1h to 3 years. Default 30 days.
	SimulatedSpan time.Duration
	// DiurnalAmplitude is the relative swing of growth traffic over a day
	// (rate × (1 + A·sin), peak at 15:00 UTC), from 0 to 0.95. Default 0.5.
	DiurnalAmplitude float64
	// ErrorRate is the share of calls that fail outside incidents, from 0
	// to 1. Incidents (about 2% of 10-minute slots per provider) raise a
	// provider's error rate to 20–60%. Default 0.01.
	ErrorRate float64
	// UnpricedRate is the share of calls to models the catalog does not
	// price, from 0 to 1. Default 0.005.
	UnpricedRate float64
	// DuplicateRate is the share of events that re-send one of the last
	// 1024 events with the same event_id (and content), from 0 to 1, for
	// exercising dedupe. Default 0.
	DuplicateRate float64
	// Catalog chooses the models: those it prices at the start of the
	// generated time range. Default nil: pricing.Default().
	Catalog *pricing.Catalog
	// Now is the clock: steady timestamps, and the end of the growth span.
	// Default nil: time.Now.
	Now func() time.Time
	// Progress, when set, is called by Run about once a second and once at
	// the end, from Run's goroutine. Default nil.
	Progress func(Stats)
}

// DefaultOptions returns the defaults documented on each Options field.
func DefaultOptions() Options {
	return Options{
		Rate:             1000,
		Duration:         10 * time.Second,
		Tenants:          20,
		Seed:             1,
		Scenario:         Steady,
		GrowthFactor:     100,
		SimulatedSpan:    30 * 24 * time.Hour,
		DiurnalAmplitude: 0.5,
		ErrorRate:        0.01,
		UnpricedRate:     0.005,
	}
}

// MaxRate bounds Options.Rate: far above what one generator process
// reaches (about a million events a second), and low enough that rate ×
// duration is an exact count (a rate of 1e300 ran for its duration and
// generated nothing).
const MaxRate = 100_000_000

// Validate reports the first invalid option.
func (o Options) Validate() error {
	if !(o.Rate > 0) || o.Rate > MaxRate {
		return fmt.Errorf("cannot generate at rate %v: must be a positive number of events per second, at most %.0f", o.Rate, float64(MaxRate))
	}
	if o.Duration < 0 {
		return fmt.Errorf("cannot run for %v: duration must be ≥ 0", o.Duration)
	}
	if o.Tenants < 1 || o.Tenants > 100_000 {
		return fmt.Errorf("cannot generate %d tenants: must be from 1 to 100000", o.Tenants)
	}
	switch o.Scenario {
	case Steady:
	case Growth:
		if o.Duration == 0 {
			return errors.New("cannot run the growth scenario without a duration: it spreads rate × duration events over the simulated span")
		}
	default:
		return fmt.Errorf("cannot use scenario %q: want %q or %q", o.Scenario, Steady, Growth)
	}
	if !(o.GrowthFactor >= 1 && o.GrowthFactor <= 1e6) {
		return fmt.Errorf("cannot use growth factor %v: must be from 1 to 1000000", o.GrowthFactor)
	}
	if o.SimulatedSpan < time.Hour || o.SimulatedSpan > 3*365*24*time.Hour {
		return fmt.Errorf("cannot simulate a span of %v: must be from 1h to 3 years", o.SimulatedSpan)
	}
	if !(o.DiurnalAmplitude >= 0 && o.DiurnalAmplitude <= 0.95) {
		return fmt.Errorf("cannot use diurnal amplitude %v: must be from 0 to 0.95", o.DiurnalAmplitude)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"error", o.ErrorRate}, {"unpriced", o.UnpricedRate}, {"duplicate", o.DuplicateRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			return fmt.Errorf("cannot use %s rate %v: must be from 0 to 1", r.name, r.v)
		}
	}
	return nil
}

// Counts are what a Generator made so far. Errors and Unpriced count
// original events, not duplicates.
type Counts struct {
	Events     int64 // Next calls
	Errors     int64 // events with status "error"
	Unpriced   int64 // events for a model the catalog does not price
	Duplicates int64 // re-sent events (an earlier event_id)
}

// tenant is one generated customer and its model mix.
type tenant struct {
	name    string
	models  []*profile
	cum     []float64 // cumulative weights of models
	apps    []string
	regions []string
}

// dupRing is the number of recent events duplicates are drawn from.
const dupRing = 1024

// Generator makes events. It is deterministic for a seed and not safe for
// concurrent use. Create it with New.
type Generator struct {
	opts     Options
	rng      *rand.Rand
	priced   []profile
	unpriced []profile
	tenants  []tenant
	tcum     []float64 // cumulative tenant weights
	counter  uint64
	counts   Counts

	// growth: events are placed at t = G⁻¹(u·G(span)) for stratified
	// quantiles u, where G is the integral of the traffic density.
	start   time.Time
	span    float64 // seconds
	t       float64 // seconds into the span of the last event
	growthC float64 // growth rate, per second
	phase   float64 // diurnal phase of start, radians
	total   uint64  // events per pass over the span: Rate × Duration
	gi      uint64  // growth events placed so far
	gSpan   float64 // G(span)
	gConst  float64 // c·sin φ − ω·cos φ, the diurnal term of G at 0

	ring  []schemas.Event // recent events, for duplicates
	ringN int
	ringI int
}

// New validates opts and returns a Generator.
func New(opts Options) (*Generator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Catalog == nil {
		opts.Catalog = pricing.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	g := &Generator{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x636f737470697065))}
	now := opts.Now().UTC()
	from := now
	if opts.Scenario == Growth {
		g.start = now.Add(-opts.SimulatedSpan).Truncate(time.Millisecond)
		from = g.start
		g.span = opts.SimulatedSpan.Seconds()
		g.total = uint64(max(1, math.Round(opts.Rate*opts.Duration.Seconds())))
		days := g.span / 86400
		if days >= 2 { // the last whole day has GrowthFactor × the first day's traffic
			g.growthC = math.Log(opts.GrowthFactor) / ((days - 1) * 86400)
		} else { // the end of the span has GrowthFactor × the start's rate
			g.growthC = math.Log(opts.GrowthFactor) / g.span
		}
		secOfDay := float64(g.start.Unix()%86400) + float64(g.start.Nanosecond())/1e9
		g.phase = 2 * math.Pi * (secOfDay/86400 - 9.0/24) // sin peaks at 15:00 UTC
		s0, co0 := math.Sincos(g.phase)
		g.gConst = g.growthC*s0 - diurnalOmega*co0
		g.gSpan, _ = g.cumulative(g.span)
	}
	g.priced, g.unpriced = selectProfiles(opts.Catalog, from)
	for _, ps := range [][]profile{g.priced, g.unpriced} {
		for i := range ps {
			ps[i].provHash = strHash(ps[i].provider)
		}
	}
	g.makeTenants()
	if opts.DuplicateRate > 0 {
		g.ring = make([]schemas.Event, dupRing)
	}
	return g, nil
}

var (
	tenantNames = []string{"acme-corp", "globex", "initech", "umbrella", "hooli", "stark-industries",
		"wayne-enterprises", "wonka", "cyberdyne", "soylent", "tyrell", "massive-dynamic", "vandelay",
		"pied-piper", "dunder-mifflin", "oscorp", "aperture", "black-mesa", "gringotts", "monsters-inc"}
	appNames = []string{"support-assistant", "code-review", "search", "summarizer", "agent",
		"rag-qa", "translation", "sales-copilot", "doc-extraction", "chat"}
	regionNames = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1"}
)

// makeTenants builds the tenants from the seed: Zipf-like sizes, 3–8 models
// each (weighted by popularity, with a per-tenant preference), 1–3
// applications and 1–2 regions.
func (g *Generator) makeTenants() {
	r := g.rng
	g.tenants = make([]tenant, g.opts.Tenants)
	g.tcum = make([]float64, g.opts.Tenants)
	sum := 0.0
	for i := range g.tenants {
		tn := &g.tenants[i]
		if i < len(tenantNames) {
			tn.name = tenantNames[i]
		} else {
			tn.name = fmt.Sprintf("tenant-%05d", i)
		}
		sum += 1 / math.Pow(float64(i+1), 1.1)
		g.tcum[i] = sum

		k := min(len(g.priced), 3+r.IntN(6))
		w := make([]float64, len(g.priced))
		for j := range g.priced {
			w[j] = g.priced[j].weight * (0.25 + 1.75*r.Float64())
		}
		csum := 0.0
		for len(tn.models) < k { // weighted sampling without replacement
			total := 0.0
			for _, x := range w {
				total += x
			}
			u := r.Float64() * total
			j := 0
			for ; j < len(w)-1 && u >= w[j]; j++ {
				u -= w[j]
			}
			if w[j] == 0 {
				continue
			}
			tn.models = append(tn.models, &g.priced[j])
			csum += w[j]
			tn.cum = append(tn.cum, csum)
			w[j] = 0
		}
		for _, a := range r.Perm(len(appNames))[:1+r.IntN(3)] {
			tn.apps = append(tn.apps, appNames[a])
		}
		for _, a := range r.Perm(len(regionNames))[:1+r.IntN(2)] {
			tn.regions = append(tn.regions, regionNames[a])
		}
	}
}

// pick returns the index i of the first cum[i] > u·cum[last].
func pick(r *rand.Rand, cum []float64) int {
	u := r.Float64() * cum[len(cum)-1]
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if cum[m] > u {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// Counts returns what the Generator made so far.
func (g *Generator) Counts() Counts { return g.counts }

// Options returns the Generator's options, defaults filled in.
func (g *Generator) Options() Options { return g.opts }

// Next overwrites *e with the next event. Every event passes
// schemas.(*Event).Validate. It allocates only the event_id string; the
// Attributes maps of the few events that have one are shared between
// events and must not be modified.
func (g *Generator) Next(e *schemas.Event) {
	g.counts.Events++
	r := g.rng
	if g.ringN > 0 && r.Float64() < g.opts.DuplicateRate {
		*e = g.ring[r.IntN(g.ringN)]
		g.counts.Duplicates++
		if g.opts.Scenario == Growth {
			// Its place in the span is skipped, not the span's end: the
			// traffic still reaches now.
			g.gi++
		}
		return
	}
	ts := g.nextTime()
	tn := &g.tenants[pick(r, g.tcum)]
	var p *profile
	if g.opts.UnpricedRate > 0 && r.Float64() < g.opts.UnpricedRate {
		p = &g.unpriced[r.IntN(len(g.unpriced))]
		g.counts.Unpriced++
	} else {
		p = tn.models[pick(r, tn.cum)]
	}
	*e = schemas.Event{
		EventID:     g.nextID(),
		Timestamp:   ts,
		Tenant:      tn.name,
		Provider:    p.provider,
		Model:       p.model,
		Status:      schemas.StatusOK,
		Application: tn.apps[r.IntN(len(tn.apps))],
		Region:      tn.regions[r.IntN(len(tn.regions))],
		Operation:   "chat",
	}
	if p.embedding {
		e.Operation = "embeddings"
	}
	g.usage(e, p)
	// Service tiers and 1-hour cache writes, drawn from hashes rather than
	// the generator's random source so that every other field stays as it
	// was without them. A service tier is a property of a workload, as in
	// real use (a batch job, a latency-critical feature): one application of
	// a tenant in twelve runs on one of its models' service tiers.
	if h := strHash(e.Tenant + "\x00" + e.Application); len(p.tiers) > 0 && h%12 == 0 {
		e.ServiceTier = p.tiers[(h/12)%uint64(len(p.tiers))]
	}
	if h := strHash(e.EventID); e.CacheWriteTokens > 0 && p.provider == "anthropic" && (h>>20)%4 == 0 {
		e.CacheWrite1hTokens = e.CacheWriteTokens
	}
	if errRate := g.errorRate(p, ts); errRate > 0 && r.Float64() < errRate {
		g.fail(e, p)
		g.counts.Errors++
	}
	if r.IntN(20) == 0 {
		e.Attributes = sharedAttributes[r.IntN(len(sharedAttributes))]
	}
	if g.ring != nil {
		g.ring[g.ringI] = *e
		g.ringI = (g.ringI + 1) % dupRing
		g.ringN = min(g.ringN+1, dupRing)
	}
}

// sharedAttributes are the few attribute sets events carry, shared and
// read-only.
var sharedAttributes = []map[string]string{
	{"user_tier": "free"},
	{"user_tier": "pro", "experiment": "prompt-v2"},
	{"feature_flag": "streaming"},
}

// nextTime returns the event time: now (steady) or the next growth event.
func (g *Generator) nextTime() time.Time {
	if g.opts.Scenario != Growth {
		return time.UnixMilli(g.opts.Now().UnixMilli()).UTC()
	}
	return g.start.Add(time.Duration(g.growthTime() * 1e9)).Truncate(time.Millisecond)
}

// diurnalOmega is 2π per day.
const diurnalOmega = 2 * math.Pi / 86400

// cumulative returns G(t), the integral from 0 to t of the traffic density
// e^(c·τ)·(1 + A·sin(ωτ + φ)), and the density at t.
func (g *Generator) cumulative(t float64) (cum, density float64) {
	c, a, w := g.growthC, g.opts.DiurnalAmplitude, diurnalOmega
	em1 := math.Expm1(c * t)
	base := t
	if c != 0 {
		base = em1 / c
	}
	s, co := math.Sincos(w*t + g.phase)
	cum = base + a*((em1+1)*(c*s-w*co)-g.gConst)/(c*c+w*w)
	return cum, (em1 + 1) * (1 + a*s)
}

// growthTime places the next growth event: the i-th of each pass over the
// span (Rate × Duration events) gets the quantile u = (i + U)/total of the
// traffic, U uniform in [0, 1), so every day gets its expected share of
// events (±1) and timestamps increase. Newton's method inverts G, starting
// from the previous event.
func (g *Generator) growthTime() float64 {
	i := g.gi % g.total
	g.gi++
	if i == 0 {
		g.t = 0
	}
	target := (float64(i) + g.rng.Float64()) / float64(g.total) * g.gSpan
	t := g.t
	for k := 0; k < 20; k++ {
		cum, d := g.cumulative(t)
		step := (cum - target) / d
		t = min(g.span, max(0, t-step))
		if math.Abs(step) < 1e-4 { // timestamps have millisecond precision
			break
		}
	}
	g.t = t
	return t
}

// nextID returns a UUID-shaped id derived from the seed and a counter:
// unique within a run (the first 64 bits are a bijection of the counter)
// and the same for the same seed.
func (g *Generator) nextID() string {
	g.counter++
	seed := g.opts.Seed ^ g.opts.IDSalt
	hi := splitmix(seed*0x9e3779b97f4a7c15 + g.counter)
	lo := splitmix(hi ^ seed)
	var b [36]byte
	putHex(b[0:8], hi>>32)
	b[8] = '-'
	putHex(b[9:13], hi>>16)
	b[13] = '-'
	putHex(b[14:18], hi)
	b[18] = '-'
	putHex(b[19:23], lo>>48)
	b[23] = '-'
	putHex(b[24:36], lo)
	return string(b[:])
}

// putHex writes the low 4·len(dst) bits of v as lower-case hex digits.
func putHex(dst []byte, v uint64) {
	const hexd = "0123456789abcdef"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexd[v&15]
		v >>= 4
	}
}

// splitmix is SplitMix64's output function of state x: a bijection.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// logNormal returns med·e^(σ·N(0,1)).
func (g *Generator) logNormal(med, sigma float64) float64 {
	return med * math.Exp(sigma*g.rng.NormFloat64())
}

func clampTokens(v float64, lo, hi int64) int64 {
	n := int64(math.Round(v))
	return max(lo, min(hi, n))
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// usage fills tokens and timings of a successful call to p.
func (g *Generator) usage(e *schemas.Event, p *profile) {
	r := g.rng
	e.InputTokens = clampTokens(g.logNormal(p.inMed, p.inSigma), 1, 1_000_000)
	if p.embedding {
		e.LatencyMs, e.HasLatency = round1(g.logNormal(40, 0.4)+float64(e.InputTokens)/50), true
		return
	}
	if r.Float64() < p.cacheProb {
		e.CachedInputTokens = int64(float64(e.InputTokens) * (0.3 + 0.65*r.Float64()))
	}
	if r.Float64() < p.cacheWriteProb {
		e.CacheWriteTokens = int64(float64(e.InputTokens-e.CachedInputTokens) * (0.2 + 0.6*r.Float64()))
	}
	e.OutputTokens = clampTokens(g.logNormal(p.outMed, p.outSigma), 1, 100_000)
	if p.reasoning > 0 {
		share := min(0.95, max(0.05, g.logNormal(p.reasoning, 0.3)))
		e.ReasoningTokens = int64(float64(e.OutputTokens) * share)
	}
	// Reasoning happens before the first visible token.
	ttft := g.logNormal(p.ttftMed, 0.5) + float64(e.ReasoningTokens)/p.tokPerSec*1000
	gen := float64(e.OutputTokens-e.ReasoningTokens) / p.tokPerSec * 1000 * math.Exp(0.25*r.NormFloat64())
	ttft = min(ttft, schemas.MaxDurationMs/2)
	e.TTFTMs, e.HasTTFT = round1(ttft), true
	e.LatencyMs, e.HasLatency = round1(ttft+min(gen, schemas.MaxDurationMs/2)), true
	if p.gpus > 0 {
		e.GPUMs = round1(e.LatencyMs * p.gpus)
	}
}

// incidentSlot is the length of the slots incidents are drawn for.
const incidentSlot = 600 // seconds

// errorRate is the chance that a call to p at ts fails: ErrorRate, or
// 20–60% during an incident of p's provider (about 2% of 10-minute slots,
// drawn from the seed, the provider and the slot).
func (g *Generator) errorRate(p *profile, ts time.Time) float64 {
	h := splitmix(g.opts.Seed ^ p.provHash ^ uint64(ts.Unix()/incidentSlot)*0x2545f4914f6cdd1d)
	if h%1000 < 20 {
		return max(g.opts.ErrorRate, 0.2+float64((h>>16)%41)/100)
	}
	return g.opts.ErrorRate
}

// strHash is FNV-1a.
func strHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// fail turns a call into a failed one: rate limits and server errors are
// answered quickly with no usage; timeouts are cut off after about a minute
// with the prompt and part of the output billed; client errors carry no
// usage.
func (g *Generator) fail(e *schemas.Event, p *profile) {
	r := g.rng
	e.Status = schemas.StatusError
	u := r.Float64()
	switch {
	case u < 0.45:
		e.ErrorType = "rate_limited"
	case u < 0.75:
		e.ErrorType = "server_error"
	case u < 0.9 && !p.embedding:
		e.ErrorType = "timeout"
		e.OutputTokens = int64(float64(e.OutputTokens) * r.Float64())
		e.ReasoningTokens = min(e.ReasoningTokens, e.OutputTokens)
		e.LatencyMs = round1(g.logNormal(60_000, 0.15))
		e.TTFTMs = min(e.TTFTMs, e.LatencyMs)
		if p.gpus > 0 {
			e.GPUMs = round1(e.LatencyMs * p.gpus)
		}
		return
	default:
		e.ErrorType = "client_error"
	}
	e.InputTokens, e.CachedInputTokens, e.CacheWriteTokens, e.CacheWrite1hTokens = 0, 0, 0, 0
	e.OutputTokens, e.ReasoningTokens = 0, 0
	e.TTFTMs, e.HasTTFT = 0, false
	e.LatencyMs = round1(g.logNormal(120, 0.6))
	if p.gpus > 0 {
		e.GPUMs = round1(e.LatencyMs * p.gpus)
	}
}
