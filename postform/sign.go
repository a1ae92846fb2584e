package postform

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Algorithm is the only x-amz-algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// Auth is the SigV4 part of a form: the base64 policy, its signature and the credential scope.
type Auth struct {
	Policy    string // the policy field, base64 (what was signed)
	Signature string // hex
	AccessKey string
	Date      string // yyyymmdd, the credential scope's
	Region    string
	AmzDate   time.Time
}

// ParseAuth reads policy, x-amz-signature, x-amz-algorithm, x-amz-credential and x-amz-date from
// the form. x-amz-credential is <access key>/<yyyymmdd>/<region>/s3/aws4_request; x-amz-date is
// yyyymmddThhmmssZ on the credential's day.
func ParseAuth(f *Form) (*Auth, error) {
	var a Auth
	var ok [5]bool
	a.Policy, ok[0] = f.Get("policy")
	a.Signature, ok[1] = f.Get("x-amz-signature")
	algo, ok2 := f.Get("x-amz-algorithm")
	cred, ok3 := f.Get("x-amz-credential")
	date, ok4 := f.Get("x-amz-date")
	ok[2], ok[3], ok[4] = ok2, ok3, ok4
	for _, o := range ok {
		if !o {
			return nil, ErrMissingAuth
		}
	}
	if algo != Algorithm {
		return nil, ErrAlgorithm
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" || len(parts[1]) != 8 || parts[2] == "" || parts[3] != "s3" || parts[4] != "aws4_request" {
		return nil, ErrCredential
	}
	a.AccessKey, a.Date, a.Region = parts[0], parts[1], parts[2]
	t, err := time.Parse("20060102T150405Z", date)
	if err != nil || date[:8] != a.Date {
		return nil, ErrCredential
	}
	a.AmzDate = t
	return &a, nil
}

// SigningKey derives the SigV4 signing key for secret on date (yyyymmdd) in region for service.
func SigningKey(secret, date, region, service string) []byte {
	k := mac([]byte("AWS4"+secret), date)
	k = mac(k, region)
	k = mac(k, service)
	return mac(k, "aws4_request")
}

func mac(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// Sign returns the hex signature of the base64 policy for an S3 credential scope.
func Sign(secret, date, region, policyB64 string) string {
	return hex.EncodeToString(mac(SigningKey(secret, date, region, "s3"), policyB64))
}

// VerifySignature checks a's signature with secret, in constant time: ErrSignature or nil.
func (a *Auth) VerifySignature(secret string) error {
	want := Sign(secret, a.Date, a.Region, a.Policy)
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(a.Signature))) {
		return ErrSignature
	}
	return nil
}
