package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/testutil"
)

// ready returns the status of /-/ready at addr, 0 when it does not answer.
func ready(addr string) int {
	resp, err := testutil.TryDo(nil, http.MethodGet, "http://"+addr+"/-/ready", "")
	if err != nil {
		return 0
	}
	return resp.Code
}

// okRegistrations is the configserver's count of accepted heartbeats.
func okRegistrations(t *testing.T, addr string) float64 {
	t.Helper()
	v, _ := testutil.LookupMetric(t, scrape(t, addr), "oxcross_configserver_registrations_total", "result", "ok")
	return v
}

// sdPoller polls a configserver's /sd/leaves every few milliseconds and
// records every poll that did not list the wanted leaf ids.
type sdPoller struct {
	mu     sync.Mutex
	polls  int
	misses []string
	stop   chan struct{}
	done   chan struct{}
}

func pollSD(t *testing.T, addr string, ids ...string) *sdPoller {
	p := &sdPoller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			got := sdLeafIDs(t, addr)
			var missing []string
			for _, id := range ids {
				if !got[id] {
					missing = append(missing, id)
				}
			}
			p.mu.Lock()
			p.polls++
			if len(missing) > 0 {
				p.misses = append(p.misses, fmt.Sprintf("%s: %v missing", time.Now().Format("15:04:05.000"), missing))
			}
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(p.end)
	return p
}

// end stops the poller and returns its polls and misses.
func (p *sdPoller) end() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *sdPoller) result() (int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.polls, append([]string(nil), p.misses...)
}

