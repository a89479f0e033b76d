// Package statuspage renders the HTML pages of the leaf and the
// configserver: what each origin looks like from this leaf, with a latency
// chart of the last hour drawn as inline SVG (and, for origins probed with
// packet trains, a SmokePing-style chart of their round trips and loss);
// and the configserver's leaves and origins. No JavaScript and nothing loaded from elsewhere.
package statuspage

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/oxcross/oxcross/config"
	"github.com/oxcross/oxcross/discovery"
	"github.com/oxcross/oxcross/prober"
	"github.com/oxcross/oxcross/push"
)

//go:embed *.html
var files embed.FS

var funcs = template.FuncMap{
	"ms":     func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) },
	"ago":    ago,
	"chart":  chart,
	"smoke":  smoke,
	"phases": phases,
	"labels": labels,
	"redact": redact,
	"pct":    func(v float64) string { return fmt.Sprintf("%.0f%%", 100*v) },
	"sms":    func(s float64) string { return fmt.Sprintf("%.2f ms", 1000*s) },
}

var pages = template.Must(template.New("").Funcs(funcs).ParseFS(files, "*.html"))

// Leaf is what the leaf's page shows.
type Leaf struct {
	ID      string
	Version string
	// ConfigSource says where the config comes from (a URL or a file);
	// the page redacts a URL's userinfo.
	ConfigSource string
	// Ready is nil when the leaf has a config, else why not.
	Ready   error
	Origins []prober.OriginStatus
	// Paths are the last traces of the path origins, hop by hop.
	Paths []prober.PathView
	// Clock is the kernel's view of the leaf's own clock; nil where it
	// cannot be read.
	Clock *prober.LeafClock
	Now   time.Time
	// Refresh is how often the page reloads itself, in seconds.
	Refresh int
	// Push is the state of each remote-write URL; none without --push.url.
	Push []push.Status
}

// RenderLeaf writes the leaf's page.
func RenderLeaf(w io.Writer, l Leaf) error {
	return pages.ExecuteTemplate(w, "leaf.html", l)
}

// Configserver is what the configserver's page shows.
type Configserver struct {
	Version string
	File    string
	ETag    string
	Leaves  []discovery.Leaf
	Origins []config.Target
	// Store is the state of the leaf registry's store.
	Store   RegistryStore
	Now     time.Time
	Refresh int
}

// RegistryStore is the state of the configserver's leaf registry store:
// the same fields as configserver.StoreStatus, which converts to it
// (statuspage.RegistryStore(registry.StoreStatus())) without this package
// importing the configserver's.
type RegistryStore struct {
	// Kind is "memory" or "etcd"; empty is shown as memory.
	Kind string
	// Endpoints are etcd's client URLs; the page redacts a password in them.
	Endpoints []string
	// Prefix is the key prefix of the leaves in etcd.
	Prefix string
	// Down says why the store cannot be written now; empty while it can.
	Down string
	// DownSince is when the store went down.
	DownSince time.Time
	// Relists counts the times the registry was listed from the store anew;
	// LastRelist is the last of them.
	Relists    uint64
	LastRelist time.Time
}

// RenderConfigserver writes the configserver's page.
func RenderConfigserver(w io.Writer, c Configserver) error {
	return pages.ExecuteTemplate(w, "configserver.html", c)
}

