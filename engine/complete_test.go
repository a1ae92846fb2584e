package engine

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// decodeComplete is the check the scanner replaced, kept as the oracle: encoding/xml decodes the
// whole document into a slice of parts. The scanner may refuse more, never less.
func decodeComplete(body []byte) (parts int, ok bool) {
	var doc struct {
		XMLName xml.Name `xml:"CompleteMultipartUpload"`
		Parts   []struct {
			PartNumber int    `xml:"PartNumber"`
			ETag       string `xml:"ETag"`
		} `xml:"Part"`
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	if err := d.Decode(&doc); err != nil || len(doc.Parts) == 0 || len(doc.Parts) > maxParts {
		return len(doc.Parts), false
	}
	for _, p := range doc.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxParts || p.ETag == "" {
			return len(doc.Parts), false
		}
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return len(doc.Parts), true
		}
		if err != nil {
			return len(doc.Parts), false
		}
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			return len(doc.Parts), false
		}
	}
}

const s3NS = `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`

// part is a minimal valid <Part>.
func part(n int) string {
	return fmt.Sprintf(`<Part><ETag>"%032x"</ETag><PartNumber>%d</PartNumber></Part>`, n, n)
}

// doc wraps parts in the namespaced root as clients send it.
func doc(parts ...string) string {
	return `<CompleteMultipartUpload ` + s3NS + `>` + strings.Join(parts, "") + `</CompleteMultipartUpload>`
}

// manyParts is a document of n valid parts, numbered 1..n (n may exceed 10,000).
func manyParts(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<CompleteMultipartUpload " + s3NS + ">\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  <Part><ETag>\"%032x\"</ETag><PartNumber>%d</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>\n", i, i)
	}
	b.WriteString("</CompleteMultipartUpload>\n")
	return b.Bytes()
}

// padTo repeats unit between the root tags until the document is size bytes or just under.
func padTo(size int, unit string) []byte {
	head, tail := `<CompleteMultipartUpload `+s3NS+`>`, `</CompleteMultipartUpload>`
	n := (size - len(head) - len(tail)) / len(unit)
	return []byte(head + strings.Repeat(unit, n) + tail)
}

type completeCase struct {
	name string
	doc  string
	want bool
	// stricter marks a document encoding/xml's Decode accepted and the scanner refuses on purpose.
	stricter bool
}

