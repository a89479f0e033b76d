//go:build linux

package rawtcp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPacedDial dials a loopback server, sends a request line, reads
// the answer and closes, a connection every 10 ms, as a leaf probes: the program idles between them, so the Go runtime's
// monitor thread goes to its deep sleep each time. It reports the
// process's context switches per connection (all threads,
// /proc/self/task/*/status) and its CPU time per connection (getrusage:
// user and system), for net.Dialer and for this package's Dialer; ns/op
// includes the pause.
func BenchmarkPacedDial(b *testing.B) {
	// The server is another process (this test binary again), so that
	// its own socket calls do not count.
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), serverEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("the server process: %v", err)
	}
	addr := strings.TrimSpace(line)
	var rd Dialer
	defer rd.Close()
	nd := net.Dialer{KeepAlive: -1}
	for _, tc := range []struct {
		name string
		dial func(context.Context, string, string) (net.Conn, error)
	}{{"net", nd.DialContext}, {"rawtcp", rd.DialContext}} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 16)
			// A connection every 10 ms, on a schedule as a leaf's
			// probes are; the idle time between them is what this
			// benchmark is about.
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			sw0, cpu0 := contextSwitches(b), cpuTime()
			b.ResetTimer()
			for range b.N {
				<-tick.C
				c, err := tc.dial(context.Background(), "tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.WriteString(c, "GET\n"); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadAtLeast(c, buf, 3); err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(contextSwitches(b)-sw0)/float64(b.N), "ctxsw/op")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// contextSwitches sums the voluntary and involuntary context switches of
// this process's threads.
func contextSwitches(b *testing.B) int {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) == 0 {
		b.Skip("no /proc/self/task: context switches are Linux's")
	}
	n := 0
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that ended
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.Atoi(strings.TrimSpace(v))
				n += k
			} else if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				k, _ := strconv.Atoi(strings.TrimSpace(v))
				n += k
			}
		}
	}
	return n
}

// serverEnv makes the test binary BenchmarkPacedDial's server: it prints
// its address and answers each connection's line with "ok".
const serverEnv = "RAWTCP_BENCH_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) == "1" {
		serve()
		return
	}
	os.Exit(m.Run())
}

func serve() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64)
			if _, err := c.Read(buf); err == nil {
				_, _ = io.WriteString(c, "ok\n")
			}
		}()
	}
}
