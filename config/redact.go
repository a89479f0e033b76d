package config

import (
	"net/url"
	"strings"
)

// RedactURL returns raw fit for logs, errors, pages and labels: the
// password of a URL's userinfo becomes xxxxx (user:xxxxx@, as Go's
// url.URL.Redacted), and a user given alone, often a token, becomes
// xxxxx@. The rest of raw is kept as written. A string Go cannot read as a
// URL with a host loses everything up to its last '@', so that not even
// part of a password is shown; a string without '@' is returned as is.
func RedactURL(raw string) string {
	if !strings.Contains(raw, "@") {
		return raw
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + len("://")
	}
	if u, err := url.Parse(raw); err == nil && u.Host != "" && start > 0 {
		if u.User == nil {
			return raw // an '@' in the path, query or fragment
		}
		// The userinfo is the authority's, which ends where the path,
		// query or fragment starts, up to its last '@': as url.Parse reads it.
		end := len(raw)
		if i := strings.IndexAny(raw[start:], "/?#"); i >= 0 {
			end = start + i
		}
		at := strings.LastIndex(raw[start:end], "@")
		if at < 0 {
			return raw
		}
		return raw[:start] + redactUserinfo(raw[start:start+at]) + raw[start+at:]
	}
	at := strings.LastIndex(raw, "@")
	if at < start {
		return raw
	}
	return raw[:start] + "xxxxx" + raw[at:]
}

// redactUserinfo hides the password of user:password, or a user alone.
func redactUserinfo(userinfo string) string {
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return user + ":xxxxx"
	}
	return "xxxxx"
}
