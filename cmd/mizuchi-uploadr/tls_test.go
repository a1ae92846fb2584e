package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/internal/s3test"
	"github.com/mizuchi/uploadr/internal/testca"
)

// testCA is a certificate authority made by the test, and the PEM file of its certificate.
type testCA struct {
	*testca.Cert
	pemOut string
	pool   *x509.CertPool
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	c, err := testca.New(testca.Spec{CommonName: "mizuchi test CA", Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{Cert: c, pemOut: filepath.Join(dir, "ca.pem"), pool: c.Pool()}
	writeFile(t, ca.pemOut, c.CertPEM())
	return ca
}

// issue writes a server certificate for 127.0.0.1 and localhost with serial to certFile and its
// key to keyFile (the key first).
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	leaf, err := ca.Issue(testca.Spec{Serial: serial, CommonName: "127.0.0.1", Validity: 23 * time.Hour,
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyFile, leaf.KeyPEM())
	writeFile(t, certFile, leaf.CertPEM())
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tlsProxy is the binary serving https (beside its plain listener) in front of versitygw.
type tlsProxy struct {
	*running
	up                *s3test.Server
	ca                *testCA
	tlsAddr           string
	certFile, keyFile string
}

func startTLSProxy(t *testing.T, upBucket string, extra ...string) *tlsProxy {
	t.Helper()
	up := s3test.Start(t)
	up.CreateBucket(t, upBucket)
	dir := publicTempDir(t)
	ca := newTestCA(t, dir)
	p := &tlsProxy{up: up, ca: ca, certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"),
		tlsAddr: fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))}
	ca.issue(t, 100, p.certFile, p.keyFile)
	args := append([]string{"-tls-address", p.tlsAddr, "-tls-cert", p.certFile, "-tls-key", p.keyFile}, extra...)
	p.running = startBinary(t, up, upBucket, args, nil)
	return p
}

func (p *tlsProxy) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: p.ca.pool, ServerName: "127.0.0.1"}
}

// dialTLS opens a keep-alive https connection to the proxy.
func (p *tlsProxy) dialTLS(t *testing.T, cfg *tls.Config) (*client, *tls.Conn) {
	t.Helper()
	c, err := tls.Dial("tcp", p.tlsAddr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, addr: p.tlsAddr, c: c, br: bufio.NewReader(c)}, c
}

// sdk is an aws-sdk-go-v2 client of the proxy's https listener, as users build it
// (LoadDefaultConfig: default checksums), trusting the test CA.
func (p *tlsProxy) sdk(t *testing.T, opts ...func(*s3.Options)) *s3.Client {
	t.Helper()
	// A BuildableClient: the machine's AWS_CA_BUNDLE (LoadDefaultConfig reads it) is added to the
	// test CA instead of refusing a plain *http.Client.
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.TLSClientConfig = p.tlsConfig() })
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"), config.WithHTTPClient(hc),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(clientAK, clientSK, "")))
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String("https://" + p.tlsAddr)
		o.UsePathStyle = true
	}}, opts...)...)
}

