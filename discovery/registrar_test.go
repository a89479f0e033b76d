package discovery_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/internal/testutil"
)

// registryRequest is what a registry saw of a request.
type registryRequest struct {
	method, path, agent, contentType, body string
}

// TestRegistrarRequests: the requests a Registrar sends, under a path
// prefix or not, and the errors it makes of refusals. That the
// configserver takes them is configserver/discovery_test.go's business.
func TestRegistrarRequests(t *testing.T) {
	for _, prefix := range []string{"", "/oxcross"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			var (
				mu       sync.Mutex
				requests []registryRequest
				refuse   bool
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				requests = append(requests, registryRequest{r.Method, r.URL.Path, r.UserAgent(), r.Header.Get("Content-Type"), string(body)})
				refused := refuse
				mu.Unlock()
				if refused {
					http.Error(w, `leaf "ams-1" is not registered`, http.StatusNotFound)
				}
			}))
			defer srv.Close()
			reg := discovery.Registration{Address: ":9299", Labels: map[string]string{"region": "eu"}, Version: "1.2.3", RefreshInterval: "1m"}
			r, err := discovery.NewRegistrar(srv.URL+prefix+"/", srv.Client(), "oxcross-leaf/test", "ams-1", reg)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := r.Heartbeat(ctx); err != nil {
				t.Fatalf("Heartbeat: %v", err)
			}
			if err := r.Deregister(ctx); err != nil {
				t.Fatalf("Deregister: %v", err)
			}
			mu.Lock()
			refuse = true
			got := append([]registryRequest(nil), requests...)
			mu.Unlock()

			path := prefix + "/api/v1/leaves/ams-1"
			if len(got) != 2 {
				t.Fatalf("requests %+v, want a PUT and a DELETE", got)
			}
			put, del := got[0], got[1]
			if put.method != http.MethodPut || put.path != path || put.agent != "oxcross-leaf/test" || put.contentType != "application/json" {
				t.Errorf("heartbeat %+v, want PUT %s with User-Agent oxcross-leaf/test, Content-Type application/json", put, path)
			}
			var sent discovery.Registration
			if err := json.Unmarshal([]byte(put.body), &sent); err != nil || !reflect.DeepEqual(sent, reg) {
				t.Errorf("heartbeat body %s (%v), want %+v", put.body, err, reg)
			}
			if del.method != http.MethodDelete || del.path != path || del.agent != "oxcross-leaf/test" || del.contentType != "" || del.body != "" {
				t.Errorf("deregistration %+v, want DELETE %s with User-Agent oxcross-leaf/test and no body", del, path)
			}

			// A refusal says what was asked and why it was refused.
			err = r.Deregister(ctx)
			if err == nil || !strings.Contains(err.Error(), "DELETE "+srv.URL+path) || !strings.Contains(err.Error(), `404 Not Found: leaf "ams-1" is not registered`) {
				t.Errorf("refused Deregister: %v, want the request and 404 not registered", err)
			}
		})
	}
}

func TestRegistrarUnreachable(t *testing.T) {
	base := testutil.ClosedURL(t)
	r, err := discovery.NewRegistrar(base, http.DefaultClient, "t", "gone", discovery.Registration{Address: ":1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A configserver that is not there.
	if err := r.Heartbeat(ctx); err == nil || !strings.Contains(err.Error(), "PUT "+base+"/api/v1/leaves/gone") || strings.Count(err.Error(), base) != 1 {
		t.Errorf("Heartbeat to a closed server: %v, want the method and URL once", err)
	}
	// A cancelled context stops it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Deregister(cctx); err == nil {
		t.Errorf("Deregister with a cancelled context: no error")
	}
}

func TestNewRegistrarValidates(t *testing.T) {
	for _, tc := range []struct {
		name, base, id string
		labels         map[string]string
		want           string
	}{
		{"bad id", "http://127.0.0.1:9300", "a b", nil, "leaf id"},
		{"empty id", "http://127.0.0.1:9300", "", nil, "leaf id"},
		{"reserved label", "http://127.0.0.1:9300", "ok", map[string]string{"leaf_id": "x"}, "leaf labels"},
		{"bad label", "http://127.0.0.1:9300", "ok", map[string]string{"a-b": "x"}, "leaf labels"},
		{"double underscore", "http://127.0.0.1:9300", "ok", map[string]string{"__x": "1"}, "leaf labels"},
		{"no scheme", "127.0.0.1:9300", "ok", nil, "config URL"},
		{"ftp", "ftp://127.0.0.1:9300", "ok", nil, "config URL"},
		{"no host", "http://", "ok", nil, "config URL"},
	} {
		_, err := discovery.NewRegistrar(tc.base, http.DefaultClient, "t", tc.id, discovery.Registration{Address: ":1", Labels: tc.labels})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
