package sketch

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// maxEventMS is the largest value of the event contract: 24 h in ms.
const maxEventMS = 86_400_000

// relTol is the relative error every value and quantile must meet: Alpha
// plus room for a few float64 roundings.
const relTol = Alpha + 1e-12

// gammaPow returns γ^i = 101^i/99^i exactly.
func gammaPow(i int) *big.Rat {
	num, den := big.NewInt(101), big.NewInt(99)
	if i < 0 {
		num, den = den, num
		i = -i
	}
	e := big.NewInt(int64(i))
	return new(big.Rat).SetFrac(new(big.Int).Exp(num, e, nil), new(big.Int).Exp(den, e, nil))
}

// TestTablesAreCorrectlyRounded checks every boundary and value against exact
// rational arithmetic: bounds are fl(γ^i), values fl(0.99·γ^i).
func TestTablesAreCorrectlyRounded(t *testing.T) {
	num, den := big.NewInt(1), big.NewInt(1)
	check := func(i int) {
		p := new(big.Rat).SetFrac(num, den)
		if got, _ := p.Float64(); bounds[i-int(MinIndex)] != got {
			t.Fatalf("boundary of bucket %d = %v, want fl(γ^%d) = %v", i, bounds[i-int(MinIndex)], i, got)
		}
		v := new(big.Rat).Mul(p, big.NewRat(99, 100))
		if got, _ := v.Float64(); values[i-int(MinIndex)] != got {
			t.Fatalf("value of bucket %d = %v, want fl(0.99·γ^%d) = %v", i, values[i-int(MinIndex)], i, got)
		}
	}
	for i := 0; i <= int(MaxIndex); i++ {
		check(i)
		num.Mul(num, big.NewInt(101))
		den.Mul(den, big.NewInt(99))
	}
	num, den = big.NewInt(99), big.NewInt(101)
	for i := -1; i >= int(MinIndex); i-- {
		check(i)
		num.Mul(num, big.NewInt(99))
		den.Mul(den, big.NewInt(101))
	}
	// Value(i) is 2γ^i/(γ+1): 2/(γ+1) = 99/100 exactly.
	g := big.NewRat(101, 99)
	two := new(big.Rat).Quo(big.NewRat(2, 1), new(big.Rat).Add(g, big.NewRat(1, 1)))
	if two.Cmp(big.NewRat(99, 100)) != 0 {
		t.Fatalf("2/(γ+1) = %v, want 99/100", two)
	}
}

// TestIndexRange checks the documented constants and the Int16 margins.
func TestIndexRange(t *testing.T) {
	minV := new(big.Rat).SetFloat64(MinValue)
	if gammaPow(int(MinIndex)-1).Cmp(minV) >= 0 || gammaPow(int(MinIndex)).Cmp(minV) < 0 {
		t.Fatalf("MinValue %v is not in bucket MinIndex %d", MinValue, MinIndex)
	}
	if got := Index(MinValue); got != MinIndex {
		t.Fatalf("Index(MinValue) = %d, want %d", got, MinIndex)
	}
	if got := Index(math.Nextafter(MinValue, 0)); got != ZeroIndex {
		t.Fatalf("Index(just below MinValue) = %d, want ZeroIndex", got)
	}
	maxV := new(big.Rat).SetFloat64(maxEventMS)
	if gammaPow(913).Cmp(maxV) >= 0 || gammaPow(914).Cmp(maxV) < 0 {
		t.Fatalf("24 h is not in bucket 914")
	}
	if got := Index(maxEventMS); got != 914 {
		t.Fatalf("Index(24 h) = %d, want 914", got)
	}
	if int(MaxIndex)-914 < 250 {
		t.Fatalf("MaxIndex %d leaves too little margin above 24 h", MaxIndex)
	}
	if int(MinIndex)-math.MinInt16 < 30000 || math.MaxInt16-int(MaxIndex) < 30000 {
		t.Fatalf("index range [%d, %d] leaves less than 30000 of Int16 margin", MinIndex, MaxIndex)
	}
	if maxBound < 2.6e10 || maxBound > 2.7e10 {
		t.Fatalf("fl(γ^MaxIndex) = %v, documented as about 2.65e10", maxBound)
	}
}

