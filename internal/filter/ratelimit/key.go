package ratelimit

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-gw/sluice/internal/exchange"
)

// A KeyResolver names the bucket a request draws from; "" means no key.
type KeyResolver struct {
	kind string // client_ip, header, path, user
	name string
}

// ParseKeyResolver parses client_ip, header:NAME, path:VARIABLE, user or
// user:HEADER (default X-User-Id, the header TokenAuth and JWT set). Spring's
// "#{@principalNameKeyResolver}" is user; other SpEL bean references name
// Java code and cannot be carried over.
func ParseKeyResolver(s string) (KeyResolver, error) {
	kind, name, _ := strings.Cut(strings.TrimSpace(s), ":")
	switch kind {
	case "client_ip", "ip":
		if name == "" {
			return KeyResolver{kind: "client_ip"}, nil
		}
	case "header":
		if name != "" {
			return KeyResolver{kind: "header", name: http.CanonicalHeaderKey(name)}, nil
		}
	case "path", "path_variable":
		if name != "" {
			return KeyResolver{kind: "path", name: name}, nil
		}
	case "user", "principal", "#{@principalNameKeyResolver}":
		if name == "" {
			name = "X-User-Id"
		}
		return KeyResolver{kind: "user", name: http.CanonicalHeaderKey(name)}, nil
	}
	if strings.HasPrefix(s, "#{") {
		return KeyResolver{}, fmt.Errorf("key-resolver: %q is a Spring bean reference; use client_ip, header:NAME, path:VARIABLE or user[:HEADER]", s)
	}
	return KeyResolver{}, fmt.Errorf("key-resolver: %q is not client_ip, header:NAME, path:VARIABLE or user[:HEADER]", s)
}

// Key returns r's key, prefixed by the resolver's kind so that a header
// value cannot collide with an IP address.
func (k KeyResolver) Key(r *http.Request) string {
	var v string
	switch k.kind {
	case "client_ip":
		if ex := exchange.From(r.Context()); ex != nil && ex.Client.IsValid() {
			v = ex.Client.String()
		}
	case "header", "user":
		v = r.Header.Get(k.name)
	case "path":
		if ex := exchange.From(r.Context()); ex != nil {
			v, _ = ex.Var(k.name)
		}
	}
	if v == "" {
		return ""
	}
	return k.kind + ":" + v
}

// String returns k as written.
func (k KeyResolver) String() string {
	if k.name == "" {
		return k.kind
	}
	return k.kind + ":" + k.name
}
