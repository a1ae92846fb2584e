package server

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem placement for -check: every problem with a configuration file is reported as
// "file:line: message", as compilers do. Parse problems carry their line already ("line N: ...");
// Validate's messages name their key ("server.max_head_bytes ...", `bucket "a": upload.part_size
// ...`), which the YAML tree turns into the line where that key is written.

// keyIndex maps key paths ("server.zero_copy.pipe_buffer_size", "buckets[1].upload.part_size",
// "buckets[1]") to their line, and each bucket name to the indexes of the entries that carry it.
type keyIndex struct {
	lines    map[string]int
	buckets  map[string][]int
	prefixes map[string]int // path_prefix without its "/" -> entry: the engine names buckets so
}

func indexKeys(doc *yaml.Node) *keyIndex {
	ki := &keyIndex{lines: map[string]int{}, buckets: map[string][]int{}, prefixes: map[string]int{}}
	if doc == nil {
		return ki
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				if _, seen := ki.lines[p]; !seen {
					ki.lines[p] = k.Line
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				ki.lines[p] = c.Line
				walk(c, p)
				if path == "buckets" && c.Kind == yaml.MappingNode {
					for j := 0; j+1 < len(c.Content); j += 2 {
						switch v := c.Content[j+1].Value; c.Content[j].Value {
						case "name":
							ki.buckets[v] = append(ki.buckets[v], i)
						case "path_prefix":
							ki.prefixes[strings.TrimPrefix(v, "/")] = i
						}
					}
				}
			}
		}
	}
	walk(doc, "")
	return ki
}

var (
	lineRe      = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)
	bucketRe    = regexp.MustCompile(`^bucket "((?:[^"\\]|\\.)*)": `)
	keyPathRe   = regexp.MustCompile(`^[a-z0-9_]+(?:\.[a-z0-9_]+|\[\d+\])*`)
	bucketAlias = []struct{ prefix, key string }{ // the engine's wording -> the bucket key
		{"upstream endpoint", "s3.endpoint"}, {"upstream bucket", "s3.bucket"}, {"upstream access key", "s3.access_key"},
		{"signing region", "auth.sigv4.regions"}, {"client access key", "auth.sigv4.credentials"},
		{"a client credential", "auth.sigv4.credentials"}, {"no client credentials", "auth"},
		{"part size", "upload.part_size"}, {"multipart threshold", "upload.multipart_threshold"},
		{"concurrent parts", "upload.concurrent_parts"}, {"name ", "name"}, {"defined twice", "name"},
		{"the any-bucket entry", "s3.bucket"}, {"rule", "policy"}, {"policy", "policy"},
	}
	topAlias = []struct{ prefix, key string }{
		{"virtual host suffix", "server.virtual_host_suffixes"}, {"upload id secrets", "server.upload_id_secrets"},
		{"complete body budget", "server.complete_body_budget"}, {"no buckets configured", "buckets"},
	}
)

// line finds the line of the key a message names; 0 when it names none written in the file.
func (ki *keyIndex) line(msg string) int {
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if m := bucketRe.FindStringSubmatch(msg); m != nil {
		name, _ := strconv.Unquote(`"` + m[1] + `"`)
		idx := ki.buckets[name]
		rest := msg[len(m[0]):]
		if p, ok := ki.prefixes[name]; ok && len(idx) == 0 {
			return ki.longest(fmt.Sprintf("buckets[%d]", p), "path_prefix")
		}
		if len(idx) == 0 {
			return 0
		}
		i := idx[0]
		if strings.HasPrefix(rest, "defined twice") {
			i = idx[len(idx)-1]
		}
		base := fmt.Sprintf("buckets[%d]", i)
		key := keyPathRe.FindString(rest)
		for _, a := range bucketAlias {
			if strings.HasPrefix(rest, a.prefix) {
				key = a.key
				break
			}
		}
		if n := ki.longest(base, key); n > 0 {
			return n
		}
		return ki.lines[base]
	}
	key := keyPathRe.FindString(msg)
	for _, a := range topAlias {
		if strings.HasPrefix(msg, a.prefix) {
			key = a.key
		}
	}
	return ki.longest("", key)
}

// longest is the line of base.key, or of its longest prefix written in the file.
func (ki *keyIndex) longest(base, key string) int {
	for key != "" {
		if n, ok := ki.lines[join(base, key)]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// positionErrors rewrites every problem of a configuration file as "file:line: message" (or
// "file: message" when it names no key written in the file), ordered by line, one per error.
// Problems that are not the file's (flags, environment of a config-less start) stay as they are,
// after them.
func positionErrors(file string, doc *yaml.Node, errs []error) error {
	ki := indexKeys(doc)
	type placed struct {
		line int
		err  error
	}
	var out []placed
	for _, e := range errs {
		for _, e := range flatten(e) {
			msg := strings.TrimPrefix(e.Error(), "config: ")
			if strings.HasPrefix(msg, "-") { // a flag's problem
				out = append(out, placed{1 << 30, e})
				continue
			}
			n := ki.line(msg)
			msg = lineRe.ReplaceAllString(msg, "")
			if n > 0 {
				out = append(out, placed{n, fmt.Errorf("%s:%d: %s", file, n, msg)})
			} else {
				out = append(out, placed{1<<30 - 1, fmt.Errorf("%s: %s", file, msg)})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].line < out[j].line })
	list := make([]error, len(out))
	for i, p := range out {
		list[i] = p.err
	}
	return errors.Join(list...)
}
