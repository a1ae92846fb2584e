package policy

import "bytes"

// Checksums is a set of digest algorithms.
type Checksums uint8

// The digests S3 verifies on an upload body.
const (
	CRC32 Checksums = 1 << iota
	CRC32C
	CRC64NVME
	SHA1
	SHA256
	MD5
)

var checksumNames = [...]struct {
	name string
	bit  Checksums
}{{"crc32", CRC32}, {"crc32c", CRC32C}, {"crc64nvme", CRC64NVME}, {"sha1", SHA1}, {"sha256", SHA256}, {"md5", MD5}}

// ParseChecksum returns the algorithm named name (crc32, crc32c, crc64nvme, sha1, sha256, md5;
// ASCII case ignored).
func ParseChecksum(name string) (Checksums, bool) {
	for _, c := range checksumNames {
		if equalFold([]byte(name), c.name) {
			return c.bit, true
		}
	}
	return 0, false
}

// ChecksumsOf returns the digests a request header carries for the body, given its name and value
// as sent:
//
//	x-amz-checksum-<alg>: <digest>           the digest in the head (flexible checksums)
//	x-amz-trailer: x-amz-checksum-<alg>      the digest in the aws-chunked trailer
//	Content-MD5: <base64>                    md5
//	x-amz-content-sha256: <64 hex digits>    sha256 (UNSIGNED-PAYLOAD and STREAMING-* carry none)
//
// An empty value carries nothing. The upstream verifies every digest against the body; this only
// tells that one comes. It does not allocate.
func ChecksumsOf(name, value []byte) Checksums {
	value = trimOWS(value)
	if len(value) == 0 {
		return 0
	}
	const prefix = "x-amz-checksum-"
	switch {
	case len(name) > len(prefix) && equalFold(name[:len(prefix)], prefix):
		return checksumSuffix(name[len(prefix):])
	case equalFold(name, "content-md5"):
		return MD5
	case equalFold(name, "x-amz-content-sha256"):
		if isHex64(value) {
			return SHA256
		}
	case equalFold(name, "x-amz-trailer"):
		var got Checksums
		for len(value) > 0 {
			item := value
			if i := bytes.IndexByte(value, ','); i >= 0 {
				item, value = value[:i], value[i+1:]
			} else {
				value = nil
			}
			item = trimOWS(item)
			if len(item) > len(prefix) && equalFold(item[:len(prefix)], prefix) {
				got |= checksumSuffix(item[len(prefix):])
			}
		}
		return got
	}
	return 0
}

func checksumSuffix(alg []byte) Checksums {
	for _, c := range checksumNames {
		if c.bit != MD5 && equalFold(alg, c.name) {
			return c.bit
		}
	}
	return 0
}

func isHex64(p []byte) bool {
	if len(p) != 64 {
		return false
	}
	for _, c := range p {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
