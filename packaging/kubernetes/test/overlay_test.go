package test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const replicasOverlay = "../overlays/replicas"

// buildReplicas renders the replicas overlay and decodes every object
// strictly: the PodDisruptionBudget into policy/v1, the rest as the base's.
func buildReplicas(t *testing.T) map[string]any {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), replicasOverlay)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", replicasOverlay, err)
	}
	objs := map[string]any{}
	for _, res := range resMap.Resources() {
		doc, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var obj any
		if res.GetKind() == "PodDisruptionBudget" {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil || meta.APIVersion != "policy/v1" {
				t.Fatalf("rendered %s: apiVersion %q (%v), want policy/v1", res.CurId(), meta.APIVersion, err)
			}
			pdb := &policyv1.PodDisruptionBudget{}
			err = unmarshalStrict(doc, pdb)
			obj = pdb
		} else {
			obj, err = decodeStrict(doc)
		}
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

// TestReplicasOverlay: the overlay keeps the base's objects and settings,
// runs 2 replicas spread over nodes with a PodDisruptionBudget that keeps
// one, and points every replica at the same etcd over TLS with files from
// a mounted Secret, with flags the configserver has.
func TestReplicasOverlay(t *testing.T) {
	base, objs := build(t), buildReplicas(t)
	for name := range base {
		if objs[name] == nil {
			t.Errorf("the overlay lost the base's %s", name)
		}
	}
	dep, ok := objs["Deployment/oxcross-configserver"].(*appsv1.Deployment)
	if !ok {
		t.Fatal("no Deployment/oxcross-configserver")
	}
	pdb, ok := objs["PodDisruptionBudget/oxcross-configserver"].(*policyv1.PodDisruptionBudget)
	if !ok {
		t.Fatalf("no PodDisruptionBudget/oxcross-configserver in %v", keys(objs))
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", dep.Spec.Replicas)
	}
	if ru := dep.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v, want maxUnavailable 0", ru)
	}
	if len(dep.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints: both replicas may land on one node")
	}

	// The PDB selects the pods, and keeps fewer than all of them.
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the pods %v", pdb.Spec.Selector, dep.Spec.Template.Labels)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*dep.Spec.Replicas) {
		t.Errorf("minAvailable %v, want at least 1 and fewer than the %d replicas (or no drain could proceed)", pdb.Spec.MinAvailable, *dep.Spec.Replicas)
	}

	// The base's args stay, the etcd flags follow.
	c := dep.Spec.Template.Spec.Containers[0]
	baseDep := base["Deployment/oxcross-configserver"].(*appsv1.Deployment)
	if !slices.Equal(c.Args[:len(baseDep.Spec.Template.Spec.Containers[0].Args)], baseDep.Spec.Template.Spec.Containers[0].Args) {
		t.Errorf("args %q do not start with the base's %q", c.Args, baseDep.Spec.Template.Spec.Containers[0].Args)
	}
	flags := map[string]string{}
	for _, a := range c.Args {
		if name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(name, "registry.etcd.") {
			flags[name] = value
		}
	}
	if ep := flags["registry.etcd.endpoints"]; !strings.HasPrefix(ep, "https://oxcross-etcd.oxcross.svc:") {
		t.Errorf("--registry.etcd.endpoints=%q, want https:// to the oxcross-etcd Service the docs name", ep)
	}
	// Each flag exists in the configserver's source.
	src, err := os.ReadFile(filepath.Join(dir, "..", "..", "cmd", "oxcross-configserver", "etcd.go"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range flags {
		if !strings.Contains(string(src), `Flag("`+name+`"`) {
			t.Errorf("--%s is no flag of oxcross-configserver", name)
		}
	}
	// The TLS files are in a mounted volume of the client Secret.
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	var secret *corev1.SecretVolumeSource
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "etcd-client" {
			secret = v.Secret
		}
	}
	if secret == nil || secret.SecretName != "oxcross-configserver-etcd-client" || mounts["etcd-client"] == "" {
		t.Fatalf("no etcd-client Secret volume mounted: volumes %+v, mounts %v", dep.Spec.Template.Spec.Volumes, mounts)
	}
	for _, f := range []string{"registry.etcd.ca-file", "registry.etcd.cert-file", "registry.etcd.key-file"} {
		if !strings.HasPrefix(flags[f], mounts["etcd-client"]+"/") {
			t.Errorf("--%s=%q is not in the etcd-client mount %s", f, flags[f], mounts["etcd-client"])
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
