// Package builtin lists every filter Sluice has, in one place.
package builtin

import (
	"github.com/sluice-gw/sluice/internal/filter"
	"github.com/sluice-gw/sluice/internal/filter/cache"
	"github.com/sluice-gw/sluice/internal/filter/circuitbreaker"
	"github.com/sluice-gw/sluice/internal/filter/compress"
	"github.com/sluice-gw/sluice/internal/filter/cors"
	"github.com/sluice-gw/sluice/internal/filter/jwtauth"
	"github.com/sluice-gw/sluice/internal/filter/ratelimit"
	"github.com/sluice-gw/sluice/internal/filter/tokenauth"
)

// Filters returns the registry of every filter, keyed by its Spring Cloud
// Gateway name (Cors and Compression are Sluice's own). docs/filters.md
// documents each one.
func Filters() map[string]filter.Factory {
	return map[string]filter.Factory{
		// Request headers
		"AddRequestHeader":              addRequestHeader,
		"AddRequestHeadersIfNotPresent": addRequestHeadersIfNotPresent,
		"SetRequestHeader":              setRequestHeader,
		"RemoveRequestHeader":           removeRequestHeader,
		"MapRequestHeader":              mapRequestHeader,
		"PreserveHostHeader":            preserveHost,
		"SetRequestHostHeader":          setRequestHost,
		"RequestHeaderSize":             requestHeaderSize,
		// Response headers and status
		"AddResponseHeader":             addResponseHeader,
		"SetResponseHeader":             setResponseHeader,
		"RemoveResponseHeader":          removeResponseHeader,
		"DedupeResponseHeader":          dedupeResponseHeader,
		"RewriteResponseHeader":         rewriteResponseHeader,
		"RewriteLocationResponseHeader": rewriteLocationResponseHeader,
		"SecureHeaders":                 secureHeaders,
		"SetStatus":                     setStatus,
		"RedirectTo":                    redirectTo,
		// Path and query
		"StripPrefix":             stripPrefix,
		"PrefixPath":              prefixPath,
		"SetPath":                 setPath,
		"RewritePath":             rewritePath,
		"AddRequestParameter":     addRequestParameter,
		"RemoveRequestParameter":  removeRequestParameter,
		"RewriteRequestParameter": rewriteRequestParameter,
		// Bodies
		"CacheRequestBody":                 cacheRequestBody,
		"RequestSize":                      requestSize,
		"RemoveJsonAttributesResponseBody": removeJSONAttributes,
		"LocalResponseCache":               cache.Factory,
		"Compression":                      compress.Factory,
		// Resilience
		"Retry":           retry,
		"CircuitBreaker":  circuitbreaker.Factory,
		"FallbackHeaders": circuitbreaker.FallbackHeaders,
		// Cross-origin
		"Cors": cors.Factory,
		// Authentication and rate limiting
		"TokenAuth":          tokenauth.Factory,
		"RequestRateLimiter": ratelimit.Factory,
		"JWT":                jwtauth.Factory,
	}
}
