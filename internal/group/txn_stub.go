package group

// CompleteTxn is told that the end-transaction marker of producer
// producerID (epoch producerEpoch) was written, and replicated, on
// partition of __consumer_offsets: commit applies the producer's pending
// transactional offsets, abort drops them.
//
// A stub so that the partition side of transactions (Part P) builds: Part
// G replaces it with the real thing and deletes this file.
func (c *Coordinator) CompleteTxn(partition int32, producerID int64, producerEpoch int16, commit bool) {
}
