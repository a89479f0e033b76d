package origin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names the Handler registers on Options.Registerer.
const (
	// MetricRequests counts answered requests by HTTP status code (label
	// "code"): "200", "400", "405" or "500".
	MetricRequests = "oxcross_origin_requests_total"
	// MetricRequestDuration is a histogram of the seconds between a request
	// reaching the handler and its response being written.
	MetricRequestDuration = "oxcross_origin_request_duration_seconds"
)

// TokenBytes is how many random bytes make a token; the token is their hex
// encoding, twice as long.
const TokenBytes = 16

// serverTimeLayout is RFC 3339 with a fixed nine-digit fraction, so that
// server_time always carries nanoseconds (time.RFC3339Nano drops trailing
// zeros). time.Parse with time.RFC3339 or time.RFC3339Nano reads it.
const serverTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// codes is the fixed set of status codes the handler answers with.
var codes = [...]int{http.StatusOK, http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusInternalServerError}

// Options configure a Handler. The zero value is usable.
type Options struct {
	// Now is the origin's clock; nil means time.Now. It must be safe for
	// concurrent use.
	Now func() time.Time
	// Registerer receives the handler's metrics (MetricRequests and
	// MetricRequestDuration); nil means no metrics are registered.
	Registerer prometheus.Registerer
	// Random is the source of tokens; nil means crypto/rand.Reader. Reads
	// from it are serialised, so it need not be safe for concurrent use.
	Random io.Reader
}

// Handler answers leaves' probes at Path (GET /oxcross) with a Response.
// Mount it at Path; it does not look at the request path. It is safe for
// concurrent use.
type Handler struct {
	now      func() time.Time
	random   io.Reader
	randomMu *sync.Mutex // nil when random is crypto/rand.Reader

	requests map[int]prometheus.Counter
	duration prometheus.Histogram
}

// NewHandler returns a Handler configured by opts. It fails only when its
// metrics cannot be registered on opts.Registerer.
func NewHandler(opts Options) (*Handler, error) {
	h := &Handler{now: opts.Now, random: opts.Random}
	if h.now == nil {
		h.now = time.Now
	}
	if h.random == nil {
		h.random = rand.Reader
	} else {
		h.randomMu = &sync.Mutex{}
	}

	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests,
		Help: "Requests to the /oxcross endpoint, by HTTP status code.",
	}, []string{"code"})
	h.requests = make(map[int]prometheus.Counter, len(codes))
	for _, c := range codes {
		h.requests[c] = requests.WithLabelValues(strconv.Itoa(c))
	}
	h.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                            MetricRequestDuration,
		Help:                            "Seconds from an /oxcross request reaching the handler to its response being written.",
		Buckets:                         []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  100,
		NativeHistogramMinResetDuration: time.Hour,
	})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{requests, h.duration} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering origin metrics: %w", err)
			}
		}
	}
	return h, nil
}

// ServeHTTP answers GET and HEAD with a JSON Response, other methods with
// 405, an invalid nonce with 400 and a failure to read random bytes with 500.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := h.now()
	code := h.serve(w, r, received)
	h.requests[code].Inc()
	h.duration.Observe(h.now().Sub(received).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, received time.Time) int {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed: use GET or HEAD.", http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	nonce, err := parseNonce(r.URL.RawQuery)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return http.StatusBadRequest
	}
	token, err := h.token()
	if err != nil {
		http.Error(w, "Cannot generate a token.", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}

	sent := h.now()
	body, err := json.Marshal(Response{
		ServerTime:       sent.UTC().Format(serverTimeLayout),
		Token:            token,
		Nonce:            nonce,
		ReceivedUnixNano: received.UnixNano(),
		SentUnixNano:     sent.UnixNano(),
	})
	if err != nil { // Not reached: every field is a string or an integer.
		http.Error(w, "Cannot encode the response.", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	body = append(body, '\n')
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

// token returns TokenBytes fresh random bytes, hex-encoded.
func (h *Handler) token() (string, error) {
	var b [TokenBytes]byte
	if h.randomMu != nil {
		h.randomMu.Lock()
		defer h.randomMu.Unlock()
	}
	if _, err := io.ReadFull(h.random, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// parseNonce returns the nonce query parameter of rawQuery, or "" when there
// is none. A nonce must appear at most once and be 1 to MaxNonceLength
// letters, digits, '-' or '_'.
func parseNonce(rawQuery string) (string, error) {
	if rawQuery == "" {
		return "", nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("invalid query string: %v", err)
	}
	vs, ok := q[NonceParam]
	if !ok {
		return "", nil
	}
	if len(vs) != 1 {
		return "", fmt.Errorf("invalid %q query parameter: given %d times, want at most once", NonceParam, len(vs))
	}
	n := vs[0]
	if n == "" || len(n) > MaxNonceLength {
		return "", fmt.Errorf("invalid %q query parameter: length %d, want 1 to %d characters", NonceParam, len(n), MaxNonceLength)
	}
	for i := 0; i < len(n); i++ {
		if !nonceChar(n[i]) {
			return "", fmt.Errorf("invalid %q query parameter: character %d is not a letter, digit, '-' or '_'", NonceParam, i+1)
		}
	}
	return n, nil
}

func nonceChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
