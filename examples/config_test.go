// Package examples holds the reference configuration file, mizuchi-uploadr.yaml, and the test that
// keeps it loadable and complete.
package examples

import (
	"flag"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mizuchi/uploadr/server"
)

const exampleFile = "mizuchi-uploadr.yaml"

// exampleEnv is the environment the example names (its header lists it).
var exampleEnv = map[string]string{
	"UPSTREAM_ACCESS_KEY": "upstream-access-key",
	"UPSTREAM_SECRET_KEY": "upstream-secret-key",
	"CLIENT_ACCESS_KEY":   "AKIDEXAMPLE",
	"CLIENT_SECRET_KEY":   "client-secret-key",
	"JWT_SECRET":          "a-jwt-secret-of-at-least-32-bytes-long",
}

// alternatives are the keys the example may show in a comment only ("# key: value"), because a
// live value would need something the example cannot ship:
//   - auth.jwt.public_key_file: a PEM key file; jwks_url and secret, its alternatives, are live.
var alternatives = map[string]bool{
	"buckets.auth.jwt.public_key_file": true,
}

// TestExampleConfigLoads loads the example the way `mizuchi-uploadr -check -config FILE` does (the
// flags, the file, the defaults, the validation; -check adds only network warnings) and expects no
// problem.
func TestExampleConfigLoads(t *testing.T) {
	fs := flag.NewFlagSet("mizuchi-uploadr", flag.ContinueOnError)
	flags := server.RegisterFlags(fs)
	if err := fs.Parse([]string{"-check", "-config", exampleFile}); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) { v, ok := exampleEnv[k]; return v, ok }
	cfg, err := flags.Config(lookup)
	if err != nil {
		t.Fatalf("%s does not load:\n%v", exampleFile, err)
	}
	if got := len(cfg.Buckets); got != 4 {
		t.Errorf("%d buckets loaded; want the example's 4", got)
	}
	// Without its environment the file must fail, naming the variables (never a value).
	_, err = flags.Config(func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatalf("%s loaded without its environment", exampleFile)
	}
	for k := range exampleEnv {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error without the environment does not name %s:\n%v", k, err)
		}
	}
}

// TestExampleConfigHasEveryKey walks the YAML keys of server.Config by reflection and checks that each
// one appears in the example as a live key with a comment (alternatives: in a comment), and that
// the example has no key the proxy does not know.
func TestExampleConfigHasEveryKey(t *testing.T) {
	raw, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	structKeys(reflect.TypeOf(server.Config{}), "", want)
	if len(want) < 100 {
		t.Fatalf("only %d keys found in server.Config: the walk is broken", len(want))
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}      // key path -> present
	commented := map[string]bool{} // key path -> at least one occurrence has a comment
	var scalars []string           // values of keys whose value is a scalar, by path: "auth" -> none
	walkDoc(&doc, "", live, commented, &scalars)

	for _, k := range sortedKeys(want) {
		switch {
		case alternatives[k]:
			name := k[strings.LastIndex(k, ".")+1:]
			if !regexp.MustCompile(`(?m)^\s*#\s*` + regexp.QuoteMeta(name) + `:`).Match(raw) {
				t.Errorf("alternative key %s is not shown in a comment (# %s: …)", k, name)
			}
		case !live[k]:
			t.Errorf("key %s is missing from %s", k, exampleFile)
		case !commented[k]:
			t.Errorf("key %s has no comment in %s", k, exampleFile)
		}
	}
	for _, k := range sortedKeys(live) {
		if !want[k] {
			t.Errorf("%s has key %s, which server.Config does not define", exampleFile, k)
		}
	}
	if !contains(scalars, "buckets.auth=none") {
		t.Errorf("%s does not show auth: none", exampleFile)
	}
}

// structKeys adds the YAML key paths of t under prefix, as the proxy's parser names them: a
// field's yaml tag (inline structs flattened), through pointers and slices (a list's items share
// their parent's path); maps are leaves (policy.when.claim holds any claim name). AuthConfig is
// decoded by hand: its keys are sigv4 and jwt, and its None field is the scalar form "auth: none".
func structKeys(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if t == reflect.TypeOf(server.AuthConfig{}) && tag == "" {
			continue // None: the scalar "none", checked separately
		}
		if name == "-" {
			continue
		}
		if opts == "inline" {
			structKeys(f.Type, prefix, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		path := join(prefix, name)
		out[path] = true
		structKeys(f.Type, path, out)
	}
}

// walkDoc records every mapping key of n by path (sequence items share their parent's path), whether
// one of its occurrences carries a comment (on its line or just above it), and key=value for scalar
// values.
func walkDoc(n *yaml.Node, path string, live, commented map[string]bool, scalars *[]string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			walkDoc(c, path, live, commented, scalars)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if strings.HasSuffix(path, ".claim") {
				continue // claim names are data, not keys
			}
			live[p] = true
			if k.LineComment != "" || k.HeadComment != "" || v.LineComment != "" {
				commented[p] = true
			}
			if v.Kind == yaml.ScalarNode {
				*scalars = append(*scalars, p+"="+v.Value)
			}
			walkDoc(v, p, live, commented, scalars)
		}
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
