// Package sketch is the mergeable latency histogram of the pipelines: a
// DDSketch-style log-bucket histogram with a fixed bucket mapping, used for
// latency_ms and ttft_ms of every key-window (docs/design.md).
//
// A Histogram holds exact counts per bucket index. Rows flushed to ClickHouse
// carry it as two parallel arrays (idx Array(Int16), cnt Array(UInt64)),
// summed by sumMapState; any set of rows (any time range, any grouping, any
// number of aggregator instances) therefore merges by summing counts per
// bucket index, and the merged histogram answers every quantile within
// Alpha = 1% relative error. Never average percentiles: merge histograms.
//
// # The bucket mapping (storage contract)
//
// Bucket indices are stored in ClickHouse, so the mapping must never change.
// With
//
//	α = 0.01,  γ = (1+α)/(1−α) = 101/99 (exactly),
//
// and fl(r) the float64 nearest to the real number r (ties to even), bucket i
// (MinIndex ≤ i ≤ MaxIndex) holds the values x, in milliseconds, with
//
//	fl(γ^(i−1)) < x ≤ fl(γ^i)
//
// that is Index(x) = ⌈log_γ x⌉ computed in exact arithmetic, except for the
// float64 x = fl(γ^i) when it lies above γ^i, which maps to i instead of
// i+1 (its relative distance to γ^i is below 2^-53, so the error bound is
// unaffected). Two ranges are special:
//
//   - x < MinValue (1e-6 ms = 1 ns), x negative or NaN: the zero bucket,
//     index ZeroIndex = −32768 (math.MinInt16), whose value is 0. MinValue
//     itself is in bucket MinIndex = −690 = ⌈log_γ 1e-6⌉.
//   - x > fl(γ^MaxIndex) ≈ 2.65e10 ms (307 days), including +Inf: clamped to
//     MaxIndex = 1200, without error bound. Events are at most 86 400 000 ms
//     (24 hours), in bucket 914, so the valid range has a wide margin, and
//     all indices fit Int16 with a margin of more than 30 000 on both sides.
//
// The representative value of bucket i is
//
//	Value(i) = fl(2γ^i/(γ+1)) = fl((1−α)·γ^i)
//
// so |Value(Index(x)) − x| ≤ α·x (plus a few float64 roundings, below
// 1e-15·x) for every x in [MinValue, fl(γ^MaxIndex)].
//
// The mapping is a pure function of the float64 bits of x, identical on every
// platform: it never evaluates a transcendental function at run time, because
// math.Log differs between architectures (assembly on amd64, pure Go with
// fused multiply-adds elsewhere) by an ulp, which would move values sitting
// on a bucket boundary. Instead, package initialisation computes the
// boundaries fl(γ^i) and the values with math/big (256-bit precision, then
// rounded once to float64; the tests check every one against exact rational
// arithmetic), and Index finds the bucket with one table look-up on the top
// bits of x (exponent and 6 mantissa bits; an interval of those is narrower
// than a bucket) and one comparison with a boundary.
//
// # Quantiles
//
// Quantile(q) of a histogram of n values is the value at rank
// r = ⌈q·n⌉ (1-based; q·n computed in float64), clamped to [1, n], so q = 0
// is the minimum and q = 1 the maximum: it returns Value of the bucket that
// holds the r-th smallest value. Since bucket counts are exact and the
// mapping is monotone, the result is within α of the exact r-th smallest
// value, whatever the roll-up level (values below MinValue are reported as
// 0, an absolute error below 1e-6 ms).
package sketch

import (
	"math"
)

// Alpha is the guaranteed relative accuracy of every quantile: 1%.
const Alpha = 0.01

// Gamma is the ratio between consecutive bucket boundaries,
// (1+Alpha)/(1−Alpha) = 101/99.
const Gamma = (1 + Alpha) / (1 - Alpha)

// ZeroIndex is the index of the zero bucket, which holds 0 and every value
// below MinValue; its value is 0.
const ZeroIndex int16 = math.MinInt16

