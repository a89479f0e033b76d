package testutil

import (
	"net/http"
	"strings"
	"testing"
)

// TestEtcdStopStart: Stop takes etcd down, Start brings it back on the
// same address and data.
func TestEtcdStopStart(t *testing.T) {
	e := StartEtcd(t)
	put := func() (Response, error) {
		return TryDo(nil, http.MethodPost, e.ClientURL+"/v3/kv/put", `{"key":"a2V5","value":"dmFsdWU="}`)
	}
	if r, err := put(); err != nil || r.Code != http.StatusOK {
		t.Fatalf("put through etcd's JSON gateway: %v %+v", err, r)
	}
	e.Stop(t)
	if _, err := TryDo(nil, http.MethodGet, e.ClientURL+"/health", ""); err == nil {
		t.Fatal("etcd answers after Stop")
	}
	e.Start(t)
	r, err := TryDo(nil, http.MethodPost, e.ClientURL+"/v3/kv/range", `{"key":"a2V5"}`)
	if err != nil || r.Code != http.StatusOK || !strings.Contains(r.Body, "dmFsdWU=") {
		t.Errorf("the key written before Stop, after Start: %v %+v", err, r)
	}
}
