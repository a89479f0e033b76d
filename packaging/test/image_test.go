package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/oxcross/oxcross/internal/testutil"
)

// image is what a Containerfile sets for running a container.
type image struct {
	entrypoint, cmd []string
	// env is ENV's variables, KEY=VALUE, in order.
	env []string
	// copies maps each COPY destination to its source in the build context.
	copies map[string]string
	expose []string
	user   string
	stages int
}

// argv is what a container of the image runs without command or args of
// its own: ENTRYPOINT followed by CMD.
func (im *image) argv() []string {
	return append(append([]string(nil), im.entrypoint...), im.cmd...)
}

// parseContainerfile reads the instructions of a Containerfile that matter
// for running it: ENTRYPOINT and CMD (exec form only: the shell form needs a
// /bin/sh, which a scratch image lacks), ENV, COPY, EXPOSE, USER, and how
// many stages (FROM) there are. It knows line continuations and comments,
// not variable substitution, which it refuses.
func parseContainerfile(text string) (*image, error) {
	im := &image{copies: map[string]string{}}
	var instructions []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue // comments and empty lines, inside a continuation too
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		instructions = append(instructions, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("the last instruction ends in a continuation: %s", cur.String())
	}
	for _, ins := range instructions {
		keyword, rest, _ := strings.Cut(ins, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(keyword) {
		case "FROM":
			im.stages++
		case "ENTRYPOINT", "CMD":
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil {
				return nil, fmt.Errorf("%s is not in exec form (a JSON array of strings): %s", keyword, rest)
			}
			if strings.ToUpper(keyword) == "CMD" {
				im.cmd = args
			} else {
				im.entrypoint = args
			}
		case "ENV":
			vars, err := parseEnv(rest)
			if err != nil {
				return nil, fmt.Errorf("ENV %s: %w", rest, err)
			}
			im.env = mergeEnv(im.env, vars)
		case "COPY":
			words := strings.Fields(rest)
			if len(words) != 2 || strings.HasPrefix(words[0], "--") {
				return nil, fmt.Errorf("COPY %s: want one source and one destination, no options", rest)
			}
			im.copies[words[1]] = words[0]
		case "EXPOSE":
			im.expose = append(im.expose, strings.Fields(rest)...)
		case "USER":
			im.user = rest
		}
	}
	return im, nil
}

// parseEnv reads ENV's arguments: KEY=VALUE pairs, values optionally in
// double quotes, or the legacy form KEY VALUE.
func parseEnv(rest string) ([]string, error) {
	if strings.Contains(rest, "$") {
		return nil, errors.New("variable substitution is not supported here")
	}
	key, value, _ := strings.Cut(rest, " ")
	if !strings.Contains(key, "=") {
		return []string{key + "=" + strings.TrimSpace(value)}, nil
	}
	var vars []string
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return nil, fmt.Errorf("not KEY=VALUE: %s", rest)
		}
		var v string
		if quoted, ok := strings.CutPrefix(after, `"`); ok {
			end := strings.Index(quoted, `"`)
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			v, rest = quoted[:end], quoted[end+1:]
			if rest != "" && rest[0] != ' ' {
				return nil, fmt.Errorf("no space after the closing quote: %s", rest)
			}
		} else {
			v, rest, _ = strings.Cut(after, " ")
		}
		vars = append(vars, key+"="+v)
		rest = strings.TrimSpace(rest)
	}
	return vars, nil
}

func TestParseContainerfile(t *testing.T) {
	im, err := parseContainerfile(`# syntax comment
FROM scratch
ENV A=1 B="two words" \
    # a comment inside a continuation
    C=3
ENV D four
ENV A=5
COPY x /etc/x
EXPOSE 9300
USER 1:2
ENTRYPOINT ["/bin/p", "-v"]
CMD ["--flag=a b"]
`)
	if err != nil {
		t.Fatal(err)
	}
	want := &image{
		entrypoint: []string{"/bin/p", "-v"},
		cmd:        []string{"--flag=a b"},
		env:        []string{"A=5", "B=two words", "C=3", "D=four"},
		copies:     map[string]string{"/etc/x": "x"},
		expose:     []string{"9300"},
		user:       "1:2",
		stages:     1,
	}
	if !reflect.DeepEqual(im, want) {
		t.Errorf("got %+v\nwant %+v", im, want)
	}
	if got := im.argv(); !reflect.DeepEqual(got, []string{"/bin/p", "-v", "--flag=a b"}) {
		t.Errorf("argv %q", got)
	}
	for _, bad := range []string{
		"CMD /bin/p --flag",
		"ENV A=$B",
		`ENV A="x`,
		"COPY --chown=1 a b",
		"ENV A=1 \\",
	} {
		if _, err := parseContainerfile("FROM scratch\n" + bad + "\n"); err == nil {
			t.Errorf("%q parses", bad)
		}
	}
}

