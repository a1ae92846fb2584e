// Package postform reads and checks S3 browser form uploads (PostObject): a POST of
// multipart/form-data whose fields carry a base64 JSON policy signed with SigV4, followed by the
// file.
//
// Parse reads the fields that precede the file part from the bytes the caller has buffered and
// never keeps them: it returns ErrNeedMore until the file part's headers are whole, then the form
// and the offset of the file's first byte, so that the caller streams the file itself. What comes
// before the file is bounded (S3 refuses more than 20 KB: MaxPreData). DecodePolicy decodes the
// policy document; Policy.Check evaluates its expiration and every condition against the form,
// and refuses form fields no condition covers, as S3 does; Sign and VerifySignature compute the
// policy's SigV4 signature (hex HMAC-SHA256 of the base64 policy with the derived signing key).
//
// The grammar (RFC 7578 over RFC 2046 §5.1.1):
//
//	body       := [preamble CRLF] "--" boundary CRLF part *(CRLF "--" boundary CRLF part) close
//	part       := *(header CRLF) CRLF content
//	close      := CRLF "--" boundary "--" [CRLF]
//
// S3's documentation of the policy: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
// and of the form: https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html
//
// The package imports the standard library only. Errors never quote a signature or a secret.
package postform
