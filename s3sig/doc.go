// Package s3sig implements AWS Signature Version 4 for S3 requests signed in
// the Authorization header: the canonical request, the string to sign, the
// derived signing key (cached), signing a request for an upstream S3 server
// and verifying a client's signature.
//
// The package works on borrowed byte slices (a request head parsed in place)
// and, once its KeyCache is warm, Signer.Sign and Signer.Verify allocate
// nothing. A Signer holds scratch buffers and is not safe for concurrent use:
// keep one per event loop. A KeyCache is safe for concurrent use and is meant
// to be shared by all Signers.
//
// The grammar implemented is the one of the S3 API Reference, "Signature
// Calculations for the Authorization Header: Transferring Payload in a Single
// Chunk":
//
//	CanonicalRequest =
//	  HTTPMethod + '\n' + CanonicalURI + '\n' + CanonicalQueryString + '\n' +
//	  CanonicalHeaders + '\n' + SignedHeaders + '\n' + HashedPayload
//	StringToSign =
//	  "AWS4-HMAC-SHA256" + '\n' + timeStampISO8601Format + '\n' +
//	  <yyyymmdd>/<region>/<service>/aws4_request + '\n' + Hex(SHA256(CanonicalRequest))
//	SigningKey = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service), "aws4_request")
//	Signature  = Hex(HMAC(SigningKey, StringToSign))
//
// Building the canonical request, the string to sign and the HMAC chain are
// separate internal steps so that presigned URLs (X-Amz-* query parameters)
// and aws-chunked chunk signatures can reuse them.
//
// Signed aws-chunked bodies ("Transferring Payload in Multiple Chunks",
// chunk.go): Signer.VerifyStreaming verifies the header signature (the seed)
// and fills a ChunkSeed — the signing key, date, scope and seed signature, in
// unexported fields — from which a ChunkVerifier checks each chunk's and the
// trailer's chained signature in constant time, allocation-free. The key in a
// ChunkSeed never enters the KeyCache by another way than Verify's.
//
// The package imports only the standard library, never logs, and returns
// errors that wrap the sentinels of errors.go. No error text contains a secret
// or a signature.
package s3sig
