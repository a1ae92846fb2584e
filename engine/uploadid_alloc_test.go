//go:build !race

package engine

import "testing"

// Opening an upload token in admit allocates nothing, accepted or refused.
func TestAllocAdmitUploadID(t *testing.T) {
	e := newAdmitEngine(t)
	const path = "/sig/dir/a%20b.bin"
	good := testToken(t, admitAK, path, "2~upstream.ID_1")
	for name, r := range map[string]admitReq{
		"accepted":        {method: "PUT", path: path, query: "partNumber=1&uploadId=" + good, cl: "1", rawID: true},
		"escaped":         {method: "GET", path: path, query: "uploadId=%41" + good[1:], rawID: true},
		"other principal": {method: "DELETE", path: path, query: "uploadId=" + good, ak: admitAK2, sk: admitSK2, rawID: true},
		"forged":          {method: "POST", path: path, query: "uploadId=AQAAAAAAAAAAAAAAAAAAAAB4", cl: "1", rawID: true},
	} {
		wire := r.wire(t)
		h := Head{req: parseHead(t, e, wire), buf: wire}
		d := e.admit(&h)
		if (d.err == nil) != (name == "accepted" || name == "escaped") {
			t.Fatalf("%s: %s", name, errString(d.err))
		}
		if n := testing.AllocsPerRun(100, func() { _ = e.admit(&h) }); n != 0 {
			t.Errorf("%s: admit allocs = %v; want 0", name, n)
		}
	}
}
