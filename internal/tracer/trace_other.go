//go:build !linux

package tracer

import (
	"context"
	"errors"
)

func run(context.Context, *Options, *Trace) error {
	return errors.New("path tracing works on Linux only (it reads ICMP answers from the socket error queue)")
}
