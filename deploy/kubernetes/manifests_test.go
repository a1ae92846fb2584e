// Package kubernetes holds example manifests for running the proxy on Kubernetes (Deployment,
// Service, ConfigMap, Secret placeholders, PodDisruptionBudget) and the test that checks them
// against the proxy's own configuration rules (no cluster needed).
package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mizuchi/uploadr/server"
)

// The parts of the manifests the test reads.
type (
	object struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   meta              `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`       // ConfigMap
		StringData map[string]string `yaml:"stringData"` // Secret
		Spec       yaml.Node         `yaml:"spec"`
		file       string
	}
	meta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	deploymentSpec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    int64 `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
		} `yaml:"volumes"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		StartupProbe   *probe `yaml:"startupProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"` // a number or a container port's name
		} `yaml:"httpGet"`
	}
	serviceSpec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	pdbSpec struct {
		MinAvailable   any `yaml:"minAvailable"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
)

// wantKinds are the objects the directory must hold, with their apiVersions.
var wantKinds = map[string]string{
	"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1", "Secret": "v1",
	"PodDisruptionBudget": "policy/v1",
}

func loadManifests(t *testing.T) map[string]*object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string]*object{}
	for _, f := range files {
		if f == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(false)
		for i := 0; ; i++ {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			o.file = f
			want, ok := wantKinds[o.Kind]
			switch {
			case !ok:
				t.Errorf("%s: unexpected kind %q", f, o.Kind)
				continue
			case o.APIVersion != want:
				t.Errorf("%s: %s apiVersion %q; want %q", f, o.Kind, o.APIVersion, want)
			case o.Metadata.Name == "":
				t.Errorf("%s: %s without metadata.name", f, o.Kind)
			case byKind[o.Kind] != nil:
				t.Errorf("%s: a second %s (first in %s)", f, o.Kind, byKind[o.Kind].file)
			}
			byKind[o.Kind] = &o
		}
	}
	for k := range wantKinds {
		if byKind[k] == nil {
			t.Errorf("no %s manifest", k)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return byKind
}

func decodeSpec(t *testing.T, o *object, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s: %s spec: %v", o.file, o.Kind, err)
	}
}

// subset reports whether every label in sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

func TestManifests(t *testing.T) {
	objs := loadManifests(t)
	var dep deploymentSpec
	decodeSpec(t, objs["Deployment"], &dep)
	var svc serviceSpec
	decodeSpec(t, objs["Service"], &svc)
	var pdb pdbSpec
	decodeSpec(t, objs["PodDisruptionBudget"], &pdb)
	pod := dep.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers; want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	checkSelectors(t, &dep, &svc, &pdb)
	env := podEnv(t, &c, objs["Secret"])
	cfg := checkConfig(t, objs["ConfigMap"], &pod, &c, env)
	checkPorts(t, &c, &svc, cfg)
	checkDrainAndHardening(t, &pod, &c, cfg)
}

// checkSelectors: the Deployment's selector picks its pods; the Service and the PDB select the same.
func checkSelectors(t *testing.T, dep *deploymentSpec, svc *serviceSpec, pdb *pdbSpec) {
	t.Helper()
	podLabels := dep.Template.Metadata.Labels
	if !subset(dep.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", dep.Selector.MatchLabels, podLabels)
	}
	if !subset(svc.Selector, podLabels) {
		t.Errorf("Service selector %v does not match the pod labels %v", svc.Selector, podLabels)
	}
	if !subset(pdb.Selector.MatchLabels, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not match the pod labels %v", pdb.Selector.MatchLabels, podLabels)
	}
	if (pdb.MinAvailable == nil) == (pdb.MaxUnavailable == nil) {
		t.Errorf("PodDisruptionBudget: set exactly one of minAvailable and maxUnavailable")
	}
}

// podEnv is the environment the pod gets: every variable from the Secret, whose keys must exist.
func podEnv(t *testing.T, c *container, secret *object) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != secret.Metadata.Name {
				t.Errorf("env %s: secret %q; the Secret manifest is %q", e.Name, ref.Name, secret.Metadata.Name)
			}
			if _, ok := secret.StringData[ref.Key]; !ok {
				t.Errorf("env %s: key %q not in the Secret", e.Name, ref.Key)
			}
			// A placeholder as a real deployment would have it (upload id secrets need 16+ bytes).
			env[e.Name] = "placeholder-" + strings.ToLower(e.Name) + "-0123456789abcdef"
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		}
	}
	return env
}

// checkConfig returns the configuration: from the ConfigMap, mounted where -config points, valid
// by the proxy's own rules with the Deployment's environment.
func checkConfig(t *testing.T, cm *object, pod *podSpec, c *container, env map[string]string) *server.Config {
	t.Helper()
	raw, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yaml", cm.Metadata.Name)
	}
	for _, m := range varRE.FindAllStringSubmatch(raw, -1) {
		if _, ok := env[m[1]]; !ok && m[2] == "" {
			t.Errorf("config.yaml uses ${%s}, which the Deployment does not set", m[1])
		}
	}
	cfg, err := server.ParseConfig([]byte(raw), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config.yaml does not validate: %v", err)
	}
	if _, err := cfg.EngineOptions(nil, nil); err != nil {
		t.Fatalf("config.yaml: engine options: %v", err)
	}
	configPath := ""
	for i, a := range c.Args {
		if a == "-config" && i+1 < len(c.Args) {
			configPath = c.Args[i+1]
		}
	}
	mounted := false
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name &&
				configPath == filepath.Join(vm.MountPath, "config.yaml") {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("-config %q is not the ConfigMap's config.yaml as mounted", configPath)
	}
	return cfg
}

// checkPorts: the container's ports match the listen and admin addresses; probes hit the admin port.
func checkPorts(t *testing.T, c *container, svc *serviceSpec, cfg *server.Config) {
	t.Helper()
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	listen, admin := portOf(t, cfg.Server.Address), portOf(t, cfg.Metrics.Address)
	if ports["s3"] != listen {
		t.Errorf("container port s3 = %d; server.address listens on %d", ports["s3"], listen)
	}
	if ports["admin"] != admin {
		t.Errorf("container port admin = %d; metrics.address listens on %d", ports["admin"], admin)
	}
	if cfg.Metrics.Enabled != nil && !*cfg.Metrics.Enabled {
		t.Errorf("metrics.enabled is false: no admin listener for the probes")
	}
	if h, _, _ := net.SplitHostPort(cfg.Metrics.Address); h == "127.0.0.1" || h == "localhost" {
		t.Errorf("metrics.address %q is loopback: the kubelet's probes cannot reach it", cfg.Metrics.Address)
	}
	resolve := func(port any) int {
		switch p := port.(type) {
		case int:
			return p
		case string:
			return ports[p]
		}
		return 0
	}
	for name, pr := range map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
		switch {
		case pr == nil || pr.HTTPGet == nil:
			t.Errorf("no %s httpGet probe", name)
		case pr.HTTPGet.Path != want:
			t.Errorf("%s probe path %q; want %q", name, pr.HTTPGet.Path, want)
		case resolve(pr.HTTPGet.Port) != admin:
			t.Errorf("%s probe port %v; the admin listener is on %d", name, pr.HTTPGet.Port, admin)
		}
	}
	if pr := c.StartupProbe; pr != nil && (pr.HTTPGet == nil || resolve(pr.HTTPGet.Port) != admin) {
		t.Errorf("startup probe does not hit the admin port")
	}
	svcPorts := map[int]bool{}
	for _, p := range svc.Ports {
		svcPorts[resolve(p.TargetPort)] = true
	}
	if !svcPorts[listen] || !svcPorts[admin] {
		t.Errorf("Service target ports %v; want the S3 port %d and the admin port %d", svcPorts, listen, admin)
	}
}

// checkDrainAndHardening: the grace period covers drain_timeout plus the ~10s the cut uploads'
// aborts get; the pod runs hardened, with resources.
func checkDrainAndHardening(t *testing.T, pod *podSpec, c *container, cfg *server.Config) {
	t.Helper()
	drain := time.Duration(cfg.Server.DrainTimeout)
	if g := pod.TerminationGracePeriodSeconds; g == nil {
		t.Errorf("no terminationGracePeriodSeconds: the default 30s does not cover drain_timeout %v + 10s", drain)
	} else if time.Duration(*g)*time.Second <= drain+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %d must be above drain_timeout %v + 10s", *g, drain)
	}

	if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == 0 {
		t.Errorf("pod securityContext must run as a non-root user: %+v", sc)
	}
	if sc := c.SecurityContext; sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext must have readOnlyRootFilesystem and no privilege escalation")
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" && r == "memory" {
			t.Errorf("resources: %s request (and a memory limit) required: %+v", r, c.Resources)
		}
	}
}

// The kustomization lists every manifest of the directory.
func TestKustomizationListsAll(t *testing.T) {
	raw, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.yaml")
	var want []string
	for _, f := range files {
		if f != "kustomization.yaml" {
			want = append(want, f)
		}
	}
	got := append([]string(nil), k.Resources...)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("kustomization resources %v; want %v", got, want)
	}
}
