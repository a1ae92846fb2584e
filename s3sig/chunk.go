package s3sig

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"time"
)

// Signed aws-chunked bodies (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD and
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER). From "Signature Calculations for the
// Authorization Header: Transferring Payload in Multiple Chunks" (S3 API reference):
//
//	seed signature  = the Authorization header's signature (payload hash = the STREAMING-* value)
//	chunk signature = HMAC(signing key, string to sign), chained:
//	  AWS4-HMAC-SHA256-PAYLOAD '\n' x-amz-date '\n' scope '\n' previous-signature '\n'
//	  hex(sha256("")) '\n' hex(sha256(chunk-data))
//	trailer signature (…-TRAILER) =
//	  AWS4-HMAC-SHA256-TRAILER '\n' x-amz-date '\n' scope '\n' previous-signature '\n'
//	  hex(sha256(trailer header lines, each "name:value\n"))
//
// The first chunk's previous signature is the seed; each later one is the signature of the chunk
// before it; the trailer's is the final (0-length) chunk's.

const (
	chunkAlgorithm   = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm = "AWS4-HMAC-SHA256-TRAILER"
	maxChunkScope    = 160 // amzDate '\n' scope '\n': 16+1+8+1+region+1+service+1+12+1
)

// ChunkSeed is what a verified header signature leaves for the chunk signatures of a streaming
// request: the signing key, the x-amz-date and scope, and the seed signature. It is a plain value
// (no pointers), so it can be carried in a request's state without allocating. The zero value is
// not valid. The key in it is the one the verified header signature was made with; holding it
// adds no key to the KeyCache (see Verify: a key is cached only after a signature made with it
// verified).
type ChunkSeed struct {
	key    [sha256.Size]byte
	seed   [sha256.Size]byte
	prefix [maxChunkScope]byte // amzDate '\n' scope '\n'
	n      uint8               // bytes of prefix used; 0 = not valid
}

// Valid reports whether s was filled by VerifyStreaming or NewChunkSeed.
func (s *ChunkSeed) Valid() bool { return s.n > 0 }

// fill sets s from a verified header signature.
func (s *ChunkSeed) fill(key, seed *[sha256.Size]byte, amzDate, date, region, service []byte) bool {
	if len(amzDate)+len(date)+len(region)+len(service)+len("///"+scopeTerminator)+2 > maxChunkScope {
		return false
	}
	b := append(s.prefix[:0], amzDate...)
	b = append(b, '\n')
	b = appendScope(b, date, region, service)
	b = append(b, '\n')
	s.key, s.seed, s.n = *key, *seed, uint8(len(b))
	return true
}

// NewChunkSeed computes the seed of a streaming request a client signs: the signing key of
// (secret, amzDate[:8], region, "s3") and the seed signature seedSig (64 hex digits, the header's
// Signature). It is for clients and tests: it derives the key without the KeyCache.
func NewChunkSeed(secret string, amzDate []byte, region string, seedSig []byte) (ChunkSeed, error) {
	var s ChunkSeed
	if _, err := ParseAmzDate(amzDate); err != nil {
		return s, err
	}
	var seed [sha256.Size]byte
	if !decodeHex(seed[:], seedSig) {
		return s, errAuthSignature
	}
	key := deriveSigningKey([]byte(secret), amzDate[:8], []byte(region), []byte("s3"))
	if !s.fill(&key, &seed, amzDate, amzDate[:8], []byte(region), []byte("s3")) {
		return s, errAuthCredential
	}
	return s, nil
}

// VerifyStreaming is Verify for a request whose payload is signed in chunks: on success it also
// fills seed with what the chunk signatures are chained from (the request's signing key, date,
// scope and signature). On error seed is left not valid. The key-cache rule of Verify holds.
func (s *Signer) VerifyStreaming(req *Request, a *Authorization, secret string, amzDate []byte, now time.Time, seed *ChunkSeed) error {
	seed.n = 0
	key, err := s.verify(req, a, secret, amzDate, now)
	if err != nil {
		return err
	}
	var sent [sha256.Size]byte
	decodeHex(sent[:], a.Signature) // checked by verify
	if !seed.fill(&key, &sent, amzDate, a.Date, a.Region, a.Service) {
		return errAuthCredential
	}
	return nil
}