// MinValue is the smallest value, in milliseconds, that has its own bucket:
// 1e-6 ms (one nanosecond). Smaller values go to the zero bucket.
const MinValue = 1e-6

// MinIndex is the index of the bucket of MinValue, ⌈log_γ 1e-6⌉; no value
// maps to a smaller index other than ZeroIndex.
const MinIndex int16 = -690

// MaxIndex is the largest bucket index, whose upper boundary γ^1200 is about
// 2.65e10 ms (307 days); larger values are clamped into it.
const MaxIndex int16 = 1200

// numBuckets is the number of regular buckets, MinIndex..MaxIndex.
const numBuckets = int(MaxIndex) - int(MinIndex) + 1

// keyShift drops all but the sign, the exponent and 6 mantissa bits of a
// float64: the resulting key intervals have a ratio of at most 1+1/64, less
// than Gamma, so each holds at most one bucket boundary.
const keyShift = 52 - 6

// bounds[i−MinIndex] is fl(γ^i), the upper boundary of bucket i, and
// values[i−MinIndex] is fl((1−α)·γ^i), the value of bucket i: tables.go,
// written from exact rational arithmetic by
//
//go:generate go test -run TestTablesFile -update
//
// (compiled in, so that no process spends its start-up computing them;
// TestTablesAreCorrectlyRounded checks every entry).

var (
	// maxBound is bounds of MaxIndex; larger values are clamped.
	maxBound = bounds[numBuckets-1]
	// keyBase is the key of MinValue.
	keyBase = math.Float64bits(MinValue) >> keyShift
	// lowIndex[key−keyBase] is the index of the smallest value ≥ MinValue
	// having that key; a value with that key maps to it or to the next index.
	lowIndex = func() []int16 {
		keyTop := math.Float64bits(maxBound) >> keyShift
		low := make([]int16, keyTop-keyBase+1)
		for k := range low {
			lo := math.Float64frombits((keyBase + uint64(k)) << keyShift)
			low[k] = searchIndex(max(lo, MinValue))
		}
		return low
	}()
)

// searchIndex is the reference mapping: the smallest i in [MinIndex,
// MaxIndex] with x ≤ fl(γ^i), by binary search over the boundaries, for
// MinValue ≤ x ≤ maxBound.
func searchIndex(x float64) int16 {
	lo, hi := 0, numBuckets-1
	for lo < hi {
		mid := (lo + hi) / 2
		if x <= bounds[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return int16(lo + int(MinIndex))
}

// Index returns the bucket index of a value x in milliseconds: ZeroIndex for
// x < MinValue (and for negative values and NaN), MaxIndex for values above
// the last boundary (and +Inf), otherwise the bucket i with
// fl(γ^(i−1)) < x ≤ fl(γ^i) (see the package documentation). It is a pure
// function of x, the same on every platform, and does not allocate.
func Index(x float64) int16 {
	if !(x >= MinValue) {
		return ZeroIndex
	}
	if x > maxBound {
		return MaxIndex
	}
	i := lowIndex[math.Float64bits(x)>>keyShift-keyBase]
	if x > bounds[int(i)-int(MinIndex)] {
		i++
	}
	return i
}

// Value returns the representative value, in milliseconds, of bucket i:
// 0 for ZeroIndex, fl((1−α)·γ^i) = fl(2γ^i/(γ+1)) for MinIndex ≤ i ≤
// MaxIndex. Indices outside that range hold no value; they are clamped to
// it.
func Value(i int16) float64 {
	switch {
	case i == ZeroIndex:
		return 0
	case i < MinIndex:
		i = MinIndex
	case i > MaxIndex:
		i = MaxIndex
	}
	return values[int(i)-int(MinIndex)]
}

// validIndex reports whether i is ZeroIndex or a regular bucket index.
func validIndex(i int16) bool {
	return i == ZeroIndex || (i >= MinIndex && i <= MaxIndex)
}
