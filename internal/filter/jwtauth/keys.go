package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// keySet is an immutable set of verification keys: *rsa.PublicKey,
// *ecdsa.PublicKey (P-256) or []byte (an HMAC secret).
type keySet struct {
	byKid   map[string]any
	all     []any // every key, for tokens without a kid
	fetched time.Time
}

func (ks *keySet) add(kid string, k any) {
	if ks.byKid == nil {
		ks.byKid = map[string]any{}
	}
	if kid != "" {
		ks.byKid[kid] = k
	}
	ks.all = append(ks.all, k)
}

// parseKeys reads a JWKS document or PEM public keys / certificates.
func parseKeys(data []byte) (*keySet, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return parseJWKS(t)
	}
	ks := &keySet{}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var k any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %q is not a public key or certificate", b.Type)
		}
		if err != nil {
			return nil, err
		}
		if err := usable(k); err != nil {
			return nil, err
		}
		ks.add("", k)
	}
	if len(ks.all) == 0 {
		return nil, errors.New("no JWKS document or PEM public key found")
	}
	return ks, nil
}

func usable(k any) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits: at least 2048 are required", k.N.BitLen())
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return errors.New("EC key not on P-256 (ES256 only)")
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T (RSA or EC P-256 only)", k)
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	K   string `json:"k"`
}

// parseJWKS reads an RFC 7517 key set. Keys for other uses than "sig", or
// of unknown types, are skipped; a set with no usable key is an error.
func parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	ks := &keySet{}
	var problems []error
	for i, j := range doc.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.key()
		if err == nil {
			err = usableOrSecret(k)
		}
		if err != nil {
			problems = append(problems, fmt.Errorf("JWKS key %d (kid %q): %w", i, j.Kid, err))
			continue
		}
		ks.add(j.Kid, k)
	}
	if len(ks.all) == 0 {
		return nil, errors.Join(append([]error{errors.New("JWKS: no usable signing key")}, problems...)...)
	}
	return ks, nil
}

func usableOrSecret(k any) error {
	if _, ok := k.([]byte); ok {
		return nil
	}
	return usable(k)
}

func (j jwk) key() (any, error) {
	b := func(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
	switch j.Kty {
	case "RSA":
		n, err1 := b(j.N)
		e, err2 := b(j.E)
		if err := errors.Join(err1, err2); err != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA n or e")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC":
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("curve %q (P-256 only)", j.Crv)
		}
		x, err1 := b(j.X)
		y, err2 := b(j.Y)
		if err := errors.Join(err1, err2); err != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("bad EC x or y")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	case "oct":
		k, err := b(j.K)
		if err != nil || len(k) == 0 {
			return nil, errors.New("bad oct k")
		}
		return k, nil
	}
	return nil, fmt.Errorf("key type %q not supported", j.Kty)
}