// TestConfigserverReplicasEtcd runs two configserver replicas sharing
// their registry in a real etcd: a leaf heartbeating to one is listed by
// the other; the leaf (given both) fails over when its replica is killed,
// with no gap in the other's /sd/leaves; while etcd is down the replicas
// keep serving /sd/leaves, refuse registrations with 503 and are not
// ready, and once it is back they are ready again with nothing lost.
func TestConfigserverReplicasEtcd(t *testing.T) {
	etcd := testutil.StartEtcd(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	testutil.WriteFile(t, cfg, "origins:\n  - url: http://127.0.0.1:9/\n    mode: simple\n")
	prefix := fmt.Sprintf("/oxcross-e2e/%d/", time.Now().UnixNano())
	replica := func() (*proc, string) {
		addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		p := start(t, "oxcross-configserver", nil, "--web.listen-address="+addr, "--config.file="+cfg,
			"--registry.etcd.endpoints="+etcd.ClientURL, "--registry.etcd.prefix="+prefix)
		return p, addr
	}
	csA, addrA := replica()
	csB, addrB := replica()
	for _, addr := range []string{addrA, addrB} {
		testutil.Eventually(t, 20*time.Second, addr+" ready", func() bool { return ready(addr) == http.StatusOK })
	}

	// A leaf that knows A first, then B; its refresh interval of 1s puts
	// its lease at 3s.
	const refresh = time.Second
	leafAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	leaf := start(t, "oxcross-leaf", nil, "--web.listen-address="+leafAddr, "--leaf.id=leaf-etcd",
		"--config.url=http://"+addrA, "--config.url=http://"+addrB,
		"--config.refresh-interval="+refresh.String(), "--config.cache-file="+filepath.Join(t.TempDir(), "cache.json"))
	var seenA, seenB time.Time
	testutil.EventuallyReason(t, 20*time.Second, "the leaf listed by both replicas", func() string {
		if seenA.IsZero() && sdLeafIDs(t, addrA)["leaf-etcd"] {
			seenA = time.Now()
		}
		if seenB.IsZero() && sdLeafIDs(t, addrB)["leaf-etcd"] {
			seenB = time.Now()
		}
		if seenA.IsZero() || seenB.IsZero() {
			return fmt.Sprintf("listed by A %v, by B %v", !seenA.IsZero(), !seenB.IsZero())
		}
		return ""
	})
	if n := okRegistrations(t, addrB); n != 0 {
		t.Fatalf("replica B accepted %v heartbeats: the leaf should heartbeat to A, its first --config.url", n)
	}
	lag := seenB.Sub(seenA)
	if lag > 2*time.Second {
		t.Errorf("the leaf heartbeating to A was listed by B %s after A, want within 2s", lag)
	}
	// A and B are polled in turn: B may see the leaf in the round
	// where A's poll came just before the registration, a lag below 0.
	t.Logf("replication: leaf heartbeating to A listed by B %s after A (each polled in turn every 10ms; below 0: in the same round)", lag.Round(time.Millisecond))

	// A registration of its own with a long refresh interval: it must
	// outlive the etcd outage below.
	const manual = `{"address":"127.0.0.1:9","refresh_interval":"1m"}`
	if resp := testutil.Do(t, nil, http.MethodPut, "http://"+addrB+"/api/v1/leaves/manual", manual); resp.Code != http.StatusOK {
		t.Fatalf("PUT manual to B: %d %s", resp.Code, resp.Body)
	}
	testutil.Eventually(t, 2*time.Second, "A lists manual", func() bool { return sdLeafIDs(t, addrA)["manual"] })

	// Kill A: B's /sd/leaves, polled throughout, never misses the leaf.
	poller := pollSD(t, addrB, "leaf-etcd", "manual")
	testutil.Eventually(t, 5*time.Second, "B's /sd/leaves polled before A is killed", func() bool {
		polls, _ := poller.result()
		return polls >= 3
	})
	killed := time.Now()
	_ = csA.cmd.Process.Signal(syscall.SIGKILL)
	<-csA.done
	var failover time.Duration
	testutil.Eventually(t, 10*time.Second, "the leaf's heartbeats reach B", func() bool {
		if okRegistrations(t, addrB) >= 2 { // manual, then the leaf
			failover = time.Since(killed)
			return true
		}
		return false
	})
	if !strings.Contains(leaf.log.String(), "Failed over to another configserver") {
		t.Errorf("the leaf did not log its failover")
	}
	// Two more lease lifetimes with only B: the leaf stays listed.
	waitHeartbeats(t, addrB, okRegistrations, 2*heartbeatsPerLease(refresh), "accepted by B after the failover", nil)
	polls, misses := poller.result()
	if len(misses) > 0 {
		t.Errorf("B's /sd/leaves missed a leaf in %d of %d polls after A was killed: %v", len(misses), polls, misses)
	}
	t.Logf("failover: A killed, the leaf's heartbeats reached B %s later (refresh interval %s); B's /sd/leaves polled %d times every 20ms over %s: %d polls without the leaf",
		failover.Round(time.Millisecond), refresh, polls, time.Since(killed).Round(time.Millisecond), len(misses))

	// Stop etcd.
	regsBefore := okRegistrations(t, addrB)
	stopped := time.Now()
	etcd.Stop(t)
	notReady := untilReady(t, addrB, http.StatusServiceUnavailable, stopped, 10*time.Second, "B not ready while etcd is down")
	resp := testutil.Do(t, nil, http.MethodGet, "http://"+addrB+"/-/ready", "")
	readyBody := strings.TrimSpace(resp.Body)
	if !strings.Contains(readyBody, "etcd") {
		t.Errorf("/-/ready while etcd is down says %q, want the reason naming etcd", readyBody)
	}
	if page := testutil.Do(t, nil, http.MethodGet, "http://"+addrB+"/", "").Body; !strings.Contains(page, `data-kind="etcd" data-up="false"`) || !strings.Contains(page, "registrations refused with 503") {
		t.Errorf("B's status page while etcd is down does not show the registry's etcd down:\n%s", page)
	}
	put := testutil.Do(t, nil, http.MethodPut, "http://"+addrB+"/api/v1/leaves/newcomer", `{"address":"127.0.0.1:9"}`)
	if put.Code != http.StatusServiceUnavailable || !strings.Contains(put.Body, "etcd") {
		t.Errorf("a registration while etcd is down: %d %q, want 503 with the reason", put.Code, put.Body)
	}
	// Down for longer than the leaf's lease (3s): leases are renewed
	// when etcd comes back, so nothing that was live is lost. Throughout,
	// B serves its last registry.
	waitHeartbeats(t, addrB, unavailableRegistrations, heartbeatsPerLease(refresh)+1, "refused by B during the etcd outage", func() {
		if ids := sdLeafIDs(t, addrB); !ids["leaf-etcd"] || !ids["manual"] {
			t.Fatalf("B's /sd/leaves during the etcd outage lists %v: it should serve its last registry", ids)
		}
	})
	if w := unavailableRegistrations(t, addrB); w == 0 {
		t.Errorf("no registration counted as unavailable during the outage")
	}
	if !strings.Contains(csB.log.String(), "the registry's store cannot be written") {
		t.Errorf("B's log does not say why it refused registrations while etcd was down")
	}
	outage := time.Since(stopped)
	restarted := time.Now()
	etcd.Start(t)
	readyAgain := untilReady(t, addrB, http.StatusOK, restarted, 20*time.Second, "B ready again after etcd is back")
	if page := testutil.Do(t, nil, http.MethodGet, "http://"+addrB+"/", "").Body; !strings.Contains(page, `data-kind="etcd" data-up="true"`) {
		t.Errorf("B's status page after etcd is back does not show the registry's etcd up:\n%s", page)
	}
	testutil.Eventually(t, 10*time.Second, "the leaf's heartbeats accepted again", func() bool {
		return okRegistrations(t, addrB) > regsBefore
	})
	// Another lease lifetime: what was live stays.
	waitHeartbeats(t, addrB, okRegistrations, heartbeatsPerLease(refresh)+1, "accepted by B after etcd is back", nil)
	if put := testutil.Do(t, nil, http.MethodPut, "http://"+addrB+"/api/v1/leaves/newcomer", `{"address":"127.0.0.1:9"}`); put.Code != http.StatusOK {
		t.Errorf("a registration after etcd is back: %d %s", put.Code, put.Body)
	}
	poller.end()
	polls, misses = poller.result()
	if len(misses) > 0 {
		t.Errorf("B's /sd/leaves missed a leaf in %d of %d polls: %v", len(misses), polls, misses)
	}
	t.Logf("etcd outage: stopped for %s; B not ready %s after the stop (%q), registrations answered %d %q; B ready again %s after etcd restarted; /sd/leaves polled %d times every 20ms from A's kill to the end: %d polls without leaf-etcd or manual",
		outage.Round(time.Millisecond), notReady.Round(time.Millisecond), readyBody, put.Code, strings.TrimSpace(put.Body), readyAgain.Round(time.Millisecond), polls, len(misses))
}

// untilReady waits until addr's /-/ready answers code and returns how long
// after since that was.
func untilReady(t *testing.T, addr string, code int, since time.Time, timeout time.Duration, what string) time.Duration {
	t.Helper()
	var after time.Duration
	testutil.Eventually(t, timeout, what, func() bool {
		if ready(addr) == code {
			after = time.Since(since)
			return true
		}
		return false
	})
	return after
}

// missedTTL is how long a registration lives without heartbeats.
func missedTTL(refresh time.Duration) time.Duration { return 3 * refresh }

// heartbeatsPerLease is how many of a leaf's heartbeats fit in its lease.
func heartbeatsPerLease(refresh time.Duration) int { return int(missedTTL(refresh) / refresh) }

// waitHeartbeats waits until count (a configserver's count of one kind of
// registration, read from addr's /metrics) has grown by n, calling check,
// when given, at every look. A window counted in the leaf's heartbeats
// (one a refresh interval) covers as many lease renewals however slow
// the machine is, where a fixed sleep could end before they happened.
func waitHeartbeats(t *testing.T, addr string, count func(*testing.T, string) float64, n int, what string, check func()) {
	t.Helper()
	base := count(t, addr)
	testutil.EventuallyReason(t, time.Duration(n)*10*time.Second, fmt.Sprintf("%d of the leaf's heartbeats %s", n, what), func() string {
		if check != nil {
			check()
		}
		if got := count(t, addr) - base; got < float64(n) {
			return fmt.Sprintf("%v so far", got)
		}
		return ""
	})
}

// unavailableRegistrations is the configserver's count of registrations
// refused with 503.
func unavailableRegistrations(t *testing.T, addr string) float64 {
	t.Helper()
	v, _ := testutil.LookupMetric(t, scrape(t, addr), "oxcross_configserver_registrations_total", "result", "unavailable")
	return v
}
