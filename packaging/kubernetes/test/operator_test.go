package test

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// operatorDir is the kustomization of the Prometheus Operator's objects
// and a leaf DaemonSet, applied beside the configserver's (dir).
var operatorDir = filepath.Join(dir, "operator")

// mixinOut is the committed render of the mixin.
var mixinOut = filepath.Join(dir, "..", "..", "mixin", "out")

// TestOperatorFilesDecodeStrictly decodes operator/kustomization.yaml and
// every file it lists strictly into the Kubernetes and Prometheus Operator API types.
func TestOperatorFilesDecodeStrictly(t *testing.T) {
	k := kustomizationAt(t, operatorDir)
	seen := map[string]bool{}
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join(operatorDir, r))
		if err != nil {
			t.Fatal(err)
		}
		docs := splitDocs(data)
		if len(docs) != 1 {
			t.Errorf("%s: %d objects, want one per file", r, len(docs))
		}
		for i, doc := range docs {
			obj, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", r, i+1, err)
				continue
			}
			seen[fmt.Sprintf("%T", obj)] = true
		}
	}
	for _, want := range []string{"*v1.ServiceMonitor", "*v1alpha1.ScrapeConfig", "*v1.PrometheusRule", "*v1.DaemonSet"} {
		if !seen[want] {
			t.Errorf("no %s among operator/'s files (decoded: %v)", want, seen)
		}
	}
}

// TestOperatorStrictDecodingCatchesTypos makes sure that a misspelt field
// in each kind of object fails the check above.
func TestOperatorStrictDecodingCatchesTypos(t *testing.T) {
	for file, typos := range map[string]map[string]string{
		"scrapeconfig-leaves.yaml":  {"httpSDConfigs:": "httpSdConfigs:", "serverName:": "servername:", "jobName:": "job:"},
		"scrapeconfig-origins.yaml": {"sourceLabels:": "source_labels:", "relabelings:": "relabelConfigs:"},
		"servicemonitor.yaml":       {"basicAuth:": "basic_auth:", "matchLabels:": "matchlabels:"},
		"prometheusrule.yaml":       {"record:": "recorded:", "annotations:": "annotation:"},
		"leaf-daemonset.yaml":       {"sysctls:": "sysctl:", "fieldPath:": "fieldpath:"},
	} {
		data, err := os.ReadFile(filepath.Join(operatorDir, file))
		if err != nil {
			t.Fatal(err)
		}
		for old, typo := range typos {
			bad := bytes.Replace(data, []byte(old), []byte(typo), 1)
			if bytes.Equal(bad, data) {
				t.Fatalf("%s has no %q", file, old)
			}
			if _, err := decodeStrict(bad); err == nil {
				t.Errorf("%s: %s misspelt as %s decodes without error", file, old, typo)
			}
		}
	}
}

// ruleFile is a Prometheus rule file, decoded into the operator's types.
type ruleFile struct {
	Groups []monitoringv1.RuleGroup `json:"groups"`
}

// mixinGroups returns the groups of mixin/out's rules and then alerts,
// decoded strictly.
func mixinGroups(t *testing.T) []monitoringv1.RuleGroup {
	t.Helper()
	var groups []monitoringv1.RuleGroup
	for _, f := range []string{"prometheus_rules.yaml", "prometheus_alerts.yaml"} {
		data, err := os.ReadFile(filepath.Join(mixinOut, f))
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := unmarshalStrict(data, &rf); err != nil {
			t.Fatalf("mixin/out/%s: %v", f, err)
		}
		if len(rf.Groups) == 0 {
			t.Fatalf("mixin/out/%s: no groups", f)
		}
		groups = append(groups, rf.Groups...)
	}
	return groups
}

// secretRef is a Secret's name and key, whichever type refers to it.
type secretRef struct{ name, key string }

func (r secretRef) String() string { return r.name + "/" + r.key }

func ref(s *corev1.SecretKeySelector) secretRef {
	if s == nil {
		return secretRef{}
	}
	return secretRef{s.Name, s.Key}
}

