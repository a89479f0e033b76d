//go:build !linux

package rawtcp

import (
	"context"
	"errors"
	"net"
)

// Supported reports whether the Dialer makes its own sockets; elsewhere
// it dials with net.Dialer.
const Supported = false

func (d *Dialer) dialOne(context.Context, string, *net.TCPAddr) (net.Conn, error) {
	return nil, errors.ErrUnsupported
}
