//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pendingMetrics are metrics the dashboard uses that the exporter does not
// export yet. A query that names one is skipped, with a log line, while
// Prometheus has no such series; once the exporter exports it, the query
// is checked like any other. Delete the names once they are exported.
var pendingMetrics = []string{}

// panelQuery is one target expression of one panel.
type panelQuery struct {
	panel, refID, expr string
}

// variableQuery is a query template variable: label_values(selector, label).
type variableQuery struct {
	name, selector, label string
}

// dashboard is what the test checks in basip.json.
type dashboard struct {
	queries   []panelQuery
	variables []variableQuery
	links     []string // URLs of links to the exporter's pages
}

// loadDashboard reads the panels' queries (rows' nested panels included),
// the query variables and the data links, with Grafana's variables
// substituted: every template variable by its "All" value (.*), the
// interval and range variables by grafanaInterval.
func loadDashboard(t *testing.T, path string) dashboard {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Query      json.RawMessage `json:"query"`
				IncludeAll bool            `json:"includeAll"`
				AllValue   string          `json:"allValue"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	pairs := []string{
		"${__rate_interval}", grafanaInterval, "$__rate_interval", grafanaInterval,
		"${__interval}", grafanaInterval, "$__interval", grafanaInterval,
		"${__range}", grafanaInterval, "$__range", grafanaInterval,
	}
	var d dashboard
	var rawVars []variableQuery
	labelValues := regexp.MustCompile(`^label_values\((?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	for _, v := range dash.Templating.List {
		if v.Type == "datasource" || v.Type == "interval" {
			continue
		}
		// ${v:regex} and the like first, then ${v}, then $v.
		for _, f := range []string{"${" + v.Name + ":regex}", "${" + v.Name + ":pipe}", "${" + v.Name + "}", "$" + v.Name} {
			pairs = append(pairs, f, ".*")
		}
		if v.Type != "query" {
			continue
		}
		if !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("variable %s: includeAll %v, allValue %q; want All as .*", v.Name, v.IncludeAll, v.AllValue)
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var s string
			if err := json.Unmarshal(v.Query, &s); err != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
			q.Query = s
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(q.Query))
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		rawVars = append(rawVars, variableQuery{name: v.Name, selector: m[1], label: m[2]})
	}
	// Longest first, so that $site_group is not cut by $site.
	var olds []string
	repl := map[string]string{}
	for i := 0; i < len(pairs); i += 2 {
		olds = append(olds, pairs[i])
		repl[pairs[i]] = pairs[i+1]
	}
	slices.SortStableFunc(olds, func(a, b string) int { return len(b) - len(a) })
	var args []string
	for _, o := range olds {
		args = append(args, o, repl[o])
	}
	subst := strings.NewReplacer(args...)
	unsubstituted := regexp.MustCompile(`\$\{?[A-Za-z_]`)
	for _, v := range rawVars {
		v.selector = subst.Replace(v.selector)
		d.variables = append(d.variables, v)
	}

	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					continue
				}
				expr := subst.Replace(tg.Expr)
				if unsubstituted.MatchString(expr) {
					t.Errorf("panel %q %s: unsubstituted variable in %q", p.Title, tg.RefID, expr)
				}
				d.queries = append(d.queries, panelQuery{panel: p.Title, refID: tg.RefID, expr: expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	if len(d.queries) == 0 {
		t.Fatal("no panel queries in the dashboard")
	}
	// Data links and panel links to the exporter's pages.
	for _, m := range regexp.MustCompile(`"url":\s*"([^"]*/debug\?[^"]*)"`).FindAllStringSubmatch(string(data), -1) {
		d.links = append(d.links, m[1])
	}
	return d
}

// queryResult runs an instant query and returns how many series or values
// it gave.
func queryResult(promURL, expr string) (int, error) {
	var resp struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	err := getJSON(promURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &resp)
	if resp.Status != "" && resp.Status != "success" {
		return 0, fmt.Errorf("status %s: %s: %s", resp.Status, resp.ErrorType, resp.Error)
	}
	if err != nil {
		return 0, err
	}
	switch resp.Data.ResultType {
	case "vector", "matrix":
		var r []json.RawMessage
		if err := json.Unmarshal(resp.Data.Result, &r); err != nil {
			return 0, err
		}
		return len(r), nil
	case "scalar", "string":
		return 1, nil
	}
	return 0, fmt.Errorf("result type %q", resp.Data.ResultType)
}

// pendingIn returns the pending metric a query names that Prometheus has
// no series of, or "".
func pendingIn(promURL, expr string) string {
	for _, m := range pendingMetrics {
		if !regexp.MustCompile(`\b` + m + `\b`).MatchString(expr) {
			continue
		}
		if n, err := queryResult(promURL, "count("+m+")"); err == nil && n == 0 {
			return m
		}
	}
	return ""
}

// waitForQueries waits until every query returns data; rates need two
// samples in their range. On timeout it fails naming each empty or failing
// query.
func waitForQueries(t *testing.T, promURL string, queries []panelQuery) {
	t.Helper()
	var checked []panelQuery
	for _, q := range queries {
		if m := pendingIn(promURL, q.expr); m != "" {
			t.Logf("panel %q %s: skipped, the exporter does not export %s yet", q.panel, q.refID, m)
			continue
		}
		checked = append(checked, q)
	}
	deadline := time.Now().Add(queryWait)
	for {
		var failures []string
		for _, q := range checked {
			n, err := queryResult(promURL, q.expr)
			switch {
			case err != nil:
				failures = append(failures, fmt.Sprintf("panel %q %s: %v\n    %s", q.panel, q.refID, err, q.expr))
			case n == 0:
				failures = append(failures, fmt.Sprintf("panel %q %s: no data\n    %s", q.panel, q.refID, q.expr))
			}
		}
		if len(failures) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d dashboard queries fail:\n  %s", queryWait, len(failures), len(checked), strings.Join(failures, "\n  "))
		}
		time.Sleep(pollPeriod)
	}
}

// checkVariables resolves each query variable as Grafana does, through the
// label values API, and wants at least one value.
func checkVariables(t *testing.T, promURL string, vars []variableQuery) {
	t.Helper()
	if len(vars) == 0 {
		t.Error("the dashboard has no query variables")
	}
	for _, v := range vars {
		q := url.Values{}
		if v.selector != "" {
			q.Set("match[]", v.selector)
		}
		var resp struct {
			Data []string `json:"data"`
		}
		if err := getJSON(promURL+"/api/v1/label/"+v.label+"/values?"+q.Encode(), &resp); err != nil {
			t.Errorf("variable %s: %v", v.name, err)
			continue
		}
		var values []string
		for _, s := range resp.Data {
			if s != "" {
				values = append(values, s)
			}
		}
		if len(values) == 0 {
			t.Errorf("variable %s: label_values(%s, %s) is empty", v.name, v.selector, v.label)
			continue
		}
		t.Logf("variable %s: %v", v.name, values)
	}
}

// checkLinks follows each link to the exporter's /debug page with the
// exporter_url variable set to the test's exporter and a healthy demo
// device filled in.
func checkLinks(t *testing.T, exporterAddr string, links []string) {
	t.Helper()
	if len(links) == 0 {
		t.Fatal("the dashboard has no link to the exporter's /debug page")
	}
	subst := strings.NewReplacer(
		"${exporter_url}", "http://"+exporterAddr,
		"${__field.labels.device}", "panel-entrance",
		"${__data.fields.device}", "panel-entrance",
	)
	client := &http.Client{Timeout: 15 * time.Second}
	for _, l := range links {
		u := subst.Replace(l)
		if strings.Contains(u, "${") || strings.Contains(u, "$__") {
			t.Errorf("link %q: variable the test cannot fill in (%s)", l, u)
			continue
		}
		resp, err := client.Get(u)
		if err != nil {
			t.Errorf("link %q: %v", l, err)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "panel-entrance") {
			t.Errorf("link %q: GET %s: %s", l, u, resp.Status)
		}
	}
	t.Logf("%d link(s) to /debug answer 200", len(links))
}

// dedupChecks are dashboard queries whose answer must equal the same count
// taken over job basip alone, although the test's Prometheus holds
// basip_device_info and basip_sip_policy_compliant twice, from jobs basip
// and basip_probe, as it would from an HA pair or two jobs: a device counts
// once.
var dedupChecks = []struct{ panel, refID, truth string }{
	{"Sites", "A", `count by (site) (basip_up{job="basip"})`},
	{"Sites", "B", `sum by (site) (basip_up{job="basip"})`},
	{"Sites", "C", `sum by (site) (basip_sip_registered{job="basip"})`},
	{"Sites", "D", `sum by (site) (basip_sip_policy_compliant{job="basip"})`},
	{"Non-compliant devices", "A", `count(basip_sip_policy_compliant{job="basip"} == 0)`},
	{"Policy compliance", "A", `count(basip_sip_policy_compliant{job="basip"} == 1)`},
	{"Models", "A", `count by (model) (basip_device_info{job="basip"})`},
	{"Firmware", "A", `count by (firmware) (basip_device_info{job="basip"})`},
	{"Devices total", "A", `count(basip_up{job="basip"})`},
}

// doubled are the series the test's Prometheus holds from both jobs.
var doubled = []string{"basip_device_info", "basip_sip_policy_compliant"}

// checkCounts checks dedupChecks, once Prometheus holds each of doubled
// from both jobs.
func checkCounts(t *testing.T, promURL string, queries []panelQuery) {
	t.Helper()
	for _, m := range doubled {
		expr := fmt.Sprintf(`count(%[1]s{job="basip_probe"}) == count(%[1]s{job="basip"})`, m)
		deadline := time.Now().Add(queryWait)
		for {
			n, err := queryResult(promURL, expr)
			if err == nil && n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not held from both jobs (%s): %v", m, expr, err)
			}
			time.Sleep(pollPeriod)
		}
	}
	for _, c := range dedupChecks {
		i := slices.IndexFunc(queries, func(q panelQuery) bool { return q.panel == c.panel && q.refID == c.refID })
		if i < 0 {
			t.Errorf("the dashboard has no panel %q with query %s", c.panel, c.refID)
			continue
		}
		got, err := queryVector(promURL, queries[i].expr)
		want, werr := queryVector(promURL, c.truth)
		switch {
		case err != nil || werr != nil:
			t.Errorf("panel %q %s: %v %v", c.panel, c.refID, err, werr)
		case len(want) == 0:
			t.Errorf("panel %q %s: the reference %s is empty", c.panel, c.refID, c.truth)
		case !maps.Equal(got, want):
			t.Errorf("panel %q %s counts\n  %v\nwant, as over one job,\n  %v\n(%s)", c.panel, c.refID, got, want, queries[i].expr)
		}
	}
	t.Logf("%d panel queries count each device once across two jobs", len(dedupChecks))
}

// queryVector runs an instant query and returns its samples by label set.
func queryVector(promURL, expr string) (map[string]float64, error) {
	var resp struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(promURL+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &resp); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, r := range resp.Data.Result {
		delete(r.Metric, "__name__")
		var keys []string
		for k, v := range r.Metric {
			if v != "" {
				keys = append(keys, k+"="+v)
			}
		}
		slices.Sort(keys)
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v", expr, r.Value[1])
		}
		out["{"+strings.Join(keys, ",")+"}"] = v
	}
	return out, nil
}
