package server

import (
	"testing"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"golang.org/x/net/html"
)

var (
	parse   = testutil.ParseHTML
	attr    = testutil.Attr
	findAll = testutil.FindAll
	find    = testutil.Find
	byID    = testutil.ByID
	text    = testutil.Text
)

func findLink(n *html.Node, href string) *html.Node {
	return find(n, func(n *html.Node) bool { return n.Data == "a" && attr(n, "href") == href })
}

type tableRow struct {
	attr  map[string]string // the <tr>'s attributes
	text  map[string]string // by data-col
	class map[string]string
	href  map[string]string
}

type deviceTable struct {
	header []string // data-col of each <th>
	rows   []tableRow
}

// table reads the device table with the given id.
func table(t *testing.T, doc *html.Node, id string) deviceTable {
	t.Helper()
	tab := byID(doc, id)
	if tab == nil {
		t.Fatalf("no table #%s", id)
	}
	var dt deviceTable
	for _, th := range findAll(tab, func(n *html.Node) bool { return n.Data == "th" }) {
		dt.header = append(dt.header, attr(th, "data-col"))
	}
	for _, tr := range findAll(tab, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-device") != "" }) {
		r := tableRow{attr: map[string]string{}, text: map[string]string{}, class: map[string]string{}, href: map[string]string{}}
		for _, a := range tr.Attr {
			r.attr[a.Key] = a.Val
		}
		for _, td := range findAll(tr, func(n *html.Node) bool { return n.Data == "td" }) {
			col := attr(td, "data-col")
			r.text[col] = text(td)
			r.class[col] = attr(td, "class")
			if a := find(td, func(n *html.Node) bool { return n.Data == "a" }); a != nil {
				r.href[col] = attr(a, "href")
			}
		}
		dt.rows = append(dt.rows, r)
	}
	return dt
}
