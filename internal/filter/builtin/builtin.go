// Package builtin lists every filter Sluice has, in one place.
package builtin

import (
	"github.com/sluice-gw/sluice/internal/filter"
)

// Filters returns the registry of every filter, keyed by its Spring Cloud Gateway name.
func Filters() map[string]filter.Factory {
	return map[string]filter.Factory{
		"StripPrefix":          stripPrefix,
		"PrefixPath":           prefixPath,
		"SetPath":              setPath,
		"PreserveHostHeader":   preserveHost,
		"SetRequestHostHeader": setRequestHost,
		"AddRequestHeader":     addRequestHeader,
		"SetRequestHeader":     setRequestHeader,
		"RemoveRequestHeader":  removeRequestHeader,
		"AddResponseHeader":    addResponseHeader,
		"SetResponseHeader":    setResponseHeader,
		"RemoveResponseHeader": removeResponseHeader,
	}
}
