package server

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// unknownKeys walks a parsed YAML tree against the Go type it decodes into and reports every mapping
// key that names no field, at any depth, with its line and the keys allowed there. yaml.v3's
// KnownFields does not reach into values decoded by a custom UnmarshalYAML (auth), and a decode
// error can hide the keys after it; walking the tree finds them all.
func unknownKeys(n *yaml.Node, t reflect.Type, path string) []error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		var errs []error
		for _, c := range n.Content {
			errs = append(errs, unknownKeys(c, t, path)...)
		}
		return errs
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return nil // a type error; the decoder reports it
		}
		var errs []error
		for i, c := range n.Content {
			errs = append(errs, unknownKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	case yaml.MappingNode:
		if t == reflect.TypeOf(PolicyConfig{}) {
			t = t.Elem() // one rule set written as a mapping (PolicyConfig.UnmarshalYAML)
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Tag == "!!merge" {
				errs = append(errs, unknownKeys(v, t, path)...)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				errs = append(errs, fmt.Errorf("line %d: unknown key %q in %s (known: %s)", k.Line, k.Value,
					orTop(path), strings.Join(sortedKeys(fields), ", ")))
				continue
			}
			errs = append(errs, unknownKeys(v, ft, join(path, k.Value))...)
		}
		return errs
	}
	return nil
}

// authFields are the keys of an auth mapping (AuthConfig.None comes from the scalar form only).
var authFields = map[string]reflect.Type{"sigv4": reflect.TypeOf(SigV4Config{}), "jwt": reflect.TypeOf(JWTConfig{})}

// yamlFields maps the YAML keys of struct type t to their field types, as yaml.v3 names them: the
// tag's name, else the lowercased field name; "-" and unexported fields are skipped.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	if t == reflect.TypeOf(AuthConfig{}) {
		return authFields
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if opts == "inline" && f.Type.Kind() == reflect.Struct { // an embedded block's keys
			for k, ft := range yamlFields(f.Type) {
				m[k] = ft
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys(m map[string]reflect.Type) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}
