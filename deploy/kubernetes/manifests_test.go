// Package kubernetes holds the manifests that deploy Sluice on Kubernetes;
// its test decodes them with the Kubernetes API types and checks the
// invariants that a graceful rolling update depends on.
package kubernetes

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/sluice-gw/sluice/internal/config"
)

// load decodes every document of every manifest strictly: unknown or
// misspelt fields and unknown kinds are errors.
func load(t *testing.T) []runtime.Object {
	t.Helper()
	decode := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer().Decode
	files, _ := filepath.Glob("*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	var objs []runtime.Object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			obj, gvk, err := decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
			if gvk.Kind == "" {
				t.Fatalf("%s, document %d: no kind", f, i+1)
			}
			objs = append(objs, obj)
		}
	}
	return objs
}

func find[T runtime.Object](t *testing.T, objs []runtime.Object) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T in the manifests", zero)
	return zero
}

func TestManifests(t *testing.T) {
	objs := load(t)
	dep := find[*appsv1.Deployment](t, objs)
	cm := find[*corev1.ConfigMap](t, objs)
	svc := find[*corev1.Service](t, objs)
	sa := find[*corev1.ServiceAccount](t, objs)
	pdb := find[*policyv1.PodDisruptionBudget](t, objs)
	role := find[*rbacv1.ClusterRole](t, objs)
	binding := find[*rbacv1.ClusterRoleBinding](t, objs)

	// The gateway's own config, parsed as Sluice would in a pod.
	defer func(f func() bool) { config.InCluster = f }(config.InCluster)
	config.InCluster = func() bool { return true }
	cfg, err := config.Parse("configmap.yaml:sluice.yaml", []byte(cm.Data["sluice.yaml"]))
	if err != nil {
		t.Fatalf("the ConfigMap's sluice.yaml does not parse:\n%v", err)
	}

	if r := dep.Spec.Replicas; r == nil || *r < 2 {
		t.Errorf("replicas %v, want several", r)
	}
	if u := dep.Spec.Strategy.RollingUpdate; u == nil || u.MaxUnavailable == nil || u.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update must keep every replica until its successor is ready (maxUnavailable 0)")
	}
	pod := dep.Spec.Template.Spec
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	if need := cfg.Drain.Delay + cfg.Drain.Timeout; grace <= need {
		t.Errorf("terminationGracePeriodSeconds %s must exceed drain.delay + drain.timeout = %s", grace, need)
	}
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("pods run as %q, want the ServiceAccount %q", pod.ServiceAccountName, sa.Name)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		t.Errorf("a preStop hook is not needed: Sluice serves through drain.delay by itself")
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if want := portOf(t, cfg.Server.Listen); ports["http"] != want {
		t.Errorf("container port http = %d, want server.listen's %d", ports["http"], want)
	}
	if want := portOf(t, cfg.Admin.Listen); ports["admin"] != want {
		t.Errorf("container port admin = %d, want admin.listen's %d", ports["admin"], want)
	}
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"readiness", c.ReadinessProbe, "/healthz/ready"},
		{"liveness", c.LivenessProbe, "/healthz/live"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe: GET %s on port %s, want %s on the admin port", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	if rp := c.ReadinessProbe; time.Duration(rp.PeriodSeconds*rp.FailureThreshold)*time.Second >= cfg.Drain.Delay {
		t.Errorf("readiness notices a drain after %ds, not within drain.delay (%s)", rp.PeriodSeconds*rp.FailureThreshold, cfg.Drain.Delay)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pods must run as non-root")
	}
	mounted := false
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
			mounted = true
		}
	}
	if !mounted || !slices.Contains(c.Args, "/etc/sluice/sluice.yaml") {
		t.Errorf("the ConfigMap must be mounted and its sluice.yaml passed to sluice run")
	}

	labels := dep.Spec.Template.Labels
	for what, sel := range map[string]map[string]string{"Service": svc.Spec.Selector, "PodDisruptionBudget": pdb.Spec.Selector.MatchLabels, "Deployment": dep.Spec.Selector.MatchLabels} {
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("the %s selects %s=%s, which the pods do not carry", what, k, v)
			}
		}
	}
	if svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("the Service targets %s, want the http port", svc.Spec.Ports[0].TargetPort.String())
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Errorf("the PodDisruptionBudget sets no bound")
	}

	// RBAC: exactly get, list and watch on EndpointSlices, bound to the pods' ServiceAccount.
	if len(role.Rules) != 1 {
		t.Fatalf("%d RBAC rules, want 1", len(role.Rules))
	}
	r := role.Rules[0]
	if !slices.Equal(r.APIGroups, []string{"discovery.k8s.io"}) || !slices.Equal(r.Resources, []string{"endpointslices"}) {
		t.Errorf("rule on %v %v, want discovery.k8s.io endpointslices", r.APIGroups, r.Resources)
	}
	verbs := slices.Clone(r.Verbs)
	slices.Sort(verbs)
	if !slices.Equal(verbs, []string{"get", "list", "watch"}) {
		t.Errorf("verbs %v, want get, list, watch", r.Verbs)
	}
	if binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != sa.Name || binding.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("the binding does not give the role to ServiceAccount %s/%s", sa.Namespace, sa.Name)
	}

	// Every upstream of the shipped config uses Kubernetes discovery.
	for name, u := range cfg.Upstreams {
		if u.Discovery == nil || u.Discovery.Type != config.DiscoveryKubernetes {
			t.Errorf("upstream %s does not use kubernetes discovery", name)
		}
	}
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	var p int32
	for _, c := range addr[i+1:] {
		p = p*10 + int32(c-'0')
	}
	return p
}

// TestDockerfile checks the image recipe: a Go builder, a static binary, a
// distroless or scratch final stage, a non-root user.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := string(b)
	for _, want := range []string{"FROM golang:", "CGO_ENABLED=0", "FROM gcr.io/distroless/static", "USER 65532"} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Count(d, "\nFROM ") < 2 && !strings.HasPrefix(d, "FROM ") {
		t.Errorf("Dockerfile is not multi-stage")
	}
}
