// Package broker is the replica manager of one node: the partitions it
// hosts over internal/log, their high watermarks, producer state (idempotent
// and transactional: open transactions, the last stable offset, aborted
// transaction indexes) and the fetchers long-polling them. It knows nothing
// of the wire protocol or of where topic metadata comes from.
//
// # Files in a partition directory
//
// Besides the segments that package log keeps, each partition directory holds
// the per-partition files of Kafka, in Kafka's formats:
//
//	<topic>-<partition>/
//	  00000000000000001042.snapshot   producer state below offset 1042
//	  00000000000000001000.txnindex   transactions aborted in segment 1000
//	  leader-epoch-checkpoint         epoch -> start offset
//	  partition.metadata              the topic's id
//
// # Producer-state snapshots (Kafka's ProducerStateManager, version 1)
//
// A snapshot named after offset N holds the idempotent producers' state as
// it was after every batch below N and before any at or above it. One is
// written when the active segment rolls (N is the new segment's base offset)
// and one on a clean close (N is the log end offset); the latest two are
// kept. At start the newest usable one is loaded and only the batches from N
// to the log end are replayed. All integers are big endian:
//
//	+---------+-------+--------+---------------------------------------+
//	| version |  crc  | count  | count entries                         |
//	|  int16  | uint32| int32  |                                       |
//	+---------+-------+--------+---------------------------------------+
//	          crc: CRC-32C (Castagnoli) of every byte after the crc field
//
//	entry (46 bytes)
//	+-------------+-------+----------+-------------+--------------+
//	| producer_id | epoch | last_seq | last_offset | offset_delta |
//	|    int64    | int16 |  int32   |    int64    |    int32     |
//	+-------------+-------+----------+-------------+--------------+
//	| timestamp | coordinator_epoch | current_txn_first_offset |
//	|   int64   |       int32       |          int64           |
//	+-----------+-------------------+--------------------------+
//
// An entry describes the producer's last batch only: its first sequence is
// last_seq - offset_delta (wrapping below 0 to MaxInt32, as sequences wrap)
// and its first offset last_offset - offset_delta; timestamp is the batch's
// max timestamp (or of its last transaction marker, if later). A producer
// without a batch has last_offset -1. coordinator_epoch is that of the
// producer's last transaction marker (-1 if none), current_txn_first_offset
// the first offset of its transaction open on the partition (-1 if none).
//
// # Transactions (Kafka's ProducerStateManager and UnifiedLog)
//
// A transactional batch opens its producer's transaction on the partition
// at its first offset, if none is open; the producer's end-transaction
// marker (a control batch, ABORT or COMMIT, written by AppendTxnMarker on
// the leader at the coordinator's request, copied as is by followers)
// closes it. Leader appends, follower appends and the replay of the log
// at start or after a truncation all track them. The last stable offset
// (LSO) is the high watermark, or the first offset of the earliest
// transaction still open, or whose marker is not yet below the high
// watermark, if lower (never below the log start offset); read_committed
// consumers read up to it.
//
// # <base>.txnindex (Kafka's TransactionIndex)
//
// Each ABORT marker adds one entry to the index of the segment it is in,
// fsynced at once. Entries are 34 bytes, big endian, in marker order:
//
//	+---------+-------------+--------------+-------------+--------------------+
//	| version | producer_id | first_offset | last_offset | last_stable_offset |
//	|  int16  |    int64    |    int64     |    int64    |       int64        |
//	+---------+-------------+--------------+-------------+--------------------+
//	version 0; last_offset is the marker's; last_stable_offset the LSO right
//	after it (the first offset of the earliest other open transaction, else
//	last_offset + 1).
//
// Loading (and a truncation) cuts off entries whose marker is at or past
// the log end offset, deletes the indexes of segments that are gone, and
// the replay of the log from the producer snapshot adds the entries a
// crash lost. Read_committed fetches get their AbortedTransactions from
// the indexes (kept in memory once loaded), never from the records.
//
// # leader-epoch-checkpoint (Kafka's LeaderEpochCheckpointFile)
//
//	0          version
//	1          entry count
//	0 0        epoch start-offset
//
// A single node leads every partition in epoch 0 from its log start offset,
// and stamps epoch 0 on every batch it appends.
//
// # partition.metadata (Kafka's PartitionMetadataFile)
//
//	version: 0
//	topic_id: 3Wgn9hr5Qky6j0vr7k1TbQ
//
// The topic id is the 16-byte UUID in unpadded URL-safe base64, as Kafka's
// Uuid.toString writes it.
//
// Every file is replaced atomically: written to a temporary file, fsynced,
// renamed over the old one, and the directory fsynced.
package broker
