package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestUpstreamDefaults(t *testing.T) {
	const file = `
upstream_defaults:
  connect_timeout: 45ms
  pool:
    max_idle_time: 9s
    max_lifetime: 0s
    max_connections: 50
upstreams:
  own:
    endpoints: [127.0.0.1:9001]
    connect_timeout: 1s
    pool: {max_connections: 7}
  plain:
    endpoints: [127.0.0.1:9002]
routes:
  - id: direct
    uri: http://127.0.0.1:9003
`
	c, err := Parse("t.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		upstream string
		want     Pool
		connect  time.Duration
	}{
		{name: "fields the upstream writes win", upstream: "own",
			want: Pool{MaxIdleTime: 9 * time.Second, MaxConnections: 7}, connect: time.Second},
		{name: "named upstream takes every default", upstream: "plain",
			want: Pool{MaxIdleTime: 9 * time.Second, MaxConnections: 50}, connect: 45 * time.Millisecond},
		{name: "implicit upstream takes every default", upstream: "http://127.0.0.1:9003",
			want: Pool{MaxIdleTime: 9 * time.Second, MaxConnections: 50}, connect: 45 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := c.Upstreams[tc.upstream]
			if u.Pool != tc.want || u.ConnectTimeout != tc.connect {
				t.Errorf("pool %+v connect %s, want %+v %s", u.Pool, u.ConnectTimeout, tc.want, tc.connect)
			}
		})
	}
}

func TestUpstreamDefaultsErrors(t *testing.T) {
	_, err := Parse("t.yaml", []byte("upstream_defaults:\n  connect_timeout: 0s\n  pool: {max_connections: -1, max_idle_tme: 1s}\n"))
	want := []string{
		`t.yaml:2:20: upstream_defaults.connect_timeout: must be greater than 0`,
		`t.yaml:3:27: upstream_defaults.pool.max_connections: must be at least 0, got -1`,
		`t.yaml:3:31: upstream_defaults.pool: unknown key "max_idle_tme" (did you mean max_idle_time?)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

func TestParseNode(t *testing.T) {
	// Positions come from the nodes, not from any text.
	root := &yaml.Node{Kind: yaml.MappingNode, Line: 40, Column: 1, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "server", Line: 40, Column: 1},
		{Kind: yaml.MappingNode, Line: 41, Column: 3, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "listen", Line: 41, Column: 3},
			{Kind: yaml.ScalarNode, Value: "nowhere", Line: 41, Column: 11},
		}},
	}}
	_, errs := ParseNode("app.yml", root)
	if got, want := errs.Error(), `app.yml:41:11: server.listen: "nowhere" is not a valid address: missing port in address`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
