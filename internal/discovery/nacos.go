package discovery

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gw/sluice/internal/endpoint"
)

// Nacos follows the instances of one service registered in Nacos, as
// Spring Cloud Alibaba's discovery client does (the properties under
// spring.cloud.nacos.discovery).
//
// It speaks Nacos's documented Open API over HTTP, not the official Go SDK
// (github.com/nacos-group/nacos-sdk-go/v2). The SDK is built for
// applications that register themselves and read config: it opens a gRPC
// stream per server, keeps an on-disk cache and failover directory, runs
// its own logger and goroutines, and pulls a large dependency tree (gRPC
// codegen, an Alibaba Cloud KMS client, a second logging stack) into a
// gateway that only reads one list per service. The Open API is stable
// across Nacos 1.x and 2.x (and 3.x with its client API compatibility on,
// the default), and what the gateway needs of it is two calls:
//
//   - POST /nacos/v1/auth/login (when Username is set) for an access token;
//   - GET /nacos/v1/ns/instance/list?serviceName=&groupName=&namespaceId=&clusters=
//     for the service's instances, every Interval, and at once when Nacos
//     pushes a change.
//
// Push is Nacos's subscription for HTTP clients: the list request names a
// UDP port (udpPort, clientIP), and Nacos sends a datagram to it whenever
// the service changes, which the client acknowledges. A push here only
// means "fetch now" (level-triggered), so a lost datagram costs at most
// one Interval.
//
// Instances map as Spring Cloud Alibaba's load balancer reads them:
// healthy and enabled instances are ready, weighted by their weight;
// unhealthy or disabled ones (enabled: false), and weight 0, are draining:
// no new requests, idle connections closed, requests in flight finish.
// Servers are tried in turn; while none answers, the last set stays.
type Nacos struct {
	Servers   []string // host:port (8848 by default) or http(s)://host:port
	Namespace string   // namespace id; "" is the public namespace
	Group     string   // "" is DEFAULT_GROUP
	Service   string
	Clusters  []string // cluster names; none: every cluster
	Username  string   // with Password: log in for an access token
	Password  string
	Interval  time.Duration // between fetches without a push; default 10s
	// Push subscribes for Nacos's UDP push of changes.
	Push   bool
	Client *http.Client // nil: a default client
	Log    *slog.Logger
	Stats  *Stats

	mu          sync.Mutex
	token       string
	tokenExpiry time.Time
	next        int // the server to try first
}

func (n *Nacos) stats() *Stats { return n.Stats }

// nacosAgent is the User-Agent Nacos recognises as a client that can take
// UDP push (its ClientInfo parses Nacos-Go-Client:vX.Y.Z).
const nacosAgent = "Nacos-Go-Client:v1.4.0 sluice"

// NacosInstanceList is the answer of /nacos/v1/ns/instance/list.
type NacosInstanceList struct {
	Name        string          `json:"name"`
	GroupName   string          `json:"groupName"`
	Clusters    string          `json:"clusters"`
	CacheMillis int64           `json:"cacheMillis"`
	Hosts       []NacosInstance `json:"hosts"`
	LastRefTime int64           `json:"lastRefTime"`
}

// NacosInstance is one instance of a Nacos service.
type NacosInstance struct {
	InstanceID  string            `json:"instanceId"`
	IP          string            `json:"ip"`
	Port        int               `json:"port"`
	Weight      float64           `json:"weight"`
	Healthy     *bool             `json:"healthy"` // Nacos ≥ 1.0
	Valid       *bool             `json:"valid"`   // its older name
	Enabled     *bool             `json:"enabled"` // absent: true
	Ephemeral   bool              `json:"ephemeral"`
	ClusterName string            `json:"clusterName"`
	Metadata    map[string]string `json:"metadata"`
}

// Run follows the service until ctx ends.
func (n *Nacos) Run(ctx context.Context, publish func([]endpoint.Spec)) {
	log := n.logger()
	interval := n.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	out := &dedup{publish: publish, stats: n.Stats}
	pushed := make(chan struct{}, 1)
	var udp *net.UDPConn
	if n.Push {
		var err error
		if udp, err = n.listenPush(ctx, pushed, log); err != nil {
			log.Warn("nacos: no push subscription; polling only", "error", err.Error())
		}
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-pushed:
		}
		list, err := n.Fetch(ctx, udp)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.Stats.fail(log, err)
		} else {
			n.Stats.ok(log)
			out.send(NacosSpecs(list.Hosts, n.Clusters))
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(interval)
	}
}

func (n *Nacos) logger() *slog.Logger {
	if n.Log != nil {
		return n.Log
	}
	return slog.Default()
}

// NacosSpecs maps Nacos instances to endpoints (see Nacos). Instances of
// clusters not listed (when clusters is not empty) and instances with no
// valid address are left out.
func NacosSpecs(hosts []NacosInstance, clusters []string) []endpoint.Spec {
	specs := make([]endpoint.Spec, 0, len(hosts))
	seen := map[string]bool{}
	for _, h := range hosts {
		if len(clusters) > 0 && !slices.Contains(clusters, h.ClusterName) {
			continue
		}
		addr, ok := instanceAddr(h.IP, h.Port)
		if !ok || seen[addr] {
			continue
		}
		seen[addr] = true
		w, positive := scaledWeight(h.Weight)
		specs = append(specs, endpoint.Spec{Addr: addr, Weight: max(w, 1), Draining: !h.healthy() || !orTrue(h.Enabled) || !positive})
	}
	sortSpecs(specs)
	return specs
}

