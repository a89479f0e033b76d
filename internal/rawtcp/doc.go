// Package rawtcp dials TCP connections for probes, which open a
// connection, use it once and close it: a Dialer is a drop-in for
// net.Dialer{KeepAlive: -1} that costs the process fewer wake-ups.
//
// Every call net's sockets make goes through syscall.Syscall, which tells
// the Go runtime a call may block. When the program was idle, that wakes
// the runtime's monitor thread (sysmon) from its deep sleep, and the
// monitor then polls every 20 µs while the program runs: on a leaf that
// probes a few times a second, most of the process's context switches,
// and on a virtual machine, where waking a thread is dear, a quarter of
// its CPU (see docs/performance.md). The socket calls of a connection are
// non-blocking, so on Linux this package makes them directly
// (syscall.RawSyscall) and waits in the runtime's poller, through
// os.File's syscall.RawConn, when the kernel has nothing yet. Closing a
// descriptor is the one call that has to go through os.File; Close shuts
// the connection down at once (the peer sees the FIN when net's Close
// would send it) and releases the descriptor later, many at a time (see
// Dialer.Close).
//
// Elsewhere, and for what this package does not handle (a port by service
// name), a Dialer dials with net.Dialer.
package rawtcp