// redact hides the password of a URL's userinfo: the pages show where
// the config and the origins are, never their credentials. Anything else,
// such as the path of a config file, is shown as it is.
func redact(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return config.RedactURL(s)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func labels(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// phases lists the phases a result has, in order.
func phases(r prober.Result) string {
	var parts []string
	for _, p := range []prober.Phase{prober.PhaseResolve, prober.PhaseConnect, prober.PhaseTLS, prober.PhaseProcessing, prober.PhaseTransfer} {
		if d, ok := r.Phases.Get(p); ok {
			parts = append(parts, fmt.Sprintf("%s %.2f", p, float64(d)/float64(time.Millisecond)))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, " · ") + " ms"
}

// Chart geometry.
const (
	chartW, chartH = 240.0, 48.0
	pad            = 2.0
)

// chart draws the last hour's mean latency per minute as an SVG line, the
// maximum as a light band, and minutes with failures as red ticks.
func chart(points []prober.Point) template.HTML {
	peak := 0.001
	for _, p := range points {
		peak = math.Max(peak, p.Max)
	}
	n := float64(max(len(points)-1, 1))
	x := func(i int) float64 { return pad + float64(i)*(chartW-2*pad)/n }
	y := func(v float64) float64 { return chartH - pad - v/peak*(chartH-2*pad) }
	var line, band, fails, dots strings.Builder
	open := false
	for i, p := range points {
		if p.Successes == 0 {
			open = false
		} else {
			cmd := "L"
			if !open {
				cmd = "M"
			}
			fmt.Fprintf(&line, "%s%.1f %.1f ", cmd, x(i), y(p.Mean))
			fmt.Fprintf(&dots, `<circle cx="%.1f" cy="%.1f" r="1.5"/>`, x(i), y(p.Mean))
			fmt.Fprintf(&band, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x(i), y(p.Max), x(i), y(p.Mean))
			open = true
		}
		if p.Failures > 0 {
			fmt.Fprintf(&fails, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x(i), chartH-pad, x(i), pad)
		}
	}
	svg := fmt.Sprintf(`<svg class="chart" role="img" aria-label="latency, last hour, peak %.1f ms" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`+
		`<rect width="100%%" height="100%%" fill="#f6f8fa"/>`+
		`<g stroke="#d0d7de" stroke-width="2">%s</g>`+
		`<g stroke="#cf222e" stroke-width="2" opacity="0.6">%s</g>`+
		`<path d="%s" fill="none" stroke="#0969da" stroke-width="1.5"/>`+
		`<g fill="#0969da">%s</g>`+
		`<text x="%.0f" y="10" font-size="9" text-anchor="end" fill="#57606a">%.1f ms</text></svg>`,
		peak*1000, chartW, chartH, chartW, chartH, band.String(), fails.String(), strings.TrimSpace(line.String()), dots.String(), chartW-pad, peak*1000)
	return template.HTML(svg) //nolint:gosec // built from numbers only
}

// lossColours colour a minute's median by its packet loss, as SmokePing
// does: none, up to 5%, up to 20%, more.
var lossColours = []struct {
	upTo   float64
	colour string
}{{0, "#1a7f37"}, {0.05, "#0969da"}, {0.2, "#bf8700"}, {1, "#cf222e"}}

func lossColour(loss float64) string {
	for _, c := range lossColours {
		if loss <= c.upTo {
			return c.colour
		}
	}
	return lossColours[len(lossColours)-1].colour
}

// smoke draws the last hour of an origin's packet trains SmokePing-style:
// per minute, the fastest to slowest packet as light smoke, the trains'
// middle half as darker smoke, the median as a bar coloured by the
// minute's loss, and a red column for a minute whose every packet was
// lost.
func smoke(points []prober.TrainPoint) template.HTML {
	peak := 0.001
	sent, received := 0, 0
	var medians []float64
	for _, p := range points {
		peak = math.Max(peak, p.Hi)
		sent += p.Sent
		received += p.Received
		if p.Received > 0 {
			medians = append(medians, p.Median)
		}
	}
	cw := (chartW - 2*pad) / float64(max(len(points), 1))
	x := func(i int) float64 { return pad + float64(i)*cw }
	y := func(v float64) float64 { return chartH - pad - v/peak*(chartH-2*pad) }
	box := func(b *strings.Builder, i int, top, bottom float64) {
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x(i), top, cw, math.Max(bottom-top, 1))
	}
	var light, dark, lost, med strings.Builder
	for i, p := range points {
		switch {
		case p.Trains == 0:
		case p.Received == 0:
			box(&lost, i, pad, chartH-pad)
		default:
			box(&light, i, y(p.Hi), y(p.Lo))
			box(&dark, i, y(p.Q3), y(p.Q1))
			fmt.Fprintf(&med, `<rect x="%.1f" y="%.1f" width="%.1f" height="2" fill="%s"/>`, x(i), y(p.Median)-1, cw, lossColour(p.Loss()))
		}
	}
	label := "packet trains, last hour: no packet answered"
	if len(medians) > 0 {
		sort.Float64s(medians)
		label = fmt.Sprintf("packet trains, last hour: median %.1f ms, loss %.1f%%", medians[len(medians)/2]*1000, 100*float64(sent-received)/float64(sent))
	} else if sent == 0 {
		label = "packet trains, last hour: none yet"
	}
	svg := fmt.Sprintf(`<svg class="smoke" role="img" aria-label="%s" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`+
		`<rect width="100%%" height="100%%" fill="#f6f8fa"/>`+
		`<g class="lost" fill="#cf222e" opacity="0.35">%s</g>`+
		`<g class="range" fill="#d0d7de">%s</g>`+
		`<g class="iqr" fill="#8c959f">%s</g>`+
		`<g class="median">%s</g>`+
		`<text x="%.0f" y="10" font-size="9" text-anchor="end" fill="#57606a">%.1f ms</text></svg>`,
		label, chartW, chartH, chartW, chartH, lost.String(), light.String(), dark.String(), med.String(), chartW-pad, peak*1000)
	return template.HTML(svg) //nolint:gosec // built from numbers only
}
