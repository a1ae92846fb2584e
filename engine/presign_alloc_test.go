//go:build !race

package engine

import (
	"testing"

	"github.com/mizuchi/uploadr/httpparse"
)

// The in-loop checks of a presigned UploadPart (routing, the presigned branch of authenticate,
// and the upstream head with its filter over the percent-encoded X-Amz-SignedHeaders) allocate
// nothing once the key caches are warm.
func TestInLoopPresignedAllocs(t *testing.T) {
	e := newAdmitEngine(t)
	buf := presignReq{method: "PUT", path: "/sig/big.bin", query: "partNumber=7&uploadId=abc&x-id=UploadPart", cl: "5",
		signed: []string{"X-Amz-Meta-Color: red", "Content-Type: text/plain"},
		edit:   addLine("User-Agent: unsigned")}.wire(t)
	var p httpparse.Parser
	st := &connState{req: new(httpparse.Request)}
	if err := p.Parse(buf, e.limits, st.req); err != nil {
		t.Fatal(err)
	}
	req := st.req
	j := new(job)
	run := func() {
		rt, s3err := e.routeRequest(req.Method.Bytes(buf), req.Host.Bytes(buf), req.Path.Bytes(buf), req.Query.Bytes(buf), req.HasQuery, false)
		if s3err != nil {
			t.Fatal(s3err.Message)
		}
		st.rt = rt
		st.head = Head{req: st.req, buf: buf}
		pr, s3err := rt.bucket.auth.Authenticate(&st.head)
		if s3err != nil {
			t.Fatal(s3err.Message)
		}
		if pr.Method != "sigv4-presigned" {
			t.Fatalf("principal %+v", pr)
		}
		st.signed, st.principal = st.head.signed, pr
		if err := e.buildUpstreamHead(j, st, rt.bucket, buf); err != nil {
			t.Fatal(err)
		}
	}
	run() // warms the key caches and the job's buffers
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Errorf("route + authenticate + buildUpstreamHead: %v allocs per run; want 0", n)
	}
}
