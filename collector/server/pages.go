package server

// The exporter's own pages: the landing page with the state of every
// device, a debug view of one poll of one device, and the loaded
// configuration with its secrets redacted. They are plain HTML from
// html/template, styled like exporter-toolkit's landing page, with no
// script. Links are relative, so the pages work behind a reverse proxy that
// serves the exporter under a path prefix.

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
	"github.com/basip/basip_exporter/collector/internal/safetext"
	"go.yaml.in/yaml/v3"
)

// source is what the pages show; *collector.Exporter is one.
type source interface {
	Statuses() []collector.DeviceStatus
	DebugPoll(ctx context.Context, name string) (*collector.DebugReport, error)
	Config() *config.Config
}

// PageOptions describe the exporter on its pages.
type PageOptions struct {
	Name        string // page title and header, e.g. "BAS-IP Exporter"
	Description string
	Version     string
	// HeaderColor is the header's background; Prometheus orange when empty.
	HeaderColor string
}

// pages serves the landing page, the debug view and the configuration.
type pages struct {
	src  source
	opts PageOptions
	now  func() time.Time
}

//go:embed templates/*.html templates/*.css
var files embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"seconds": seconds,
	"inc":     func(i int) int { return i + 1 },
	"list":    func(s ...string) []string { return s },
}).ParseFS(files, "templates/*.html", "templates/*.css"))

// newPages returns the pages of src.
func newPages(src source, opts PageOptions) *pages {
	if opts.HeaderColor == "" {
		opts.HeaderColor = "#e6522c"
	}
	return &pages{src: src, opts: opts, now: time.Now}
}

// page is what every template gets.
type page struct {
	PageOptions
	Title string
	Data  any
}

func (p *pages) render(w http.ResponseWriter, name, title string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, page{PageOptions: p.opts, Title: title, Data: data}); err != nil {
		http.Error(w, "cannot render the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	noCache(w)
	// html/template escapes markup, not ESC or other control characters
	// a device sent: the page may be read with curl on a terminal.
	_, _ = w.Write([]byte(safetext.EscapeLines(buf.String())))
}

func noCache(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// landing is the data of the landing page.
type landing struct {
	Columns []headerCell
	Rows    []row
	// Counts over the whole fleet, whatever the filter.
	Total, Up, Down, Pending int
	Filter                   filter
	// LabelValues are the name=value choices of the label filter.
	LabelValues []string
	// Vendors are the choices of the vendor filter: the fleet's vendors,
	// when it has more than BAS-IP.
	Vendors []string
	// PBXs are the configured PBXs' last checks.
	PBXs []collector.PBXView
}

// headerCell is a column's header, a link that sorts by it.
type headerCell struct {
	column
	Href  string
	Arrow string // ▲ or ▼ on the column sorted by
}

type row struct {
	Name  string
	State string // up, down, pending
	Cells []keyedCell
}

type keyedCell struct {
	Key  string
	Cell cell
}

// filter is the landing page's query: which devices, in which order. The
// page needs no script: filtering and sorting are links and a form.
type filter struct {
	State string // up, down, pending; empty for all
	Label string // name=value; empty for all
	// Vendor is a vendor (basip, 2n, ...); empty for all.
	Vendor string
	Text   string // in the name, address, labels or last error
	Sort   string // a column key; empty for configuration order
	Desc   bool

	needle string // Text in lower case, once per request
}

func parseFilter(q url.Values) filter {
	text := q.Get("q")
	return filter{State: q.Get("state"), Label: q.Get("label"), Vendor: q.Get("vendor"), Text: text, Sort: q.Get("sort"), Desc: q.Get("desc") == "1",
		needle: strings.ToLower(text)}
}

// maxParam bounds, in bytes, every query parameter of the pages (a device
// name, a label's name=value, the text filter) and its name. A longer one
// is refused with 400 rather than cut: a cut filter would show devices the
// operator did not ask for. The text filter is matched against every
// device, so its length multiplies by the fleet's size.
const maxParam = 1024

// checkParams is the error for a query with a parameter or a parameter
// name longer than maxParam, nil otherwise.
func checkParams(q url.Values) error {
	for k, vs := range q {
		name := k
		if len(name) > 32 {
			name = name[:32] + "..."
		}
		if len(k) > maxParam {
			return fmt.Errorf("query parameter name %s is longer than %d bytes", safetext.Escape(name), maxParam)
		}
		for _, v := range vs {
			if len(v) > maxParam {
				return fmt.Errorf("query parameter %s is longer than %d bytes", safetext.Escape(name), maxParam)
			}
		}
	}
	return nil
}

// query renders f as a query string, with the sort replaced by sort/desc.
func (f filter) query(sort string, desc bool) string {
	q := url.Values{}
	for k, v := range map[string]string{"state": f.State, "label": f.Label, "vendor": f.Vendor, "q": f.Text, "sort": sort} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if desc {
		q.Set("desc", "1")
	}
	return "./?" + q.Encode()
}

// matches reports whether the device, of vendor, passes the filter.
func (f filter) matches(s collector.DeviceStatus, st, vendor string) bool {
	if (f.State != "" && f.State != st) || (f.Vendor != "" && f.Vendor != vendor) {
		return false
	}
	if name, value, ok := strings.Cut(f.Label, "="); ok && s.Labels[name] != value {
		return false
	}
	if f.Text == "" {
		return true
	}
	in := func(v string) bool { return strings.Contains(strings.ToLower(v), f.needle) }
	if in(s.Name) || in(s.Address) || in(s.LastError) {
		return true
	}
	for _, v := range s.Labels {
		if in(v) {
			return true
		}
	}
	return false
}

// landingHandler serves the landing page at "/" and 404 for any other path.
func (p *pages) landingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if err := checkParams(q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.render(w, "landing.html", p.opts.Name, p.landing(parseFilter(q)))
	})
}

