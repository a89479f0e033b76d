package testutil

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Etcd is Debian's etcd (package etcd-server) run by a test on loopback:
// one member, its data in a directory of the test, so that Stop and Start
// make an outage with nothing lost.
type Etcd struct {
	// ClientURL is where clients connect, http://127.0.0.1:port.
	ClientURL string
	bin       string
	peerURL   string
	dataDir   string
	args      []string
	cmd       *exec.Cmd
	done      chan struct{}
	log       *SyncBuffer
}

// StartEtcd starts etcd and waits until it is healthy; it stops at the end
// of the test, and its log is printed if the test failed. Without the
// etcd-server package, the test is skipped (fails in CI: DebianBinary).
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	e := &Etcd{
		bin:       DebianBinary(t, "/usr/bin/etcd", "etcd-server"),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
		dataDir:   filepath.Join(t.TempDir(), "etcd"),
		log:       &SyncBuffer{},
	}
	e.args = []string{"--name=test", "--data-dir=" + e.dataDir,
		"--listen-client-urls=" + e.ClientURL, "--advertise-client-urls=" + e.ClientURL,
		"--listen-peer-urls=" + e.peerURL, "--initial-advertise-peer-urls=" + e.peerURL,
		"--initial-cluster=test=" + e.peerURL, "--initial-cluster-state=new",
		"--log-level=warn"}
	t.Cleanup(func() {
		e.Stop(t)
		if t.Failed() {
			t.Logf("--- log of etcd %v:\n%s", e.args, e.log.String())
		}
	})
	e.Start(t)
	return e
}

// Start starts etcd again after Stop, on the same data and ports, and
// waits until it is healthy.
func (e *Etcd) Start(t testing.TB) {
	t.Helper()
	e.cmd = exec.Command(e.bin, e.args...)
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", e.bin, err)
	}
	done := make(chan struct{})
	e.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(e.cmd)
	EventuallyReason(t, 30*time.Second, "etcd healthy at "+e.ClientURL, func() string {
		select {
		case <-done:
			return "etcd exited"
		default:
		}
		resp, err := TryDo(nil, http.MethodGet, e.ClientURL+"/health", "")
		switch {
		case err != nil:
			return err.Error()
		case !strings.Contains(resp.Body, `"health":"true"`):
			return resp.Body
		}
		return ""
	})
}

// Stop stops etcd (SIGTERM, then SIGKILL after 10s) and waits for it to
// exit.
func (e *Etcd) Stop(t testing.TB) {
	t.Helper()
	if e.cmd == nil {
		return
	}
	select {
	case <-e.done:
		return
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}
