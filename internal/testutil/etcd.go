package testutil

import (
	"fmt"
	"net/http"
	"os"
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
// An etcd that exits at start (a port FreePort gave was taken meanwhile)
// is started again on other ports, twice at most.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	e := &Etcd{
		bin:     DebianBinary(t, "/usr/bin/etcd", "etcd-server"),
		dataDir: filepath.Join(t.TempDir(), "etcd"),
		log:     &SyncBuffer{},
	}
	t.Cleanup(func() {
		e.Stop(t)
		if t.Failed() {
			t.Logf("--- log of etcd %v:\n%s", e.args, e.log.String())
		}
	})
	for attempt := 1; ; attempt++ {
		e.ClientURL = fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
		e.peerURL = fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
		e.args = []string{"--name=test", "--data-dir=" + e.dataDir,
			"--listen-client-urls=" + e.ClientURL, "--advertise-client-urls=" + e.ClientURL,
			"--listen-peer-urls=" + e.peerURL, "--initial-advertise-peer-urls=" + e.peerURL,
			"--initial-cluster=test=" + e.peerURL, "--initial-cluster-state=new",
			"--log-level=warn"}
		err := e.launch()
		if err == nil {
			return e
		}
		if attempt == 3 {
			t.Fatalf("etcd at %s: %v", e.ClientURL, err)
		}
		t.Logf("etcd at %s: %v; again on other ports", e.ClientURL, err)
		if rmErr := os.RemoveAll(e.dataDir); rmErr != nil {
			t.Fatal(rmErr)
		}
	}
}

// Start starts etcd again after Stop, on the same data and ports, and
// waits until it is healthy.
func (e *Etcd) Start(t testing.TB) {
	t.Helper()
	if err := e.launch(); err != nil {
		t.Fatalf("etcd at %s: %v", e.ClientURL, err)
	}
}

// launch starts etcd and waits until it is healthy, or has exited, or 30s
// have passed.
func (e *Etcd) launch() error {
	e.cmd = exec.Command(e.bin, e.args...)
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", e.bin, err)
	}
	done := make(chan struct{})
	e.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(e.cmd)
	var last string
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := TryDo(nil, http.MethodGet, e.ClientURL+"/health", "")
		switch {
		case err != nil:
			last = err.Error()
		case !strings.Contains(resp.Body, `"health":"true"`):
			last = resp.Body
		default:
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited at start (its log follows if the test fails); last seen: %s", last)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.kill()
			return fmt.Errorf("not healthy within 30s: %s", last)
		}
	}
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
		e.kill()
	}
}

// kill kills etcd, if it runs, and waits for it to exit.
func (e *Etcd) kill() {
	_ = e.cmd.Process.Kill()
	<-e.done
}