func (p *pages) landing(f filter) landing {
	statuses := p.src.Statuses()
	now := p.now()
	cfg := p.src.Config()
	vendors := deviceVendors(cfg)
	fleetVendors := slices.Sorted(maps.Keys(setOf(vendors)))
	mixed := len(fleetVendors) > 1 || (len(fleetVendors) == 1 && fleetVendors[0] != config.VendorBASIP)
	cols := vendorAware(slices.Concat(columns[:1], []column{vendorColumn(vendors, mixed)}, labelColumns(cfg.LabelNames), columns[1:]), vendors)
	cells := make([][]cell, len(statuses))
	used := make([]bool, len(cols))
	labelValues := map[string]bool{}
	for i, s := range statuses {
		cells[i] = make([]cell, len(cols))
		for j, c := range cols {
			cells[i][j] = c.Cell(s, now)
			if !cells[i][j].empty() {
				used[j] = true
			}
		}
		for k, v := range s.Labels {
			labelValues[k+"="+v] = true
		}
	}
	l := landing{Total: len(statuses), Filter: f, LabelValues: slices.Sorted(maps.Keys(labelValues))}
	if pv, ok := p.src.(interface{ PBXViews() []collector.PBXView }); ok {
		l.PBXs = pv.PBXViews()
	}
	if mixed {
		l.Vendors = fleetVendors
	}
	sortCol := -1
	for j, c := range cols {
		if !used[j] {
			continue
		}
		h := headerCell{column: c, Href: f.query(c.Key, false)}
		if c.Key == f.Sort {
			sortCol = j
			h.Arrow = "▲"
			h.Href = f.query(c.Key, !f.Desc)
			if f.Desc {
				h.Arrow = "▼"
			}
		}
		l.Columns = append(l.Columns, h)
	}
	order := make([]int, 0, len(statuses))
	for i, s := range statuses {
		st := state(s)
		switch st {
		case "up":
			l.Up++
		case "down":
			l.Down++
		default:
			l.Pending++
		}
		if f.matches(s, st, vendors[s.Name]) {
			order = append(order, i)
		}
	}
	if sortCol >= 0 {
		slices.SortStableFunc(order, func(a, b int) int {
			c := strings.Compare(cells[a][sortCol].sortKey(), cells[b][sortCol].sortKey())
			if f.Desc {
				return -c
			}
			return c
		})
	}
	for _, i := range order {
		r := row{Name: statuses[i].Name, State: state(statuses[i])}
		for j, c := range cols {
			if used[j] {
				r.Cells = append(r.Cells, keyedCell{Key: c.Key, Cell: cells[i][j]})
			}
		}
		l.Rows = append(l.Rows, r)
	}
	return l
}

