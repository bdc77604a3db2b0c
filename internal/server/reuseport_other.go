//go:build !linux

package server

import "syscall"

const soReusePort = syscall.SO_REUSEADDR