// ChunkVerifier verifies (or, for clients, computes) the chained signatures of one streaming
// request's chunks and trailer. It allocates nothing. Not safe for concurrent use; one per request.
type ChunkVerifier struct {
	seed ChunkSeed
	prev [sha256.Size]byte
	// 64 bytes of HMAC block, then the string to sign.
	sts [sha256.BlockSize + len(trailerAlgorithm) + 1 + maxChunkScope + 2*sha256.Size + 1 + 2*sha256.Size + 1 + 2*sha256.Size]byte
}

// Reset starts a chain from seed.
func (v *ChunkVerifier) Reset(seed *ChunkSeed) {
	v.seed = *seed
	v.prev = seed.seed
}

// emptyHash is hex(sha256("")), bytes.
var emptyHash = []byte(EmptySHA256)

// stringToSign builds the string to sign after the HMAC block and returns its end.
func (v *ChunkVerifier) sign(algo string, hashes ...*[sha256.Size]byte) [sha256.Size]byte {
	b := append(v.sts[:sha256.BlockSize], algo...)
	b = append(b, '\n')
	b = append(b, v.seed.prefix[:v.seed.n]...)
	b = appendHex(b, v.prev[:])
	if algo == chunkAlgorithm {
		b = append(b, '\n')
		b = append(b, emptyHash...)
	}
	for _, h := range hashes {
		b = append(b, '\n')
		b = appendHex(b, h[:])
	}
	return hmacSHA256(&v.seed.key, b)
}

// SignChunk returns the signature of the next chunk, whose data is data, and advances the chain
// (clients and tests). dst gets the 64 hex digits appended.
func (v *ChunkVerifier) SignChunk(dst, data []byte) []byte {
	h := sha256.Sum256(data)
	v.prev = v.sign(chunkAlgorithm, &h)
	return appendHex(dst, v.prev[:])
}

// SignChunkSum is SignChunk for a chunk whose SHA-256 the caller already has (a client that
// sends the same bytes again, such as a load generator).
func (v *ChunkVerifier) SignChunkSum(dst []byte, sum *[sha256.Size]byte) []byte {
	v.prev = v.sign(chunkAlgorithm, sum)
	return appendHex(dst, v.prev[:])
}

// VerifyChunk checks sig (64 hex digits, as sent in ;chunk-signature=) against the next chunk's
// data in constant time, and advances the chain only when it matches. It returns
// ErrSignatureDoesNotMatch otherwise (a malformed sig included).
func (v *ChunkVerifier) VerifyChunk(data, sig []byte) error {
	h := sha256.Sum256(data)
	return v.check(chunkAlgorithm, &h, sig)
}

// SignTrailer returns the trailer signature for the trailer header lines (each "name:value\n")
// and advances the chain (clients and tests).
func (v *ChunkVerifier) SignTrailer(dst, lines []byte) []byte {
	h := sha256.Sum256(lines)
	v.prev = v.sign(trailerAlgorithm, &h)
	return appendHex(dst, v.prev[:])
}

// VerifyTrailer checks the trailer signature sig against the trailer header lines (each
// "name:value\n", in the order sent), in constant time.
func (v *ChunkVerifier) VerifyTrailer(lines, sig []byte) error {
	h := sha256.Sum256(lines)
	return v.check(trailerAlgorithm, &h, sig)
}

func (v *ChunkVerifier) check(algo string, h *[sha256.Size]byte, sig []byte) error {
	var sent [sha256.Size]byte
	ok := decodeHex(sent[:], bytes.TrimSpace(sig))
	want := v.sign(algo, h)
	if subtle.ConstantTimeCompare(want[:], sent[:]) != 1 || !ok {
		return errChunkSignature
	}
	v.prev = want
	return nil
}
