package httpparse

// Examined returns how many bytes of input p has read since its last Reset:
// the bytes its scan cursor moved over plus those re-read to interpret a
// completed field line.
func (p *Parser) Examined() int64 { return p.examined }
