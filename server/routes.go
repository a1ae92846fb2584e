package server

import (
	"fmt"
	"strings"

	"github.com/mizuchi/uploadr/engine"
)

// Routes describes, one line each, how requests reach the upstream under c (normalized): every
// bucket entry, the any-bucket entry ("*") and the virtual-hosted-style suffixes. -check prints
// it after "configuration ok". It never prints a secret.
func (c *Config) Routes() []string {
	var out []string
	wild := false
	for _, b := range c.Buckets {
		name := strings.TrimPrefix(b.PathPrefix, "/")
		if name == "" {
			name = b.Name
		}
		auth := "sigv4"
		if b.Auth.None {
			auth = "none"
		}
		if b.Auth.JWT != nil {
			auth = jwtRouteAuth(b.Auth)
		}
		if name == engine.WildcardBucket {
			wild = true
			out = append(out, fmt.Sprintf("bucket *: any other bucket name B (a valid S3 bucket name, else 400 InvalidBucketName) -> bucket B at %s (auth %s; named buckets take precedence)",
				b.S3.Endpoint, auth))
			continue
		}
		out = append(out, fmt.Sprintf("bucket %s -> bucket %s at %s (auth %s)", name, b.S3.Bucket, b.S3.Endpoint, auth))
	}
	if !wild {
		out = append(out, "any other bucket: 403 AccessDenied (no \"*\" entry)")
	}
	if len(c.Server.VirtualHostSuffixes) == 0 {
		out = append(out, "addressing: path style only (/<bucket>/<key>)")
	} else {
		out = append(out, "addressing: virtual-hosted style for Host <bucket>.{"+strings.Join(c.Server.VirtualHostSuffixes, ",")+
			"}[:port] (key = the whole path); path style (/<bucket>/<key>) for any other Host")
	}
	out = append(out, uploadIDRoute(c.Server.UploadIDSecrets))
	return out
}

// uploadIDRoute says where the keys of the upload ids come from (never a secret).
func uploadIDRoute(secrets []string) string {
	if n := len(uploadIDSecrets(secrets)); n > 0 {
		return fmt.Sprintf("upload ids: bound to principal, bucket and key; keyed by server.upload_id_secrets (%d: the first signs, all verify)", n)
	}
	return "upload ids: bound to principal, bucket and key; keyed by a key derived from each bucket's upstream secret"
}
