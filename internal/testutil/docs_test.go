package testutil

import "testing"

func TestDocumentsKey(t *testing.T) {
	doc := []byte("| field | meaning |\n|---|---|\n| `name` | the id, see `other` |\n| `mode` or `module` | x |\n\n```yaml\ntop:\n  - id: a\n    http: {method: GET, headers: {}}\n```\n")
	for key, want := range map[string]bool{
		"name": true, "mode": true, "module": true, "top": true, "id": true, "http": true, "method": true, "headers": true,
		"other": false, // only in a row's later cell
		"field": false, "nope": false, "GET": false,
	} {
		if got := DocumentsKey(doc, key); got != want {
			t.Errorf("DocumentsKey(%q) = %v, want %v", key, got, want)
		}
	}
}
