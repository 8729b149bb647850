package testutil

import (
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// ParseHTML parses a page or fails t.
func ParseHTML(t testing.TB, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// Attr is the value of n's attribute key, "" when it has none.
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// FindAll returns the elements under n, n included, that match accepts, in
// document order.
func FindAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	if n == nil {
		return nil
	}
	var out []*html.Node
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

// Find returns the first element under n that match accepts, or nil.
func Find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if all := FindAll(n, match); len(all) > 0 {
		return all[0]
	}
	return nil
}

// Elements returns the elements under n with the tag name.
func Elements(n *html.Node, tag string) []*html.Node {
	return FindAll(n, func(n *html.Node) bool { return n.Data == tag })
}

// ByID returns the element with the id, or nil.
func ByID(n *html.Node, id string) *html.Node {
	return Find(n, func(n *html.Node) bool { return Attr(n, "id") == id })
}

// Text is the text content of n with white space runs collapsed; of a
// <pre>, as it is.
func Text(n *html.Node) string {
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
