package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseRedis(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
		want *Redis
	}{
		{desc: "absent", yaml: "", want: nil},
		{desc: "empty block takes the defaults", yaml: "redis: {}",
			want: &Redis{Address: "127.0.0.1:6379", DialTimeout: time.Second, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}},
		{desc: "every field", yaml: `
redis:
  address: redis.internal:6380
  username: gw
  password: s3cret
  db: 2
  tls: {enabled: true, server_name: redis.internal, insecure_skip_verify: true}
  pool_size: 32
  dial_timeout: 500ms
  read_timeout: 50ms
  write_timeout: 60ms
`, want: &Redis{Address: "redis.internal:6380", Username: "gw", Password: "s3cret", DB: 2,
			TLS:      RedisTLS{Enabled: true, ServerName: "redis.internal", InsecureSkipVerify: true},
			PoolSize: 32, DialTimeout: 500 * time.Millisecond, ReadTimeout: 50 * time.Millisecond, WriteTimeout: 60 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			diff(t, c.Redis, tc.want)
		})
	}
}

func TestParseRedisErrors(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
		want []string
	}{
		{desc: "bad values", yaml: `
redis:
  address: localhost
  db: 16
  pool_size: -1
  read_timeout: 0s
  tls: {ca_file: /nonexistent.pem}
  pasword: x
`, want: []string{
			`sluice.yaml:3:12: redis.address: "localhost" is not a valid address: missing port in address`,
			`sluice.yaml:4:7: redis.db: must be between 0 and 15, got 16`,
			`sluice.yaml:5:14: redis.pool_size: must be at least 0, got -1`,
			`sluice.yaml:6:17: redis.read_timeout: must be greater than 0`,
			`sluice.yaml:7:8: redis.tls: set enabled: true to use ca_file, server_name or insecure_skip_verify`,
			`sluice.yaml:8:3: redis: unknown key "pasword" (did you mean password?)`,
		}},
		{desc: "missing CA file", yaml: "redis: {tls: {enabled: true, ca_file: /nonexistent.pem}}",
			want: []string{`sluice.yaml:1:39: redis.tls.ca_file: file "/nonexistent.pem" does not exist`}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := Parse("sluice.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}
