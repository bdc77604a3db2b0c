package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CertFiles is one certificate and its key, as PEM files.
type CertFiles struct{ CertFile, KeyFile string }

// Certs serves TLS certificates by SNI and reloads them when their files
// change: every handshake may look at the files' modification times, at
// most once a second, so a renewed certificate is served within a second of
// being written, without a restart and without touching open connections.
// A reload that fails keeps the certificates in use and is logged.
type Certs struct {
	files []CertFiles
	log   *slog.Logger

	mu      sync.Mutex
	certs   []*tls.Certificate
	mtimes  []time.Time
	checked atomic.Int64 // unix nanos of the last look at the files

	Reloads, ReloadErrors atomic.Uint64
}

// LoadCerts loads files (at least one).
func LoadCerts(files []CertFiles, log *slog.Logger) (*Certs, error) {
	c := &Certs{files: files, log: log}
	certs, mtimes, err := c.load()
	if err != nil {
		return nil, err
	}
	c.certs, c.mtimes = certs, mtimes
	c.checked.Store(time.Now().UnixNano())
	return c, nil
}

func (c *Certs) load() ([]*tls.Certificate, []time.Time, error) {
	certs := make([]*tls.Certificate, len(c.files))
	mtimes := make([]time.Time, len(c.files))
	for i, f := range c.files {
		mtimes[i] = modTime(f)
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls certificate %s: %w", f.CertFile, err)
		}
		if pair.Leaf == nil && len(pair.Certificate) > 0 {
			pair.Leaf, _ = x509.ParseCertificate(pair.Certificate[0])
		}
		certs[i] = &pair
	}
	return certs, mtimes, nil
}

func modTime(f CertFiles) time.Time {
	var t time.Time
	for _, name := range []string{f.CertFile, f.KeyFile} {
		if fi, err := os.Stat(name); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}

// reloadIfChanged reloads the certificates if a file changed since the last load.
func (c *Certs) reloadIfChanged() {
	now := time.Now().UnixNano()
	last := c.checked.Load()
	if now-last < int64(time.Second) || !c.checked.CompareAndSwap(last, now) {
		return
	}
	c.mu.Lock()
	changed := false
	for i, f := range c.files {
		if !modTime(f).Equal(c.mtimes[i]) {
			changed = true
		}
	}
	c.mu.Unlock()
	if !changed {
		return
	}
	certs, mtimes, err := c.load()
	if err != nil {
		c.ReloadErrors.Add(1)
		c.log.Error("tls certificate reload failed; keeping the certificates in use", "error", err.Error())
		// Do not retry a broken file on every handshake: note its times.
		c.mu.Lock()
		for i, f := range c.files {
			c.mtimes[i] = modTime(f)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	c.certs, c.mtimes = certs, mtimes
	c.mu.Unlock()
	c.Reloads.Add(1)
	c.log.Info("tls certificates reloaded", "files", len(c.files))
}

// GetCertificate picks the certificate for the client's SNI name: the first
// whose names match, else the first.
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.reloadIfChanged()
	c.mu.Lock()
	certs := c.certs
	c.mu.Unlock()
	if hello.ServerName != "" {
		for _, cert := range certs {
			if cert.Leaf != nil && cert.Leaf.VerifyHostname(hello.ServerName) == nil {
				return cert, nil
			}
		}
	}
	return certs[0], nil
}

// TLSConfig returns a server TLS config using c, with at least minVersion,
// and, when clientCAs is set, requiring and verifying client certificates.
func (c *Certs) TLSConfig(minVersion uint16, clientCAs *x509.CertPool) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: c.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}
