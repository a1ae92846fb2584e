//go:build !linux

package transfer

// Without splice(2) every transfer copies; the pipe pool stays empty.

type pipeSet struct{}

func newPipeSet(Options) *pipeSet { return &pipeSet{} }

func (s *pipeSet) close() error { return nil }

func (s *pipeSet) stats() Stats { return Stats{} }

type spliceJob struct{}

func (j *job) initSplice()  {}
func (j *job) resetSplice() {}

// spliceBody never handles a transfer here.
func (m *Mover) spliceBody(*job, *Result, int64) (bool, error) { return false, nil }
