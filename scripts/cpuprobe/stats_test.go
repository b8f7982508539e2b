//go:build linux

package main

import (
	"strconv"
	"strings"
	"testing"
)

func TestSlowdown(t *testing.T) {
	t.Parallel()
	many := make([]float64, 100)
	for i := range many {
		many[i] = 400
	}
	// 19 samples: too few to know the machine's full speed, or a window's.
	few := many[:minSamples-1]
	if _, _, _, ok := slowdown(few, many); ok {
		t.Errorf("slowdown against %d samples is known, want unknown", len(few))
	}
	if _, _, _, ok := slowdown(many, few); ok {
		t.Errorf("slowdown of a window of %d samples is known, want unknown", len(few))
	}
	// All: half at 350 ns, half at 700 ns (the host busy), and one lucky
	// outlier at 100 that the 5th percentile ignores. The window: 40
	// samples at 700, the host busy all through it.
	var all, window []float64
	for i := range 100 {
		v := 350.0
		if i%2 == 1 {
			v = 700
		}
		all = append(all, v)
	}
	all[0] = 100
	for range 40 {
		window = append(window, 700)
	}
	base, mean, factor, ok := slowdown(all, window)
	if !ok || base != 350 || mean != 700 || factor != 2 {
		t.Fatalf("slowdown = %v %v %v %v, want 350 700 2 true", base, mean, factor, ok)
	}
}

func TestSummarizeWindow(t *testing.T) {
	t.Parallel()
	var in strings.Builder
	for i := range 40 {
		v := "300.0"
		if i >= 20 {
			v = "600.0"
		}
		in.WriteString(strconv.Itoa(1000+i*100) + " " + v + "\n")
	}
	var out strings.Builder
	// The window holds samples 10..39: 10 at 300 and 20 at 600; the base is
	// the 5th percentile of all 40, 300.
	if err := summarize(strings.NewReader(in.String()), &out, "2000,4900"); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "samples 30 of 40 base 300.0 mean 500.0 factor 1.667\n"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
	out.Reset()
	if err := summarize(strings.NewReader(in.String()), &out, "1000,2000"); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "samples 11 of 40 factor unknown\n"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
	for _, bad := range []struct{ in, window, want string }{
		{"1 2\n", "5", "want FROM_MS,TO_MS"},
		{"1 2\n", "9,5", "FROM_MS first"},
		{"1 2 3\n", "0,5", "line 1: want UNIX_MS NS_PER_EVENT"},
		{"x 2\n", "0,5", `line 1: time "x"`},
		{"1 2\n1 -3\n", "0,5", "line 2: want a positive ns per event"},
	} {
		err := summarize(strings.NewReader(bad.in), &out, bad.window)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("summarize(%q, %q) = %v, want an error naming %q", bad.in, bad.window, err, bad.want)
		}
	}
}
