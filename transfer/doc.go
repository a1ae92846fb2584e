// Package transfer moves an upload body from a client socket to an upstream
// socket, byte-exact and without reading past the declared length.
//
// On Linux a [Mover] splices the body client -> pipe -> upstream through a
// bounded pool of pipes enlarged with F_SETPIPE_SZ, so the body never enters
// user space. When splice is not possible (other systems, a destination such
// as *tls.Conn that exposes no file descriptor, a pipe the kernel would not
// enlarge, [Options.ForceCopy]) it copies through pooled user-space buffers
// instead, with the same errors, deadlines and guarantees. A source that
// returns little per Read (a TLS connection: one record) and can tell that
// more is waiting ([ReadReadier]) fills the copy buffer before it is written.
//
// The package imports no project package and never logs: every failure is an
// [*Error] naming the side that failed ([SideSrc] is the client, [SideDst] the
// upstream), and callers compare causes with [errors.Is] against
// [ErrShortBody], [ErrStalled], context errors or syscall errors.
//
// # Pipe budget
//
// An unprivileged process may only give pipes fs.pipe-user-pages-soft pages
// in total (16384 pages, that is 64 pipes of 1 MiB, by default); past that the
// kernel refuses F_SETPIPE_SZ and new pipes keep 8 KiB, which makes splice
// cost several times a plain copy. A Mover therefore checks the size the
// kernel granted and, below [Options.MinPipeSize], copies instead and sets
// [Result.PipeTooSmall] so the caller can count it. Run with
// CAP_SYS_RESOURCE, or raise fs.pipe-user-pages-soft (and fs.pipe-max-size
// for pipes above 1 MiB), when many concurrent uploads are expected.
package transfer
