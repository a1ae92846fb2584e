package postform

// Error is a reason a form or policy is refused. Every cause is its own *Error value compared with
// errors.Is; Detail, when set, is a copy made per refusal (see Policy.Check) and matches its cause.
type Error struct {
	Reason string
	Detail string // S3's message for a failed condition or extra fields; "" otherwise
	cause  *Error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail != "" {
		return "postform: " + e.Detail
	}
	return "postform: " + e.Reason
}

// Is reports whether target is the cause of e.
func (e *Error) Is(target error) bool { return e.cause != nil && target == e.cause }

func (e *Error) with(detail string) *Error { return &Error{Reason: e.Reason, Detail: detail, cause: e} }

var (
	// ErrNeedMore: the bytes so far are a valid beginning of a form; read more and call Parse again.
	ErrNeedMore = &Error{Reason: "need more bytes"}
	// ErrMalformed: the body is not well-formed multipart/form-data (S3: MalformedPOSTRequest).
	ErrMalformed = &Error{Reason: "the body of the POST request is not well-formed multipart/form-data"}
	// ErrBoundary: the Content-Type has no usable boundary parameter (RFC 2046: 1..70 characters).
	ErrBoundary = &Error{Reason: "multipart/form-data requires a boundary of 1 to 70 characters"}
	// ErrPreDataTooLarge: the fields before the file exceed MaxPreData (S3: MaxPostPreDataLengthExceeded).
	ErrPreDataTooLarge = &Error{Reason: "the POST fields preceding the upload file are too large"}
	// ErrNoFile: the form ended without a part named "file".
	ErrNoFile = &Error{Reason: "POST requires exactly one file upload per request"}
	// ErrDuplicateField: a field name (compared case-insensitively) occurs twice.
	ErrDuplicateField = &Error{Reason: "a form field occurs more than once"}

	// ErrPolicyMalformed: the policy is not base64 of a JSON document of the expected shape (S3:
	// InvalidPolicyDocument).
	ErrPolicyMalformed = &Error{Reason: "invalid policy document"}
	// ErrExpired: the policy's expiration has passed.
	ErrExpired = &Error{Reason: "Invalid according to Policy: Policy expired."}
	// ErrCondition: a condition failed; Detail quotes it as S3 does.
	ErrCondition = &Error{Reason: "Invalid according to Policy: Policy Condition failed"}
	// ErrExtraFields: form fields no condition covers; Detail names them as S3 does.
	ErrExtraFields = &Error{Reason: "Invalid according to Policy: Extra input fields"}
	// ErrTooLarge, ErrTooSmall: the file is outside the policy's content-length-range.
	ErrTooLarge = &Error{Reason: "the file exceeds the policy's content-length-range"}
	ErrTooSmall = &Error{Reason: "the file is smaller than the policy's content-length-range"}

	// ErrCredential: x-amz-credential is not <access key>/<yyyymmdd>/<region>/s3/aws4_request, or
	// x-amz-date is not an ISO 8601 basic time on the credential's day.
	ErrCredential = &Error{Reason: "x-amz-credential or x-amz-date is malformed"}
	// ErrAlgorithm: x-amz-algorithm is not AWS4-HMAC-SHA256.
	ErrAlgorithm = &Error{Reason: "x-amz-algorithm must be AWS4-HMAC-SHA256"}
	// ErrMissingAuth: one of policy, x-amz-signature, x-amz-credential, x-amz-algorithm and
	// x-amz-date is missing (a SigV2 form is refused with it too).
	ErrMissingAuth = &Error{Reason: "a SigV4 POST requires the fields policy, x-amz-algorithm, x-amz-credential, x-amz-date and x-amz-signature"}
	// ErrSignature: the policy's signature does not verify.
	ErrSignature = &Error{Reason: "the policy signature does not match"}
)
