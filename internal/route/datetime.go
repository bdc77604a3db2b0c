package route

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/internal/args"
)

// timePredicate is After, Before or Between: now is strictly after `after`
// (if set) and strictly before `before` (if set), as Spring's
// ZonedDateTime.isAfter/isBefore.
type timePredicate struct {
	after, before time.Time
	now           func() time.Time
}

func (p *timePredicate) Match(*Input) bool {
	now := p.now()
	return (p.after.IsZero() || now.After(p.after)) && (p.before.IsZero() || now.Before(p.before))
}

func newTimeWindow(kind string, a args.Args, env *Env) (Predicate, error) {
	get := func(field string) (time.Time, error) {
		s, err := a.Required(field)
		if err != nil {
			return time.Time{}, err
		}
		t, err := parseDateTime(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %w", field, err)
		}
		return t, nil
	}
	p := &timePredicate{now: env.now()}
	var err error
	switch kind {
	case "After":
		p.after, err = get("datetime")
	case "Before":
		p.before, err = get("datetime")
	case "Between":
		if p.after, err = get("datetime1"); err == nil {
			p.before, err = get("datetime2")
		}
		if err == nil && !p.after.Before(p.before) {
			err = fmt.Errorf("datetime1 (%s) must be before datetime2 (%s)",
				p.after.Format(time.RFC3339Nano), p.before.Format(time.RFC3339Nano))
		}
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// parseDateTime accepts Java's ZonedDateTime form
// ("2017-01-20T17:42:47.789-07:00[America/Denver]"), RFC 3339, a local
// date-time followed by a [zone], and epoch milliseconds.
func parseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	text, zone := s, ""
	if strings.HasSuffix(text, "]") {
		if i := strings.LastIndexByte(text, '['); i > 0 {
			text, zone = text[:i], text[i+1:len(text)-1]
		}
	}
	// The offset fixes the instant; the zone adds nothing to it.
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, text); err == nil {
			return t, nil
		}
	}
	if zone != "" {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: unknown time zone %q", s, zone)
		}
		for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04"} {
			if t, err := time.ParseInLocation(layout, text, loc); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time (like 2017-01-20T17:42:47.789-07:00[America/Denver], RFC 3339, or epoch milliseconds)", s)
}
