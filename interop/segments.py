#!/usr/bin/python3
"""Reads the record-batch headers strata wrote to a partition's segments.

The interop checks use it to prove, from the broker's own files, what a
client really sent: the codec of every batch (the broker keeps producers'
compression as sent, so a batch a client compressed with zstd is stored
with zstd's attribute bits) and the producer id of idempotent batches.
Only headers are read; records are not decoded.

Segment files are Kafka's: <log.dirs>/<topic>-<partition>/<base>.log, a
sequence of v2 RecordBatches:

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
    magic int8 | crc uint32 | attributes int16 | lastOffsetDelta int32 |
    baseTimestamp int64 | maxTimestamp int64 | producerId int64 |
    producerEpoch int16 | baseSequence int32 | recordCount int32 | records

    python3 segments.py codecs LOGDIR TOPIC PARTITION   # codec names, one a line
"""

import glob
import os
import struct
import sys

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
HEADER = struct.Struct(">qiiBIhiqqqhii")  # 61 bytes


def batches(log_dir, topic, partition):
    """Yields a dict per batch header, in offset order across segments."""
    part_dir = os.path.join(log_dir, "%s-%d" % (topic, partition))
    for path in sorted(glob.glob(os.path.join(part_dir, "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + HEADER.size <= len(data):
            (base, length, _epoch, magic, _crc, attrs, last_delta, _base_ts,
             _max_ts, pid, _pepoch, base_seq, count) = HEADER.unpack_from(data, pos)
            if length <= 0 or pos + 12 + length > len(data):
                break  # preallocated tail or a batch still being written
            yield {
                "base_offset": base,
                "last_offset": base + last_delta,
                "magic": magic,
                "codec": CODECS.get(attrs & 7, "unknown(%d)" % (attrs & 7)),
                "producer_id": pid,
                "base_sequence": base_seq,
                "record_count": count,
            }
            pos += 12 + length


def main(argv):
    if len(argv) != 5 or argv[1] != "codecs":
        sys.stderr.write("usage: segments.py codecs LOGDIR TOPIC PARTITION\n")
        return 2
    for b in batches(argv[2], argv[3], int(argv[4])):
        print(b["codec"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