// checkTLS checks a TLS config: the CA from the Prometheus Secret, no
// skipped verification, and the server name wanted ("" for none).
func checkTLS(t *testing.T, what string, c *monitoringv1.SafeTLSConfig, serverName string) {
	t.Helper()
	if c == nil {
		t.Errorf("%s: no tlsConfig", what)
		return
	}
	if got, want := ref(c.CA.Secret), (secretRef{"oxcross-prometheus", "ca.crt"}); got != want {
		t.Errorf("%s: CA from Secret %v, want %v", what, got, want)
	}
	if c.InsecureSkipVerify != nil && *c.InsecureSkipVerify {
		t.Errorf("%s: insecureSkipVerify", what)
	}
	got := ""
	if c.ServerName != nil {
		got = *c.ServerName
	}
	if got != serverName {
		t.Errorf("%s: serverName %q, want %q", what, got, serverName)
	}
}

// checkBasicAuth checks that basic auth takes the user and password from
// the Prometheus Secret.
func checkBasicAuth(t *testing.T, what string, b *monitoringv1.BasicAuth) {
	t.Helper()
	if b == nil {
		t.Errorf("%s: no basicAuth", what)
		return
	}
	if got, want := (secretRef{b.Username.Name, b.Username.Key}), (secretRef{"oxcross-prometheus", "username"}); got != want {
		t.Errorf("%s: basic auth user from %v, want %v", what, got, want)
	}
	if got, want := (secretRef{b.Password.Name, b.Password.Key}), (secretRef{"oxcross-prometheus", "password"}); got != want {
		t.Errorf("%s: basic auth password from %v, want %v", what, got, want)
	}
}

// checkSD checks an http_sd config: the configserver's Service at path,
// over TLS checked against the Service's name, with basic auth.
func checkSD(t *testing.T, what string, sds []monitoringv1alpha1.HTTPSDConfig, svc *corev1.Service, path string) {
	t.Helper()
	if len(sds) != 1 {
		t.Fatalf("%s: %d httpSDConfigs, want 1", what, len(sds))
	}
	sd := sds[0]
	u, err := url.Parse(string(sd.URL))
	if err != nil {
		t.Fatalf("%s: httpSDConfigs url: %v", what, err)
	}
	host := svc.Name + "." + svc.Namespace + ".svc"
	if want := "https://" + net.JoinHostPort(host, strconv.Itoa(int(svc.Spec.Ports[0].Port))) + path; u.String() != want {
		t.Errorf("%s: httpSDConfigs url %s, want %s (the configserver's Service)", what, u, want)
	}
	checkTLS(t, what+" http_sd", sd.TLSConfig, host)
	checkBasicAuth(t, what+" http_sd", sd.BasicAuth)
}

