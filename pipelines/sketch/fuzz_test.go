package sketch

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// FuzzFromArrays feeds arbitrary arrays to FromArrays: it never panics,
// rejects exactly the invalid inputs, and a histogram it accepts is well
// formed, sums the counts per index, round-trips through AppendArrays and
// answers quantiles between its smallest and largest bucket, non-decreasing
// in q.
func FuzzFromArrays(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x00, 0x80, 5, 0, 0, 0, 0, 0, 0, 0, 0xb0, 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0x4e, 0xfd, 3, 0, 0, 0, 0, 0, 0, 0, 0x4e, 0xfd, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each 10 bytes are one (index, count) pair; small counts are
		// made common by the top byte's low bit; a leftover byte adds an
		// index without a count.
		var idx []int16
		var cnt []uint64
		for len(data) >= 10 {
			i := int16(binary.LittleEndian.Uint16(data))
			c := binary.LittleEndian.Uint64(data[2:])
			if c>>56&1 == 0 {
				c &= 0xffff
			}
			idx, cnt = append(idx, i), append(cnt, c)
			data = data[10:]
		}
		if len(data) > 0 {
			idx = append(idx, int16(data[0]))
		}

		valid := len(idx) == len(cnt)
		sums := map[int16]uint64{}
		var total uint64
		for k := range cnt {
			if !validIndex(idx[k]) {
				valid = false
				break
			}
			s := total + cnt[k]
			if s < total {
				valid = false
				break
			}
			total = s
			if cnt[k] != 0 {
				sums[idx[k]] += cnt[k]
			}
		}

		h, err := FromArrays(slices.Clone(idx), slices.Clone(cnt))
		if !valid {
			if err == nil {
				t.Fatalf("FromArrays(%v, %v) accepted invalid input", idx, cnt)
			}
			return
		}
		if err != nil {
			t.Fatalf("FromArrays(%v, %v): %v", idx, cnt, err)
		}
		checkInvariants(t, h)
		gi, gc := arraysOf(h)
		if len(gi) != len(sums) || h.Count() != total {
			t.Fatalf("got %d buckets, count %d; want %d, %d", len(gi), h.Count(), len(sums), total)
		}
		for k, i := range gi {
			if sums[i] != gc[k] {
				t.Fatalf("bucket %d: count %d, want %d", i, gc[k], sums[i])
			}
		}
		back, err := FromArrays(gi, gc)
		if err != nil {
			t.Fatal(err)
		}
		equalHistograms(t, "round trip", h, back)

		if total == 0 {
			if _, ok := h.Quantile(0.5); ok {
				t.Fatalf("Quantile ok on an empty histogram")
			}
			return
		}
		lo, hi := Value(gi[0]), Value(gi[len(gi)-1])
		prev := math.Inf(-1)
		for _, q := range []float64{-1, 0, 1e-9, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1 - 1e-12, 1, 2} {
			v, ok := h.Quantile(q)
			if !ok || v < lo || v > hi || v < prev {
				t.Fatalf("Quantile(%v) = %v, %v: outside [%v, %v] or below the previous %v", q, v, ok, lo, hi, prev)
			}
			prev = v
		}
		if v, _ := h.Quantile(0); v != lo {
			t.Fatalf("Quantile(0) = %v, want the smallest bucket %v", v, lo)
		}
		if v, _ := h.Quantile(1); v != hi {
			t.Fatalf("Quantile(1) = %v, want the largest bucket %v", v, hi)
		}
		if total <= math.MaxUint64/2 {
			d := &Histogram{}
			d.Merge(h)
			d.Merge(back)
			for k, c := range gc {
				gc[k] = 2 * c
			}
			twice, _ := FromArrays(gi, gc)
			checkInvariants(t, d)
			equalHistograms(t, "merged with itself", twice, d)
		}
	})
}

// FuzzQuantile feeds arbitrary values in [0, 24 h] to a histogram, split in
// two merged halves: every quantile is within Alpha of the exact one.
func FuzzQuantile(f *testing.F) {
	f.Add([]byte{}, 0.5)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0}, 0.99)
	f.Add(binary.LittleEndian.AppendUint64(nil, math.Float64bits(maxEventMS)<<1), 1.0)
	f.Add(binary.LittleEndian.AppendUint64(nil, math.Float64bits(MinValue)<<1), 0.0)
	f.Fuzz(func(t *testing.T, data []byte, q float64) {
		// Each 8 bytes are one value: with the low bit set, a count of
		// microseconds up to 24 h; otherwise the float64 of the other
		// bits, folded into the range.
		var xs []float64
		for ; len(data) >= 8; data = data[8:] {
			u := binary.LittleEndian.Uint64(data)
			var x float64
			if u&1 != 0 {
				x = float64((u>>1)%(maxEventMS*1000+1)) / 1000
			} else {
				x = math.Abs(math.Float64frombits(u >> 1 << 1))
				if math.IsNaN(x) || x > maxEventMS {
					x = math.Mod(float64(u>>12), maxEventMS+1)
				}
			}
			xs = append(xs, x)
		}
		a, b := &Histogram{}, &Histogram{}
		for k, x := range xs {
			if k%2 == 0 {
				a.Add(x)
			} else {
				b.Add(x)
			}
		}
		a.Merge(b)
		checkInvariants(t, a)
		if len(xs) == 0 {
			if _, ok := a.Quantile(q); ok {
				t.Fatalf("Quantile ok on an empty histogram")
			}
			return
		}
		slices.Sort(xs)
		for _, q := range append([]float64{q}, quantiles...) {
			if math.IsNaN(q) {
				continue
			}
			est, ok := a.Quantile(q)
			if x := exactQuantile(xs, q); !ok || !withinAlpha(est, x) {
				t.Fatalf("Quantile(%v) = %v, %v; exact %v (n=%d)", q, est, ok, x, len(xs))
			}
		}
	})
}