// theImage parses packaging/container/Containerfile and checks that it is
// what the tests below can run: one stage, the configserver as ENTRYPOINT,
// copied from the build context.
func theImage(t *testing.T) *image {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "packaging/container/Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := parseContainerfile(string(data))
	if err != nil {
		t.Fatalf("Containerfile: %v", err)
	}
	if im.stages != 1 {
		t.Fatalf("Containerfile: %d stages; this test reads one", im.stages)
	}
	argv := im.argv()
	if len(argv) == 0 || argv[0] != "/bin/oxcross-configserver" || im.copies[argv[0]] != "oxcross-configserver" {
		t.Fatalf("Containerfile: runs %q, want /bin/oxcross-configserver, copied from the build context's oxcross-configserver", argv)
	}
	return im
}

// k8sObject holds the fields of the example's objects this test uses (the
// Kubernetes manifest test decodes them strictly into the API types).
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Command []string `yaml:"command"`
					Args    []string `yaml:"args"`
					Env     []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					Ports []struct {
						ContainerPort int `yaml:"containerPort"`
					} `yaml:"ports"`
					LivenessProbe struct {
						HTTPGet struct {
							Path string `yaml:"path"`
							Port int    `yaml:"port"`
						} `yaml:"httpGet"`
					} `yaml:"livenessProbe"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
						ReadOnly  bool   `yaml:"readOnly"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap struct {
						Name  string `yaml:"name"`
						Items []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Port       int `yaml:"port"`
			TargetPort int `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

// originalDeployment reads examples/original-deployment.yaml: its objects
// by kind.
func originalDeployment(t *testing.T) map[string]*k8sObject {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "examples/original-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs := map[string]*k8sObject{}
	dec := yaml.NewDecoder(f)
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("examples/original-deployment.yaml: %v", err)
		}
		if objs[o.Kind] != nil {
			t.Fatalf("examples/original-deployment.yaml: two objects of kind %s", o.Kind)
		}
		objs[o.Kind] = &o
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service"} {
		if objs[k] == nil {
			t.Fatalf("examples/original-deployment.yaml has no %s", k)
		}
	}
	return objs
}

// serviceLinks returns the variables the kubelet sets in every container
// for a Service that existed when the pod started (enableServiceLinks, the
// default), at an arbitrary cluster IP.
func serviceLinks(name string, port int) []string {
	p := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	ip, n := "10.96.0.10", strconv.Itoa(port)
	tcp := fmt.Sprintf("tcp://%s:%d", ip, port)
	return []string{
		p + "_SERVICE_HOST=" + ip, p + "_SERVICE_PORT=" + n, p + "_PORT=" + tcp,
		p + "_PORT_" + n + "_TCP=" + tcp, p + "_PORT_" + n + "_TCP_PROTO=tcp",
		p + "_PORT_" + n + "_TCP_PORT=" + n, p + "_PORT_" + n + "_TCP_ADDR=" + ip,
	}
}

// runtimeEnv is what a container runtime and the kubelet add to every
// container's environment.
var runtimeEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOSTNAME=go-oxcross-configserver-5d8f7c9b6-x2x7q",
	"HOME=/",
	"KUBERNETES_SERVICE_HOST=10.96.0.1",
	"KUBERNETES_SERVICE_PORT=443",
}

// TestImageRunsTheOriginalDeployment runs the image as the original
// Oxcross' Deployment (examples/original-deployment.yaml) would with it:
// the image's ENTRYPOINT and CMD, unchanged; the image's ENV, then the
// container's env (OXCROSS_CONF=/etc/oxcross/oxcross_config.json) over it,
// with what the runtime and the kubelet add; the ConfigMap with the
// original's JSON config, laid out as the kubelet does, in a read-only
// directory standing for the mount at /etc/oxcross. The server must come up,
// answer the liveness probe's /healthz and serve that config at /config.
func TestImageRunsTheOriginalDeployment(t *testing.T) {
	im := theImage(t)
	objs := originalDeployment(t)
	cm, dep, svc := objs["ConfigMap"], objs["Deployment"], objs["Service"]
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if len(c.Command) != 0 || len(c.Args) != 0 {
		t.Fatalf("the Deployment sets command %q and args %q; the original runs the image's own", c.Command, c.Args)
	}

	// The ports: what the image exposes is what the Deployment and its
	// Service use, and the liveness probe's.
	if len(c.Ports) != 1 || len(svc.Spec.Ports) != 1 {
		t.Fatalf("container ports %+v, Service ports %+v: want one each", c.Ports, svc.Spec.Ports)
	}
	port := c.Ports[0].ContainerPort
	if !reflect.DeepEqual(im.expose, []string{strconv.Itoa(port)}) || c.LivenessProbe.HTTPGet.Port != port || svc.Spec.Ports[0].TargetPort != port {
		t.Errorf("the image exposes %q; the container port is %d, the liveness probe's %d, the Service's target port %d",
			im.expose, port, c.LivenessProbe.HTTPGet.Port, svc.Spec.Ports[0].TargetPort)
	}

	// The mount: the ConfigMap's files (its items, when it lists them) in a
	// directory standing for the mount point.
	if len(c.VolumeMounts) != 1 || len(pod.Volumes) != 1 || c.VolumeMounts[0].Name != pod.Volumes[0].Name ||
		pod.Volumes[0].ConfigMap.Name != cm.Metadata.Name || !c.VolumeMounts[0].ReadOnly {
		t.Fatalf("want ConfigMap %s mounted read-only: mounts %+v, volumes %+v", cm.Metadata.Name, c.VolumeMounts, pod.Volumes)
	}
	mountPath := c.VolumeMounts[0].MountPath
	files := cm.Data
	if items := pod.Volumes[0].ConfigMap.Items; len(items) > 0 {
		files = map[string]string{}
		for _, it := range items {
			files[it.Path] = cm.Data[it.Key]
		}
	}
	fsRoot := t.TempDir()
	mount := filepath.Join(fsRoot, mountPath)
	if err := os.MkdirAll(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.NewConfigMap(t, mount, files)
	readOnly(t, mount)

	// The environment, in the order a container gets it.
	var podEnv []string
	for _, e := range c.Env {
		podEnv = append(podEnv, e.Name+"="+e.Value)
	}
	env := mergeEnv(runtimeEnv, serviceLinks(svc.Metadata.Name, svc.Spec.Ports[0].Port), im.env, podEnv)
	if v, _ := getEnv(env, "OXCROSS_CONF"); v != "/etc/oxcross/oxcross_config.json" {
		t.Fatalf("OXCROSS_CONF=%q, want the Deployment's /etc/oxcross/oxcross_config.json", v)
	}
	// The paths in the image are absolute; the test's file system is not
	// the image's. The one path the program reads, OXCROSS_CONF, is moved
	// under the directory standing for the mount; nothing else changes.
	env = mapPath(t, env, "OXCROSS_CONF", mountPath, mount)

	// The image's arguments stay as they are. The configserver has no
	// environment variable for its listen address, and the image's default,
	// :9300 on every interface, is no place for a test: a loopback address
	// on a free port (0) is appended after them.
	args := append(im.argv()[1:], "--web.listen-address=127.0.0.1:0")
	for _, a := range im.argv() {
		if strings.HasPrefix(a, "--config.file") {
			t.Errorf("the image's arguments %q have %s, which beats OXCROSS_CONF", im.argv(), a)
		}
	}
	s := start(t, configserver, args, env)
	s.waitOK(t, c.LivenessProbe.HTTPGet.Path)
	resp := s.waitOK(t, "/config")
	if problem := servesOriginal(resp.Body); problem != "" {
		t.Errorf("GET /config: %s", problem)
	}
}

// TestImageAlone runs the image without settings of its own (`podman run
// image`): its ENV's OXCROSS_CONF names the example config it COPYs, which
// it serves.
func TestImageAlone(t *testing.T) {
	im := theImage(t)
	conf, ok := getEnv(im.env, "OXCROSS_CONF")
	if !ok {
		t.Fatal("the image sets no OXCROSS_CONF")
	}
	// `make image` puts packaging/config/config.yaml into the build context
	// as config.yaml.
	if im.copies[conf] != "config.yaml" {
		t.Fatalf("OXCROSS_CONF=%s, but the image copies %q there", conf, im.copies[conf])
	}
	example, err := os.ReadFile(filepath.Join(root, "packaging/config/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fsRoot := t.TempDir()
	testutil.WriteFile(t, filepath.Join(fsRoot, conf), string(example))
	env := mapPath(t, mergeEnv(runtimeEnv[:3], im.env), "OXCROSS_CONF", "/", fsRoot)
	s := start(t, configserver, append(im.argv()[1:], "--web.listen-address=127.0.0.1:0"), env)
	s.waitOK(t, "/healthz")
	if resp := s.waitOK(t, "/config"); !strings.Contains(resp.Body, "origin1.example.com") {
		t.Errorf("GET /config does not serve the example config: %s", resp.Body)
	}
}
