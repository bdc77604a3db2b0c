package registrytest

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Nacos serves Nacos's Open API: POST /nacos/v1/auth/login,
// GET /nacos/v1/ns/instance/list and GET /nacos/v1/ns/service/list, and pushes changes over UDP to the
// clients that named a udpPort, as Nacos does for HTTP clients.
type Nacos struct {
	server
	svcs               *services
	Username, Password string // when set, instance/list needs the login's accessToken
	Lists, Acks        atomic.Int64

	mu          sync.Mutex
	subscribers map[string]*net.UDPAddr // "namespace/group@@service" → client
	refTime     int64
}

// NewNacos starts a Nacos server; it stops with the test.
func NewNacos(t testing.TB) *Nacos {
	n := &Nacos{svcs: newServices(), subscribers: map[string]*net.UDPAddr{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nacos/v1/auth/login", n.login)
	mux.HandleFunc("GET /nacos/v1/ns/instance/list", n.list)
	mux.HandleFunc("GET /nacos/v1/ns/service/list", n.serviceList)
	n.server = server{t: t, handler: mux}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

func nacosKey(ns, group, svc string) string {
	if group == "" {
		group = "DEFAULT_GROUP"
	}
	return ns + "/" + group + "@@" + svc
}

// Set replaces the instances of service in namespace ns ("" = public) and
// group ("" = DEFAULT_GROUP), and pushes the change to its subscribers.
func (n *Nacos) Set(ns, group, service string, insts ...Instance) {
	key := nacosKey(ns, group, service)
	n.svcs.set(key, insts)
	n.mu.Lock()
	to := n.subscribers[key]
	n.refTime++
	ref := n.refTime
	n.mu.Unlock()
	if to == nil {
		return
	}
	c, err := net.DialUDP("udp", nil, to)
	if err != nil {
		return
	}
	defer c.Close()
	body, _ := json.Marshal(n.body(key, service, group))
	push, _ := json.Marshal(map[string]any{"type": "dom", "data": string(body), "lastRefTime": ref})
	c.Write(push)
	buf := make([]byte, 512)
	c.SetReadDeadline(deadline())
	if k, err := c.Read(buf); err == nil && strings.Contains(string(buf[:k]), `"push-ack"`) {
		n.Acks.Add(1)
	}
}

func (n *Nacos) login(w http.ResponseWriter, r *http.Request) {
	if r.FormValue("username") != n.Username || r.FormValue("password") != n.Password {
		http.Error(w, "unknown user!", http.StatusForbidden)
		return
	}
	writeJSON(w, fixture("nacos-login.json"))
}

func (n *Nacos) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if n.Username != "" && q.Get("accessToken") != fixture("nacos-login.json").(map[string]any)["accessToken"] {
		http.Error(w, "user not found!", http.StatusForbidden)
		return
	}
	svc := q.Get("serviceName")
	if svc == "" {
		http.Error(w, "caused: Param 'serviceName' is required.;", http.StatusBadRequest)
		return
	}
	key := nacosKey(q.Get("namespaceId"), q.Get("groupName"), svc)
	if port, _ := strconv.Atoi(q.Get("udpPort")); port > 0 && q.Get("clientIP") != "" {
		n.mu.Lock()
		n.subscribers[key] = &net.UDPAddr{IP: net.ParseIP(q.Get("clientIP")), Port: port}
		n.mu.Unlock()
	}
	n.Lists.Add(1)
	writeJSON(w, n.body(key, svc, q.Get("groupName")))
}

// serviceList answers the services of a namespace and group that have
// instances (Nacos removes an empty ephemeral service after a while), one
// page of them.
func (n *Nacos) serviceList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if n.Username != "" && q.Get("accessToken") != fixture("nacos-login.json").(map[string]any)["accessToken"] {
		http.Error(w, "user not found!", http.StatusForbidden)
		return
	}
	page, err1 := strconv.Atoi(q.Get("pageNo"))
	size, err2 := strconv.Atoi(q.Get("pageSize"))
	if err1 != nil || err2 != nil || page < 1 || size < 1 {
		http.Error(w, "caused: Param 'pageNo' and 'pageSize' are required.;", http.StatusBadRequest)
		return
	}
	names, _, _ := n.svcs.names(nacosKey(q.Get("namespaceId"), q.Get("groupName"), ""))
	doc := fixture("nacos-service-list.json").(map[string]any)
	doc["count"] = len(names)
	from, to := min((page-1)*size, len(names)), min(page*size, len(names))
	doc["doms"] = names[from:to]
	writeJSON(w, doc)
}

// body is the recorded instance list with the hosts of key.
func (n *Nacos) body(key, svc, group string) any {
	if group == "" {
		group = "DEFAULT_GROUP"
	}
	insts, _, _ := n.svcs.get(key)
	doc := fixture("nacos-instance-list.json").(map[string]any)
	proto := doc["hosts"].([]any)[0]
	hosts := []any{}
	for _, in := range insts {
		h := clone(proto).(map[string]any)
		ip, port := splitAddr(in.Addr)
		w := in.Weight
		if w == 0 {
			w = 1
		}
		h["ip"], h["port"], h["weight"] = ip, port, w
		h["healthy"], h["enabled"], h["ephemeral"] = in.Healthy, !in.Disabled, true
		h["serviceName"] = group + "@@" + svc
		h["instanceId"] = ip + "#" + strconv.Itoa(port) + "#DEFAULT#" + group + "@@" + svc
		hosts = append(hosts, h)
	}
	doc["hosts"], doc["name"], doc["groupName"] = hosts, group+"@@"+svc, group
	return doc
}