func (h *NacosInstance) healthy() bool {
	if h.Healthy != nil {
		return *h.Healthy
	}
	return orTrue(h.Valid)
}

func orTrue(b *bool) bool { return b == nil || *b }

// Fetch asks the servers in turn for the service's instances; udp, when
// not nil, is the socket Nacos should push changes to.
func (n *Nacos) Fetch(ctx context.Context, udp *net.UDPConn) (*NacosInstanceList, error) {
	if len(n.Servers) == 0 {
		return nil, errors.New("nacos: no server address")
	}
	n.mu.Lock()
	first := n.next
	n.mu.Unlock()
	var errs []error
	for i := range n.Servers {
		k := (first + i) % len(n.Servers)
		list, err := n.fetchFrom(ctx, n.Servers[k], udp)
		if err == nil {
			n.mu.Lock()
			n.next = k
			n.mu.Unlock()
			return list, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (n *Nacos) fetchFrom(ctx context.Context, server string, udp *net.UDPConn) (*NacosInstanceList, error) {
	base, err := serverURL(server, 8848)
	if err != nil {
		return nil, err
	}
	base.User = nil
	if strings.Trim(base.Path, "/") == "" {
		base.Path = "/nacos"
	}
	token, err := n.accessToken(ctx, base)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("serviceName", n.Service)
	q.Set("groupName", n.group())
	if n.Namespace != "" {
		q.Set("namespaceId", n.Namespace)
	}
	if len(n.Clusters) > 0 {
		q.Set("clusters", strings.Join(n.Clusters, ","))
	}
	q.Set("healthyOnly", "false")
	if udp != nil {
		if ip := localIPToward(base.Hostname()); ip != "" {
			q.Set("udpPort", strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
			q.Set("clientIP", ip)
		}
	}
	if token != "" {
		q.Set("accessToken", token)
	}
	u := base.JoinPath("v1/ns/instance/list")
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", nacosAgent)
	var list NacosInstanceList
	err = getJSON(ctx, n.Client, req, &list)
	if code := httpStatus(err); code == http.StatusForbidden || code == http.StatusUnauthorized {
		n.mu.Lock()
		n.token = "" // expired or revoked: log in again next time
		n.mu.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("nacos: %w", err)
	}
	return &list, nil
}

func (n *Nacos) group() string {
	if n.Group == "" {
		return "DEFAULT_GROUP"
	}
	return n.Group
}

// accessToken logs in when a username is set, and keeps the token until
// 90% of its time to live has passed.
func (n *Nacos) accessToken(ctx context.Context, base *url.URL) (string, error) {
	if n.Username == "" {
		return "", nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.token != "" && time.Now().Before(n.tokenExpiry) {
		return n.token, nil
	}
	form := url.Values{"username": {n.Username}, "password": {n.Password}}
	req, err := http.NewRequest(http.MethodPost, base.JoinPath("v1/auth/login").String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", nacosAgent)
	var login struct {
		AccessToken string `json:"accessToken"`
		TokenTTL    int64  `json:"tokenTtl"` // seconds
	}
	if err := getJSON(ctx, n.Client, req, &login); err != nil {
		return "", fmt.Errorf("nacos login: %w", err)
	}
	if login.AccessToken == "" {
		return "", errors.New("nacos login: no accessToken in the answer")
	}
	ttl := time.Duration(min(max(login.TokenTTL, 10), 1<<30)) * time.Second
	n.token, n.tokenExpiry = login.AccessToken, time.Now().Add(ttl*9/10)
	return n.token, nil
}

// localIPToward is the local address that packets to host leave from,
// which is where Nacos can push to ("" if host cannot be resolved).
// Connecting a UDP socket sends nothing.
func localIPToward(host string) string {
	c, err := net.Dial("udp", net.JoinHostPort(host, "8848"))
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// nacosPush is a datagram Nacos pushes: type "dom" or "service" with the
// new list in data (ignored: the list is fetched again), or "dump".
type nacosPush struct {
	Type        string `json:"type"`
	LastRefTime int64  `json:"lastRefTime"`
}

// listenPush opens the UDP socket Nacos pushes to. Each datagram is
// acknowledged as Nacos expects, and pokes pushed.
func (n *Nacos) listenPush(ctx context.Context, pushed chan<- struct{}, log *slog.Logger) (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{})
	if err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			k, from, err := c.ReadFromUDP(buf)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("nacos: push socket failed; polling only", "error", err.Error())
				}
				return
			}
			p, ok := decodeNacosPush(buf[:k])
			if !ok {
				continue
			}
			ack, _ := json.Marshal(map[string]any{"type": "push-ack", "lastRefTime": strconv.FormatInt(p.LastRefTime, 10), "data": ""})
			c.WriteToUDP(ack, from)
			if p.Type == "dom" || p.Type == "service" {
				select {
				case pushed <- struct{}{}:
				default:
				}
			}
		}
	}()
	return c, nil
}

// decodeNacosPush reads a push datagram, gzipped or not.
func decodeNacosPush(b []byte) (nacosPush, bool) {
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nacosPush{}, false
		}
		if b, err = io.ReadAll(io.LimitReader(zr, 1<<20)); err != nil {
			return nacosPush{}, false
		}
	}
	var p nacosPush
	return p, json.Unmarshal(b, &p) == nil
}