func (p *tlsProxy) checkObject(t *testing.T, upBucket, key string, want []byte) {
	t.Helper()
	got, _ := p.up.GetObject(t, upBucket, key)
	if !bytes.Equal(got, want) {
		t.Errorf("%s: upstream has %d bytes, want %d", key, len(got), len(want))
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// https for clients: aws-sdk-go-v2 with its default checksums (over https: unsigned-trailer
// aws-chunked with a Content-Length), PutObject small and 5 MiB and a multipart upload; a refusal
// carries the S3 XML error; TLS 1.2 and 1.3, ALPN http/1.1, session resumption.
func TestTLSGoSDK(t *testing.T) {
	p := startTLSProxy(t, "tlsgo")
	cl := p.sdk(t)
	ctx := context.Background()
	small, big5 := randomBytes(t, 1000), randomBytes(t, 5<<20)
	for key, body := range map[string][]byte{"small": small, "five": big5} {
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String(key),
			Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PutObject %s: %v", key, err)
		}
		p.checkObject(t, "tlsgo", key, body)
	}

	mp, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("uploads"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{big5, small}
	var done []types.CompletedPart
	for i, b := range parts {
		n := int32(i + 1)
		out, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("uploads"), Key: aws.String("mp"),
			UploadId: mp.UploadId, PartNumber: &n, Body: bytes.NewReader(b)})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", n, err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("uploads"),
		Key: aws.String("mp"), UploadId: mp.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	p.checkObject(t, "tlsgo", "mp", append(append([]byte{}, big5...), small...))

	// A wrong signature over TLS: 403 with the S3 XML error.
	c, _ := p.dialTLS(t, p.tlsConfig())
	resp, body, err := c.putAs("uploads", "bad", 10, clientAK, "wrong-secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 403 || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
		t.Errorf("wrong signature: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if p.up.ObjectExists(t, "tlsgo", "bad") {
		t.Error("a refused PUT left an object")
	}

	// TLS bodies take the copy path: nothing was spliced.
	if sp, cp := p.metric(t, `mizuchi_transfer_bytes_total{mode="splice"}`), p.metric(t, `mizuchi_transfer_bytes_total{mode="copy"}`); sp != 0 || cp < 5<<20 {
		t.Errorf("transfer bytes: splice %v copy %v; want only copy", sp, cp)
	}

	// Versions, ALPN and resumption.
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := p.tlsConfig()
		cfg.MinVersion, cfg.MaxVersion, cfg.NextProtos = v, v, []string{"h2", "http/1.1"}
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		for i := 0; i < 2; i++ {
			c, tc := p.dialTLS(t, cfg)
			resp, _, err := c.put("uploads", fmt.Sprintf("v%x-%d", v, i), 4096)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("TLS %x PUT: %v %v", v, err, resp)
			}
			st := tc.ConnectionState()
			if st.Version != v || st.NegotiatedProtocol != "http/1.1" {
				t.Errorf("TLS %x: version %x, ALPN %q", v, st.Version, st.NegotiatedProtocol)
			}
			if i == 1 && !st.DidResume {
				t.Errorf("TLS %x: the second connection did not resume its session", v)
			}
			tc.Close()
		}
	}
}

// The handshake timeout closes a connection that never sends its ClientHello.
func TestTLSHandshakeTimeout(t *testing.T) {
	p := startTLSProxy(t, "tlshs", "-tls-handshake-timeout", "500ms")
	c, err := net.Dial("tcp", p.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("silent connection: read %v after %s; want closed after ~500ms", err, time.Since(start))
	}
	// The listener still serves.
	cl, _ := p.dialTLS(t, p.tlsConfig())
	if resp, _, err := cl.put("uploads", "after", 100); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT after a timed-out handshake: %v %v", err, resp)
	}
}

