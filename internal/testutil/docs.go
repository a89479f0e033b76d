package testutil

import (
	"regexp"
)

// DocumentsKey reports whether a Markdown reference page documents a
// config key: in the first cell of a table row (`key`, or `a` or `key`),
// or as a key of its YAML examples (`key:` at the start of a line, after
// "- ", or after "{" or "," in a flow mapping).
func DocumentsKey(doc []byte, key string) bool {
	q := regexp.QuoteMeta(key)
	return regexp.MustCompile("(?m)^\\|[^|]*`"+q+"`[^|]*\\|").Match(doc) ||
		regexp.MustCompile(`(?m)(^\s*(- )?|[{,]\s*)`+q+`:`).Match(doc)
}
