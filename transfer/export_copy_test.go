package transfer

// CopyIdleSlack is how many idle copy buffers the pool keeps beyond those in use.
const CopyIdleSlack = copyIdleSlack
