package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/mizuchi/uploadr/s3sig"
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

// signedChunks frames data in signed aws-chunked chunks of size bytes (the final zero chunk
// included), signed from seed; chunk number bad (1-based, 0 none) has its first data byte flipped
// after signing.
func signedChunks(t *testing.T, seed *s3sig.ChunkSeed, data []byte, size, bad int) []byte {
	t.Helper()
	var v s3sig.ChunkVerifier
	v.Reset(seed)
	var b bytes.Buffer
	k := 0
	for off := 0; off <= len(data); off += size {
		k++
		d := data[off:min(off+size, len(data))]
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(d), v.SignChunk(nil, d))
		if k == bad {
			d = append([]byte{d[0] ^ 1}, d[1:]...)
		}
		b.Write(d)
		b.WriteString("\r\n")
		if len(d) == 0 {
			break
		}
	}
	return b.Bytes()
}

// A signed chunk that fits in the caller's buffer is read and verified there, without the chunk
// buffer; one that does not goes through it. Either way a tampered chunk is refused.
func TestChunkSourceSignedDirect(t *testing.T) {
	seed, err := s3sig.NewChunkSeed("secret", []byte("20261202T000000Z"), "us-east-1", []byte(sig64))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	read := func(body []byte, bufSize int) ([]byte, *chunkState, error) {
		cs := &chunkState{}
		cs.cr = chunkReader{r: bufio.NewReaderSize(bytes.NewReader(body), 4096), signed: true}
		cs.v.Reset(&seed)
		src := &chunkSource{cs: cs, ci: &chunkInfo{decoded: int64(len(data))}}
		var out []byte
		buf := make([]byte, bufSize)
		for int64(len(out)) < int64(len(data)) {
			n, err := io.ReadFull(src, buf[:min(len(buf), len(data)-len(out))])
			if err != nil {
				return out, cs, err
			}
			out = append(out, buf[:n]...)
		}
		return out, cs, nil
	}
	for _, tc := range []struct {
		name         string
		chunk, buf   int
		wantChunkBuf bool
	}{
		{"chunks fit the buffer", 64 << 10, 256 << 10, false},
		{"chunks larger than the buffer", 100_000, 16 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, cs, err := read(signedChunks(t, &seed, data, tc.chunk, 0), tc.buf)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("read %d bytes, %v; want the %d bytes", len(out), err, len(data))
			}
			if got := cs.buf != nil; got != tc.wantChunkBuf {
				t.Errorf("chunk buffer used: %v; want %v", got, tc.wantChunkBuf)
			}
			_, _, err = read(signedChunks(t, &seed, data, tc.chunk, 2), tc.buf)
			var ce *chunkError
			if !errors.As(err, &ce) || ce.s3err != errSignatureDoesNotMatch {
				t.Errorf("chunk 2 tampered: %v; want SignatureDoesNotMatch", err)
			}
		})
	}
}
