package postform_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/postform"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// FuzzParse checks that Parse never panics, that an accepted form's data start lies inside the
// input, that the prefix up to its data start parses the same, and that FileEnd and the Scanner
// stay inside what follows.
func FuzzParse(f *testing.F) {
	body, boundary := awsForm(f, nil)
	f.Add(body, boundary)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx"), "b")
	f.Add([]byte("x\r\n--b\r\n\r\n"), "b")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		if boundary == "" {
			return
		}
		form, err := postform.Parse(body, boundary, postform.MaxPreData)
		if err != nil {
			return
		}
		if form.DataStart < 0 || form.DataStart > len(body) {
			t.Fatalf("DataStart %d outside %d bytes", form.DataStart, len(body))
		}
		if _, err := postform.Parse(body[:form.DataStart], boundary, postform.MaxPreData); err != nil {
			t.Fatalf("the prefix up to DataStart: %v", err)
		}
		if n, err := postform.FileEnd(body, form.DataStart, boundary); err == nil && (n < 0 || int64(form.DataStart)+n > int64(len(body))) {
			t.Fatalf("FileEnd = %d outside the body (data at %d of %d)", n, form.DataStart, len(body))
		}
		s := postform.NewScanner(boundary)
		_ = s.Write(body[form.DataStart:])
	})
}

// FuzzDecodePolicy checks that DecodePolicy and Check never panic on any document.
func FuzzDecodePolicy(f *testing.F) {
	f.Add(awsPolicy)
	f.Add(b64(`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 0, 5], {"key": "k"}]}`))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := postform.DecodePolicy(s)
		if err != nil {
			return
		}
		form := &postform.Form{Fields: []postform.Field{{Name: "key", Value: "k"}}}
		_ = p.Check(form, "b", time.Unix(0, 0))
		_, _, _ = p.LengthRange()
	})
}