// TestIndexSpecialValues covers the inputs outside the regular range.
func TestIndexSpecialValues(t *testing.T) {
	for _, tc := range []struct {
		x    float64
		want int16
	}{
		{0, ZeroIndex},
		{math.Copysign(0, -1), ZeroIndex},
		{-1, ZeroIndex},
		{math.Inf(-1), ZeroIndex},
		{math.NaN(), ZeroIndex},
		{math.SmallestNonzeroFloat64, ZeroIndex},
		{9.99e-7, ZeroIndex},
		{1, 0},
		{Gamma, 1},
		{1e-3, int16(math.Ceil(math.Log(1e-3) / math.Log(Gamma)))},
		{maxBound, MaxIndex},
		{math.Nextafter(maxBound, math.Inf(1)), MaxIndex},
		{math.MaxFloat64, MaxIndex},
		{math.Inf(1), MaxIndex},
	} {
		if got := Index(tc.x); got != tc.want {
			t.Errorf("Index(%v) = %d, want %d", tc.x, got, tc.want)
		}
	}
	if Value(ZeroIndex) != 0 {
		t.Errorf("Value(ZeroIndex) = %v, want 0", Value(ZeroIndex))
	}
	if Value(MinIndex-1) != Value(MinIndex) || Value(MaxIndex+1) != Value(MaxIndex) || Value(math.MaxInt16) != Value(MaxIndex) {
		t.Errorf("Value does not clamp indices outside [MinIndex, MaxIndex]")
	}
	if Value(0) != 0.99 {
		t.Errorf("Value(0) = %v, want 0.99", Value(0))
	}
}

// TestIndexBoundaries checks every boundary and its float64 neighbours:
// fl(γ^i) is in bucket i, the next float64 above it in bucket i+1.
func TestIndexBoundaries(t *testing.T) {
	invLnGamma := 1 / math.Log(Gamma)
	byLog := 0
	for i := MinIndex; i <= MaxIndex; i++ {
		b := bounds[int(i)-int(MinIndex)]
		if int16(math.Ceil(math.Log(b)*invLnGamma)) != i {
			byLog++
		}
		if got := Index(b); got != i {
			t.Fatalf("Index(fl(γ^%d) = %v) = %d", i, b, got)
		}
		if got := Index(math.Nextafter(b, 0)); got != i {
			t.Fatalf("Index(below fl(γ^%d)) = %d, want %d", i, got, i)
		}
		if i < MaxIndex {
			if got := Index(math.Nextafter(b, math.Inf(1))); got != i+1 {
				t.Fatalf("Index(above fl(γ^%d)) = %d, want %d", i, got, i+1)
			}
			if bounds[int(i)-int(MinIndex)+1] <= b {
				t.Fatalf("boundaries not increasing at %d", i)
			}
			if values[int(i)-int(MinIndex)+1] <= values[int(i)-int(MinIndex)] {
				t.Fatalf("values not increasing at %d", i)
			}
		}
	}
	t.Logf("⌈log(x)/ln γ⌉ by math.Log misplaces %d of the %d boundaries fl(γ^i)", byLog, numBuckets)
}

