package statuspage_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oxcross/oxcross/internal/statuspage"
)

// TestLeafConfigSource: the leaf's page shows a config URL without its
// password, and a config file's path as it is, '@' and all.
func TestLeafConfigSource(t *testing.T) {
	for source, want := range map[string]string{
		"https://leaf:S3CRET@cs.example:9300/config?leaf_id=a": "config from https://leaf:xxxxx@cs.example:9300/config?leaf_id=a",
		"/etc/oxcross/edge@ams.yaml":                           "config from /etc/oxcross/edge@ams.yaml",
	} {
		var b bytes.Buffer
		if err := statuspage.RenderLeaf(&b, statuspage.Leaf{ID: "a", ConfigSource: source, Ready: errors.New("no config yet"), Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) || strings.Contains(b.String(), "S3CRET") {
			t.Errorf("page for source %q lacks %q:\n%s", source, want, b.String())
		}
	}
}
