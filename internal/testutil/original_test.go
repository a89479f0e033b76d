package testutil

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// TestParseOriginalConfig: the original's reading of a config, from the
// facts of its types.Config: its configserver serves the example file as
// its /config with the URL key, and the new configserver's first /config
// (durations as strings) is refused, as the original leaf did at start.
func TestParseOriginalConfig(t *testing.T) {
	const example = `{"timeout": 10, "interval": 30, "origins": [{"scheme": "http", "hostname": "example.com", "port": 9301, "mode": "advanced"}]}`
	cfg, err := ParseOriginalConfig([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const served = `{"origins":[{"scheme":"http","hostname":"example.com","port":9301,"mode":"advanced","URL":"http://example.com:9301/oxcross"}],"timeout":10,"interval":30}`
	if string(b) != served {
		t.Errorf("the original configserver serves\n %s\nwant\n %s", b, served)
	}
	if id := cfg.Origins[0].ID(); id != "example.com-9301-http" {
		t.Errorf("origin_id %q", id)
	}
	// Its leaf reads that back the same.
	again, err := ParseOriginalConfig(b)
	if err != nil || again.Origins[0] != cfg.Origins[0] {
		t.Errorf("the original leaf reads its /config as %+v, %v", again, err)
	}

	lenient, err := ParseOriginalConfig([]byte(`{"Comment": "x", "TIMEOUT": 5, "Origins": [{"Scheme": "ftp", "hostname": "a", "port": 21}, {"scheme": "https", "Hostname": "b", "port": 443, "mode": "simple", "extra": 1}, {"scheme": "http", "hostname": "c", "port": 40000}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if lenient.Timeout != 5 || lenient.Interval != 10 || len(lenient.Origins) != 1 || lenient.Origins[0].URL != "https://b:443" {
		t.Errorf("lenient config read as %+v", lenient)
	}

	for _, body := range []string{
		`{"interval":"30s","timeout":"10s","origins":[{"name":"a","url":"http://a/"}]}`,
		`{"interval":30,"timeout":10,"origins":[]}`,
		`{"interval":30,"timeout":10,"origins":[{"scheme":"tcp","hostname":"a","port":22}]}`,
	} {
		if cfg, err := ParseOriginalConfig([]byte(body)); err == nil {
			t.Errorf("ParseOriginalConfig(%s) = %+v, want an error", body, cfg)
		}
	}
	if _, err := ParseOriginalConfig([]byte(`{"interval":"30s"}`)); err == nil || !strings.Contains(err.Error(), "cannot unmarshal string") {
		t.Errorf("error %v, want the original leaf's", err)
	}
}

func TestListenOriginalPort(t *testing.T) {
	l := ListenOriginalPort(t)
	port := l.Addr().(*net.TCPAddr).Port
	if port < 1 || port > OriginalMaxPort {
		t.Errorf("port %d", port)
	}
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
