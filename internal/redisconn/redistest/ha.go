package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of real redis-server processes: masters with
// replicas, made by redis-cli --cluster create. Failover is fast (a node
// that does not answer for a second is failed).
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts masters*(1+replicas) servers in cluster mode and joins
// them with `redis-cli --cluster create ... --cluster-replicas N --cluster-yes`;
// it returns once every node reports cluster_state:ok and every replica is
// in sync with its master.
func StartCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	need(t, "redis-cli")
	c := &Cluster{}
	create := []string{"--cluster", "create"}
	for range masters * (1 + replicas) {
		s := newServer(t, "redis-server")
		s.args = []string{"--cluster-enabled", "yes", "--cluster-config-file", s.expand("{dir}/nodes.conf"),
			"--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"}
		s.start()
		c.Nodes = append(c.Nodes, s)
		create = append(create, s.Addr)
	}
	create = append(create, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", create...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range c.Nodes {
		s.waitInfo("cluster info", "cluster_state:ok", 20*time.Second)
		if out, _ := s.Command("info", "replication"); strings.Contains(out, "role:slave") {
			s.waitInfo("info replication", "master_link_status:up", 20*time.Second)
		}
	}
	return c
}

// Addrs returns every node's address.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, s := range c.Nodes {
		out = append(out, s.Addr)
	}
	return out
}

// Node returns the node at addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// Sentinel is a master, its replicas and the Sentinels that watch them
// (quorum 2, a master that does not answer for a second is down).
type Sentinel struct {
	Master    *Server
	Replicas  []*Server
	Sentinels []*Server
	Name      string // the master's name in the Sentinels
}

// StartSentinel starts a master, replicas replicas of it and sentinels
// Sentinels, and returns once every Sentinel knows the replicas and the
// other Sentinels, so that a failover can start.
func StartSentinel(t testing.TB, replicas, sentinels int) *Sentinel {
	t.Helper()
	need(t, "redis-sentinel")
	st := &Sentinel{Name: "sluice", Master: Start(t)}
	for range replicas {
		r := Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(st.Master.port))
		st.Replicas = append(st.Replicas, r)
	}
	for _, r := range st.Replicas {
		r.waitInfo("info replication", "master_link_status:up", 10*time.Second)
	}
	for range sentinels {
		s := newServer(t, "redis-sentinel")
		s.conf = fmt.Sprintf("port {port}\nbind 127.0.0.1\ndir {dir}\nprotected-mode no\nloglevel warning\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 5000\nsentinel parallel-syncs %[1]s 1\n", st.Name, st.Master.port)
		s.start()
		st.Sentinels = append(st.Sentinels, s)
	}
	for _, s := range st.Sentinels {
		s.waitInfo("sentinel master "+st.Name, fmt.Sprintf("num-slaves\n%d", replicas), 20*time.Second)
		s.waitInfo("sentinel master "+st.Name, fmt.Sprintf("num-other-sentinels\n%d", sentinels-1), 20*time.Second)
	}
	return st
}

// Addrs returns the Sentinels' addresses.
func (st *Sentinel) Addrs() []string {
	var out []string
	for _, s := range st.Sentinels {
		out = append(out, s.Addr)
	}
	return out
}

// MasterAddr asks the first Sentinel that answers which address it holds
// for the master.
func (st *Sentinel) MasterAddr() string {
	for _, s := range st.Sentinels {
		if s.PID() == 0 {
			continue
		}
		out, err := s.Command("sentinel", "get-master-addr-by-name", st.Name)
		if f := strings.Fields(out); err == nil && len(f) == 2 {
			return net.JoinHostPort(f[0], f[1])
		}
	}
	return ""
}

// Server returns the master or replica at addr, or nil.
func (st *Sentinel) Server(addr string) *Server {
	for _, s := range append([]*Server{st.Master}, st.Replicas...) {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// Command runs one command on s with redis-cli and returns its output.
func (s *Server) Command(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", fmt.Sprint(s.port)}, args...)...).CombinedOutput()
	return string(out), err
}

// waitInfo waits until the output of command (words) contains want.
func (s *Server) waitInfo(command, want string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		out, err := s.Command(strings.Fields(command)...)
		last = normalize(out)
		if err == nil && strings.Contains(last, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("%s: %q never showed %q; last:\n%s", s, command, want, last)
}

// normalize drops the \r of INFO output.
func normalize(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		b.WriteString(strings.TrimRight(sc.Text(), "\r"))
		b.WriteByte('\n')
	}
	return b.String()
}
