package evidence

// The HTML form: one self-contained page (inline CSS, inline SVG charts, no script,
// no external request; a Content-Security-Policy meta tag forbids any), rendered
// with html/template so every value from AWS, Slack or a tracker is escaped where it
// lands. A summary an auditor reads in a minute, three charts, the accounts'
// posture, then every case's timeline and the control map.

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var reportTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts":  func(t time.Time) string { return ts(t) },
	"day": func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"dur": func(s int64) string { return human(time.Duration(s) * time.Second) },
	"durp": func(p *int64) string {
		if p == nil {
			return "—"
		}
		return human(time.Duration(*p) * time.Second)
	},
	"lastday": func(t time.Time) string { return t.UTC().Add(-time.Nanosecond).Format("2006-01-02") },
}).Parse(reportTemplate))

// view is what the template reads: the pack and its charts.
type view struct {
	Pack
	TTR   barChart
	Open  lineChart
	ByOU  hbarChart
	Sig   string
	Empty bool
}

type bar struct {
	Label          string
	Value          int
	X, Y, W, H, TX float64
}

type barChart struct {
	Bars   []bar
	Max    int
	Height float64
}

type lineChart struct {
	Points         string // polyline points
	Area           string // polygon points
	Max            int
	First, Last    string
	Width, Height  float64
	GridY          []gridLine
	Marks          []bar
	HasData        bool
	PeakLabel      string
	PeakX, PeakY   float64
	NowCount       int
	StartCount     int
	StartY, EndY   float64
	Days           int
	ShowEndMarkers bool
}

type gridLine struct {
	Y     float64
	Label string
}

type hbarChart struct {
	Bars   []bar
	Height float64
}

// renderHTML fills the template.
func HTML(p Pack) ([]byte, error) {
	v := view{Pack: p, Empty: len(p.Cases) == 0}
	v.TTR = ttrChart(p)
	v.Open = openChart(p)
	v.ByOU = ouChart(p)
	var b bytes.Buffer
	if err := page.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("render the HTML report: %w", err)
	}
	return b.Bytes(), nil
}

var ttrBuckets = []struct {
	label string
	upTo  time.Duration
}{{"< 1 h", time.Hour}, {"1–4 h", 4 * time.Hour}, {"4–24 h", 24 * time.Hour}, {"1–3 d", 72 * time.Hour},
	{"3–7 d", 7 * 24 * time.Hour}, {"> 7 d", 1<<63 - 1}}

func ttrChart(p Pack) barChart {
	counts := make([]int, len(ttrBuckets))
	for _, c := range p.Cases {
		if c.TTRSeconds == nil || c.Verified == nil || c.Verified.At.Before(p.Period.From) {
			continue
		}
		d := time.Duration(*c.TTRSeconds) * time.Second
		for i, b := range ttrBuckets {
			if d < b.upTo {
				counts[i]++
				break
			}
		}
	}
	ch := barChart{Height: 172, Max: max(slices.Max(counts), 1)}
	const w, gap, x0 = 56.0, 14.0, 34.0
	for i, n := range counts {
		h := 112 * float64(n) / float64(ch.Max)
		ch.Bars = append(ch.Bars, bar{Label: ttrBuckets[i].label, Value: n, X: x0 + float64(i)*(w+gap), Y: 140 - h, W: w, H: h,
			TX: x0 + float64(i)*(w+gap) + w/2})
	}
	return ch
}

// openChart counts, at the end of each day of the period (at most 120 steps), the
// cases that were open (not resolved) then.
func openChart(p Pack) lineChart {
	from, to := p.Period.From, p.Period.To
	span := to.Sub(from)
	steps := int(span / (24 * time.Hour))
	step := 24 * time.Hour
	if steps < 2 {
		steps, step = 24, span/24
	}
	if steps > 120 {
		step = span / 120
		steps = 120
	}
	counts := make([]int, steps+1)
	for i := range counts {
		at := from.Add(time.Duration(i) * step)
		if i == steps {
			at = to.Add(-time.Nanosecond)
		}
		for _, c := range p.Cases {
			if c.Detected.At.After(at) {
				continue
			}
			if c.Verified != nil && !c.Verified.At.After(at) {
				continue
			}
			counts[i]++
		}
	}
	ch := lineChart{Width: 520, Height: 174, Max: max(slices.Max(counts), 1), First: ts(from)[:10],
		Last: to.Add(-time.Nanosecond).UTC().Format("2006-01-02"), Days: steps}
	const x0, y0, w, h = 34.0, 140.0, 470.0, 120.0
	var pts []string
	for i, n := range counts {
		x := x0 + w*float64(i)/float64(steps)
		y := y0 - h*float64(n)/float64(ch.Max)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		if n > 0 {
			ch.HasData = true
		}
	}
	ch.Points = strings.Join(pts, " ")
	ch.Area = fmt.Sprintf("%.1f,%.1f %s %.1f,%.1f", x0, y0, ch.Points, x0+w, y0)
	for _, f := range []float64{0, 0.5, 1} {
		v := int(float64(ch.Max)*f + 0.5)
		ch.GridY = append(ch.GridY, gridLine{Y: y0 - h*float64(v)/float64(ch.Max), Label: fmt.Sprint(v)})
	}
	ch.StartCount, ch.NowCount = counts[0], counts[len(counts)-1]
	return ch
}

func ouChart(p Pack) hbarChart {
	n := map[string]int{}
	for _, c := range p.Cases {
		ou := c.OUPath
		if ou == "" {
			ou = "(no OU)"
		}
		n[ou]++
	}
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range n {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.v != b.v {
			return b.v - a.v
		}
		return strings.Compare(a.k, b.k)
	})
	if len(all) > 8 {
		rest := 0
		for _, e := range all[7:] {
			rest += e.v
		}
		all = append(all[:7], kv{"other OUs", rest})
	}
	top := 1
	if len(all) > 0 {
		top = max(all[0].v, 1)
	}
	ch := hbarChart{Height: float64(max(len(all), 1))*30 + 10}
	for i, e := range all {
		label := e.k
		if r := []rune(label); len(r) > 20 {
			label = "…" + string(r[len(r)-19:])
		}
		ch.Bars = append(ch.Bars, bar{Label: label, Value: e.v, X: 190, Y: float64(i)*30 + 6, W: 270 * float64(e.v) / float64(top), H: 20,
			TX: 190 + 270*float64(e.v)/float64(top) + 6})
	}
	return ch
}

// human is a duration as a person reads it: 45m, 2h 10m, 3d 4h.
func human(d time.Duration) string {
	switch {
	case d <= 0:
		return "0m"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()+0.5))
	case d < 24*time.Hour:
		h := int(d.Hours())
		m := int((d - time.Duration(h)*time.Hour).Minutes())
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	days := int(d.Hours()) / 24
	h := int(d.Hours()) % 24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, h)
}