// TestKeyIntervalsHoldOneBoundary checks the premise of the fast path: each
// key interval (sign, exponent and 6 mantissa bits) contains at most one
// boundary, so one comparison after the look-up suffices.
func TestKeyIntervalsHoldOneBoundary(t *testing.T) {
	for k := range lowIndex {
		lo := math.Float64frombits((keyBase + uint64(k)) << keyShift)
		hi := math.Float64frombits((keyBase + uint64(k) + 1) << keyShift)
		n := 0
		for _, b := range bounds {
			if b >= lo && b < hi {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("key interval [%v, %v) holds %d boundaries", lo, hi, n)
		}
	}
}

// TestIndexMatchesReference compares the fast mapping with the binary search
// over the boundaries on random float64s of the whole range.
func TestIndexMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lo, hi := math.Float64bits(MinValue), math.Float64bits(maxBound)
	for range 2_000_000 {
		x := math.Float64frombits(lo + r.Uint64N(hi-lo+1))
		if got, want := Index(x), searchIndex(x); got != want {
			t.Fatalf("Index(%v) = %d, reference %d", x, got, want)
		}
	}
}

// TestIndexSweep sweeps the whole range: the index never decreases, the
// value is within Alpha, and the index equals ⌈log_γ x⌉ by math.Log except
// within a hair of a boundary.
func TestIndexSweep(t *testing.T) {
	invLnGamma := 1 / math.Log(Gamma)
	prev := ZeroIndex
	disagree := 0
	n := 0
	for x := MinValue; x <= 2*maxBound; x *= 1.00001 {
		n++
		i := Index(x)
		if i < prev {
			t.Fatalf("Index(%v) = %d < %d: not monotone", x, i, prev)
		}
		prev = i
		if x > maxBound {
			if i != MaxIndex {
				t.Fatalf("Index(%v) = %d, want MaxIndex", x, i)
			}
			continue
		}
		if v := Value(i); math.Abs(v-x) > relTol*x {
			t.Fatalf("Value(Index(%v)) = %v: relative error %v > α", x, v, math.Abs(v-x)/x)
		}
		l := math.Log(x) * invLnGamma
		if want := int16(math.Ceil(l)); want != i {
			disagree++
			if math.Abs(l-math.Round(l)) > 1e-9 {
				t.Fatalf("Index(%v) = %d, ⌈log_γ x⌉ = %d (log_γ x = %v) far from a boundary", x, i, want, l)
			}
		}
	}
	t.Logf("swept %d values; %d disagree with math.Log, all within 1e-9 of a boundary", n, disagree)
	if prev != MaxIndex {
		t.Fatalf("sweep ended at index %d", prev)
	}
}

var update = flag.Bool("update", false, "rewrite tables.go (go generate ./pipelines/sketch/)")

// tablesFile is tables.go as exact rational arithmetic makes it: every
// boundary fl(γ^i) and value fl(0.99·γ^i) as a hexadecimal float literal
// (exact).
func tablesFile() []byte {
	var b, v [numBuckets]float64
	for i := int(MinIndex); i <= int(MaxIndex); i++ {
		p := gammaPow(i)
		b[i-int(MinIndex)], _ = p.Float64()
		v[i-int(MinIndex)], _ = new(big.Rat).Mul(p, big.NewRat(99, 100)).Float64()
	}
	var out bytes.Buffer
	out.WriteString("// Code generated by go test -run TestTablesFile -update; DO NOT EDIT.\n\npackage sketch\n")
	for _, t := range []struct {
		name string
		vals *[numBuckets]float64
	}{{"bounds", &b}, {"values", &v}} {
		fmt.Fprintf(&out, "\nvar %s = [numBuckets]float64{", t.name)
		for i, x := range t.vals {
			if i%4 == 0 {
				out.WriteString("\n\t")
			} else {
				out.WriteString(" ")
			}
			out.WriteString(strconv.FormatFloat(x, 'x', -1, 64) + ",")
		}
		out.WriteString("\n}\n")
	}
	return out.Bytes()
}

// TestTablesFile: tables.go is what exact arithmetic gives (-update
// rewrites it).
func TestTablesFile(t *testing.T) {
	want := tablesFile()
	if *update {
		if err := os.WriteFile("tables.go", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("tables.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("tables.go is stale: run go generate ./pipelines/sketch/")
	}
}
