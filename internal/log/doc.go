// Package log stores one partition's log in Apache Kafka's log-directory
// format, and owns the log dirs of a broker (Manager). It does no networking:
// reads return file regions that the server sends with sendfile(2).
//
// # Files
//
//	<log.dir>/
//	  .lock                              flock'ed while a broker uses the dir
//	  .kafka_cleanshutdown               written last by a clean Close
//	  recovery-point-offset-checkpoint   offsets flushed with their indexes
//	  log-start-offset-checkpoint
//	  replication-offset-checkpoint      high watermarks
//	  <topic>-<partition>/
//	    00000000000000000000.log         record batches, back to back
//	    00000000000000000000.index       sparse offset index
//	    00000000000000000000.timeindex   sparse time index
//	    00000000000000000000.txnindex    aborted transactions (written by
//	                                     package broker; deleted with the
//	                                     segment)
//	    00000000000000001042.log         next segment: base offset 1042
//	    ...
//
// A .log file holds v2 record batches exactly as stored (see package record),
// with their offsets assigned. Segment names are the base offset in 20
// digits; a segment holds offsets from its base up to the next segment's.
//
// # Index formats (big endian, as Kafka's OffsetIndex and TimeIndex)
//
//	.index entry (8 bytes)        .timeindex entry (12 bytes)
//	+----------------+----------+ +-----------------+----------------+
//	| relative offset| position | | timestamp (ms)  | relative offset|
//	|     uint32     |  uint32  | |      int64      |     uint32     |
//	+----------------+----------+ +-----------------+----------------+
//
// Relative offsets are offset - base offset. An offset entry is added when
// more than index.interval.bytes were appended since the last; it names the
// last offset of the batch starting at position. A time entry records the
// segment's running maximum timestamp and the last offset of the batch that
// first reached it. The active segment's indexes are preallocated to
// segment.index.bytes and memory-mapped; when it rolls they are trimmed to
// their entries. Indexes have no checksum: recovery rebuilds them.
//
// # Checkpoint format (text, as Kafka's OffsetCheckpointFile)
//
//	0                  version
//	2                  entry count
//	orders 0 1042      topic partition offset
//	orders 1 977
//
// # Durability and recovery
//
// Appends go to the page cache unless flush.messages or flush.ms say
// otherwise; flush.messages=1 fsyncs before an append returns, with
// concurrent appends sharing one fsync. A rolled segment is flushed in the
// background and the recovery point moves past it. Close flushes everything
// and the Manager then writes the checkpoints and the clean-shutdown marker.
//
// Every file operation of the write path goes through an fs.FS (Options.FS,
// ManagerConfig.FS), so that power-loss tests can run the log on fs.CrashFS;
// docs/RELIABILITY.md lists each fsync and the test that fails without it.
// Directories are fsynced after creating, in them, a log dir, a partition dir
// or a segment, before anything fsynced in them is acknowledged. Retention
// deletes only segments below the recovery point, so that a deletion undone
// by a power loss brings back a whole, flushed segment.
//
// At start, a dir with the marker is trusted: only each log's active segment
// is opened (its end found from the last index entry), and closed segments
// open on first use. Without the marker, each log scans every segment from
// the one holding its recovery point: batch by batch, checking length, magic,
// CRC and offset order; it rebuilds the indexes, truncates the first invalid
// batch and everything after it (deleting later segments), and logs what it
// dropped. A segment that ends before the next one begins (its data never
// reached the disk, the next one's did) also ends the log there: the log
// recovers to a prefix without holes.
package log
