// Package test runs oxcross-configserver the way its packaging runs it,
// without a container engine or systemd: the container image's ENTRYPOINT,
// CMD and ENV as packaging/container/Containerfile writes them, with the
// environment and ConfigMap mount of the original Oxcross' Deployment
// (examples/original-deployment.yaml); and the systemd unit's ExecStart with
// the settings file it reads (packaging/systemd, packaging/env). Everything
// listens on loopback. scripts/test.d/30-packaging.sh runs the real image
// where a container engine can build it.
package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// configserver is the oxcross-configserver binary built for the tests.
var configserver string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "oxcross-packaging-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Built as the image and the packages build it (static, -trimpath).
	build := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "./cmd/oxcross-configserver")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building oxcross-configserver:", err)
		return 1
	}
	configserver = filepath.Join(dir, "oxcross-configserver")
	return m.Run()
}

// server is a running oxcross-configserver.
type server struct {
	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	done chan struct{}
	err  error
	// url is http://<its listen address>.
	url string
}

var listening = regexp.MustCompile(`msg="Listening on" address=(127\.0\.0\.1:[0-9]+)`)

// start runs the binary with exactly args and env (nothing inherited from
// the test's environment, as in a container or a systemd service), waits
// until it listens and answers its liveness path, and stops it with SIGTERM
// when the test ends, expecting a clean exit. Its log is printed when the
// test fails.
func start(t *testing.T, binary string, args, env []string) *server {
	t.Helper()
	s := &server{log: &testutil.SyncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binary, args...)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", binary, err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
		if t.Failed() {
			t.Logf("--- %s %q\n--- environment %q\n--- log:\n%s", binary, args, env, s.log.String())
		}
	})
	testutil.EventuallyReason(t, 20*time.Second, "the configserver to listen", func() string {
		select {
		case <-s.done:
			t.Fatalf("the configserver exited: %v", s.err)
		default:
		}
		m := listening.FindStringSubmatch(s.log.String())
		if m == nil {
			return "no \"Listening on\" line in its log yet"
		}
		s.url = "http://" + m[1]
		return ""
	})
	return s
}

// stop sends SIGTERM, as Kubernetes and systemd do, and returns why the
// process did not exit cleanly, if it did not.
func (s *server) stop() error {
	select {
	case <-s.done:
		return s.err
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return s.err
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("no exit within 20s")
	}
}

// waitOK waits until GET path answers 200.
func (s *server) waitOK(t *testing.T, path string) testutil.Response {
	t.Helper()
	var resp testutil.Response
	testutil.EventuallyReason(t, 20*time.Second, "GET "+path+" to answer 200", func() string {
		var err error
		resp, err = testutil.TryDo(nil, http.MethodGet, s.url+path, "")
		if err != nil {
			return err.Error()
		}
		if resp.Code != http.StatusOK {
			return fmt.Sprintf("%d %s", resp.Code, resp.Body)
		}
		return ""
	})
	return resp
}

// mergeEnv returns env lists (KEY=VALUE) merged in order, a later value of a
// key replacing an earlier one in place, as a container's env replaces its
// image's ENV.
func mergeEnv(lists ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// getEnv returns the value of key in env.
func getEnv(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// mapPath rewrites the value of key in env when it lies under the absolute
// directory from, to the same path under to.
func mapPath(t *testing.T, env []string, key, from, to string) []string {
	t.Helper()
	v, ok := getEnv(env, key)
	if !ok {
		t.Fatalf("no %s in the environment %q", key, env)
	}
	rel, err := filepath.Rel(from, v)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		t.Fatalf("%s=%s is not under %s", key, v, from)
	}
	return mergeEnv(env, []string{key + "=" + filepath.Join(to, rel)})
}

// listDir returns every path under dir with its mode and size, to see that
// nothing was written there.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %s %d", p, info.Mode(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// readOnly makes dir (mode 0755) unwritable for the test's run, as a
// read-only mount is, restores it for the clean-up, and fails the test if
// anything in it changed meanwhile (which also catches a writer running as
// root, whom the mode does not stop).
func readOnly(t *testing.T, dir string) {
	t.Helper()
	before := listDir(t, dir)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Error(err)
		}
		if after := listDir(t, dir); !slices.Equal(after, before) {
			t.Errorf("the read-only mount %s changed:\nbefore %q\nafter  %q", dir, before, after)
		}
	})
}

// origin is the one origin of the original's example config.
var origin = struct {
	scheme, hostname string
	port             float64
	mode             string
}{"http", "example.com", 9301, "advanced"}

// lookup returns the value of key in m, matching its case the way
// encoding/json does, as the original leaf decodes /config.
func lookup(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// seconds reads a duration of /config: whole seconds (the original's shape)
// or a Go duration string.
func seconds(v any) (time.Duration, bool) {
	switch v := v.(type) {
	case float64:
		return time.Duration(v * float64(time.Second)), true
	case string:
		d, err := time.ParseDuration(v)
		return d, err == nil
	}
	return 0, false
}

// servesOriginal checks that a /config body serves the original's example
// config: interval 30s, timeout 10s, and its origin in advanced mode, given
// either as scheme, hostname and port (the original's shape) or as a URL.
// It returns what is wrong, or "".
func servesOriginal(body string) string {
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		return fmt.Sprintf("not JSON (%v): %s", err, body)
	}
	if d, ok := seconds(lookup(doc, "interval")); !ok || d != 30*time.Second {
		return "interval is not 30s: " + body
	}
	if d, ok := seconds(lookup(doc, "timeout")); !ok || d != 10*time.Second {
		return "timeout is not 10s: " + body
	}
	origins, _ := lookup(doc, "origins").([]any)
	wantURL := fmt.Sprintf("%s://%s:%d/oxcross", origin.scheme, origin.hostname, int(origin.port))
	for _, o := range origins {
		m, _ := o.(map[string]any)
		byParts := lookup(m, "scheme") == origin.scheme && lookup(m, "hostname") == origin.hostname && lookup(m, "port") == origin.port
		if (byParts || lookup(m, "url") == wantURL) && lookup(m, "mode") == origin.mode {
			return ""
		}
	}
	return "no origin " + wantURL + " in advanced mode: " + body
}

func TestServesOriginal(t *testing.T) {
	for body, want := range map[string]bool{
		// The original configserver's /config.
		`{"timeout":10,"interval":30,"origins":[{"scheme":"http","hostname":"example.com","port":9301,"mode":"advanced","URL":"http://example.com:9301/oxcross"}]}`: true,
		// The new one's, with Go durations and a URL.
		`{"interval":"30s","timeout":"10s","origins":[{"name":"example.com-9301-http","url":"http://example.com:9301/oxcross","mode":"advanced"}]}`: true,
		`{"Interval":30,"Timeout":10,"Origins":[{"Scheme":"http","Hostname":"example.com","Port":9301,"Mode":"advanced"}]}`:                         true,
		`{"interval":30,"timeout":10,"origins":[{"scheme":"http","hostname":"example.com","port":9301,"mode":"simple"}]}`:                           false,
		`{"interval":30,"timeout":10,"origins":[{"scheme":"http","hostname":"example.org","port":9301,"mode":"advanced"}]}`:                         false,
		`{"interval":60,"timeout":10,"origins":[{"scheme":"http","hostname":"example.com","port":9301,"mode":"advanced"}]}`:                         false,
		`{"interval":30,"timeout":10,"origins":[]}`: false,
		`not json`: false,
	} {
		if got := servesOriginal(body) == ""; got != want {
			t.Errorf("servesOriginal(%s) = %q, want ok=%v", body, servesOriginal(body), want)
		}
	}
}
