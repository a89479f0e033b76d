// Package test checks the Kubernetes manifests in packaging/kubernetes: every
// file and every object that `kubectl apply -k` would send is decoded
// strictly into the Kubernetes API types, so that a typo in a field name
// fails, and the Deployment keeps its security and probe settings. The
// original Oxcross' Deployment in examples/original-deployment.yaml is
// decoded the same way and keeps the original's facts. It is a
// module of its own so that the Kubernetes libraries stay out of Oxcross'
// go.mod; scripts/test.d/30-packaging.sh runs it. operator_test.go does the
// same for the Prometheus Operator's objects in packaging/kubernetes/operator.
package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// dir is packaging/kubernetes, whose kustomization renders baseDir's.
const (
	dir     = ".."
	baseDir = "../base"
)

// kinds maps each kind the manifests may hold to its apiVersion and type.
var kinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"Namespace":  {"v1", func() any { return &corev1.Namespace{} }},
	"ConfigMap":  {"v1", func() any { return &corev1.ConfigMap{} }},
	"Service":    {"v1", func() any { return &corev1.Service{} }},
	"Deployment": {"apps/v1", func() any { return &appsv1.Deployment{} }},
	// The Prometheus Operator's, in operator/ (operator_test.go).
	"DaemonSet":      {"apps/v1", func() any { return &appsv1.DaemonSet{} }},
	"ServiceMonitor": {"monitoring.coreos.com/v1", func() any { return &monitoringv1.ServiceMonitor{} }},
	"PrometheusRule": {"monitoring.coreos.com/v1", func() any { return &monitoringv1.PrometheusRule{} }},
	"ScrapeConfig":   {"monitoring.coreos.com/v1alpha1", func() any { return &monitoringv1alpha1.ScrapeConfig{} }},
}

// unmarshalStrict decodes YAML as the API server does in strict mode:
// duplicate keys, unknown fields and fields in the wrong case (which
// encoding/json would accept) are errors.
func unmarshalStrict(doc []byte, obj any) error {
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(data, obj)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// decodeStrict decodes one YAML document into the API type of its kind.
func decodeStrict(doc []byte) (any, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return nil, err
	}
	k, ok := kinds[meta.Kind]
	if !ok {
		return nil, fmt.Errorf("unexpected kind %q", meta.Kind)
	}
	if meta.APIVersion != k.apiVersion {
		return nil, fmt.Errorf("%s: apiVersion %q, want %q", meta.Kind, meta.APIVersion, k.apiVersion)
	}
	obj := k.new()
	if err := unmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", meta.Kind, err)
	}
	return obj, nil
}

// splitDocs splits a multi-document YAML file, dropping empty documents.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func kustomization(t *testing.T) types.Kustomization {
	t.Helper()
	return kustomizationAt(t, baseDir)
}

// kustomizationAt decodes the kustomization.yaml in directory d strictly.
func kustomizationAt(t *testing.T, d string) types.Kustomization {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(d, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k types.Kustomization
	if err := unmarshalStrict(data, &k); err != nil {
		t.Fatalf("%s: %v", filepath.Join(d, "kustomization.yaml"), err)
	}
	return k
}

// TestFilesDecodeStrictly decodes the kustomization and every resource file
// it lists.
func TestFilesDecodeStrictly(t *testing.T) {
	k := kustomization(t)
	if len(k.Resources) == 0 {
		t.Fatal("kustomization.yaml lists no resources")
	}
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join(baseDir, r))
		if err != nil {
			t.Fatal(err)
		}
		docs := splitDocs(data)
		if len(docs) == 0 {
			t.Errorf("%s: no object", r)
		}
		for i, doc := range docs {
			if _, err := decodeStrict(doc); err != nil {
				t.Errorf("%s, document %d: %v", r, i+1, err)
			}
		}
	}
}

// TestStrictDecodingCatchesTypos makes sure the check above would fail on a
// misspelt field.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(baseDir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for old, typo := range map[string]string{
		"readOnlyRootFilesystem:": "readOnlyRootFileSystem:",
		"runAsNonRoot:":           "runAsNonroot:",
		"containerPort:":          "containerport:",
	} {
		bad := bytes.Replace(data, []byte(old), []byte(typo), 1)
		if bytes.Equal(bad, data) {
			t.Fatalf("deployment.yaml has no %q", old)
		}
		if _, err := decodeStrict(bad); err == nil {
			t.Errorf("%s misspelt as %s decodes without error", old, typo)
		}
	}
}

// build renders the kustomization as `kubectl apply -k` would and decodes
// every object strictly.
func build(t *testing.T) map[string]any {
	t.Helper()
	return buildAt(t, dir)
}

// buildAt renders the kustomization in directory d as build does.
func buildAt(t *testing.T, d string) map[string]any {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), d)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	objs := map[string]any{}
	for _, res := range resMap.Resources() {
		doc, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatalf("rendered %s: %v", res.CurId(), err)
		}
		if ns := res.GetNamespace(); res.GetKind() != "Namespace" && ns != "oxcross" {
			t.Errorf("%s is in namespace %q, want oxcross", res.CurId(), ns)
		}
		objs[res.GetKind()+"/"+res.GetName()] = obj
	}
	return objs
}

