package s3sig

import "time"

// amzDateLen is len("20060102T150405Z").
const amzDateLen = 16

// AppendAmzDate appends t in UTC as x-amz-date wants it, "20060102T150405Z"
// (ISO 8601 basic format, seconds precision, truncated). Years outside
// 0000-9999 are not representable and produce garbage digits; SigV4 dates
// never are. It allocates only to grow dst.
func AppendAmzDate(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	dst = append4(dst, year)
	dst = append2(dst, int(month))
	dst = append2(dst, day)
	dst = append(dst, 'T')
	dst = append2(dst, hour)
	dst = append2(dst, min)
	dst = append2(dst, sec)
	return append(dst, 'Z')
}

func append2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10%10), byte('0'+v%10))
}

func append4(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/1000%10), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// ParseAmzDate parses an x-amz-date value, exactly "yyyymmddThhmmssZ" with a
// valid calendar date and hh<24, mm<60, ss<60, into a UTC time. Anything else
// is an error wrapping ErrMissingDate (an empty b is ErrMissingDate itself).
// It does not allocate and does not retain b.
func ParseAmzDate(b []byte) (time.Time, error) {
	if len(b) == 0 {
		return time.Time{}, ErrMissingDate
	}
	if len(b) != amzDateLen || b[8] != 'T' || b[15] != 'Z' {
		return time.Time{}, errDateMalformed
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[4:6])
	day, ok3 := digits(b[6:8])
	hour, ok4 := digits(b[9:11])
	min, ok5 := digits(b[11:13])
	sec, ok6 := digits(b[13:15])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || min > 59 || sec > 59 {
		return time.Time{}, errDateMalformed
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, 0, time.UTC), nil
}

// digits parses a run of ASCII decimal digits.
func digits(b []byte) (int, bool) {
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
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

// isScopeDate reports whether b is 8 ASCII digits (yyyymmdd).
func isScopeDate(b []byte) bool {
	_, ok := digits(b)
	return ok && len(b) == 8
}
