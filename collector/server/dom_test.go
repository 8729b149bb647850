package server

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

func parse(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	if n == nil {
		return nil
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if all := findAll(n, match); len(all) > 0 {
		return all[0]
	}
	return nil
}

func byID(n *html.Node, id string) *html.Node {
	return find(n, func(n *html.Node) bool { return attr(n, "id") == id })
}

func findLink(n *html.Node, href string) *html.Node {
	return find(n, func(n *html.Node) bool { return n.Data == "a" && attr(n, "href") == href })
}

// text is the text content of n with white space runs collapsed; of a
// <pre>, as it is.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			if n.Parent == nil || n.Parent.Data != "pre" {
				b.WriteString(" ")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	if n.Data == "pre" {
		return b.String()
	}
	return strings.Join(strings.Fields(b.String()), " ")
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