// SIGHUP reloads the certificate: new handshakes see the new one, an open keep-alive connection
// keeps working; a bad pair keeps the served one.
func TestTLSCertificateReload(t *testing.T) {
	p := startTLSProxy(t, "tlsre")
	serial := func() int64 {
		c, err := tls.Dial("tcp", p.tlsAddr, p.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 100 {
		t.Fatalf("serial %d, want 100", s)
	}
	old, _ := p.dialTLS(t, p.tlsConfig())
	if resp, _, err := old.put("uploads", "before", 1000); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT: %v %v", err, resp)
	}

	p.ca.issue(t, 200, p.certFile, p.keyFile)
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, func() bool { return serial() == 200 })
	if resp, _, err := old.put("uploads", "during", 1000); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT on the connection opened before the reload: %v %v", err, resp)
	}

	// A bad pair: the new certificate with a key that does not match it.
	other := filepath.Join(filepath.Dir(p.certFile), "other.pem")
	p.ca.issue(t, 300, other, p.keyFile)
	failed := p.scrape(t, `mizuchi_config_reloads_total{result="error"}`)
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, func() bool { return p.scrape(t, `mizuchi_config_reloads_total{result="error"}`) > failed })
	if s := serial(); s != 200 {
		t.Errorf("after a bad pair: serial %d, want 200 kept", s)
	}
	if resp, _, err := old.put("uploads", "after", 1000); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT after a failed reload: %v %v", err, resp)
	}
	for _, k := range []string{"before", "during", "after"} {
		if !p.up.ObjectExists(t, "tlsre", k) {
			t.Errorf("object %s missing", k)
		}
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const boto3TLS = `
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["MIZUCHI_ENDPOINT"], verify=sys.argv[1])
s3.put_object(Bucket="uploads", Key=sys.argv[2], Body=b"x" * 100000)
s3.upload_file(sys.argv[3], "uploads", sys.argv[2] + "-mp")
`

// curl, aws cli and boto3 over https. aws cli and boto3 with their default checksums send
// Transfer-Encoding: chunked around an aws-chunked body (STREAMING-UNSIGNED-PAYLOAD-TRAILER with a
// CRC32 trailer, no Content-Length) over https: de-chunked by the proxy, single PUTs and multipart
// uploads (9 MiB: two parts) are stored whole; with AWS_REQUEST_CHECKSUM_CALCULATION=when_required
// they send a Content-Length and work too.
func TestTLSRealClients(t *testing.T) {
	p := startTLSProxy(t, "tlscli")
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	data := randomBytes(t, 9<<20) // aws cli and boto3: two 8 MiB-part multipart uploads
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// curl --aws-sigv4 with UNSIGNED-PAYLOAD.
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, data[:50000], 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("curl", "-sS", "--fail-with-body", "--cacert", p.ca.pemOut,
		"--aws-sigv4", "aws:amz:us-east-1:s3", "--user", clientAK+":"+clientSK,
		"-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-T", small,
		"https://"+p.tlsAddr+"/uploads/curl").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	p.checkObject(t, "tlscli", "curl", data[:50000])

	env := s3test.ClientEnv{Endpoint: "https://" + p.tlsAddr, AccessKey: clientAK, SecretKey: clientSK,
		Extra: []string{"AWS_CA_BUNDLE=" + p.ca.pemOut}}
	whenRequired := env
	whenRequired.Extra = append(whenRequired.Extra, "AWS_REQUEST_CHECKSUM_CALCULATION=when_required")

	// The default over https: Transfer-Encoding: chunked, single PUT and multipart.
	if o, e, err := s3test.RunAWS(t, env, "s3", "cp", small, "s3://uploads/cli-default"); err != nil {
		t.Fatalf("aws cli default checksums over https: %v\n%s\n%s", err, o, e)
	}
	if o, e, err := s3test.RunAWS(t, env, "s3", "cp", file, "s3://uploads/cli-default-mp"); err != nil {
		t.Fatalf("aws cli default checksums over https, multipart: %v\n%s\n%s", err, o, e)
	}
	p.checkObject(t, "tlscli", "cli-default", data[:50000])
	p.checkObject(t, "tlscli", "cli-default-mp", data)
	if o, e, err := s3test.RunAWS(t, whenRequired, "s3", "cp", file, "s3://uploads/cli"); err != nil {
		t.Fatalf("aws s3 cp --ca-bundle (when_required): %v\n%s\n%s", err, o, e)
	}
	if o, e, err := s3test.RunAWS(t, whenRequired, "--ca-bundle", p.ca.pemOut, "s3", "cp", small, "s3://uploads/cli-small"); err != nil {
		t.Fatalf("aws s3 cp --ca-bundle: %v\n%s\n%s", err, o, e)
	}
	p.checkObject(t, "tlscli", "cli", data)
	p.checkObject(t, "tlscli", "cli-small", data[:50000])

	pyDefault := env
	pyDefault.Extra = nil // verify= names the CA, not AWS_CA_BUNDLE
	if o, e, err := s3test.RunPython(t, pyDefault, boto3TLS, p.ca.pemOut, "py-default", file); err != nil {
		t.Fatalf("boto3 default checksums over https: %v\n%s\n%s", err, o, e)
	}
	p.checkObject(t, "tlscli", "py-default", bytes.Repeat([]byte("x"), 100000))
	p.checkObject(t, "tlscli", "py-default-mp", data)
	pyWR := pyDefault
	pyWR.Extra = []string{"AWS_REQUEST_CHECKSUM_CALCULATION=when_required"}
	if o, e, err := s3test.RunPython(t, pyWR, boto3TLS, p.ca.pemOut, "py", file); err != nil {
		t.Fatalf("boto3 verify= (when_required): %v\n%s\n%s", err, o, e)
	}
	p.checkObject(t, "tlscli", "py", bytes.Repeat([]byte("x"), 100000))
	p.checkObject(t, "tlscli", "py-mp", data)
}

// -check validates the certificate and key: a mismatched pair fails, a certificate that expires
// within 30 days is a warning.
func TestTLSCheck(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	ca.issue(t, 5, cert, key) // valid 23 h: expiring
	cfg := filepath.Join(dir, "cfg.yaml")
	_ = os.WriteFile(cfg, []byte(`buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
`), 0o600)
	out, err := exec.Command(binPath, "-check", "-config", cfg, "-tls-address", "127.0.0.1:0", "-tls-cert", cert, "-tls-key", key).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration ok") || !strings.Contains(string(out), "warning: server.tls: certificate "+cert+" expires in") {
		t.Errorf("-check with an expiring certificate: %v\n%s", err, out)
	}
	ca.issue(t, 6, filepath.Join(dir, "other.pem"), key) // key no longer matches cert
	out, err = exec.Command(binPath, "-check", "-config", cfg, "-tls-address", "127.0.0.1:0", "-tls-cert", cert, "-tls-key", key).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "private key does not match public key") {
		t.Errorf("-check with a mismatched pair: %v\n%s", err, out)
	}
	out, err = exec.Command(binPath, "-check", "-config", cfg, "-tls-address", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "server.tls.cert_file and server.tls.key_file are required") {
		t.Errorf("-check without files: %v\n%s", err, out)
	}
}

