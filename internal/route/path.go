package route

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPath is wrapped by the errors of CleanPath and Input.Prepare.
var ErrInvalidPath = errors.New("invalid request path")

// CleanPath percent-decodes and cleans a raw (escaped) request path:
//
//	/api/../admin      -> /admin
//	//admin            -> /admin
//	/a/./b/            -> /a/b/     (a trailing slash is kept)
//	/api%2F..%2Fadmin  -> /admin    (decoding happens before cleaning)
//	/api/..;x/admin    -> /admin    (";params" do not hide a dot segment)
//
// Dot segments are removed as in RFC 3986 section 5.2.4 and never climb above
// the root; empty segments are dropped; a path that does not start with "/"
// gets one. The result starts with "/" and contains no "//", "." or ".."
// segments. CleanPath returns an error wrapping ErrInvalidPath for invalid
// percent-encoding or a NUL byte. It does not allocate when raw is already
// clean and contains no '%'.
//
// The path is decoded once only: "%252e" becomes the literal segment "%2e".
func CleanPath(raw string) (string, error) {
	return cleanPath(raw, true)
}

// cleanPath cleans p, percent-decoding it first if decode is set.
func cleanPath(p string, decode bool) (string, error) {
	if decode && strings.IndexByte(p, '%') >= 0 {
		var err error
		if p, err = unescape(p); err != nil {
			return "", err
		}
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%w %q: NUL byte", ErrInvalidPath, p)
	}
	if isClean(p) {
		return p, nil
	}
	return removeDots(p), nil
}

// isClean reports whether p starts with "/" and has no empty segment
// (except a final one, i.e. a trailing slash) and no dot segment. It is the
// fast path of every request, hence the byte loop.
func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		seg := p[i+1:] // the segment starting here, and what follows
		switch {
		case seg == "":
			return true
		case seg[0] == '/':
			return false
		case seg[0] == '.':
			n := 1
			if len(seg) > 1 && seg[1] == '.' {
				n = 2
			}
			if n == len(seg) || seg[n] == '/' || seg[n] == ';' {
				return false
			}
		}
	}
	return true
}

// isDotSegment reports whether seg is "." or "..", ignoring ";params" as
// servlet containers do ("..;x" is "..").
func isDotSegment(seg string) bool {
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		seg = seg[:i]
	}
	return seg == "." || seg == ".."
}

// removeDots builds the clean form of p.
func removeDots(p string) string {
	out := make([]byte, 0, len(p)+1)
	trailing := true // the path so far ends in a directory
	for rest := p; ; {
		seg, tail, more := strings.Cut(rest, "/")
		switch {
		case seg == "":
			trailing = true
		case isDotSegment(seg):
			if strings.HasPrefix(seg, "..") {
				i := len(out) - 1
				for i >= 0 && out[i] != '/' {
					i--
				}
				out = out[:max(i, 0)]
			}
			trailing = true
		default:
			out = append(out, '/')
			out = append(out, seg...)
			trailing = false
		}
		if !more {
			break
		}
		rest = tail
	}
	if trailing {
		out = append(out, '/')
	}
	return string(out)
}

// unescape decodes every %XX in s. Unlike url.PathUnescape it decodes "%2F"
// too, since the result is cleaned afterwards.
func unescape(s string) (string, error) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			end := min(i+3, len(s))
			return "", fmt.Errorf("%w %q: invalid percent-encoding %q", ErrInvalidPath, s, s[i:end])
		}
		b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
