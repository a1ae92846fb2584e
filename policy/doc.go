// Package policy evaluates a bucket's upload rules on a request head, before any body byte is
// read: the declared size, the content type, the key (against a template naming the principal or
// its claims), the storage class, the checksums that come with the body and the part number. It
// is pure: it sees a small Input the caller fills from the head, does no I/O, never logs, and
// Check allocates nothing.
package policy
