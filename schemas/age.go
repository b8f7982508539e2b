package schemas

import (
	"fmt"
	"time"
)

// FormatAge writes how old (or how far ahead) an event is for a person:
// a Go duration to the second under three days ("47h59m12s"), whole days
// and the rest beyond ("2530 days 21h50m30s", not "60741h50m30s"). The
// aggregator's DLQ reasons and the ingest gateway's refusals use it.
func FormatAge(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d < 72*time.Hour {
		return d.String()
	}
	days := d / (24 * time.Hour)
	if rest := d - days*24*time.Hour; rest > 0 {
		return fmt.Sprintf("%d days %s", days, rest)
	}
	return fmt.Sprintf("%d days", days)
}
