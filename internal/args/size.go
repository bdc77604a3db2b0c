package args

import (
	"fmt"
	"strconv"
	"strings"
)

// springUnits follows Spring's DataSize: KB, MB, GB, TB are powers of 1024.
// KiB, MiB, GiB, TiB are accepted too, with the same meaning.
var springUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// siUnits reads KB, MB, GB, TB as powers of 1000 and KiB, MiB, GiB, TiB as
// powers of 1024.
var siUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize parses a byte count the way Spring's DataSize does (a filter
// argument): "5000", "1000B", "5MB" (= 5 × 1024 × 1024), "64KiB". Units are
// case-insensitive.
func ParseSize(s string) (int64, error) {
	n, err := parseSize(strings.TrimSpace(s), springUnits)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (like 5000, 1000B, 64KB or 5MB)", s)
	}
	return n, nil
}

// ParseSizeSI parses a byte count in Sluice's own config: "65536", "64KiB",
// "64 KiB", "1MB" (= 1,000,000). Units are case-insensitive.
func ParseSizeSI(s string) (int64, error) { return parseSize(s, siUnits) }

func parseSize(s string, units map[string]int64) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	mult, ok := units[unit]
	if err != nil || !ok || n > (1<<63-1)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// Size returns name as a byte count (see ParseSize), or def when absent.
func (a Args) Size(name string, def int64) (int64, error) {
	s, err := a.String(name, "")
	if err != nil || s == "" {
		return def, err
	}
	n, err := ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", name, err)
	}
	return n, nil
}
