package prober

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/internal/testutil"
)

// TestRoundTrip1MatchesClient makes the same requests through roundTrip1
// and through net/http's client as the http kind configures it, and
// compares what the server received and what each returned.
func TestRoundTrip1MatchesClient(t *testing.T) {
	for _, mode := range []string{"http", "https", "https+h2"} {
		t.Run(mode, func(t *testing.T) { testRoundTrip1MatchesClient(t, mode) })
	}
}

func testRoundTrip1MatchesClient(t *testing.T, mode string) {
	type seen struct {
		Method, Host, Proto, URI string
		Header                   http.Header
		Close                    bool
		ContentLength            int64
	}
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Method, r.Host, r.Proto, r.RequestURI, r.Header.Clone(), r.Close, r.ContentLength})
		mu.Unlock()
		switch r.URL.Path {
		case "/early":
			w.Header().Set("X-Hint", "1")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "after hints")
		case "/chunked":
			w.WriteHeader(http.StatusAccepted)
			for range 3 {
				_, _ = io.WriteString(w, strings.Repeat("x", 5000))
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	hs := &HTTPSettings{}
	if mode == "http" {
		srv.Start()
	} else {
		ca := testutil.NewCA(t, "roundTrip1 CA")
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}}
		srv.EnableHTTP2 = mode == "https+h2"
		srv.StartTLS()
		hs.TLS.CAFile = ca.CertFile
	}
	t.Cleanup(srv.Close)
	m := config.Module{Kind: "http"}
	hc := newHTTPKind().clientFor(&m, hs)
	if hc.err != nil || !hc.direct {
		t.Fatalf("client: %v, direct %v", hc.err, hc.direct)
	}
	type answer struct {
		Status                 int
		Proto                  string
		Header                 http.Header
		Body                   string
		ContentLength          int64
		Uncompressed, TLSIsNil bool
	}
	do := func(method, path, host string, direct bool) (answer, seen) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tt := &traceTimes{}
		ctx = tt.withTrace(ctx)
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "test")
		req.Header.Set("X-Probe", "oxcross")
		req.Host = host
		if !directOK(req) {
			t.Fatalf("%s %s: not direct", method, path)
		}
		var resp *http.Response
		if direct {
			resp, err = hc.roundTrip1(req)
		} else {
			resp, err = hc.client.Do(req)
		}
		if err != nil {
			t.Fatalf("%s %s (direct %v): %v", method, path, direct, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s (direct %v): reading body: %v", method, path, direct, err)
		}
		_ = resp.Body.Close()
		resp.Header.Del("Date")
		if mode != "http" && (tt.tlsStart.IsZero() || !tt.tlsOK || !tt.tlsDone.After(tt.tlsStart) || !tt.connectOK) {
			t.Errorf("%s %s (direct %v): trace %+v: no TLS handshake or connect timed", method, path, direct, tt)
		}
		mu.Lock()
		defer mu.Unlock()
		return answer{resp.StatusCode, resp.Proto, resp.Header, string(body), resp.ContentLength, resp.Uncompressed, resp.TLS == nil}, got[len(got)-1]
	}
	for _, c := range []struct{ method, path, host string }{
		{"GET", "/", ""}, {"HEAD", "/", ""}, {"POST", "/", ""}, {"DELETE", "/x?y=1", ""},
		{"GET", "/", "api.example.com"}, {"GET", "/early", ""}, {"GET", "/chunked", ""},
		{"GET", "/empty", ""}, {"GET", "/redirect", ""},
	} {
		wantA, wantS := do(c.method, c.path, c.host, false)
		gotA, gotS := do(c.method, c.path, c.host, true)
		if !reflect.DeepEqual(gotA, wantA) {
			t.Errorf("%s %s host %q: answer through roundTrip1\n%+v\nthrough the client\n%+v", c.method, c.path, c.host, gotA, wantA)
		}
		if !reflect.DeepEqual(gotS, wantS) {
			t.Errorf("%s %s host %q: server saw from roundTrip1\n%+v\nfrom the client\n%+v", c.method, c.path, c.host, gotS, wantS)
		}
	}
}

// TestDirectOK names what roundTrip1 leaves to the client.
func TestDirectOK(t *testing.T) {
	for _, c := range []struct {
		url, host, header string
		want              bool
	}{
		{"http://127.0.0.1:8080/healthz", "", "", true},
		{"http://[::1]/", "example.com", "", true},
		{"https://127.0.0.1/", "", "", true},
		{"ftp://127.0.0.1/", "", "", false},
		{"http://user:pw@127.0.0.1/", "", "", false},
		{"http://bücher.example/", "", "", false},
		{"http://127.0.0.1/", "bad host\x7f", "", false},
		{"http://127.0.0.1/", "", "Bad(Name)", false},
	} {
		req, err := http.NewRequest(http.MethodGet, c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = c.host
		if c.header != "" {
			req.Header[c.header] = []string{"v"}
		}
		if got := directOK(req); got != c.want {
			t.Errorf("directOK(%s, host %q, header %q) = %v, want %v", c.url, c.host, c.header, got, c.want)
		}
	}
}
