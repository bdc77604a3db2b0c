package scg

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/internal/config"
)

// TestImportRedisTopology checks that Spring's Redis Cluster and Sentinel
// properties, in Spring Boot 3's and 2's places, as YAML lists, comma
// lists or environment variables, become the redis block's cluster or
// sentinel, replacing the single address.
func TestImportRedisTopology(t *testing.T) {
	defaults := func(r config.Redis) *config.Redis {
		r.Address = "127.0.0.1:6379"
		r.DialTimeout, r.ReadTimeout, r.WriteTimeout = time.Second, 200*time.Millisecond, 200*time.Millisecond
		return &r
	}
	tests := []struct {
		name     string
		file     string
		env      map[string]string
		want     *config.Redis
		warnings []string
	}{
		{
			name: "Boot 3 cluster, a YAML list",
			file: "spring.data.redis:\n  password: pw\n  cluster:\n    nodes: [10.0.0.1:7000, 10.0.0.2:7000]\n    max-redirects: 5\n",
			want: defaults(config.Redis{Password: "pw", Cluster: config.RedisCluster{Nodes: []string{"10.0.0.1:7000", "10.0.0.2:7000"}, MaxRedirects: 5}}),
		},
		{
			name: "Boot 2 cluster, a comma list",
			file: "spring.redis.cluster.nodes: 'r0:6379, r1:6379,r2:6379'\n",
			want: defaults(config.Redis{Cluster: config.RedisCluster{Nodes: []string{"r0:6379", "r1:6379", "r2:6379"}}}),
		},
		{
			name: "Boot 3 sentinel with its own password",
			file: "spring.data.redis:\n  password: data\n  database: 2\n  sentinel:\n    master: mymaster\n    nodes: s0:26379,s1:26379\n    password: sent\n",
			want: defaults(config.Redis{Password: "data", DB: 2, Sentinel: config.RedisSentinel{Master: "mymaster", Nodes: []string{"s0:26379", "s1:26379"}, Password: "sent"}}),
		},
		{
			name:     "Boot 2 sentinel from the environment",
			file:     "spring.redis.host: localhost\n",
			env:      map[string]string{"SPRING_REDIS_SENTINEL_MASTER": "m", "SPRING_REDIS_SENTINEL_NODES": "s0:26379,s1:26379"},
			want:     defaults(config.Redis{Sentinel: config.RedisSentinel{Master: "m", Nodes: []string{"s0:26379", "s1:26379"}}}),
			warnings: []string{`FILE:1:20: spring.redis.host: ignored: spring.redis.sentinel is set, and Spring connects through it instead`},
		},
		{
			name:     "sentinel wins over cluster, as in Spring",
			file:     "spring.data.redis:\n  sentinel: {master: m, nodes: [s0:26379]}\n  cluster: {nodes: [c0:7000]}\n",
			want:     defaults(config.Redis{Sentinel: config.RedisSentinel{Master: "m", Nodes: []string{"s0:26379"}}}),
			warnings: []string{`FILE:3:3: spring.data.redis.cluster: ignored: spring.data.redis.sentinel is set, and Spring connects through it instead`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, errs, warnings := Import("app.yml", []byte(tc.file), envOf(tc.env))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if got, want := *cfg.Redis, *tc.want; !equalRedis(got, want) {
				t.Errorf("redis block\n%+v\nwant\n%+v", got, want)
			}
			var lines []string
			for _, w := range warnings {
				lines = append(lines, strings.Replace(w.Error(), "app.yml:", "FILE:", 1))
			}
			if strings.Join(lines, "\n") != strings.Join(tc.warnings, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tc.warnings, "\n"))
			}
		})
	}
}

// TestImportRedisTopologyErrors checks that a bad Spring value is reported
// at its Spring property.
func TestImportRedisTopologyErrors(t *testing.T) {
	_, errs, _ := Import("app.yml", []byte("spring.data.redis.cluster.nodes: r0:6379,r1\n"), noEnv)
	want := `app.yml:1:34: spring.data.redis.cluster.nodes[1]: "r1" is not a valid address: missing port in address`
	if errs.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", errs, want)
	}
}

func equalRedis(a, b config.Redis) bool {
	return strings.Join(a.Cluster.Nodes, ",") == strings.Join(b.Cluster.Nodes, ",") &&
		strings.Join(a.Sentinel.Nodes, ",") == strings.Join(b.Sentinel.Nodes, ",") &&
		a.Cluster.MaxRedirects == b.Cluster.MaxRedirects && a.Sentinel.Master == b.Sentinel.Master &&
		a.Sentinel.Username == b.Sentinel.Username && a.Sentinel.Password == b.Sentinel.Password &&
		a.Address == b.Address && a.Password == b.Password && a.DB == b.DB && a.Username == b.Username
}
