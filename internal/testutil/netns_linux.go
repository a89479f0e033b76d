package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireNetns skips t unless it runs as root with the commands it names
// (ip is always needed), so that it can create network namespaces. In CI
// (CI=true), which runs as root with the packages of scripts/packages.d
// installed, it fails instead: there a missing command is a missing
// Debian package, not a reason to skip.
func RequireNetns(t testing.TB, packages string, commands ...string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: install the Debian packages of scripts/packages.d/%s)", msg, packages)
		}
		t.Skipf("skipping a network namespace test: %s", msg)
	}
	if os.Geteuid() != 0 {
		missing("needs root to create network namespaces (run as root, as CI does)")
	}
	for _, c := range append([]string{"ip"}, commands...) {
		if _, err := exec.LookPath(c); err != nil {
			missing("command %s not found (Debian packages of scripts/packages.d/%s)", c, packages)
		}
	}
}

// Netns is a network namespace a test created with NewNetns; it is
// removed when the test ends.
type Netns struct {
	// Name is the namespace's name under /run/netns, for `ip netns exec`.
	Name string
	t    testing.TB
}

// randomSuffix returns n random hex digits, for names unique per run.
func randomSuffix(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// NewNetns creates a network namespace with a unique name and its
// loopback up, removed at the end of the test. See RequireNetns.
func NewNetns(t testing.TB) *Netns {
	t.Helper()
	n := &Netns{Name: "oxtest-" + randomSuffix(8), t: t}
	ipCommand(t, "netns", "add", n.Name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", n.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", n.Name, err, out)
		}
	})
	n.Run("ip", "link", "set", "lo", "up")
	return n
}

// Run runs a command inside the namespace (`ip netns exec`) and returns
// its output, failing the test when it fails.
func (n *Netns) Run(args ...string) string {
	n.t.Helper()
	return ipCommand(n.t, append([]string{"netns", "exec", n.Name}, args...)...)
}

// Command returns a command that runs args inside the namespace.
func (n *Netns) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
}

// Do runs fn on an OS thread moved into the namespace: the sockets fn
// opens on its own goroutine belong to the namespace and keep belonging to
// it afterwards, whichever goroutine uses them. Goroutines fn starts run
// in the test's namespace. The thread is never returned to the Go
// runtime's pool (it ends with its goroutine).
func (n *Netns) Do(fn func()) {
	n.t.Helper()
	f, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		n.t.Fatalf("opening namespace %s: %v", n.Name, err)
	}
	defer f.Close()
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: a goroutine that ends locked takes its
		// thread, with the namespace, down with it.
		runtime.LockOSThread()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		n.t.Fatal(err)
	}
}

// LinkNetns joins two namespaces with a veth pair and gives each end its
// address with prefix ("10.77.0.1/24", "fd00:77::1/64"), both up. The
// pair goes with the namespaces.
func LinkNetns(t testing.TB, a *Netns, aAddr string, b *Netns, bAddr string) {
	t.Helper()
	LinkNetnsWith(t, a, b, LinkOptions{AAddrs: []string{aAddr}, BAddrs: []string{bAddr}})
}

// LinkOptions configure the veth pair of LinkNetnsWith.
type LinkOptions struct {
	// AAddrs and BAddrs are the addresses with prefix of each end, IPv4
	// and IPv6 alike (IPv6 without duplicate address detection, usable at
	// once); none leaves an end without an address.
	AAddrs, BAddrs []string
	// MTU of both ends; 0 keeps the kernel's default (1500).
	MTU int
}

// LinkNetnsWith joins two namespaces with a veth pair as o says, both ends
// up. The pair goes with the namespaces.
func LinkNetnsWith(t testing.TB, a, b *Netns, o LinkOptions) {
	t.Helper()
	s := randomSuffix(8)
	ea, eb := "oxva"+s, "oxvb"+s // at most 15 characters
	var mtu []string
	if o.MTU > 0 {
		mtu = []string{"mtu", strconv.Itoa(o.MTU)}
	}
	args := append(append([]string{"link", "add", ea, "netns", a.Name}, mtu...), "type", "veth", "peer", "name", eb, "netns", b.Name)
	ipCommand(t, append(args, mtu...)...)
	for _, e := range []struct {
		ns    *Netns
		dev   string
		addrs []string
	}{{a, ea, o.AAddrs}, {b, eb, o.BAddrs}} {
		for _, addr := range e.addrs {
			e.ns.AddAddr(addr, e.dev)
		}
		e.ns.Run("ip", "link", "set", e.dev, "up")
	}
}

// AddAddr gives the namespace's interface dev an address with prefix
// ("10.77.9.9/32", "fd00:77::9/128" on "lo"); IPv6 without duplicate
// address detection, usable at once.
func (n *Netns) AddAddr(addr, dev string) {
	n.t.Helper()
	args := []string{"ip", "-4", "addr", "add", addr, "dev", dev}
	if strings.Contains(addr, ":") {
		args = []string{"ip", "-6", "addr", "add", addr, "dev", dev, "nodad"}
	}
	n.Run(args...)
}

// Route adds or replaces the namespace's route to dst ("default",
// "10.77.9.9/32", "fd00:77::/64") through the gateway via; the family is
// the gateway's.
func (n *Netns) Route(dst, via string) {
	n.t.Helper()
	family := "-4"
	if strings.Contains(via, ":") {
		family = "-6"
	}
	n.Run("ip", family, "route", "replace", dst, "via", via)
}

// Sysctl sets the namespace's sysctls, given as name=value pairs with
// the names sysctl(8) uses ("net.ipv4.ip_forward=1"): those under net are
// the namespace's own.
func (n *Netns) Sysctl(settings ...string) {
	n.t.Helper()
	args := []string{"sh", "-c", `while [ $# -gt 0 ]; do printf '%s\n' "$2" >"$1" || exit 1; shift 2; done`, "sh"}
	for _, s := range settings {
		name, value, ok := strings.Cut(s, "=")
		if !ok {
			n.t.Fatalf("sysctl %q: want name=value", s)
		}
		args = append(args, "/proc/sys/"+strings.ReplaceAll(name, ".", "/"), value)
	}
	n.Run(args...)
}

// Router makes the namespace a router for IPv4 and IPv6: it forwards,
// does no reverse-path filtering (a reply may come back on another link),
// and does not rate-limit its ICMP errors (a test's back-to-back
// traceroutes get every answer).
func (n *Netns) Router() {
	n.t.Helper()
	n.Sysctl(
		"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
		"net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
	)
}

func ipCommand(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
