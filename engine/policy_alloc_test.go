//go:build !race

package engine

import "testing"

// Admitting a request on a bucket with a policy allocates nothing either: the key is decoded on
// the stack, templates and content types are matched in place.
func TestAllocAdmitPolicy(t *testing.T) {
	e := newPolicyEngine(t)
	for _, r := range []admitReq{
		{method: "PUT", path: "/pol/users/" + admitAK + "/a%20b.png", cl: "10", payload: "UNSIGNED-PAYLOAD",
			hdr: []string{"Content-Type: image/png; q=1", crc32cHdr, "x-amz-storage-class: STANDARD"}},
		{method: "PUT", path: "/tok/users/u1/a.pdf", cl: "0", noSign: true, payload: emptySHA,
			hdr: []string{"x-test-token: user", "Content-Type: application/pdf"}},
	} {
		wire := r.wire(t)
		st := &connState{}
		st.head = Head{req: parseHead(t, e, wire), buf: wire}
		run := func() {
			st.head.buf = wire
			if d := e.admit(&st.head); d.err != nil || !d.noOverwrite {
				t.Fatalf("admit %s: %s, noOverwrite %v", r.path, errString(d.err), d.noOverwrite)
			}
		}
		run()
		if n := testing.AllocsPerRun(100, run); n != 0 {
			t.Errorf("admit %s with a policy: %v allocs; want 0", r.path, n)
		}
	}
}
