package engine

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// decodeAll runs the chunk decoder over body without signatures being checked: it exercises the
// framing only and returns the decoded bytes and the trailer.
func decodeAll(body []byte, signed bool, want checksumAlgo) ([]byte, *trailer, error) {
	cr := chunkReader{r: bufio.NewReaderSize(bytes.NewReader(body), 4096), signed: signed}
	var out []byte
	var sig [64]byte
	for {
		n, err := cr.header(&sig)
		if err != nil {
			return out, nil, err
		}
		if n == 0 {
			break
		}
		if n > int64(len(body)) {
			// The data cannot be there; production reads an unsigned chunk in pieces and fails
			// at the end of the body, never holding n bytes.
			return out, nil, io.ErrUnexpectedEOF
		}
		p := make([]byte, n)
		if err := cr.data(p); err != nil {
			return out, nil, err
		}
		out = append(out, p...)
	}
	if want == checksumNone {
		return out, nil, cr.crlf()
	}
	var t trailer
	err := cr.trailer(want, &t)
	return out, &t, err
}

const sig64 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"

func TestChunkDecoderGrammar(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		signed bool
		want   checksumAlgo
		data   string
		err    error
	}{
		{"signed", "3;chunk-signature=" + sig64 + "\r\nabc\r\n0;chunk-signature=" + sig64 + "\r\n\r\n", true, checksumNone, "abc", nil},
		{"signed trailer", "0;chunk-signature=" + sig64 + "\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:" + sig64 + "\r\n\r\n", true, checksumCRC32, "", nil},
		{"minio-go trailer line", "0;chunk-signature=" + sig64 + "\r\nx-amz-checksum-crc32:AAAAAA==\n\r\nx-amz-trailer-signature:" + sig64 + "\r\n\r\n", true, checksumCRC32, "", nil},
		{"unsigned trailer", "A\r\n0123456789\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n", false, checksumCRC32C, "0123456789", nil},
		{"no signature", "3\r\nabc\r\n0\r\n\r\n", true, checksumNone, "", errChunkFormat},
		{"signature on unsigned", "3;chunk-signature=" + sig64 + "\r\nabc\r\n", false, checksumNone, "", errChunkFormat},
		{"short signature", "3;chunk-signature=" + sig64[:63] + "\r\nabc\r\n", true, checksumNone, "", errChunkFormat},
		{"upper-case signature", "3;chunk-signature=AD" + sig64[2:] + "\r\nabc\r\n", true, checksumNone, "", errChunkFormat},
		{"leading zero", "03;chunk-signature=" + sig64 + "\r\nabc\r\n", true, checksumNone, "", errChunkFormat},
		{"space before size", " 3;chunk-signature=" + sig64 + "\r\nabc\r\n", true, checksumNone, "", errChunkFormat},
		{"bare LF", "3;chunk-signature=" + sig64 + "\nabc\r\n", true, checksumNone, "", errChunkFormat},
		{"no CRLF after data", "3;chunk-signature=" + sig64 + "\r\nabcd\r\n", true, checksumNone, "abc", errChunkFormat},
		{"too large", "100001;chunk-signature=" + sig64 + "\r\n", true, checksumNone, "", errChunkTooBig},
		{"size overflow", "fffffffffffffffff;chunk-signature=" + sig64 + "\r\n", true, checksumNone, "", errChunkFormat},
		{"short data", "5;chunk-signature=" + sig64 + "\r\nab", true, checksumNone, "", io.ErrUnexpectedEOF},
		{"no final chunk", "3;chunk-signature=" + sig64 + "\r\nabc\r\n", true, checksumNone, "abc", io.ErrUnexpectedEOF},
		{"trailer missing checksum", "0;chunk-signature=" + sig64 + "\r\nx-amz-trailer-signature:" + sig64 + "\r\n\r\n", true, checksumCRC32, "", errChunkFormat},
		{"trailer other checksum", "0;chunk-signature=" + sig64 + "\r\nx-amz-checksum-sha1:AAAAAA==\r\nx-amz-trailer-signature:" + sig64 + "\r\n\r\n", true, checksumCRC32, "", errChunkFormat},
		{"trailer twice", "0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", false, checksumCRC32, "", errChunkFormat},
		{"trailer without signature", "0;chunk-signature=" + sig64 + "\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", true, checksumCRC32, "", errChunkFormat},
		{"line after trailer signature", "0;chunk-signature=" + sig64 + "\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:" + sig64 + "\r\nx: y\r\n\r\n", true, checksumCRC32, "", errChunkFormat},
		{"trailer line too long", "0\r\nx-amz-checksum-crc32:" + string(bytes.Repeat([]byte("A"), 300)) + "\r\n\r\n", false, checksumCRC32, "", errChunkFormat},
	} {
		data, _, err := decodeAll([]byte(tc.body), tc.signed, tc.want)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v; want %v", tc.name, err, tc.err)
		}
		if tc.err == nil && string(data) != tc.data {
			t.Errorf("%s: data = %q; want %q", tc.name, data, tc.data)
		}
	}
}

func FuzzChunkDecoder(f *testing.F) {
	f.Add([]byte("3;chunk-signature="+sig64+"\r\nabc\r\n0;chunk-signature="+sig64+"\r\n\r\n"), true, uint8(0))
	f.Add([]byte("0;chunk-signature="+sig64+"\r\nx-amz-checksum-crc32:AAAAAA==\n\r\nx-amz-trailer-signature:"+sig64+"\r\n\r\n"), true, uint8(1))
	f.Add([]byte("A\r\n0123456789\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n"), false, uint8(2))
	f.Fuzz(func(t *testing.T, body []byte, signed bool, algo uint8) {
		want := checksumAlgo(algo % 6)
		data, tr, err := decodeAll(body, signed, want)
		if len(data) > len(body) {
			t.Fatalf("decoded %d bytes from %d", len(data), len(body))
		}
		if err == nil && tr != nil && (tr.checksum == nil || signed && !tr.hasSig) {
			t.Fatalf("trailer accepted without its checksum or signature: %+v", tr)
		}
	})
}
