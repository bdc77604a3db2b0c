package scg

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	simpleDurationRE = regexp.MustCompile(`(?i)^([+-]?\d+)(ns|us|ms|s|m|h|d)$`)
	isoDurationRE    = regexp.MustCompile(`(?i)^([+-]?)P(?:(\d+)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)
)

var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "ms": time.Millisecond,
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
}

// parseDuration parses a value of a java.time.Duration property as Spring
// Boot binds it: a bare number in unit, a number with a unit (10s, 500ms, 1d)
// or ISO-8601 (PT10S, P1DT2H).
func parseDuration(s string, unit time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return scale(n, unit)
	}
	if m := simpleDurationRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return 0, err
		}
		return scale(n, durationUnits[strings.ToLower(m[2])])
	}
	m := isoDurationRE.FindStringSubmatch(s)
	if m == nil || len(s) <= 2 || strings.EqualFold(s[len(s)-1:], "T") {
		return 0, fmt.Errorf("%q is not a duration (like 500ms, 10s or PT10S)", s)
	}
	var total float64
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+2] != "" {
			f, _ := strconv.ParseFloat(m[i+2], 64)
			total += f * float64(unit)
		}
	}
	if total > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too long", s)
	}
	if m[1] == "-" {
		total = -total
	}
	return time.Duration(total), nil
}

func scale(n int64, unit time.Duration) (time.Duration, error) {
	if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
		return 0, errors.New("duration out of range")
	}
	return time.Duration(n) * unit, nil
}

// formatDuration writes d as Sluice reads it, without zero trailing units: 30m, 1h30m, 500ms.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

var dataSizeRE = regexp.MustCompile(`(?i)^(\d+)\s*(B|KB|MB|GB|TB)?$`)

// parseDataSize parses a Spring DataSize: bytes, or a number with B, KB, MB,
// GB or TB, which Spring counts in powers of 1024.
func parseDataSize(s string) (int64, error) {
	m := dataSizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a data size (like 8192, 16KB or 1MB)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	shift := map[string]uint{"": 0, "B": 0, "KB": 10, "MB": 20, "GB": 30, "TB": 40}[strings.ToUpper(m[2])]
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

// splitList splits a comma-separated value, as Spring binds a string to a list.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
