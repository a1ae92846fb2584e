package engine

// PartSizeFor exposes the auto-chunking part-size rule to tests.
var PartSizeFor = partSizeFor
