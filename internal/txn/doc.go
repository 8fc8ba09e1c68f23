// Package txn is the transaction coordinator (Kafka's TransactionCoordinator,
// TransactionStateManager and TransactionMarkerChannelManager): the state of
// every transactional id whose partition of __transaction_state this node
// leads, its transitions, their persistence, the markers that end a
// transaction in its partitions, and the abort of timed-out transactions.
//
// # Placement
//
// A transactional id belongs to partition abs(javaHashCode(id)) % partitions
// of __transaction_state (PartitionFor), as Kafka places it; the leader of
// that partition is its coordinator. The kafka package loads a partition
// (Load) when this node becomes its leader and unloads it (Unload) when it
// stops being it. While a partition loads, its ids get
// COORDINATOR_LOAD_IN_PROGRESS; on a node that did not load it,
// NOT_COORDINATOR.
//
// # States (Kafka's TransactionState)
//
//	Empty ──AddPartitions──> Ongoing ──EndTxn(commit)──> PrepareCommit ──markers──> CompleteCommit
//	  ^                        │   └───EndTxn(abort)───> PrepareAbort  ──markers──> CompleteAbort
//	  │                        └─InitProducerId/timeout─> PrepareEpochFence (in memory) ─> PrepareAbort
//	  └──InitProducerId── CompleteCommit, CompleteAbort, Empty
//	Empty/Complete* ──transactional.id.expiration.ms──> Dead (tombstone)
//
// Every transition but PrepareEpochFence is appended to the id's partition
// before it takes effect; while it is being written the id is "pending",
// and other requests for it get CONCURRENT_TRANSACTIONS, as in Kafka.
// After PrepareCommit/PrepareAbort is written, the coordinator sends
// WriteTxnMarkers to every partition of the transaction (MarkerWriter),
// retrying until each is written, then writes CompleteCommit/CompleteAbort.
// A newly loaded partition resumes the markers of its prepared
// transactions.
//
// # Records
//
// Kafka's schemas (kmsg.TxnMetadataKey, kmsg.TxnMetadataValue), each
// prefixed by its int16 version:
//
//	key   (version 0): version int16 | transactional_id string
//	value (version 0): version int16 | producer_id int64 | producer_epoch int16 |
//	                   transaction_timeout_ms int32 | state int8 |
//	                   [topic string, [partition int32]] |
//	                   last_update_timestamp_ms int64 | start_timestamp_ms int64
//	value (version 1): the same, flexible, with tagged fields
//	                   previous_producer_id (0), next_producer_id (1),
//	                   client_transaction_version (2); written for clients
//	                   of transaction version 2 (EndTxn v5), as Kafka 4 does.
//
// A null value (tombstone) removes the id. The last record of an id wins.
package txn
