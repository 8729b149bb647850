package config

import (
	"fmt"
	"reflect"
	"slices"

	"go.yaml.in/yaml/v3"
)

// CredentialSets are the configuration's named credential sets. They
// decode in time linear in their number: see decodeEntries.
type CredentialSets map[string]*Credential

// UnmarshalYAML decodes the credential sets (see decodeEntries).
func (m *CredentialSets) UnmarshalYAML(n *yaml.Node) error {
	return decodeEntries(n, (*map[string]*Credential)(m))
}

// Policies are the configuration's named policies. They decode in time
// linear in their number: see decodeEntries.
type Policies map[string]*Policy

// UnmarshalYAML decodes the policies (see decodeEntries).
func (m *Policies) UnmarshalYAML(n *yaml.Node) error {
	return decodeEntries(n, (*map[string]*Policy)(m))
}

// decodeEntries decodes a mapping of named entries as yaml.v3 does, with
// the same errors (a key defined twice, a value of the wrong type, a key
// the entry's type does not have), in time linear in the number of
// entries: yaml.v3 looks for a key defined twice by comparing every key
// with every other, which made 40,000 credential sets take 11.6 s to
// load. Entries decode one at a time, so their errors come in the order
// of the file within each entry.
func decodeEntries[V any](n *yaml.Node, out *map[string]V) error {
	if n.Kind != yaml.MappingNode {
		return n.Decode(out) // yaml.v3's own error for a value of another kind
	}
	var errs []string
	defined := make(map[string]int, len(n.Content)/2) // key: its line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if at, dup := defined[k.Value]; dup {
			errs = append(errs, fmt.Sprintf("line %d: mapping key %#v already defined at line %d", k.Line, k.Value, at))
			continue
		}
		defined[k.Value] = k.Line
	}
	if len(errs) > 0 { // as yaml.v3, nothing is decoded
		return &yaml.TypeError{Errors: errs}
	}
	if *out == nil {
		*out = make(map[string]V, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		var key string
		if err := k.Decode(&key); err != nil {
			return err
		}
		var v V
		err := val.Decode(&v)
		if te, ok := err.(*yaml.TypeError); ok {
			errs = append(errs, te.Errors...)
		} else if err != nil {
			return err
		}
		if err == nil {
			errs = append(errs, unknownKeys(val, reflect.TypeOf(v), 0)...)
		}
		// yaml.v3 keeps an entry whose mapping decoded in part, not one of
		// another kind that failed.
		if err == nil || resolve(val).Kind == yaml.MappingNode {
			(*out)[key] = v
		}
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

// resolve is n, or the node an alias n stands for.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// unmarshalerType is yaml.v3's Unmarshaler: a type that decodes itself
// also says which keys it takes.
var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// unknownKeys lists, as yaml.v3's decoder with KnownFields does, the keys
// of the mappings in n that t has no field for: yaml.Node's Decode, which
// decodeEntries uses, does not check them.
func unknownKeys(n *yaml.Node, t reflect.Type, depth int) []string {
	if n == nil || t == nil || depth > 64 { // the schema is a few levels deep
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias // within yaml.v3's limits on aliases: Decode passed
		if n == nil {
			return nil
		}
	}
	t = deref(t)
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	var errs []string
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				errs = append(errs, fmt.Sprintf("line %d: field %s not found in type %s", k.Line, k.Value, t.String()))
				continue
			}
			errs = append(errs, unknownKeys(n.Content[i+1], f.Type, depth+1)...)
		}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			errs = append(errs, unknownKeys(item, t.Elem(), depth+1)...)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			errs = append(errs, unknownKeys(n.Content[i], t.Elem(), depth+1)...)
		}
	}
	return slices.Clip(errs)
}