// SIGTERM with an upload in flight over TLS: the https listener closes (new handshakes fail), the
// upload finishes within drain_timeout and is stored, the process exits 0.
func TestTLSDrain(t *testing.T) {
	p := startTLSProxy(t, "tlsdr")
	c, err := tls.Dial("tcp", p.tlsAddr, p.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 4 << 20
	if _, err := io.WriteString(c, signedHead(t, "PUT", p.tlsAddr, "/uploads/drained", size, clientAK, clientSK, nil)); err != nil {
		t.Fatal(err)
	}
	u := &slowUpload{c: c, size: size}
	u.more(t, 1<<20)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitUntil(t, func() bool {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	waitUntil(t, func() bool {
		nc, err := tls.Dial("tcp", p.tlsAddr, p.tlsConfig())
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	u.more(t, size-1<<20)
	if st := u.status(t); st != 200 {
		t.Fatalf("drained upload: %d", st)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if !p.up.ObjectExists(t, "tlsdr", "drained") {
		t.Error("the drained upload was not stored")
	}
}

const jsTLS = `
const { S3Client, PutObjectCommand } = require("@aws-sdk/client-s3");
const { Upload } = require("@aws-sdk/lib-storage");
const s3 = new S3Client({ endpoint: process.env.MIZUCHI_ENDPOINT, forcePathStyle: true, maxAttempts: 1 });
(async () => {
  await s3.send(new PutObjectCommand({ Bucket: "uploads", Key: "js", Body: Buffer.alloc(200000, 7) }));
  await new Upload({ client: s3, params: { Bucket: "uploads", Key: "js-mp", Body: Buffer.alloc(11 << 20, 9) } }).done();
})().catch((e) => { console.error(e); process.exit(1); });
`

// The AWS SDK for JavaScript v3 over https (NODE_EXTRA_CA_CERTS), default checksums: a PutObject
// of a Buffer and a lib-storage multipart Upload.
func TestTLSJSSDK(t *testing.T) {
	p := startTLSProxy(t, "tlsjs")
	env := s3test.ClientEnv{Endpoint: "https://" + p.tlsAddr, AccessKey: clientAK, SecretKey: clientSK,
		Extra: []string{"NODE_EXTRA_CA_CERTS=" + p.ca.pemOut}}
	if o, e, err := s3test.RunNode(t, env, jsTLS); err != nil {
		t.Fatalf("node: %v\n%s\n%s", err, o, e)
	}
	p.checkObject(t, "tlsjs", "js", bytes.Repeat([]byte{7}, 200000))
	p.checkObject(t, "tlsjs", "js-mp", bytes.Repeat([]byte{9}, 11<<20))
}
