package postform

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Policy is a decoded POST policy document:
//
//	{ "expiration": "2007-12-01T12:00:00.000Z",
//	  "conditions": [ {"bucket": "b"}, ["starts-with", "$key", "user/"],
//	                  ["eq", "$acl", "private"], ["content-length-range", 1, 10485760] ] }
type Policy struct {
	Expiration time.Time
	Conditions []Condition
}

// Condition is one element of conditions. The object form {"name": "value"} is an exact match,
// the same as ["eq", "$name", "value"].
type Condition struct {
	Op    string // "eq", "starts-with" or "content-length-range"
	Field string // lower case, without '$'; "" for content-length-range
	Value string
	Min   int64 // content-length-range
	Max   int64
}

// String renders c as S3 quotes a failed condition: ["eq", "$key", "value"].
func (c *Condition) String() string {
	if c.Op == "content-length-range" {
		return "[\"content-length-range\", " + strconv.FormatInt(c.Min, 10) + ", " + strconv.FormatInt(c.Max, 10) + "]"
	}
	v, _ := json.Marshal(c.Value)
	return "[\"" + c.Op + "\", \"$" + c.Field + "\", " + string(v) + "]"
}

// maxPolicy bounds the decoded document (it comes in a form field, itself under MaxPreData).
const maxPolicy = MaxPreData

