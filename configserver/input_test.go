package configserver_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/oxcross/oxcross/configserver"
)

// TestRegisterPortsAndReservedLabels replays issue 13, #11 over HTTP: a
// registration of 127.0.0.1:+29299 was taken (a dialer reads it as port
// 29299), and labels le, quantile and exported_* were taken, overriding
// the labels of the leaf's scraped series. Each is refused with 400 and
// the reason, and nothing reaches /sd/leaves.
func TestRegisterPortsAndReservedLabels(t *testing.T) {
	f := newRegFixture(t, regConfig, configserver.RegistryOptions{})
	const digits = "is not 1-65535 in plain digits"
	for i, c := range []struct{ name, body, reason string }{
		{"port with a sign", `{"address": "127.0.0.1:+29299"}`, `port "+29299" ` + digits},
		{"port with a space", `{"address": "127.0.0.1: 80"}`, `port " 80" ` + digits},
		{"port in hex", `{"address": "127.0.0.1:0x50"}`, `port "0x50" ` + digits},
		{"port with a leading zero", `{"address": "127.0.0.1:09299"}`, `port "09299" ` + digits},
		{"port only, with a sign", `{"address": ":+29299"}`, `port "+29299" ` + digits},
		{"label le", `{"address": ":9299", "labels": {"le": "0.5"}}`, `"le" is reserved`},
		{"label quantile", `{"address": ":9299", "labels": {"quantile": "0.9"}}`, `"quantile" is reserved`},
		{"label exported_job", `{"address": ":9299", "labels": {"exported_job": "x"}}`, `"exported_job" is reserved`},
		{"label __scheme__", `{"address": ":9299", "labels": {"__scheme__": "https"}}`, `"__scheme__" is not a valid label name: names starting with __ are reserved`},
	} {
		r := f.put(t, fmt.Sprintf("leaf-%d", i), c.body)
		wantCode(t, c.name, r, http.StatusBadRequest, c.reason)
	}
	for id := range f.sdLeaves(t) {
		if id != "static-1" {
			t.Errorf("/sd/leaves lists %s", id)
		}
	}
	if r := f.put(t, "good", `{"address": "127.0.0.1:29299", "labels": {"lee": "x"}}`); r.Code != http.StatusOK {
		t.Errorf("PUT of a plain port and label: %d %s", r.Code, r.Body)
	}
}