// checkConfigFromEnv checks that container c reads the config file path
// through OXCROSS_CONF, with no --config.file in its command or args to
// beat it.
func checkConfigFromEnv(t *testing.T, c corev1.Container, path string) {
	t.Helper()
	var conf []string
	for _, e := range c.Env {
		if e.Name == "OXCROSS_CONF" {
			conf = append(conf, e.Value)
		}
	}
	if len(conf) != 1 || conf[0] != path {
		t.Errorf("env OXCROSS_CONF %q, want %q once", conf, path)
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if strings.HasPrefix(a, "--config.file") {
			t.Errorf("%s in the container's command or args beats OXCROSS_CONF", a)
		}
	}
}

func TestRendered(t *testing.T) {
	objs := build(t)
	var names []string
	for n := range objs {
		names = append(names, n)
	}
	want := []string{"ConfigMap/oxcross-configserver", "Deployment/oxcross-configserver", "Namespace/oxcross", "Service/oxcross-configserver"}
	if len(objs) != len(want) {
		t.Fatalf("rendered %v, want %v", names, want)
	}
	for _, n := range want {
		if objs[n] == nil {
			t.Fatalf("rendered %v, want %v", names, want)
		}
	}
	cm := objs["ConfigMap/oxcross-configserver"].(*corev1.ConfigMap)
	dep := objs["Deployment/oxcross-configserver"].(*appsv1.Deployment)
	svc := objs["Service/oxcross-configserver"].(*corev1.Service)

	t.Run("ConfigMap is the packaged example config", func(t *testing.T) {
		want, err := os.ReadFile(filepath.Join(dir, "..", "config", "config.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["config.yaml"] != string(want) {
			t.Error("packaging/kubernetes/base/config.yaml differs from packaging/config/config.yaml: copy it over")
		}
		ids, err := os.ReadFile(filepath.Join(dir, "..", "config", "registry-identities.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["registry-identities.yml"] != string(ids) {
			t.Error("packaging/kubernetes/base/registry-identities.yml differs from packaging/config/registry-identities.yml: copy it over")
		}
	})

	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	t.Run("non-root, read-only, no capabilities", func(t *testing.T) {
		psc, sc := pod.SecurityContext, c.SecurityContext
		if psc == nil || sc == nil {
			t.Fatal("pod or container securityContext missing")
		}
		if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Error("runAsNonRoot is not true")
		}
		if psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Error("runAsUser is not a non-root uid")
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Error("seccompProfile is not RuntimeDefault")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Error("privileged")
		}
		if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
			t.Errorf("capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Error("the service account token is mounted; the configserver does not talk to the API")
		}
	})

	t.Run("the image's user is the pod's", func(t *testing.T) {
		cf, err := os.ReadFile(filepath.Join(dir, "..", "container", "Containerfile"))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("\nUSER %d:%d\n", *pod.SecurityContext.RunAsUser, *pod.SecurityContext.RunAsGroup)
		if !strings.Contains(string(cf), want) {
			t.Errorf("Containerfile has no %q", strings.TrimSpace(want))
		}
		if c.Image != "localhost/oxcross-configserver:latest" {
			t.Errorf("image %q, want the one make image builds, localhost/oxcross-configserver:latest", c.Image)
		}
	})

	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	t.Run("probes and resources", func(t *testing.T) {
		// TCP: the web config's basic auth covers every path.
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if p == nil || p.TCPSocket == nil {
				t.Errorf("%s probe: not a TCP probe", name)
				continue
			}
			if p.TCPSocket.Port.Type != intstr.String || ports[p.TCPSocket.Port.StrVal] == 0 {
				t.Errorf("%s probe: port %q is not a named container port", name, p.TCPSocket.Port.String())
			}
		}
		if ports["http"] != 9300 {
			t.Errorf("container port http is %d, want 9300", ports["http"])
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
		}
	})

	t.Run("the config file comes from the ConfigMap", func(t *testing.T) {
		var vol string
		for _, v := range pod.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
				vol = v.Name
			}
		}
		var mount string
		for _, m := range c.VolumeMounts {
			if m.Name == vol {
				mount = m.MountPath
			}
		}
		if vol == "" || mount == "" {
			t.Fatalf("ConfigMap %s is not mounted", cm.Name)
		}
		checkConfigFromEnv(t, c, mount+"/config.yaml")
	})

	t.Run("identity mode: web config from a Secret, identities from the ConfigMap", func(t *testing.T) {
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.Name] = m.MountPath
		}
		var secretVol, cmVol string
		for _, v := range pod.Volumes {
			switch {
			case v.Secret != nil && v.Secret.SecretName == "oxcross-configserver-web":
				secretVol = v.Name
				if v.Secret.Optional != nil && *v.Secret.Optional {
					t.Error("the web config Secret is optional: without it the configserver would not start")
				}
			case v.ConfigMap != nil && v.ConfigMap.Name == cm.Name:
				cmVol = v.Name
			}
		}
		if secretVol == "" || mounts[secretVol] == "" {
			t.Fatal("the Secret oxcross-configserver-web is not mounted")
		}
		if psc := pod.SecurityContext; psc.FSGroup == nil || *psc.FSGroup != *psc.RunAsGroup {
			t.Error("fsGroup is not the pod's group: the Secret's files would not be readable")
		}
		for _, want := range []string{
			"--web.config.file=" + mounts[secretVol] + "/web-config.yml",
			"--registry.identities=" + mounts[cmVol] + "/registry-identities.yml",
		} {
			found := false
			for _, a := range c.Args {
				found = found || a == want
			}
			if !found {
				t.Errorf("args %q lack %q", c.Args, want)
			}
		}
	})

	t.Run("Service reaches the pods", func(t *testing.T) {
		for k, v := range svc.Spec.Selector {
			if dep.Spec.Template.Labels[k] != v {
				t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, dep.Spec.Template.Labels)
			}
		}
		if len(svc.Spec.Selector) == 0 {
			t.Error("Service has no selector")
		}
		for k, v := range dep.Spec.Selector.MatchLabels {
			if dep.Spec.Template.Labels[k] != v {
				t.Errorf("Deployment selector %s=%s does not match its pod labels", k, v)
			}
		}
		for _, p := range svc.Spec.Ports {
			if ports[p.TargetPort.String()] == 0 {
				t.Errorf("Service port %d targets %q, not a container port", p.Port, p.TargetPort.String())
			}
		}
	})
}

