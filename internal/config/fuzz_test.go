package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, that it returns either a Config
// or Errors with positions, and that a Config keeps its promises.
func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	for _, tc := range parseErrorTests {
		f.Add([]byte(tc.yaml))
	}
	for _, tc := range parseValueTests {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatal("got a Config and an error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %q is not a non-empty Errors", err, err)
			}
			for _, e := range errs {
				if e.File != "f.yaml" || e.Line < 1 || e.Col < 1 || e.Msg == "" {
					t.Fatalf("bad error %#v", e)
				}
			}
			if _, again := Parse("f.yaml", data); again.Error() != err.Error() {
				t.Fatalf("errors differ between runs:\n%s\n---\n%s", err, again)
			}
			return
		}
		for _, r := range c.Routes {
			u := c.Upstreams[r.Upstream]
			switch {
			case u == nil:
				t.Fatalf("%s: upstream %q missing", r.Path, r.Upstream)
			case r.Scheme != "http" && r.Scheme != "https":
				t.Fatalf("%s: scheme %q", r.Path, r.Scheme)
			case r.Retry.Attempts < 1 || r.Retry.Backoff.Base > r.Retry.Backoff.Max:
				t.Fatalf("%s: bad retry %+v", r.Path, r.Retry)
			case r.Pos.Line < 1 || r.Path == "":
				t.Fatalf("%s: no position", r.Path)
			}
		}
		names := map[string]bool{}
		for _, l := range c.Server.AllListeners() {
			if l.Name == "" || names[l.Name] {
				t.Fatalf("%s: name %q empty or used twice", l.Path, l.Name)
			}
			names[l.Name] = true
			if _, _, err := splitHostPort(l.Listen, true); err != nil || l.MaxHeaderBytes <= 0 || l.MaxConnections < 0 ||
				(l.TLS != nil && (l.TLS.off || len(l.TLS.Certificates) == 0 || l.TLS.MinVersion == "")) ||
				(l.KeepAlive.Enabled && (l.KeepAlive.Idle <= 0 || l.KeepAlive.Interval <= 0 || l.KeepAlive.Count <= 0)) {
				t.Fatalf("bad listener %s: %+v", l.Path, l)
			}
		}
		for name, u := range c.Upstreams {
			if u.Name != name || len(u.Endpoints) == 0 || u.ConnectTimeout <= 0 || u.Pool.MaxIdleTime <= 0 {
				t.Fatalf("bad upstream %q: %+v", name, u)
			}
		}
	})
}
