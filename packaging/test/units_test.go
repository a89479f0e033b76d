package test

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/oxcross/oxcross/internal/testutil"
)

// unit is what a systemd unit of packaging/systemd runs.
type unit struct {
	execStart        []string
	environmentFiles []string
}

func readUnit(t *testing.T, name string) unit {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "packaging/systemd", name+".service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var u unit
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		switch {
		case !ok:
		case key == "ExecStart":
			if u.execStart != nil {
				t.Fatalf("%s: two ExecStart lines", name)
			}
			u.execStart = strings.Fields(value)
		case key == "EnvironmentFile":
			u.environmentFiles = append(u.environmentFiles, value)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// readEnvFile reads a settings file of packaging/env as systemd's
// EnvironmentFile= does: KEY=VALUE lines, # comments, a value's
// surrounding quotes removed.
func readEnvFile(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "packaging/env", name))
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("packaging/env/%s: not KEY=VALUE: %s", name, line)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		env = mergeEnv(env, []string{strings.TrimSpace(key) + "=" + value})
	}
	return env
}

// expand expands ExecStart's words as systemd does for the forms the units
// use: $VAR splits the variable's value into words at white space (none
// when it is empty), ${VAR} is one word.
func expand(words, env []string) []string {
	var out []string
	for _, w := range words {
		switch {
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			v, _ := getEnv(env, w[2:len(w)-1])
			out = append(out, v)
		case strings.HasPrefix(w, "$"):
			v, _ := getEnv(env, w[1:])
			out = append(out, strings.Fields(v)...)
		default:
			out = append(out, w)
		}
	}
	return out
}

// TestUnitsTakeFlagsOnlyFromARGS: a unit's command line has no flag but
// those of ARGS in its settings file, and ARGS as packaged has none of the
// flags with an environment variable, so that every variable of the
// settings file (OXCROSS_CONF, OXCROSS_CONFIG_API_BASE, OXCROSS_LEAF_ID,
// ...) is honoured: such a flag on the command line would beat it.
func TestUnitsTakeFlagsOnlyFromARGS(t *testing.T) {
	for _, name := range []string{"oxcross-leaf", "oxcross-origin", "oxcross-configserver"} {
		u := readUnit(t, name)
		if want := []string{"/usr/bin/" + name, "$ARGS"}; !reflect.DeepEqual(u.execStart, want) {
			t.Errorf("%s.service: ExecStart=%q, want %q", name, u.execStart, want)
		}
		if want := []string{"-/etc/default/" + name, "-/etc/sysconfig/" + name}; !reflect.DeepEqual(u.environmentFiles, want) {
			t.Errorf("%s.service: EnvironmentFile=%q, want %q", name, u.environmentFiles, want)
		}
		args, ok := getEnv(readEnvFile(t, name), "ARGS")
		if !ok {
			t.Errorf("packaging/env/%s: no ARGS", name)
		}
		for _, flag := range []string{"--config.file", "--config.url", "--leaf.id", "--web.listen-address"} {
			if strings.Contains(args, flag) {
				t.Errorf("packaging/env/%s: ARGS=%q sets %s, which would beat its environment variable", name, args, flag)
			}
		}
	}
}

// TestConfigserverUnitHonoursOXCROSS_CONF runs the configserver unit's
// ExecStart with the variables of its settings file, as packaged and as an
// operator of the original Oxcross edits it: OXCROSS_CONF pointing to the
// original's JSON file.
func TestConfigserverUnitHonoursOXCROSS_CONF(t *testing.T) {
	const name = "oxcross-configserver"
	u := readUnit(t, name)
	packaged := readEnvFile(t, name)
	example, err := os.ReadFile(filepath.Join(root, "packaging/config/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const original = `{"timeout": 10, "interval": 30, "origins": [{"scheme": "http", "hostname": "example.com", "port": 9301, "mode": "advanced"}]}`
	for _, tc := range []struct {
		name  string
		edits []string
		check func(body string) string
	}{
		{"as packaged", nil, func(body string) string {
			if !strings.Contains(body, "origin1.example.com") {
				return "not the example config: " + body
			}
			return ""
		}},
		{"the original's JSON file", []string{"OXCROSS_CONF=/etc/oxcross/oxcross_config.json", "ARGS=--log.level=debug"}, servesOriginal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsRoot := t.TempDir()
			testutil.WriteFile(t, filepath.Join(fsRoot, "etc/oxcross/config.yaml"), string(example))
			testutil.WriteFile(t, filepath.Join(fsRoot, "etc/oxcross/oxcross_config.json"), original)
			// The packaged registry files that ARGS names, as installed.
			for _, f := range []string{"configserver-web.yml", "registry-identities.yml"} {
				b, err := os.ReadFile(filepath.Join(root, "packaging/config", f))
				if err != nil {
					t.Fatal(err)
				}
				testutil.WriteFile(t, filepath.Join(fsRoot, "etc/oxcross", f), string(b))
			}
			env := mergeEnv([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"}, packaged, tc.edits)
			argv := expand(u.execStart, env)
			// Files ARGS names under /etc/oxcross move with the file system.
			for i, a := range argv {
				argv[i] = strings.ReplaceAll(a, "=/etc/oxcross/", "="+filepath.Join(fsRoot, "etc/oxcross")+"/")
			}
			if argv[0] != "/usr/bin/"+name {
				t.Fatalf("ExecStart runs %s", argv[0])
			}
			// As for the image: the test's file system is not the host's,
			// so OXCROSS_CONF is moved under a temporary directory, and a
			// loopback listen address on a free port is appended.
			env = mapPath(t, env, "OXCROSS_CONF", "/", fsRoot)
			s := start(t, configserver, append(argv[1:], "--web.listen-address=127.0.0.1:0"), env)
			if problem := tc.check(s.waitOK(t, "/config").Body); problem != "" {
				t.Errorf("GET /config: %s", problem)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	env := []string{"A=", "B=-x  -y", "C=one word"}
	got := expand([]string{"/bin/p", "$A", "$B", "${C}", "$NONE"}, env)
	if want := []string{"/bin/p", "-x", "-y", "one word"}; !reflect.DeepEqual(got, want) {
		t.Errorf("expand = %q, want %q", got, want)
	}
}
