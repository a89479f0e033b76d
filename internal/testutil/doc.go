// Package testutil holds the helpers Oxcross's tests share, so that each
// package's tests and bench/oxbench need not write them again. Everything
// listens on loopback addresses only, or inside network namespaces a test
// created.
//
// Networks:
//   - DNSServer (NewDNSServer): a fake authoritative DNS server over UDP
//     and TCP answering A and AAAA queries from a table that may change
//     while it runs, counting queries, with a Resolver that asks only it.
//   - DelayProxy (NewDelayProxy, NewDelayProxyWithOptions,
//     StartDelayProxy, StartDelayProxyWithOptions): a TCP proxy delaying
//     each direction by a fixed time, chunk by chunk (and, as an option,
//     a random fraction of the answers by a further random time: queueing
//     on the way back), that records when each chunk was read and
//     written on, so that a test compares its results with the delays that
//     actually occurred (ConnRecord, Exchange, Exchange.OffsetError). It
//     needs no test, for bench/oxbench.
//   - ServeConns and ServeTCP: a TCP server handing each connection to a
//     function on a goroutine of its own, closed and waited for at the end
//     of the test.
//   - FreePort, ClosedAddr, ClosedURL: ports to listen on and addresses
//     where nothing listens; ListenOriginalPort, a listener on a port the
//     original Oxcross probes (at most 32767).
//
// Network namespaces (Linux, root): RequireNetns skips without root or a
// command (and fails in CI), NewNetns creates a namespace removed at the
// end of the test (Netns.Run and Netns.Command run commands in it,
// Netns.Do opens sockets in it), LinkNetns joins two with a veth pair
// (LinkNetnsWith: several addresses per end, an MTU); Netns.AddAddr,
// Netns.Route, Netns.Sysctl and Netns.Router build routed topologies.
//
// TLS: CA (NewCA) is a certificate authority issuing server and client
// certificates (CA.Server, CA.Client, CA.Issue with CertOptions for names,
// validity, usage and chain) as a Cert: in memory, as PEM files and with a
// pool of the CA.
//
// Waiting: Eventually and EventuallyReason poll a condition with a short
// backoff until it holds or a timeout passes, and say what was last seen.
//
// Timing: WatchTimers counts how often this machine wakes a timer late
// while a timing test runs, the truth a schedule is compared with on a
// busy machine.
//
// Configs: OriginsConfig, the text of a config file of many origins;
// OriginalConfig and ParseOriginalConfig, the original Oxcross' config as
// its configserver serves it and its leaf reads it.
//
// Files: WriteFile, WriteAtomic (ReplaceFile without a test) and
// ConfigMap (NewConfigMap, ConfigMap.Swap), a directory laid out and
// updated as the kubelet does a ConfigMap volume.
//
// HTTP and metrics: Do and TryDo send a request and read the whole
// response; MetricValue, LookupMetric, MetricSum and MetricSeries read
// series from a prometheus.Gatherer.
//
// Programs: DebianBinary finds a program from a Debian package a test
// needs, skipping the test without it (failing it in CI); StartEtcd runs
// Debian's etcd on loopback, which Etcd.Stop and Etcd.Start take down and
// bring back on the same data.
//
// Helpers taking a testing.TB call its Helper method and register their
// clean-up with its Cleanup method. Those that fail with Fatal must be
// called from the test's goroutine; WriteAtomic and ConfigMap.Swap report
// with Error, and may be called from any goroutine.
package testutil