// TestOriginalDeploymentExample decodes examples/original-deployment.yaml,
// the original Oxcross' ConfigMap, Deployment and Service, strictly, and
// checks that it is still the original's: what the new image must run
// unchanged (packaging/test runs the image with it).
func TestOriginalDeploymentExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(dir, "..", "..", "examples", "original-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		cm  *corev1.ConfigMap
		dep *appsv1.Deployment
		svc *corev1.Service
	)
	docs := splitDocs(data)
	for i, doc := range docs {
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		switch o := obj.(type) {
		case *corev1.ConfigMap:
			cm = o
		case *appsv1.Deployment:
			dep = o
		case *corev1.Service:
			svc = o
		}
	}
	if len(docs) != 3 || cm == nil || dep == nil || svc == nil {
		t.Fatalf("want a ConfigMap, a Deployment and a Service, one each; got %d documents", len(docs))
	}
	for _, m := range []metav1.ObjectMeta{cm.ObjectMeta, dep.ObjectMeta, svc.ObjectMeta} {
		if m.Namespace != "monitoring" {
			t.Errorf("%s is in namespace %q, the original's is monitoring", m.Name, m.Namespace)
		}
	}
	if svc.Name != "go-oxcross-configserver" {
		t.Errorf("Service %s; the original's is go-oxcross-configserver", svc.Name)
	}

	var conf struct {
		Timeout, Interval int
		Origins           []struct {
			Scheme, Hostname, Mode string
			Port                   int
		}
	}
	if err := json.Unmarshal([]byte(cm.Data["oxcross_config.json"]), &conf); err != nil || len(conf.Origins) != 1 {
		t.Fatalf("ConfigMap %s: oxcross_config.json is not the original's config (%v): %q", cm.Name, err, cm.Data)
	}
	if o := conf.Origins[0]; conf.Timeout != 10 || conf.Interval != 30 || o.Scheme != "http" || o.Hostname != "example.com" || o.Port != 9301 || o.Mode != "advanced" {
		t.Errorf("oxcross_config.json is not the original's example: %+v", conf)
	}

	if r := dep.Spec.Replicas; r == nil || *r != 3 {
		got := "unset"
		if r != nil {
			got = fmt.Sprint(*r)
		}
		t.Errorf("replicas %s, the original's are 3", got)
	}
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	checkConfigFromEnv(t, c, "/etc/oxcross/oxcross_config.json")
	if len(c.Command) != 0 || len(c.Args) != 0 {
		t.Errorf("command %q, args %q: the original runs the image's own", c.Command, c.Args)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9300 {
		t.Errorf("container ports %+v, the original's is 9300", c.Ports)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != intstr.FromInt32(9300) {
		t.Errorf("liveness probe %+v, the original's is GET /healthz on 9300", p)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/oxcross" || !c.VolumeMounts[0].ReadOnly {
		t.Fatalf("volume mounts %+v: the original mounts its ConfigMap read-only at /etc/oxcross", c.VolumeMounts)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].Name != c.VolumeMounts[0].Name || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != cm.Name {
		t.Errorf("volumes %+v: want ConfigMap %s as the mount's volume", pod.Volumes, cm.Name)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].TargetPort != intstr.FromInt32(9300) {
		t.Errorf("Service ports %+v, the original's is 8080 -> 9300", svc.Spec.Ports)
	}
	if len(svc.Spec.Selector) == 0 {
		t.Error("Service has no selector")
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, dep.Spec.Template.Labels)
		}
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("Deployment selector %s=%s does not match its pod labels", k, v)
		}
	}
}
