// Package origin implements oxcross-origin's /oxcross endpoint and defines
// its wire type, which the leaf's advanced prober decodes.
package origin

// Path is where an origin answers probes.
const Path = "/oxcross"

// NonceParam is the query parameter that carries the leaf's nonce.
const NonceParam = "nonce"

// MaxNonceLength bounds the nonce an origin echoes; longer nonces are refused.
const MaxNonceLength = 128

// Response is the JSON body of GET /oxcross. ServerTime and Token are the
// original Oxcross' fields; the original sent ServerTime with whole seconds
// and none of the other fields.
type Response struct {
	// ServerTime is the origin's clock, RFC 3339 with nanoseconds.
	ServerTime string `json:"server_time"`
	// Token is random hex, unique per response.
	Token string `json:"token"`
	// Nonce echoes the request's nonce query parameter.
	Nonce string `json:"nonce,omitempty"`
	// ReceivedUnixNano is the origin's clock when the request reached the handler.
	ReceivedUnixNano int64 `json:"received_unix_nano,omitempty"`
	// SentUnixNano is the origin's clock just before the body was written.
	SentUnixNano int64 `json:"sent_unix_nano,omitempty"`
}
