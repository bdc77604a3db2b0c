package args

import (
	"fmt"
	"strconv"
	"strings"
)

// sizeUnits follows Spring's DataSize: KB, MB, GB, TB are powers of 1024.
// KiB, MiB, GiB, TiB are accepted too, with the same meaning.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize parses a byte count the way Spring's DataSize does: "5000",
// "1000B", "5MB" (= 5 × 1024 × 1024), "64KiB". Units are case-insensitive.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	mult, ok := sizeUnits[unit]
	if err != nil || !ok || n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%q is not a size (like 5000, 1000B, 64KB or 5MB)", s)
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