// TestOperatorRendered renders operator/ and the configserver's
// kustomization as `kubectl apply -k` would and checks that the objects fit
// together: the ServiceMonitor selects the
// configserver's Service, the ScrapeConfigs discover through it with TLS and
// basic auth from the Secrets the kustomization documents, the jobs are those
// the mixin's selectors name, the PrometheusRule holds exactly mixin/out's
// groups, and the leaf DaemonSet registers with the configserver without
// privileges.
func TestOperatorRendered(t *testing.T) {
	objs := buildAt(t, operatorDir)
	base := build(t)
	want := []string{
		"ServiceMonitor/oxcross-configserver", "ScrapeConfig/oxcross-leaf", "ScrapeConfig/oxcross-origin",
		"PrometheusRule/oxcross", "DaemonSet/oxcross-leaf",
	}
	var names []string
	for n := range objs {
		names = append(names, n)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("rendered %v, want %v", names, want)
	}
	svc := base["Service/oxcross-configserver"].(*corev1.Service)
	dep := base["Deployment/oxcross-configserver"].(*appsv1.Deployment)
	sm := objs["ServiceMonitor/oxcross-configserver"].(*monitoringv1.ServiceMonitor)
	leaves := objs["ScrapeConfig/oxcross-leaf"].(*monitoringv1alpha1.ScrapeConfig)
	origins := objs["ScrapeConfig/oxcross-origin"].(*monitoringv1alpha1.ScrapeConfig)
	rule := objs["PrometheusRule/oxcross"].(*monitoringv1.PrometheusRule)
	ds := objs["DaemonSet/oxcross-leaf"].(*appsv1.DaemonSet)
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service ports %+v, want one", svc.Spec.Ports)
	}
	svcHost := svc.Name + "." + svc.Namespace + ".svc"

	t.Run("every object carries the part-of label a Prometheus selects", func(t *testing.T) {
		for n, o := range map[string]metav1.Object{"ServiceMonitor": sm, "ScrapeConfig leaves": leaves, "ScrapeConfig origins": origins, "PrometheusRule": rule} {
			if o.GetLabels()["app.kubernetes.io/part-of"] != "oxcross" {
				t.Errorf("%s: labels %v lack app.kubernetes.io/part-of=oxcross", n, o.GetLabels())
			}
		}
	})

	t.Run("ServiceMonitor scrapes the configserver's Service", func(t *testing.T) {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Empty() || !sel.Matches(labels.Set(svc.Labels)) {
			t.Errorf("selector %q does not match the Service's labels %v", sel, svc.Labels)
		}
		if sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
			t.Errorf("selector %q matches the leaves' labels too", sel)
		}
		if ns := sm.Spec.NamespaceSelector; ns.Any || len(ns.MatchNames) > 0 {
			t.Errorf("namespaceSelector %+v: want the ServiceMonitor's own namespace", ns)
		}
		if sm.Spec.JobLabel != "" {
			t.Errorf("jobLabel %q: the job must be the Service's name", sm.Spec.JobLabel)
		}
		if len(sm.Spec.Endpoints) != 1 {
			t.Fatalf("%d endpoints, want 1", len(sm.Spec.Endpoints))
		}
		ep := sm.Spec.Endpoints[0]
		if ep.Port != svc.Spec.Ports[0].Name {
			t.Errorf("endpoint port %q, want the Service's port %q", ep.Port, svc.Spec.Ports[0].Name)
		}
		if ep.Path != "/metrics" || ep.Scheme.String() != "https" {
			t.Errorf("endpoint %s %s, want https /metrics", ep.Scheme.String(), ep.Path)
		}
		if ep.TLSConfig == nil {
			t.Fatal("endpoint: no tlsConfig")
		}
		checkTLS(t, "ServiceMonitor", &ep.TLSConfig.SafeTLSConfig, svcHost)
		checkBasicAuth(t, "ServiceMonitor", ep.BasicAuth)
		for k, v := range dep.Spec.Template.Labels {
			if svc.Spec.Selector[k] != "" && svc.Spec.Selector[k] != v {
				t.Errorf("the Service's selector %v does not select the configserver's pods %v", svc.Spec.Selector, dep.Spec.Template.Labels)
			}
		}
	})

	t.Run("ScrapeConfig oxcross-leaf: /sd/leaves, TLS and basic auth", func(t *testing.T) {
		s := leaves.Spec
		checkSD(t, "leaves", s.HTTPSDConfigs, svc, "/sd/leaves")
		if s.Scheme.String() != "https" || s.MetricsPath == nil || *s.MetricsPath != "/metrics" {
			t.Errorf("scheme %q, metricsPath %v: want https and /metrics", s.Scheme.String(), s.MetricsPath)
		}
		checkTLS(t, "leaves scrape", s.TLSConfig, "oxcross-leaf.oxcross.svc")
		checkBasicAuth(t, "leaves scrape", s.BasicAuth)
		if s.HonorLabels != nil && *s.HonorLabels {
			t.Error("honorLabels: a leaf could claim another's leaf_id")
		}
	})

	t.Run("ScrapeConfig oxcross-origin: /sd/origins, advanced-mode origins only", func(t *testing.T) {
		s := origins.Spec
		checkSD(t, "origins", s.HTTPSDConfigs, svc, "/sd/origins")
		checkTLS(t, "origins scrape", s.TLSConfig, "")
		if s.BasicAuth != nil {
			t.Error("origins scrape: basic auth (origins serve none)")
		}
		var keep, scheme bool
		for _, r := range s.RelabelConfigs {
			switch {
			case strings.EqualFold(r.Action, "keep") && slices.Equal(r.SourceLabels, []monitoringv1.LabelName{"__meta_oxcross_origin_kind"}) && r.Regex == "oxcross":
				keep = true
			case r.TargetLabel == "__scheme__" && slices.Equal(r.SourceLabels, []monitoringv1.LabelName{"__meta_oxcross_origin_url"}):
				re := regexp.MustCompile("^(?:" + r.Regex + ")$")
				for u, want := range map[string]string{"https://o.example.com:9301": "https", "http://o.example.com:9301": "http"} {
					if m := re.FindStringSubmatch(u); m == nil || re.ReplaceAllString(u, strings.ReplaceAll(*r.Replacement, "$1", "${1}")) != want {
						t.Errorf("__scheme__ relabelling gives no %q for %s", want, u)
					}
				}
				scheme = true
			}
		}
		if !keep || !scheme {
			t.Errorf("relabelings %+v: want a keep of __meta_oxcross_origin_kind=oxcross (%v) and __scheme__ from the URL (%v)", s.RelabelConfigs, keep, scheme)
		}
	})

	t.Run("the jobs are those the mixin selects", func(t *testing.T) {
		// Every job="..." that mixin/out's rules and alerts select on must
		// be the job of one of these objects: the ScrapeConfigs' jobName,
		// the ServiceMonitor's Service name.
		jobs := map[string]bool{svc.Name: true}
		for _, s := range []*monitoringv1alpha1.ScrapeConfig{leaves, origins} {
			if s.Spec.JobName == nil || *s.Spec.JobName != s.Name {
				t.Errorf("ScrapeConfig %s: jobName %v, want its name", s.Name, s.Spec.JobName)
				continue
			}
			jobs[*s.Spec.JobName] = true
		}
		selected := map[string]bool{}
		for _, f := range []string{"prometheus_rules.yaml", "prometheus_alerts.yaml"} {
			data, err := os.ReadFile(filepath.Join(mixinOut, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range regexp.MustCompile(`job="([^"]*)"`).FindAllStringSubmatch(string(data), -1) {
				selected[m[1]] = true
			}
		}
		if len(selected) == 0 {
			t.Fatal("mixin/out selects no job")
		}
		for j := range selected {
			if !jobs[j] {
				t.Errorf("mixin/out selects job %q, which none of these objects scrapes (jobs: %v)", j, jobs)
			}
		}
	})

	t.Run("the Secrets referred to are documented", func(t *testing.T) {
		k, err := os.ReadFile(filepath.Join(operatorDir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		secrets := []string{"oxcross-prometheus"}
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				secrets = append(secrets, v.Secret.SecretName)
			}
		}
		for _, s := range secrets {
			if !strings.Contains(string(k), "\n#   "+s+" ") {
				t.Errorf("operator/kustomization.yaml does not say what the Secret %s holds", s)
			}
		}
	})

	t.Run("PrometheusRule holds exactly mixin/out's groups", func(t *testing.T) {
		want := mixinGroups(t)
		got := rule.Spec.Groups
		if len(got) != len(want) {
			t.Fatalf("%d groups, mixin/out has %d: run make mixin", len(got), len(want))
		}
		n := 0
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("group %d (%s) differs from mixin/out's (%s): run make mixin", i, got[i].Name, want[i].Name)
			}
			n += len(want[i].Rules)
		}
		if !t.Failed() {
			t.Logf("%d groups, %d rules and alerts, equal to mixin/out", len(want), n)
		}
	})

	t.Run("leaf DaemonSet: registers with the configserver, no privilege", func(t *testing.T) {
		pod := ds.Spec.Template.Spec
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
			t.Errorf("selector %v does not match the pod labels %v (%v)", ds.Spec.Selector, ds.Spec.Template.Labels, err)
		}
		if len(pod.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(pod.Containers))
		}
		c := pod.Containers[0]
		args := map[string]string{}
		for _, a := range c.Args {
			k, v, _ := strings.Cut(a, "=")
			args[k] = v
		}
		if _, ok := args["--leaf.register"]; !ok {
			t.Error("no --leaf.register: /sd/leaves would not list the leaves")
		}
		if want := "https://" + net.JoinHostPort(svcHost, strconv.Itoa(int(svc.Spec.Ports[0].Port))); args["--config.url"] != want {
			t.Errorf("--config.url %q, want the configserver's Service %s", args["--config.url"], want)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				env[e.Name] = e.ValueFrom.FieldRef.FieldPath
			}
		}
		if env["NODE_NAME"] != "spec.nodeName" || env["POD_IP"] != "status.podIP" {
			t.Errorf("env %v: want NODE_NAME from spec.nodeName and POD_IP from status.podIP", env)
		}
		if !strings.Contains(args["--leaf.id"], "$(NODE_NAME)") {
			t.Errorf("--leaf.id %q: want one id per node, from $(NODE_NAME)", args["--leaf.id"])
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		_, listen, _ := net.SplitHostPort(args["--web.listen-address"])
		_, adv, _ := net.SplitHostPort(args["--leaf.advertise-address"])
		if want := strconv.Itoa(int(ports["metrics"])); ports["metrics"] == 0 || listen != want || adv != want {
			t.Errorf("listen port %q, advertised %q, container port %d: want all three equal", listen, adv, ports["metrics"])
		}
		if !strings.HasPrefix(args["--leaf.advertise-address"], "$(POD_IP):") {
			t.Errorf("--leaf.advertise-address %q: want the pod IP", args["--leaf.advertise-address"])
		}
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range c.VolumeMounts {
			mounts[m.Name] = m
		}
		var secretDir, cacheDir string
		for _, v := range pod.Volumes {
			switch {
			case v.Secret != nil:
				secretDir = mounts[v.Name].MountPath
			case v.EmptyDir != nil && !mounts[v.Name].ReadOnly:
				cacheDir = mounts[v.Name].MountPath
			}
		}
		for _, f := range []string{"--web.config.file", "--config.http-client-file"} {
			if secretDir == "" || filepath.Dir(args[f]) != secretDir {
				t.Errorf("%s %q is not in the Secret's mount %q", f, args[f], secretDir)
			}
		}
		if cacheDir == "" || filepath.Dir(args["--config.cache-file"]) != cacheDir {
			t.Errorf("--config.cache-file %q is not in a writable volume (%q)", args["--config.cache-file"], cacheDir)
		}
		psc, sc := pod.SecurityContext, c.SecurityContext
		if psc == nil || sc == nil || psc.RunAsGroup == nil {
			t.Fatal("pod or container securityContext, or runAsGroup, missing")
		}
		if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || (sc.Privileged != nil && *sc.Privileged) {
			t.Error("want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, not privileged")
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			t.Errorf("capabilities %+v: want drop [ALL] and nothing added (not even NET_RAW)", sc.Capabilities)
		}
		if pod.HostNetwork {
			t.Error("hostNetwork: the ping_group_range sysctl is the pod network namespace's")
		}
		var pingRange []string
		for _, s := range psc.Sysctls {
			if s.Name == "net.ipv4.ping_group_range" {
				pingRange = strings.Fields(s.Value)
			}
		}
		if len(pingRange) != 2 {
			t.Fatalf("sysctls %+v: want net.ipv4.ping_group_range", psc.Sysctls)
		}
		lo, err1 := strconv.ParseInt(pingRange[0], 10, 64)
		hi, err2 := strconv.ParseInt(pingRange[1], 10, 64)
		if g := *psc.RunAsGroup; err1 != nil || err2 != nil || g < lo || g > hi {
			t.Errorf("net.ipv4.ping_group_range %q does not include the pod's group %d", pingRange, g)
		}
		if !strings.HasPrefix(c.Image, "localhost/oxcross-leaf:") {
			t.Errorf("image %q, want the kustomization's oxcross-leaf image", c.Image)
		}
	})
}
