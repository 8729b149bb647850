package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlSyntax splits yaml.v3's syntax errors, "yaml: line N: problem".
var yamlSyntax = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// syntaxError turns a YAML syntax error into an Error at the line of the
// mistake. yaml.v3 reports the line where the enclosing block began, which
// for a line indented wrongly can be many lines before it, so the line is
// found again: it is the first line whose addition to the document makes
// it fail with the same problem.
func syntaxError(file string, data []byte, err error) error {
	m := yamlSyntax.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{File: file, Err: err}
	}
	problem := m[2]
	reported, _ := strconv.Atoi(m[1])
	lines := bytes.SplitAfter(data, []byte("\n"))
	lo, hi := firstFailingLine(lines, problem, max(reported, 1))
	switch {
	case hi == 0:
		return &Error{File: file, Line: reported, Err: fmt.Errorf("%s (at or after this line)", problem)}
	case lo < hi:
		return &Error{File: file, Line: lo, Err: fmt.Errorf("%s (somewhere in lines %d to %d)", problem, lo, hi)}
	}
	n := hi
	var what string
	var before yaml.Node
	// A line at the left margin starts a top-level key: it belongs to no
	// entry above it.
	if len(lines[n-1]) > 0 && (lines[n-1][0] == ' ' || lines[n-1][0] == '\t') &&
		yaml.Unmarshal(bytes.Join(lines[:n-1], nil), &before) == nil {
		what = entryAt(docRoot(&before), n)
	}
	return &Error{File: file, Line: n, What: what, Err: fmt.Errorf("%s%s", problem, syntaxHint(problem, lines[n-1]))}
}

// maxSyntaxSearch bounds the bytes parsed again to find a syntax error's
// line: each step of the search parses up to the whole document.
const maxSyntaxSearch = 4 << 20

// firstFailingLine narrows down, by bisection from line lo, the smallest n
// for which the first n lines fail to parse with problem. It returns the
// range it got to within maxSyntaxSearch (lo == hi when found), or hi 0 if
// the whole document does not fail that way.
func firstFailingLine(lines [][]byte, problem string, lo int) (int, int) {
	budget := maxSyntaxSearch
	fails := func(n int) bool {
		prefix := bytes.Join(lines[:n], nil)
		budget -= len(prefix)
		var node yaml.Node
		err := yaml.Unmarshal(prefix, &node)
		if err == nil {
			return false
		}
		m := yamlSyntax.FindStringSubmatch(err.Error())
		return m != nil && m[2] == problem
	}
	hi := len(lines)
	if hi == 0 || lo > hi || !fails(hi) {
		return 0, 0
	}
	for lo < hi && budget > 0 {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, hi
}

// syntaxHint says what usually causes problem on line.
func syntaxHint(problem string, line []byte) string {
	indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
	switch {
	case bytes.ContainsRune(indent, '\t'):
		return ": this line is indented with a tab; YAML indents with spaces only"
	case strings.HasPrefix(problem, "did not find expected key"),
		strings.HasPrefix(problem, "did not find expected '-' indicator"),
		strings.HasPrefix(problem, "mapping values are not allowed"),
		strings.HasPrefix(problem, "block sequence entries are not allowed"):
		return ": check this line's indentation against the lines above it"
	}
	return ""
}

// yamlTypeError splits one of yaml.v3's type errors once the value is
// dropped: "cannot unmarshal !!tag into Type".
var yamlTypeError = regexp.MustCompile(`^cannot unmarshal (\S+) into (.+)$`)

// yamlUnknownField splits yaml.v3's "field x not found in type T".
var yamlUnknownField = regexp.MustCompile(`^field (.+) not found in type \S+$`)

// describe rewrites one of yaml.v3's decoding errors at line into what,
// field and message: the entry the line belongs to, the key the error is
// about (never the value, which may be a password) and what is wrong.
func describe(root *yaml.Node, line int, msg string) (what, field, text string) {
	what = entryAt(root, line)
	if m := yamlUnknownField.FindStringSubmatch(msg); m != nil {
		path := pathTo(root, func(k, _ *yaml.Node) bool { return k != nil && k.Line == line && k.Value == m[1] })
		if path == nil {
			return what, "", msg
		}
		text = "unknown key"
		if s := suggest(m[1], keysAt(path[:len(path)-1])); s != "" {
			text += "; did you mean " + s + "?"
		}
		return what, fieldName(path), text
	}
	if m := yamlTypeError.FindStringSubmatch(msg); m != nil {
		tag := m[1]
		path := pathTo(root, func(_, v *yaml.Node) bool { return v.Line == line && v.ShortTag() == tag })
		text = msg
		if m[2] == "time.Duration" {
			text += ": write a duration with its unit, such as 10s, 1m or 1h"
		}
		return what, fieldName(path), text
	}
	return what, "", msg
}

// pathTo is the path of keys and sequence indices (as "[i]") from root to
// the first mapping value or sequence item for which match holds, or nil.
// key is nil for a sequence item.
func pathTo(root *yaml.Node, match func(key, value *yaml.Node) bool) []string {
	var path []string
	var walk func(n *yaml.Node, depth int) bool
	walk = func(n *yaml.Node, depth int) bool {
		if n == nil || depth > 64 { // the configuration's schema is a few levels deep
			return false
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				path = append(path, k.Value)
				if match(k, v) || walk(v, depth+1) {
					return true
				}
				path = path[:len(path)-1]
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				path = append(path, "["+strconv.Itoa(i)+"]")
				if match(nil, item) || walk(item, depth+1) {
					return true
				}
				path = path[:len(path)-1]
			}
		}
		return false
	}
	if root != nil && root.Kind == yaml.SequenceNode { // a device file
		path = []string{"devices"}
	}
	if walk(root, 0) {
		return path
	}
	return nil
}

// fieldName is the field a path names within its entry (a device, policy,
// credentials set or global): its keys joined by dots, without the entry
// itself and without list indices.
func fieldName(path []string) string {
	if len(path) == 0 {
		return ""
	}
	switch path[0] { // the entry itself, when path names it, has no field
	case "devices", "policies", "credentials":
		if len(path) >= 2 {
			path = path[2:]
		}
	case "global":
		path = path[1:]
	}
	keys := make([]string, 0, len(path))
	for _, p := range path {
		if !strings.HasPrefix(p, "[") {
			keys = append(keys, p)
		}
	}
	return strings.Join(keys, ".")
}

// keysAt lists the keys the schema allows in the mapping at path.
func keysAt(path []string) []string {
	t := reflect.TypeOf(Config{})
	for _, p := range path {
		switch t = deref(t); t.Kind() {
		case reflect.Slice, reflect.Map: // p is an index or a map's key
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByKey(t, p)
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if yamlKey(t.Field(i)) == key {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// yamlKey is the key a struct field has in YAML; empty for fields YAML
// does not see.
func yamlKey(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	if tag == "-" || !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// suggest is the known key closest to key, if it is close enough to be a
// typo of it.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
