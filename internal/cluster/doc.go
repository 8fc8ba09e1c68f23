// Package cluster holds the broker's metadata: brokers, topics with their
// IDs, configs and partitions (replicas, ISR, leader, leader and partition
// epochs), producer id blocks, and the SCRAM credentials of SASL users
// (salts and derived keys, never passwords). Every change is a KRaft metadata record
// (package records) appended to a metadata log and applied, in order, to an
// immutable in-memory Image that handlers read without locks (DESIGN.md
// principle 6).
//
// # Two modes
//
// The Store checks each change against the latest image and turns it into
// records; a committer orders and persists them. The Store's API is the
// same in both modes.
//
//   - Local mode (the default: controller.quorum.voters empty): one node
//     is its own controller. The metadata log is a local partition log,
//     `__cluster_metadata-0` in the first log dir, as in Kafka's KRaft
//     mode; snapshots of the image in the same directory bound the replay
//     at start (local.go; "Metadata log" and "Snapshots" below).
//   - Quorum mode (controller.quorum.voters set): the metadata log is a
//     hashicorp/raft log shared by the voters, and the image is raft's FSM
//     (quorum.go). A change is proposed with raft.Apply on the leader, the
//     active controller, and returns once this node applied it; on any
//     other node it fails with NotControllerError naming the leader
//     (Kafka's NOT_CONTROLLER). Each raft log entry's data is the record
//     batch a local log would hold for the same change, and the FSM applies
//     it on every node in log order. The image's EndOffset is the raft
//     index of the last entry applied: the metadata offset in quorum mode.
//     A new leader applies every entry of earlier terms (a raft barrier)
//     before it checks a change, as Kafka's new active controller replays
//     the log to its end before it takes writes.
//
// Changes come from the controller package's decisions (Store.Propose)
// and the topic and config changes the Store builds itself; on a node
// that is not the active controller they fail with NotControllerError,
// and the caller forwards the request to the active controller (package
// controller's Client, over the controller listener, which carries both
// raft and Kafka requests: SplitListener). Store.Changed wakes the node's
// image watcher after every image published, whichever node wrote it.
//
// # Quorum mode on disk
//
// Under <first log dir>/__raft (strata.RaftDir):
//
//	__raft/raft.db                      hashicorp/raft-boltdb/v2: raft's log
//	                                    entries, current term and vote
//	__raft/snapshots/<term>-<index>-<ms>/
//	        meta.json                   raft's snapshot metadata (index,
//	                                    term, configuration)
//	        state.bin                   the image: end offset (8 bytes, big
//	                                    endian), then the batch of records a
//	                                    local snapshot holds (below); only the
//	                                    8 bytes for an empty image
//
// The raft configuration is bootstrapped from controller.quorum.voters once,
// when __raft holds no raft state; a restarted node resumes from its log,
// term and snapshots. A broker-only node (not in controller.quorum.voters)
// bootstraps nothing: it starts raft with an empty configuration, takes no
// part in elections, and the active controller adds its controller
// listener as a raft non-voter when it registers (Store.AddNonvoter), from
// when on the leader sends it the log like to any follower. Its raft state
// keeps it a member across restarts. raft takes a snapshot after SnapshotThreshold entries
// (8192 by default; metadata.log.max.record.bytes.between.snapshots is a
// local-mode setting), truncates its log keeping TrailingLogs entries, and
// sends a follower that is behind the truncation point the snapshot
// (InstallSnapshot), which FSM.Restore loads. The raft transport is raft's
// TCP NetworkTransport on the controller listener.
//
// # Metadata log
//
// Each Kafka record of the log has a null key and a framed metadata record
// as its value (see package records). The records of one change (a
// TopicRecord, its PartitionRecords and ConfigRecords) share one record
// batch, so that a crash applies all of them or none:
//
//	batch (v2, CRC-32C) at offset N
//	  record N+0  value = [frame 1][key 2][v 0] TopicRecord{Name, TopicId}
//	  record N+1  value = [frame 1][key 3][v 0] PartitionRecord{0, TopicId, Replicas, Isr, Leader, epochs}
//	  ...
//	  record N+k  value = [frame 1][key 4][v 0] ConfigRecord{2 (topic), name, key, value}
//
// A data dir written by strata before these records holds JSON record
// values (legacy.go); Open translates them into the records they stand for
// and writes a snapshot at once, and strata appends only KRaft records
// from then on.
//
// # Snapshots
//
// A snapshot holds the records that build the image from nothing (Kafka's
// snapshot idea, KIP-630), named as Kafka names them,
// `<end offset, 20 digits>-<epoch, 10 digits>.checkpoint`, where the end
// offset is the first log offset it does not hold and the epoch is 0 until
// the metadata log is on raft:
//
//	00000000000000001234-0000000000.checkpoint
//	+--------------------------------------------------------------+
//	| one record batch, v2, CRC-32C over all of it (Kafka's format)|
//	|   baseOffset 0, one record per metadata record, null keys:   |
//	|   RegisterBrokerRecord ... (by broker id)                    |
//	|   TopicRecord, PartitionRecord ..., ConfigRecord ...         |
//	|     (by topic name; partitions by id; configs by key)        |
//	|   ConfigRecord ... of brokers                                |
//	|   ProducerIdsRecord (the end of the last block)              |
//	|   AccessControlEntryRecord ... (ACL bindings, by id)         |
//	+--------------------------------------------------------------+
//
// Kafka splits a snapshot into many batches framed by SnapshotHeader and
// SnapshotFooter control records; a single batch needs no footer to be
// known complete, since its length and CRC cover every byte. A snapshot is
// written to `<name>.part`, fsynced, renamed and its directory fsynced;
// `.part` files left by a crash are removed at start.
//
// Snapshots are written every metadata.log.max.record.bytes.between.snapshots
// bytes of records (20 MiB, Kafka's default), at a clean shutdown (Close),
// and after an upgrade from JSON records; the two newest are kept. Open
// loads the newest snapshot that reads back (a bad CRC, a short file or an
// undecodable record moves on to the next older one, then to a replay of
// the whole log), then replays the log from its end offset. A snapshot
// past the log's end is ignored: the log is the truth. The log itself is
// not yet truncated below the snapshots, so that a full replay stays
// possible.
package cluster
