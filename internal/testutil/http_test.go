package testutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDo(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+"|"+r.Header.Get("X-Test")+"|"+string(b))
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "short and stout")
	}))
	defer ts.Close()

	r := Do(t, ts.Client(), http.MethodPut, ts.URL, "body", "X-Test", "yes")
	if r.Code != http.StatusTeapot || r.Body != "short and stout" || r.Header.Get("X-Seen") != "PUT|yes|body" {
		t.Errorf("got %d %q, X-Seen %q", r.Code, r.Body, r.Header.Get("X-Seen"))
	}
	if r := Do(t, nil, http.MethodGet, ts.URL, ""); r.Header.Get("X-Seen") != "GET||" {
		t.Errorf("GET without body or header: X-Seen %q", r.Header.Get("X-Seen"))
	}
	if _, err := TryDo(nil, http.MethodGet, ts.URL, "", "X-Test"); err == nil || !strings.Contains(err.Error(), "pairs") {
		t.Errorf("odd header: %v, want an error", err)
	}
	tb := run(t, func(tb testing.TB) { Do(tb, nil, http.MethodGet, ClosedURL(t), "") })
	if !tb.fatal || !strings.Contains(tb.message(), "GET http://127.0.0.1:") {
		t.Errorf("no response: failure %q, want a fatal one naming the request", tb.message())
	}
}