// debugView is the data of the debug page.
type debugView struct {
	// Vendor is the device's vendor; the API family row is BAS-IP's.
	Vendor  string
	Report  *collector.DebugReport
	Answers []answer
}

// answer is one decoded answer of the device, as indented JSON; the SIP
// password marshals as <secret>. JSON is empty when the answer was not
// read; Result then says why (the endpoint's error, "not collected", ...).
type answer struct {
	ID, Title, JSON, Result string
}

func decodedAnswers(rep *collector.DebugReport) ([]answer, error) {
	answers := []answer{
		{ID: "settings", Title: "SIP settings"},
		{ID: "status", Title: "SIP status"},
		{ID: "info", Title: "Device info"},
	}
	values := []any{rep.Settings, rep.Status, rep.Info}
	for i, v := range values {
		if reflect.ValueOf(v).IsNil() {
			answers[i].Result = rep.Endpoints[i]
			continue
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // html/template escapes; keep <secret> readable
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("cannot show the %s: %w", answers[i].Title, err)
		}
		answers[i].JSON = strings.TrimSuffix(b.String(), "\n")
	}
	return answers, nil
}

// debugHandler serves /debug?device=NAME: it polls the device now and shows every
// step. Request paths carry no query, tokens are not recorded, and the SIP
// password is shown as <secret>.
func (p *pages) debugHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := checkParams(q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		name := q.Get("device")
		if pbxName := q.Get("pbx"); pbxName != "" && name == "" {
			p.debugPBX(w, r, pbxName)
			return
		}
		if name == "" {
			http.Error(w, "missing parameter: device (or pbx)", http.StatusBadRequest)
			return
		}
		rep, err := p.src.DebugPoll(r.Context(), name)
		switch {
		case errors.Is(err, collector.ErrUnknownTarget):
			http.Error(w, safetext.Escape(err.Error()), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, "debug poll failed: "+safetext.Escape(err.Error()), http.StatusInternalServerError)
			return
		}
		answers, err := decodedAnswers(rep)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		v := debugView{Report: rep, Answers: answers, Vendor: deviceVendors(p.src.Config())[rep.Name]}
		p.render(w, "debug.html", "Debug poll of "+rep.Name, v)
	})
}

// debugPBX serves /debug?pbx=NAME: it checks the PBX now and lists the
// devices pointing to it.
func (p *pages) debugPBX(w http.ResponseWriter, r *http.Request, name string) {
	src, ok := p.src.(interface {
		DebugPBX(context.Context, string) (*collector.PBXReport, error)
	})
	if !ok {
		http.Error(w, "no PBX view", http.StatusNotFound)
		return
	}
	rep, err := src.DebugPBX(r.Context(), name)
	switch {
	case errors.Is(err, collector.ErrUnknownPBX):
		http.Error(w, safetext.Escape(err.Error()), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, "PBX check failed: "+safetext.Escape(err.Error()), http.StatusInternalServerError)
		return
	}
	p.render(w, "debug_pbx.html", "PBX "+rep.Name, rep)
}

// configHandler serves /config: the configuration being served, as YAML, with every
// secret shown as <secret>.
func (p *pages) configHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := marshalConfig(p.src.Config())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		noCache(w)
		_, _ = w.Write(b)
	})
}

// marshalConfig renders cfg as YAML. Secrets (device.Secret, and
// prometheus/common's device.Secret in tls_config) marshal as <secret>.
func marshalConfig(cfg *config.Config) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, fmt.Errorf("cannot marshal the configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("cannot marshal the configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// seconds formats a duration for people: 0.4ms, 12ms, 1.50s, 2m3s.
func seconds(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