var completeCases = []completeCase{
	// Accepted.
	{name: "minimal, no namespace", doc: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>`, want: true},
	{name: "namespaced", doc: doc(part(1), part(2)), want: true},
	{name: "declaration, pretty-printed", doc: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<CompleteMultipartUpload " + s3NS + ">\n\t<Part>\n\t\t<PartNumber>1</PartNumber>\n\t\t<ETag>\"a\"</ETag>\n\t</Part>\n</CompleteMultipartUpload>\n\n", want: true},
	{name: "declaration single quotes, lower-case encoding, standalone", doc: `<?xml version='1.0' encoding='utf-8' standalone='yes' ?>` + doc(part(1)), want: true},
	{name: "BOM", doc: "\xEF\xBB\xBF" + doc(part(1)), want: true},
	{name: "prefixed namespace", doc: `<s3:CompleteMultipartUpload xmlns:s3="http://s3.amazonaws.com/doc/2006-03-01/"><s3:Part><s3:PartNumber>1</s3:PartNumber><s3:ETag>e</s3:ETag></s3:Part></s3:CompleteMultipartUpload>`, want: true},
	{name: "namespaced Part (minio-go)", doc: doc(`<Part ` + s3NS + `><PartNumber>1</PartNumber><ETag>e</ETag><LastModified>0001-01-01T00:00:00Z</LastModified><ChecksumCRC32></ChecksumCRC32></Part>`), want: true},
	{name: "all checksums", doc: doc(`<Part><ChecksumCRC32>p+6MwQ==</ChecksumCRC32><ChecksumCRC32C>AAAAAA==</ChecksumCRC32C><ChecksumCRC64NVME>AAAAAAAAAAA=</ChecksumCRC64NVME><ChecksumSHA1>2jmj7l5rSw0yVb/vlWAYkK/YBwk=</ChecksumSHA1><ChecksumSHA256>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</ChecksumSHA256><ETag>e</ETag><PartNumber>1</PartNumber></Part>`), want: true},
	{name: "ETag references", doc: doc(`<Part><ETag>&quot;a&#34;&#x22;&amp;&lt;&gt;&apos;</ETag><PartNumber>1</PartNumber></Part>`), want: true},
	{name: "ETag CDATA", doc: doc(`<Part><ETag><![CDATA["a<b>"]]></ETag><PartNumber>1</PartNumber></Part>`), want: true},
	{name: "ETag whitespace only", doc: doc(`<Part><ETag> </ETag><PartNumber>1</PartNumber></Part>`), want: true},
	{name: "ETag non-ASCII", doc: doc(`<Part><ETag>é€𝄞</ETag><PartNumber>1</PartNumber></Part>`), want: true},
	{name: "PartNumber padded, leading zeros", doc: doc(`<Part><ETag>e</ETag><PartNumber> 0010000 </PartNumber></Part>`), want: true},
	{name: "PartNumber split by a comment", doc: doc(`<Part><ETag>e</ETag><PartNumber>1<!-- x -->2</PartNumber></Part>`), want: true},
	{name: "comments and PIs everywhere", doc: `<!-- a --><?pi x?>` + doc(`<!--b--><?pi?><Part><!--c--><ETag>e<!--d--></ETag><PartNumber>1</PartNumber><?pi y ?></Part>`) + "\n", want: true},
	{name: "unknown elements, nested", doc: doc(`<Extra a="1"><Deeper><Deepest>x</Deepest></Deeper></Extra><Part><ETag>e</ETag><PartNumber>1</PartNumber><Foo><PartNumber>x</PartNumber><ETag/></Foo></Part><Extra/>`), want: true},
	{name: "empty unknown elements", doc: doc(`<Part><ETag>e</ETag><PartNumber>1</PartNumber><ChecksumSHA1/><ChecksumSHA256 /></Part>`), want: true},
	{name: "spaces in tags", doc: `<CompleteMultipartUpload  ` + s3NS + ` ><Part ><ETag >e</ETag ><PartNumber>1</PartNumber	></Part
></CompleteMultipartUpload >`, want: true},
	{name: "]] and > apart in text", doc: doc(`<Part><ETag>]]&gt;]&amp;]></ETag><PartNumber>1</PartNumber></Part>`), want: true},
	{name: "]]> in an attribute value", doc: `<CompleteMultipartUpload a="]]>"><Part><ETag>e</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`, want: true},
	{name: "attribute spaces and references", doc: `<CompleteMultipartUpload a = 'x"&amp;>' b="'"><Part><ETag>e</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`, want: true},
	{name: "names with dot, dash, digits, underscore", doc: doc(`<_a.b-c9/>`, part(1)), want: true},
	{name: "same part number twice (the upstream decides)", doc: doc(part(1), part(1)), want: true},
	{name: "15 levels", doc: doc(`<Part><ETag>e</ETag><PartNumber>1</PartNumber>` + strings.Repeat("<a>", 13) + strings.Repeat("</a>", 13) + `</Part>`), want: true},

	// Refused, as before.
	{name: "empty", doc: ``},
	{name: "whitespace", doc: "  \n"},
	{name: "not XML", doc: `{"Parts":[{"PartNumber":1,"ETag":"e"}]}`},
	{name: "wrong root", doc: `<CompleteMultipartUploadX><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUploadX>`},
	{name: "no parts", doc: doc()},
	{name: "empty root", doc: `<CompleteMultipartUpload/>`},
	{name: "Part without ETag", doc: doc(`<Part><PartNumber>1</PartNumber></Part>`)},
	{name: "Part without PartNumber", doc: doc(`<Part><ETag>e</ETag></Part>`)},
	{name: "empty Part", doc: doc(`<Part/>`)},
	{name: "empty ETag", doc: doc(`<Part><ETag></ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "self-closed ETag", doc: doc(`<Part><ETag/><PartNumber>1</PartNumber></Part>`)},
	{name: "ETag holding only a comment", doc: doc(`<Part><ETag><!--x--></ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "ETag holding an empty CDATA", doc: doc(`<Part><ETag><![CDATA[]]></ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "PartNumber 0", doc: doc(`<Part><ETag>e</ETag><PartNumber>0</PartNumber></Part>`)},
	{name: "PartNumber 10001", doc: doc(`<Part><ETag>e</ETag><PartNumber>10001</PartNumber></Part>`)},
	{name: "PartNumber -1", doc: doc(`<Part><ETag>e</ETag><PartNumber>-1</PartNumber></Part>`)},
	{name: "PartNumber overflows int64", doc: doc(`<Part><ETag>e</ETag><PartNumber>99999999999999999999999</PartNumber></Part>`)},
	{name: "PartNumber empty", doc: doc(`<Part><ETag>e</ETag><PartNumber></PartNumber></Part>`)},
	{name: "PartNumber spaces only", doc: doc(`<Part><ETag>e</ETag><PartNumber>  </PartNumber></Part>`)},
	{name: "PartNumber not a number", doc: doc(`<Part><ETag>e</ETag><PartNumber>one</PartNumber></Part>`)},
	{name: "PartNumber 1 2", doc: doc(`<Part><ETag>e</ETag><PartNumber>1 2</PartNumber></Part>`)},
	{name: "PartNumber 1.0", doc: doc(`<Part><ETag>e</ETag><PartNumber>1.0</PartNumber></Part>`)},
	{name: "one bad part among good ones", doc: doc(part(1), `<Part><ETag>e</ETag><PartNumber>0</PartNumber></Part>`, part(3))},
	{name: "mismatched end tag", doc: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</Etag></Part></CompleteMultipartUpload>`},
	{name: "prefix mismatch", doc: `<s3:CompleteMultipartUpload xmlns:s3="x"><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>`},
	{name: "unclosed root", doc: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>`},
	{name: "truncated tag", doc: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUp`},
	{name: "end tag without start", doc: `</CompleteMultipartUpload>`},
	{name: "trailing text", doc: doc(part(1)) + "x"},
	{name: "trailing element", doc: doc(part(1)) + "<a/>"},
	{name: "second root", doc: doc(part(1)) + doc(part(1))},
	{name: "trailing comment", doc: doc(part(1)) + "<!-- x -->"},
	{name: "undefined entity", doc: doc(`<Part><ETag>&nbsp;</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "]]> in text", doc: doc(`<Part><ETag>]]></ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "]]> in text after a reference", doc: doc(`<Part><ETag>&amp;]]></ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "bare ampersand", doc: doc(`<Part><ETag>a&b</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "character reference to NUL", doc: doc(`<Part><ETag>&#0;</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "character reference out of range", doc: doc(`<Part><ETag>&#x110000;</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "unterminated reference", doc: doc(`<Part><ETag>&amp</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "invalid UTF-8", doc: doc(`<Part><ETag>` + "\xff\xfe" + `</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "control character", doc: doc(`<Part><ETag>` + "\x01" + `</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "NUL", doc: doc(`<Part><ETag>` + "\x00" + `</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "< in attribute value", doc: `<CompleteMultipartUpload a="<"><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>`},
	{name: "unquoted attribute", doc: `<CompleteMultipartUpload a=1><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>`},
	{name: "attribute without value", doc: `<CompleteMultipartUpload a><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>`},
	{name: "unterminated attribute", doc: `<CompleteMultipartUpload a="x><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>`},
	{name: "name starting with a digit", doc: doc(`<1a/>`, part(1))},
	{name: "name with two colons", doc: doc(`<a:b:c/>`, part(1))},
	{name: "-- in a comment", doc: doc(`<!-- a -- b -->`, part(1))},
	{name: "unterminated comment", doc: doc(part(1)) + "<!--"},
	{name: "unterminated CDATA", doc: doc(`<Part><ETag><![CDATA[x</ETag><PartNumber>1</PartNumber></Part>`)},
	{name: "XML version 1.1", doc: `<?xml version="1.1"?>` + doc(part(1))},
	{name: "Latin-1 encoding", doc: `<?xml version="1.0" encoding="ISO-8859-1"?>` + doc(part(1))},
	{name: "10,001 parts", doc: string(manyParts(maxParts + 1))},

	// Refused on purpose where encoding/xml accepted.
	{name: "DOCTYPE", doc: `<!DOCTYPE CompleteMultipartUpload [<!ENTITY e "e">]>` + doc(part(1)), stricter: true},
	{name: "text before the root", doc: `junk` + doc(part(1)), stricter: true},
	{name: "text in the root", doc: doc(`junk`, part(1)), stricter: true},
	{name: "text in a Part", doc: doc(`<Part>junk<ETag>e</ETag><PartNumber>1</PartNumber></Part>`), stricter: true},
	{name: "CDATA text in the root", doc: doc(`<![CDATA[x]]>`, part(1)), stricter: true},
	{name: "two PartNumbers", doc: doc(`<Part><ETag>e</ETag><PartNumber>0</PartNumber><PartNumber>1</PartNumber></Part>`), stricter: true},
	{name: "two ETags", doc: doc(`<Part><ETag></ETag><ETag>e</ETag><PartNumber>1</PartNumber></Part>`), stricter: true},
	{name: "PartNumber +1", doc: doc(`<Part><ETag>e</ETag><PartNumber>+1</PartNumber></Part>`), stricter: true},
	{name: "PartNumber as a reference", doc: doc(`<Part><ETag>e</ETag><PartNumber>&#49;</PartNumber></Part>`), stricter: true},
	{name: "PartNumber in CDATA", doc: doc(`<Part><ETag>e</ETag><PartNumber><![CDATA[1]]></PartNumber></Part>`), stricter: true},
	{name: "non-ASCII element name", doc: doc(`<é/>`, part(1)), stricter: true},
	{name: "attributes without space between", doc: `<CompleteMultipartUpload a="1"b="2"><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>`, stricter: true},
	{name: "no-break space after the root", doc: doc(part(1)) + "\u00a0", stricter: true},
	{name: "XML declaration after a comment", doc: `<!--x--><?xml version="1.0"?>` + doc(part(1)), stricter: true},
	{name: "PI named XML", doc: `<?XML x?>` + doc(part(1)), stricter: true},
	{name: "unknown declaration attribute", doc: `<?xml version="1.0" foo="bar"?>` + doc(part(1)), stricter: true},
	{name: "17 levels", doc: doc(`<Part><ETag>e</ETag><PartNumber>1</PartNumber>` + strings.Repeat("<a>", 15) + strings.Repeat("</a>", 15) + `</Part>`), stricter: true},
	{name: "100,000 levels", doc: doc(strings.Repeat("<a>", 100000)+strings.Repeat("</a>", 100000), part(1)), stricter: true},
}

func TestCompleteDocTable(t *testing.T) {
	for _, tc := range completeCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := wellFormedComplete([]byte(tc.doc)); got != tc.want {
				t.Errorf("wellFormedComplete(%.200q) = %v; want %v", tc.doc, got, tc.want)
			}
			_, oracle := decodeComplete([]byte(tc.doc))
			if want := tc.want || tc.stricter; oracle != want {
				t.Errorf("encoding/xml Decode: %v; the table says %v (stricter: %v)", oracle, want, tc.stricter)
			}
		})
	}
}

// The documents real clients sent (testdata/complete/README.md) are accepted, parts counted.
func TestCompleteDocClients(t *testing.T) {
	files, err := filepath.Glob("testdata/complete/*.xml")
	if err != nil || len(files) < 4 {
		t.Fatalf("client documents: %v %v", files, err)
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parts, ok := scanComplete(body)
		oparts, _ := decodeComplete(body)
		if !ok || parts != oparts || parts < 2 {
			t.Errorf("%s: scanComplete = %d parts, %v; want %d parts, true", f, parts, ok, oparts)
		}
	}
}

func TestCompleteDocPartLimit(t *testing.T) {
	full := manyParts(maxParts)
	if len(full) > maxCompleteBody {
		t.Fatalf("10,000-part document is %d bytes; maxCompleteBody is %d", len(full), maxCompleteBody)
	}
	if parts, ok := scanComplete(full); !ok || parts != maxParts {
		t.Errorf("10,000 parts: %d, %v; want 10000, true", parts, ok)
	}
	// Stops at the 10,001st part: what follows it is not read (here: not even well-formed).
	over := manyParts(maxParts + 1)
	cut := bytes.LastIndex(over, []byte("<Part>")) + len("<Part>")
	over = append(over[:cut:cut], "\xff<<<"...)
	if parts, ok := scanComplete(over); ok || parts != maxParts+1 {
		t.Errorf("10,001 parts: %d, %v; want 10001, false", parts, ok)
	}
}

// Huge text nodes and padding are read in place: a 4 MiB ETag, 4 MiB of whitespace between parts.
func TestCompleteDocHugeText(t *testing.T) {
	etag := doc(`<Part><PartNumber>1</PartNumber><ETag>` + strings.Repeat("e", maxCompleteBody-200) + `</ETag></Part>`)
	spaces := doc(part(1), strings.Repeat(" \n\t\r", (maxCompleteBody-200)/4), part(2))
	for name, d := range map[string]string{"ETag": etag, "whitespace": spaces} {
		if !wellFormedComplete([]byte(d)) {
			t.Errorf("%s: %d bytes refused", name, len(d))
		}
	}
	if wellFormedComplete([]byte(doc(part(1), strings.Repeat(" ", 1<<20)+"x", part(2)))) {
		t.Errorf("text after 1 MiB of whitespace in the root accepted")
	}
}

// FuzzCompleteDoc checks that the scanner never panics, never accepts a document encoding/xml
// refuses (the check it replaced), counts the same parts when it accepts, and stops counting at
// the 10,001st part.
func FuzzCompleteDoc(f *testing.F) {
	for _, tc := range completeCases {
		if len(tc.doc) < 4096 {
			f.Add([]byte(tc.doc))
		}
	}
	files, _ := filepath.Glob("testdata/complete/*.xml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		parts, ok := scanComplete(body)
		if parts > maxParts+1 {
			t.Fatalf("counted %d parts; the scan must stop at %d", parts, maxParts+1)
		}
		if !ok {
			return
		}
		oparts, oracle := decodeComplete(body)
		if !oracle || oparts != parts || parts < 1 {
			t.Fatalf("scanner accepted %q (%d parts); encoding/xml: %v (%d parts)", body, parts, oracle, oparts)
		}
	})
}

// rawTokenComplete is the other streaming candidate, measured against the scanner in
// BenchmarkCompleteDoc: encoding/xml's RawToken with the same stop at the 10,001st part. It checks
// less than the scanner (names only, no PartNumber range) and still allocates per token.
func rawTokenComplete(body []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	var stack []string
	parts := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return len(stack) == 0 && parts > 0
		}
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, t.Name.Local)
			if len(stack) == 2 && t.Name.Local == "Part" {
				if parts++; parts > maxParts {
					return false
				}
			}
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1] != t.Name.Local {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// completeBenchDocs are the documents of the benchmark and of the allocation test: the largest
// valid document, 4 MiB of tiny valid parts (refused at the 10,001st) and the review's 4 MiB of
// <Part/> (refused at the first).
func completeBenchDocs() []struct {
	name string
	body []byte
	ok   bool
} {
	tiny := padTo(maxCompleteBody, "<Part><ETag>e</ETag><PartNumber>1</PartNumber></Part>")
	return []struct {
		name string
		body []byte
		ok   bool
	}{
		{"10000-parts", manyParts(maxParts), true},
		{"4MiB-tiny-parts", tiny, false},
		{"4MiB-empty-parts", padTo(maxCompleteBody, "<Part/>"), false},
	}
}

func BenchmarkCompleteDoc(b *testing.B) {
	checkers := []struct {
		name string
		fn   func([]byte) bool
	}{
		{"scanner", wellFormedComplete},
		{"xml-RawToken", rawTokenComplete},
		{"xml-Decode", func(body []byte) bool { _, ok := decodeComplete(body); return ok }},
	}
	for _, d := range completeBenchDocs() {
		for _, c := range checkers {
			b.Run(d.name+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(d.body)))
				b.ReportAllocs()
				for b.Loop() {
					c.fn(d.body)
				}
			})
		}
	}
}
