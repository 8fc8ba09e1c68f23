// Package record is a zero-copy view over Kafka's v2 RecordBatch (magic 2),
// the unit strata stores, sends and replicates. It does no I/O.
//
// A Batch is a []byte that holds exactly one batch. Header fields are read
// from and patched in that buffer directly; nothing is copied to look at a
// batch or to split a produce payload into batches. Records inside a batch
// are decoded only by the few callers that need them (recompression,
// compaction), after decompression. The produce path's validation
// (ValidateRecords) and timestamp lookups (FindTimestamp) only walk them:
// keys and values are skipped, and a compressed section is decompressed as
// a stream through a small pooled buffer (stream.go), so neither costs
// memory in proportion to what a batch decompresses to.
//
// Layout of a v2 batch (big endian, as Kafka's DefaultRecordBatch):
//
//	offset  size  field
//	     0     8  baseOffset
//	     8     4  batchLength           bytes after this field
//	    12     4  partitionLeaderEpoch
//	    16     1  magic                 always 2
//	    17     4  crc                   CRC-32C of bytes [21, end)
//	    21     2  attributes            bits 0-2 codec, 3 timestamp type,
//	                                    4 transactional, 5 control,
//	                                    6 delete horizon set
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     -  records (compressed as a whole when codec != none)
//
// baseOffset and partitionLeaderEpoch lie outside the CRC, so the broker
// assigns offsets and stamps the leader epoch in place without touching it.
//
// Each record (after decompression) is:
//
//	length          varint  bytes after this field
//	attributes      int8    unused
//	timestampDelta  varlong from baseTimestamp
//	offsetDelta     varint  from baseOffset
//	keyLength       varint  -1 for a null key
//	key             bytes
//	valueLength     varint  -1 for a null value
//	value           bytes
//	headerCount     varint
//	headers         (keyLength varint, key, valueLength varint, value)...
//
// Varints are zigzag-encoded (Kafka's ByteUtils.readVarint), as
// encoding/binary's signed varints are.
//
// Compressed records are one stream of the batch's codec: a gzip member, an
// LZ4 frame (independent blocks), a zstd frame, or snappy. strata writes
// snappy as one raw block, as franz-go does; the Java client and librdkafka
// write snappy-java's xerial framing, which strata also reads:
//
//	offset  size  field
//	     0     8  magic                 0x82 "SNAPPY" 0x00
//	     8     4  version               1
//	    12     4  compatible version    1
//	    16     -  chunks: 4-byte big-endian length, raw snappy block
package record