// DecodePolicy decodes the base64 policy field. Anything but a JSON object with a string
// expiration (RFC 3339, as S3's ISO 8601 "2007-12-01T12:00:00.000Z") and an array of conditions of
// the three shapes is ErrPolicyMalformed.
func DecodePolicy(b64 string) (*Policy, error) {
	if len(b64) > base64.StdEncoding.EncodedLen(maxPolicy) {
		return nil, ErrPolicyMalformed
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, ErrPolicyMalformed.with("Invalid Policy: Invalid 'Base64' encoding.")
	}
	var doc struct {
		Expiration *string           `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, ErrPolicyMalformed.with("Invalid Policy: Invalid JSON.")
	}
	if doc.Expiration == nil {
		return nil, ErrPolicyMalformed.with("Invalid Policy: Policy missing expiration.")
	}
	exp, err := time.Parse(time.RFC3339Nano, *doc.Expiration)
	if err != nil {
		return nil, ErrPolicyMalformed.with("Invalid Policy: Invalid 'expiration' value: '" + quoteBounded(*doc.Expiration) + "'")
	}
	p := &Policy{Expiration: exp}
	for _, rc := range doc.Conditions {
		if err := p.addCondition(rc); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Policy) addCondition(rc json.RawMessage) error {
	rc = bytes.TrimSpace(rc)
	bad := ErrPolicyMalformed.with("Invalid Policy: Invalid Simple-Condition: " + quoteBounded(string(rc)))
	if len(rc) > 0 && rc[0] == '{' {
		var m map[string]string
		if err := json.Unmarshal(rc, &m); err != nil || len(m) != 1 {
			return bad
		}
		for k, v := range m {
			p.Conditions = append(p.Conditions, Condition{Op: "eq", Field: strings.ToLower(strings.TrimPrefix(k, "$")), Value: v})
		}
		return nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(rc, &a); err != nil || len(a) != 3 {
		return bad
	}
	var op string
	if json.Unmarshal(a[0], &op) != nil {
		return bad
	}
	switch op = strings.ToLower(op); op {
	case "eq", "starts-with":
		var field, value string
		if json.Unmarshal(a[1], &field) != nil || json.Unmarshal(a[2], &value) != nil || !strings.HasPrefix(field, "$") || len(field) < 2 {
			return bad
		}
		p.Conditions = append(p.Conditions, Condition{Op: op, Field: strings.ToLower(field[1:]), Value: value})
	case "content-length-range":
		lo, ok1 := jsonInt(a[1])
		hi, ok2 := jsonInt(a[2])
		if !ok1 || !ok2 || lo < 0 || hi < lo {
			return bad
		}
		p.Conditions = append(p.Conditions, Condition{Op: op, Min: lo, Max: hi})
	default:
		return bad
	}
	return nil
}

// jsonInt reads a non-negative integer given as a JSON number or a decimal string.
func jsonInt(r json.RawMessage) (int64, bool) {
	var s string
	if json.Unmarshal(r, &s) != nil {
		s = string(r)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// quoteBounded bounds a piece of the (signed or not) policy quoted in a message.
func quoteBounded(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

// exempt are the form fields no condition needs to cover (S3: "Each form field that you specify
// in a form (except x-amz-signature, file, policy, and field names that have an x-ignore- prefix)
// must appear in the list of conditions.").
func exempt(name string) bool {
	n := strings.ToLower(name)
	return n == "policy" || n == "x-amz-signature" || n == "file" || strings.HasPrefix(n, "x-ignore-")
}

// Check evaluates the policy at now against the form, for the client-facing bucket name: the
// expiration (ErrExpired), every eq and starts-with condition (ErrCondition, the first that
// failed quoted in Detail as S3 quotes it) and the coverage of every form field (ErrExtraFields,
// the uncovered names in Detail). A condition on a field the form lacks compares against "". The
// content-length-range is checked separately (CheckLength), as the file's length is known only
// from the request's Content-Length.
func (p *Policy) Check(f *Form, bucket string, now time.Time) error {
	if !now.Before(p.Expiration) {
		return ErrExpired.with(ErrExpired.Reason)
	}
	for i := range p.Conditions {
		c := &p.Conditions[i]
		if c.Op == "content-length-range" {
			continue
		}
		var v string
		if c.Field == "bucket" {
			v = bucket
		} else {
			v, _ = f.Get(c.Field)
		}
		if c.Op == "eq" && v != c.Value || c.Op == "starts-with" && !startsWith(c.Field, v, c.Value) {
			return ErrCondition.with(ErrCondition.Reason + ": " + c.String())
		}
	}
	var extra []string
	for _, fl := range f.Fields {
		if exempt(fl.Name) || p.covers(fl.Name) {
			continue
		}
		extra = append(extra, fl.Name)
	}
	if len(extra) > 0 {
		return ErrExtraFields.with(ErrExtraFields.Reason + ": " + quoteBounded(strings.Join(extra, ", ")))
	}
	return nil
}

// startsWith is the starts-with test. For Content-Type S3 accepts a comma-separated list of
// values, each of which must start with the prefix.
func startsWith(field, v, prefix string) bool {
	if field != "content-type" || !strings.Contains(v, ",") {
		return strings.HasPrefix(v, prefix)
	}
	for _, part := range strings.Split(v, ",") {
		if !strings.HasPrefix(strings.TrimSpace(part), prefix) {
			return false
		}
	}
	return true
}

func (p *Policy) covers(name string) bool {
	for i := range p.Conditions {
		if p.Conditions[i].Field != "" && strings.EqualFold(p.Conditions[i].Field, name) {
			return true
		}
	}
	return false
}

// LengthRange is the intersection of the policy's content-length-range conditions; ok is false
// when it has none.
func (p *Policy) LengthRange() (lo, hi int64, ok bool) {
	for _, c := range p.Conditions {
		if c.Op != "content-length-range" {
			continue
		}
		if !ok {
			lo, hi, ok = c.Min, c.Max, true
			continue
		}
		lo, hi = max(lo, c.Min), min(hi, c.Max)
	}
	return lo, hi, ok
}

// CheckLength checks a file of n bytes against the content-length-range: ErrTooLarge,
// ErrTooSmall or nil.
func (p *Policy) CheckLength(n int64) error {
	lo, hi, ok := p.LengthRange()
	switch {
	case !ok:
		return nil
	case n > hi:
		return ErrTooLarge
	case n < lo:
		return ErrTooSmall
	}
	return nil
}
