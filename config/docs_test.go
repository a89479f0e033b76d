package config

import (
	"os"
	"testing"

	"github.com/oxcross/oxcross/internal/testutil"
)

// TestEveryKeyDocumented: every key the parser accepts at the top level,
// in an origin, a static leaf and a module is in docs/configuration.md, so
// that a field cannot go undocumented again. The kinds' settings are
// checked in the prober's tests.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := NewKinds()
	if err != nil {
		t.Fatal(err)
	}
	for where, keys := range map[string][]string{"top level": topKeys, "origins": originKeys, "leaves": leafKeys, "modules": ks.moduleKeys()} {
		for _, k := range keys {
			if !testutil.DocumentsKey(doc, k) {
				t.Errorf("docs/configuration.md does not document the %s key %q", where, k)
			}
		}
	}
	if testutil.DocumentsKey(doc, "no_such_key_anywhere") {
		t.Error("documented() finds a key that is not there")
	}
}
