// Package growth answers "how fast is it growing, and where will it be at
// the end of the period" for one daily series of spend (or any other
// non-negative daily measure): one float64 per calendar day, oldest first,
// built by the caller from the daily rollups. It is pure arithmetic: no
// database, no I/O, no clock (the caller decides which day is the last
// complete one), no goroutines; every function is safe for concurrent use
// and keeps nothing of its arguments.
//
// Compute gives week-over-week and day-over-day changes and a robust
// growth rate (a seasonal Theil–Sen slope of ln(value) with a
// distribution-free 90% interval, the compound monthly growth rate and the
// doubling or halving time when the interval says which). ForecastPeriod
// projects the total of the current period (a month, say) with the method
// that did best in a rolling-origin backtest of the series itself, and an
// interval taken from that backtest's own errors, after adjusting the
// history for a lasting step in its level (a level shift) if it has one.
//
// A number that cannot be known from the data given — too little history,
// too many days without usage, a ratio over zero, invalid input — is
// reported as unknown (a nil pointer, null in JSON), with a Note saying
// why; it is never invented. Non-nil numbers are always finite.
package growth
