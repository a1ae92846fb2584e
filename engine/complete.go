package engine

import (
	"bytes"
	"encoding/xml"
)

// completeDoc is the CompleteMultipartUpload document, as far as the proxy checks it.
type completeDoc struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

// wellFormedComplete reports whether body is a well-formed CompleteMultipartUpload document with at
// least one part, part numbers 1..10000 and an ETag each. The upstream checks the rest (order,
// existence, sizes) and its errors are relayed.
func wellFormedComplete(body []byte) bool {
	var doc completeDoc
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	if err := d.Decode(&doc); err != nil || len(doc.Parts) == 0 || len(doc.Parts) > maxParts {
		return false
	}
	for _, p := range doc.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxParts || p.ETag == "" {
			return false
		}
	}
	// Nothing but whitespace may follow the document.
	for {
		tok, err := d.Token()
		if err != nil {
			return err.Error() == "EOF"
		}
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			return false
		}
	}
}
