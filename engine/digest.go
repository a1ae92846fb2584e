package engine

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
)

// wholeDigests are the digests a client sent for a whole body that the proxy cuts into parts. The
// upstream only ever sees parts, so the proxy computes each digest over the body as it streams
// (copy path) and verifies it before it completes the upload.
type wholeDigests struct {
	checks []digestCheck
}

type digestCheck struct {
	h    hash.Hash
	want []byte
	err  *s3Error // answered on mismatch
}

var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5) // CRC-64/NVME, reflected polynomial

// parseWholeDigests reads Content-MD5, a hex x-amz-content-sha256 and x-amz-checksum-* from the
// client's headers. It returns nil when the client sent none (the body may then be spliced).
func parseWholeDigests(hs []ownedHeader) (*wholeDigests, *s3Error) {
	var d wholeDigests
	for _, h := range hs {
		name := bytes.ToLower(h.name)
		var (
			hh   hash.Hash
			size int
			b64  = true
			err  = errBadDigest
		)
		switch string(name) {
		case "content-md5":
			hh, size = md5.New(), md5.Size
		case "x-amz-content-sha256":
			if !isHexSHA256(h.value) {
				continue // UNSIGNED-PAYLOAD
			}
			hh, size, b64, err = sha256.New(), sha256.Size, false, errSHA256Mismatch
		case "x-amz-checksum-crc32":
			hh, size = crc32.NewIEEE(), 4
		case "x-amz-checksum-crc32c":
			hh, size = crc32.New(crc32.MakeTable(crc32.Castagnoli)), 4
		case "x-amz-checksum-crc64nvme":
			hh, size = crc64.New(crc64NVMETable), 8
		case "x-amz-checksum-sha1":
			hh, size = sha1.New(), sha1.Size
		case "x-amz-checksum-sha256":
			hh, size = sha256.New(), sha256.Size
		default:
			continue
		}
		var want []byte
		var derr error
		if b64 {
			want, derr = base64.StdEncoding.DecodeString(string(bytes.TrimSpace(h.value)))
		} else {
			want, derr = hex.DecodeString(string(h.value))
		}
		if derr != nil || len(want) != size {
			return nil, errInvalidDigest
		}
		d.checks = append(d.checks, digestCheck{h: hh, want: want, err: err})
	}
	if len(d.checks) == 0 {
		return nil, nil
	}
	return &d, nil
}

// writer returns the writer that feeds every digest.
func (d *wholeDigests) writer() io.Writer {
	ws := make([]io.Writer, len(d.checks))
	for i := range d.checks {
		ws[i] = d.checks[i].h
	}
	return io.MultiWriter(ws...)
}

// verify compares every digest with what the client declared.
func (d *wholeDigests) verify() *s3Error {
	for _, c := range d.checks {
		if !bytes.Equal(c.h.Sum(nil), c.want) {
			return c.err
		}
	}
	return nil
}
