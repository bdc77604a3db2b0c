package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	b64 := base64.RawURLEncoding.EncodeToString
	pemOf := func(k any) string {
		der, _ := x509.MarshalPKIXPublicKey(k)
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	pt, _ := ec.PublicKey.Bytes()
	ecJWK := fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":"e","x":%q,"y":%q}`, b64(pt[1:33]), b64(pt[33:]))
	rsaJWK := fmt.Sprintf(`{"kty":"RSA","kid":"r","n":%q,"e":%q}`, b64(rsa2048.N.Bytes()), b64(big.NewInt(int64(rsa2048.E)).Bytes()))
	tests := []struct {
		desc     string
		data     string
		wantKids []string
		wantN    int
		wantErr  string
	}{
		{desc: "PEM RSA and EC", data: pemOf(&rsa2048.PublicKey) + pemOf(&ec.PublicKey), wantN: 2},
		{desc: "PEM RSA 1024 refused", data: pemOf(&rsa1024.PublicKey), wantErr: "at least 2048"},
		{desc: "PEM P-384 refused", data: pemOf(&ec384.PublicKey), wantErr: "P-256"},
		{desc: "PEM private key refused", data: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", wantErr: "not a public key"},
		{desc: "nothing", data: "hello", wantErr: "no JWKS document or PEM"},
		{desc: "JWKS with RSA, EC and oct", data: `{"keys":[` + rsaJWK + `,` + ecJWK + `,{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`, wantKids: []string{"r", "e", "h"}, wantN: 3},
		{desc: "JWKS skips encryption keys and bad keys", data: `{"keys":[` + ecJWK + `,{"kty":"RSA","use":"enc","kid":"x","n":"AQ","e":"AQAB"},{"kty":"OKP","kid":"o"}]}`, wantKids: []string{"e"}, wantN: 1},
		{desc: "JWKS point not on the curve", data: `{"keys":[{"kty":"EC","crv":"P-256","kid":"b","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`, wantErr: "no usable signing key"},
		{desc: "JWKS malformed", data: `{"keys":`, wantErr: "JWKS"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			ks, err := parseKeys([]byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ks.all) != tc.wantN {
				t.Errorf("%d keys, want %d", len(ks.all), tc.wantN)
			}
			for _, kid := range tc.wantKids {
				if ks.byKid[kid] == nil {
					t.Errorf("kid %q missing", kid)
				}
			}
		})
	}
}
