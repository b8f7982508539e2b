package schemas

// RFC 3339 timestamps without allocating, with a cache of the last minute.

import (
	"encoding/binary"
	"time"
)

// parseRFC3339 parses the RFC 3339 date-time production:
//
//	YYYY-MM-DD "T" hh:mm:ss [ "." 1*DIGIT ] ( "Z" / ("+" / "-") hh:mm )
//
// with "t" and "z" also accepted, as RFC 3339 §5.6 allows. The result is in
// UTC. Fractions beyond nanoseconds are truncated. Like time.Parse it rejects
// the leap second :60, offsets of 24 hours or more, and impossible dates
// (2023-02-29); unlike time.Parse it accepts only two-digit fields and a '.'
// before the fraction, as RFC 3339 requires.
func parseRFC3339(b []byte) (time.Time, bool) {
	minute, ok := parseRFC3339Minute(b)
	if !ok {
		return time.Time{}, false
	}
	return parseRFC3339Rest(b, minute)
}

// parseRFC3339Minute parses the "YYYY-MM-DDThh:mm" prefix of b (which must
// be long enough to hold a whole date-time) into local seconds since the
// epoch, before the offset is applied.
func parseRFC3339Minute(b []byte) (int64, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") ||
		b[4] != '-' || b[7] != '-' || b[10]|0x20 != 't' || b[13] != ':' {
		return 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 {
		return 0, false
	}
	return daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60), true
}

// parseRFC3339Rest parses ":ss[.frac](Z|±hh:mm)" from b[16:], given the
// local minute from parseRFC3339Minute.
func parseRFC3339Rest(b []byte, minute int64) (time.Time, bool) {
	sec, ok := digits(b[17:19])
	if b[16] != ':' || !ok || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if rest[0] == '.' {
		j := 1
		for ; j < len(rest) && rest[j]-'0' <= 9; j++ {
			if j <= 9 {
				nsec = nsec*10 + int(rest[j]-'0')
			}
		}
		if j == 1 {
			return time.Time{}, false
		}
		for n := j - 1; n < 9; n++ {
			nsec *= 10
		}
		rest = rest[j:]
	}
	offset := 0
	switch {
	case len(rest) == 1 && rest[0]|0x20 == 'z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		hh, ok1 := digits(rest[1:3])
		mm, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || hh > 23 || mm > 59 {
			return time.Time{}, false
		}
		offset = (hh*60 + mm) * 60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	return time.Unix(minute+int64(sec-offset), int64(nsec)).UTC(), true
}

// parseTimestamp is parseRFC3339 with a one-entry cache of the last
// "YYYY-MM-DDThh:mm" prefix: events of a stream mostly share it, and then
// only the seconds, fraction and offset are parsed.
func (d *Decoder) parseTimestamp(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	w0, w1 := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	if d.tsCached && w0 == d.tsPrefix[0] && w1 == d.tsPrefix[1] {
		return parseRFC3339Rest(b, d.tsMinute)
	}
	minute, ok := parseRFC3339Minute(b)
	if !ok {
		return time.Time{}, false
	}
	d.tsPrefix, d.tsMinute, d.tsCached = [2]uint64{w0, w1}, minute, true
	return parseRFC3339Rest(b, minute)
}

// digits parses a run of ASCII digits.
func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c-'0' > 9 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date with year ≥ 0 (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := (y + 400) / 400 // shifted so year -1 (Jan/Feb of year 0) floors correctly
	era--
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
