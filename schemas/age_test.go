package schemas

import (
	"testing"
	"time"
)

func TestFormatAge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{1500 * time.Millisecond, "1s"},
		{10 * time.Minute, "10m0s"},
		{71*time.Hour + 59*time.Minute + 59*time.Second + 900*time.Millisecond, "71h59m59s"},
		{72 * time.Hour, "3 days"},
		{192 * time.Hour, "8 days"},
		{60741*time.Hour + 50*time.Minute + 30*time.Second, "2530 days 21h50m30s"},
	} {
		if got := FormatAge(tc.d); got != tc.want {
			t.Errorf("FormatAge(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
