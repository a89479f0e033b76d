package config_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/config"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://leaf:PW@127.0.0.1:9300", "http://leaf:xxxxx@127.0.0.1:9300"},
		{"https://leaf:PW@cs.example/prefix/config?leaf_id=a", "https://leaf:xxxxx@cs.example/prefix/config?leaf_id=a"},
		{"https://TOKEN@cs.example/", "https://xxxxx@cs.example/"},
		{"https://leaf:@cs.example/", "https://leaf:xxxxx@cs.example/"},
		{"http://u:p%40ss@h/", "http://u:xxxxx@h/"},
		{"http://u:p@ss@h/", "http://u:xxxxx@h/"},
		{"http://u:***@h/x", "http://u:xxxxx@h/x"},
		{"http://u:PW@h/a@b?c@d#e@f", "http://u:xxxxx@h/a@b?c@d#e@f"},
		// No userinfo: as written.
		{"http://h/a@b", "http://h/a@b"},
		{"http://h/?q=a@b", "http://h/?q=a@b"},
		{"http://127.0.0.1:9300", "http://127.0.0.1:9300"},
		{"127.0.0.1:9299", "127.0.0.1:9299"},
		{"", ""},
		// Not a URL Go reads: nothing before the last '@' is shown.
		{"http://user:pa/ss@host/", "http://xxxxx@host/"},
		{"http://user:p w@host/", "http://xxxxx@host/"},
		{"http://user:PW@host:bad/", "http://xxxxx@host:bad/"},
		{"leaf:PW@cs.example:9300", "xxxxx@cs.example:9300"},
		{"user:PW@h", "xxxxx@h"},
	} {
		if got := config.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestRedactURLAsGo: for URLs with a password, the result is Go's own
// url.URL.Redacted.
func TestRedactURLAsGo(t *testing.T) {
	for _, raw := range []string{"http://leaf:PW@127.0.0.1:9300", "https://a:b@h.example:1/p?q=1#f", "http://u:pa%2Fss@[::1]:80/"} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := config.RedactURL(raw); got != u.Redacted() {
			t.Errorf("RedactURL(%q) = %q, Go's Redacted %q", raw, got, u.Redacted())
		}
	}
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"http://u:PW@h/", "http://u:PW@h/a@b", "u:PW@h", "http://PW@h:1", "http://u:PW@h:x/y@z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := config.RedactURL(raw)
		// Whatever Go reads as the password is not shown.
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) >= 3 && strings.Contains(got, pw) && !strings.Contains(strings.Replace(raw, pw, "", 1), pw) && pw != "xxxxx" && !strings.Contains("xxxxx", pw) {
				t.Errorf("RedactURL(%q) = %q shows the password %q", raw, got, pw)
			}
		}
		if !strings.Contains(raw, "@") && got != raw {
			t.Errorf("RedactURL(%q) = %q, changed a string without '@'", raw, got)
		}
	})
}

// TestConfigErrorsRedactURLs replays issue 13, #6 on the config's own
// messages: an origin URL's password appears in no error, nor in
// --config.check's summary, whatever is wrong with the URL.
func TestConfigErrorsRedactURLs(t *testing.T) {
	const pw = "S3CRET-PW"
	for _, text := range []string{
		"origins:\n  - url: 'http://user:" + pw + "@h:bad/'\n",
		"origins:\n  - url: 'http://user:" + pw + "@h/a b'\n",
		"origins:\n  - url: 'http://user:" + pw + "@h/#frag'\n",
		"origins:\n  - url: 'http://user:" + pw + "@/x'\n",
		"origins:\n  - url: 'http://user:" + pw + "@h:+80/'\n",
		"origins:\n  - url: 'http://user:pa/" + pw + "@h/'\n",
		"origins:\n  - {scheme: http, hostname: 'user:" + pw + "@h'}\n",
		"origins:\n  - {address: 'user:" + pw + "@h:22', mode: tcp}\n",
		"origins:\n  - {address: 'user:" + pw + "@h', mode: icmp}\n",
		"leaves: [{id: a, address: 'user:" + pw + "@h:80'}]\norigins: [{url: 'http://h'}]\n",
		"leaves: [{id: a, address: 'user:" + pw + "@h'}]\norigins: [{url: 'http://h'}]\n",
	} {
		_, err := parser.Parse([]byte(text))
		if err == nil {
			t.Errorf("%q: accepted", text)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%q: error shows the password: %v", text, err)
		}
	}
	cfg := mustParse(t, []byte("origins:\n  - url: 'http://user:"+pw+"@h.example/x'\n    mode: simple\n"))
	if cfg.Origins[0].URL != "http://user:"+pw+"@h.example/x" {
		t.Errorf("the origin's URL is %q: the probe needs the password", cfg.Origins[0].URL)
	}
	var b strings.Builder
	if err := config.WriteSummary(&b, cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), pw) || !strings.Contains(b.String(), "http://user:xxxxx@h.example/x") {
		t.Errorf("--config.check's summary:\n%s", b.String())
	}
	for _, target := range []string{"http://user:" + pw + "@h:bad/", "user:" + pw + "@h:x"} {
		if _, _, err := cfg.ProbeTarget(target, "simple", time.Second); err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("ProbeTarget(%q): %v", target, err)
		}
	}
}
