// Package group is the group coordinator of Kafka's classic consumer group
// protocol: JoinGroup, SyncGroup, Heartbeat and LeaveGroup drive each
// group's state machine (Empty, PreparingRebalance, CompletingRebalance,
// Stable, Dead), and OffsetCommit and OffsetFetch keep committed offsets.
//
// Group metadata and offsets are persisted as records in the internal topic
// __consumer_offsets with Kafka's key and value schemas (kmsg's
// OffsetCommitKey/Value and GroupMetadataKey/Value; for KIP-848 consumer
// groups, Kafka's ConsumerGroup* records, see consumer_store.go), one
// partition per group chosen by the hash of the group id as Kafka chooses
// it. The coordinator serves only the partitions it loaded: Load replays a
// partition when this broker becomes its leader and Unload drops its groups
// when it stops being it (Kafka's onElection and onResignation); other
// groups get NOT_COORDINATOR. The package does not know about topics or
// the network: it is given a Storage to append to and answers with kmsg responses through
// callbacks, because a JoinGroup or SyncGroup response may wait for other
// members' requests, as Kafka's delayed operations do.
//
// TxnOffsetCommit's offsets (txn.go) are written as the producer's
// transactional batch and stay pending, invisible to OffsetFetch
// (UNSTABLE_OFFSET_COMMIT with require_stable), until the transaction's
// marker is written to the partition and CompleteTxn applies or drops
// them; Load replays the markers (control batches) the same way.
//
// Time comes from a Clock so that tests can drive timeouts (session,
// rebalance, initial delay) deterministically.
package group
