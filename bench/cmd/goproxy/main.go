// Command goproxy is what a Go shop would write instead of Mizuchi Uploadr: net/http's server (one
// goroutine per connection) and httputil.ReverseProxy streaming the body to the upstream, with the
// request re-signed for the upstream (SigV4 with s3sig, payload UNSIGNED-PAYLOAD) as the proxy does.
// It does not verify the client's signature.
//
//	goproxy -listen 127.0.0.1:7073 -upstream http://127.0.0.1:7071 -access-key AK -secret-key SK
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7073", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:7071", "upstream URL")
	resign := flag.Bool("resign", true, "re-sign each request for the upstream (SigV4)")
	access := flag.String("access-key", "bench", "upstream access key")
	secret := flag.String("secret-key", "bench-secret", "upstream secret key")
	region := flag.String("region", "us-east-1", "upstream region")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(2)
	}
	cred := s3sig.Credentials{AccessKey: *access, SecretKey: *secret}
	keys := s3sig.NewKeyCache(0)
	signers := sync.Pool{New: func() any { return &signer{s: s3sig.NewSigner(keys)} }}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
			if *resign {
				sg := signers.Get().(*signer)
				sg.sign(r.Out, cred, *region)
				signers.Put(sg)
			}
		},
		Transport: &http.Transport{
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		},
		ErrorLog: log.New(os.Stderr, "goproxy: ", 0),
	}
	fmt.Fprintln(os.Stderr, "goproxy: listening on", *listen, "upstream", target)
	srv := &http.Server{Addr: *listen, Handler: rp, ReadHeaderTimeout: 30 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
}

// signer re-signs outgoing requests; one per goroutine at a time (from a sync.Pool).
type signer struct {
	s    *s3sig.Signer
	date []byte
	auth []byte
}

func (sg *signer) sign(out *http.Request, cred s3sig.Credentials, region string) {
	sg.date = s3sig.AppendAmzDate(sg.date[:0], time.Now())
	payload := out.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = s3sig.UnsignedPayload
	}
	out.Header.Set("X-Amz-Content-Sha256", payload)
	out.Header.Set("X-Amz-Date", string(sg.date))
	out.Header.Del("Authorization")
	req := s3sig.Request{
		Method: []byte(out.Method),
		Path:   []byte(out.URL.EscapedPath()),
		Query:  []byte(out.URL.RawQuery),
		Headers: []s3sig.Header{
			{Name: []byte("host"), Value: []byte(out.Host)},
			{Name: []byte("x-amz-content-sha256"), Value: []byte(payload)},
			{Name: []byte("x-amz-date"), Value: sg.date},
		},
		PayloadHash: []byte(payload),
	}
	var err error
	if sg.auth, err = sg.s.Sign(sg.auth[:0], &req, cred, sg.date, region, "s3"); err == nil {
		out.Header.Set("Authorization", string(sg.auth))
	}
}
