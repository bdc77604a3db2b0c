//go:build !unix

package testlock

import "errors"

func acquire() (func(), error) { return nil, errors.New("no flock on this platform") }
