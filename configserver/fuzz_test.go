package configserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/oxcross/oxcross/configserver"
	"github.com/oxcross/oxcross/discovery"
)

// FuzzRegistration sends any id and body to PUT /api/v1/leaves/{id}: the
// answer is one of the documented codes; an accepted registration holds
// only what the validation allows, /sd/leaves stays valid http_sd, and the
// leaf can be deleted again.
func FuzzRegistration(f *testing.F) {
	for _, seed := range []struct{ id, body string }{
		{"leaf-1", `{"address": ":9299", "labels": {"region": "eu"}, "version": "1.0", "refresh_interval": "30s"}`},
		{"leaf-2", `{"address": "127.0.0.1:9299"}`},
		{"leaf-3", `{"address": "localhost:9299", "refresh_interval": "1ns"}`},
		{"bad id", `{"address": ":9299"}`},
		{"leaf-4", `{"address": ":9299", "labels": {"__x": "y"}}`},
		{"leaf-5", `{"address": ":9299", "labels": {"k": "\ud800"}}`},
		{"leaf-6", `{"address": ":9299"} {"address": ":1"}`},
		{"leaf-7", `{"address": ":9299", "extra": true}`},
		{"static-1", `{"address": ":1"}`},
		{"leaf-8", `{"address": "[::1]:9299"}`},
		{"leaf-9", `null`},
	} {
		f.Add(seed.id, []byte(seed.body))
	}
	path := filepath.Join(f.TempDir(), "config.yaml")
	writeFile(f, path, regConfig)
	noDNS := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS while fuzzing")
	}}
	s, err := configserver.NewWithOptions(path, configserver.Options{Registry: configserver.RegistryOptions{Resolver: noDNS, MaxLeaves: 8}}, prometheus.NewRegistry(), discard)
	if err != nil {
		f.Fatal(err)
	}
	mux := configserver.NewMux(s)
	do := func(method, target string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://cs"+target, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}
	codes := map[int]bool{200: true, 400: true, 403: true, 404: true, 405: true, 409: true, 413: true, 429: true}
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		target := "/api/v1/leaves/" + url.PathEscape(id)
		rec := do(http.MethodPut, target, body)
		if rec.Code == http.StatusTemporaryRedirect || rec.Code == http.StatusMovedPermanently {
			// The router cleans paths such as /api/v1/leaves/..: only
			// for ids that are invalid anyway.
			if discovery.ValidateLeafID(id) == nil {
				t.Fatalf("PUT %q: redirected (%d) for a valid id", id, rec.Code)
			}
			return
		}
		if !codes[rec.Code] {
			t.Fatalf("PUT %q %q: status %d %s", id, body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK {
			leaves, _, _ := s.Registry().Live()
			var got *discovery.Leaf
			for i := range leaves {
				if leaves[i].ID == id {
					got = &leaves[i]
				}
			}
			if got == nil {
				t.Fatalf("PUT %q answered 200 but the leaf is not live", id)
			}
			if err := discovery.ValidateLeafID(got.ID); err != nil {
				t.Errorf("registered id: %v", err)
			}
			if err := discovery.ValidateAddress(got.Address); err != nil {
				t.Errorf("registered address: %v", err)
			}
			if err := discovery.ValidateLabels(got.Labels); err != nil {
				t.Errorf("registered labels: %v", err)
			}
		}
		sd := do(http.MethodGet, "/sd/leaves", nil)
		if sd.Code != http.StatusOK {
			t.Fatalf("/sd/leaves: %d", sd.Code)
		}
		if err := sdProblem(sd.Body.Bytes()); err != nil {
			t.Fatalf("/sd/leaves after PUT %q %q: %v\n%s", id, body, err, sd.Body)
		}
		if rec.Code == http.StatusOK {
			if del := do(http.MethodDelete, target, nil); del.Code != http.StatusNoContent {
				t.Errorf("DELETE %q: %d %s", id, del.Code, del.Body)
			}
		}
	})
}

// sdProblem decodes data as Prometheus' http_sd does and says what a
// Prometheus with the classic label name rules would refuse, or nil.
func sdProblem(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var groups []struct {
		Targets []string       `json:"targets"`
		Labels  model.LabelSet `json:"labels"`
	}
	if err := dec.Decode(&groups); err != nil {
		return err
	}
	if groups == nil {
		return errors.New("not a list")
	}
	for _, g := range groups {
		if len(g.Targets) != 1 {
			return errors.New("a leaf group without exactly one target")
		}
		if _, _, err := net.SplitHostPort(g.Targets[0]); err != nil || strings.ContainsAny(g.Targets[0], "/ ") {
			return errors.New("target " + g.Targets[0] + " is not host:port")
		}
		for name, value := range g.Labels {
			if !model.LegacyValidation.IsValidLabelName(string(name)) || !utf8.ValidString(string(value)) {
				return errors.New("label " + string(name) + " is not valid")
			}
		}
		if err := g.Labels.Validate(); err != nil {
			return err
		}
	}
	return nil
}
