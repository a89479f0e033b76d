package testutil

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Response is an HTTP response read whole.
type Response struct {
	Code   int
	Header http.Header
	Body   string
}

// Do sends a request with body (none when "") and header, given as name,
// value pairs, with c (http.DefaultClient when nil), and returns the
// response read whole. It fails the test when there is no response: use
// TryDo where that is expected. It must be called from the test's
// goroutine.
func Do(t testing.TB, c *http.Client, method, url, body string, header ...string) Response {
	t.Helper()
	resp, err := TryDo(c, method, url, body, header...)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TryDo is Do returning the error, for requests that may fail.
func TryDo(c *http.Client, method, url, body string, header ...string) (Response, error) {
	if len(header)%2 != 0 {
		return Response{}, fmt.Errorf("%s %s: header %q is not name, value pairs", method, url, header)
	}
	if c == nil {
		c = http.DefaultClient
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	for i := 0; i < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	err = errors.Join(err, resp.Body.Close())
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: reading the body: %w", method, url, err)
	}
	return Response{Code: resp.StatusCode, Header: resp.Header, Body: string(b)}, nil
}
