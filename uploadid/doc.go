// Package uploadid binds a multipart upload id to the request that created it. The upload id a
// client receives is a token: the upstream's upload id sealed with an HMAC-SHA256 over the
// principal that created the upload, the bucket and the object key. A later UploadPart,
// CompleteMultipartUpload, AbortMultipartUpload or ListParts opens the token with its own
// principal, bucket and key: any difference, or any altered, truncated or forged byte, fails, and
// nothing needs to be stored (any process holding the key opens any token).
//
// A token is the unpadded base64url encoding (RFC 4648 section 5, URL- and filename-safe) of
//
//	token   = version mac upstream-id
//	version = %x01                      ; one byte
//	mac     = 16 bytes                  ; HMAC-SHA256(key, message), truncated (RFC 2104 section 5)
//	message = version len(principal) principal len(bucket) bucket len(key) key upstream-id
//	len(x)  = 4 bytes, big-endian
//
// so it adds 17 bytes, 23 characters once encoded, to the upstream id. A Sealer holds the keys:
// the first seals, all open (key rotation). Tokens are compared in constant time.
//
// The package imports only the standard library, returns errors and never logs.
package uploadid
