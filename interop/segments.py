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

On a cluster each replica keeps its own copy of a partition, and a
follower appends the leader's batches as they are, header and CRC
included. Given several log dirs (comma-separated, one per node) and a
replica count, "codecs" first waits until exactly that many of them hold
the partition with the same batches, and fails naming the first
difference if they never do:

    python3 segments.py codecs LOGDIR,LOGDIR,LOGDIR TOPIC PARTITION REPLICAS
"""

import glob
import os
import struct
import sys
import time

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
            (base, length, epoch, magic, crc, attrs, last_delta, _base_ts,
             _max_ts, pid, _pepoch, base_seq, count) = HEADER.unpack_from(data, pos)
            if length <= 0 or pos + 12 + length > len(data):
                break  # preallocated tail or a batch still being written
            yield {
                "base_offset": base,
                "last_offset": base + last_delta,
                "length": length,
                "leader_epoch": epoch,
                "magic": magic,
                "crc": crc,
                "codec": CODECS.get(attrs & 7, "unknown(%d)" % (attrs & 7)),
                "producer_id": pid,
                "base_sequence": base_seq,
                "record_count": count,
            }
            pos += 12 + length


def replica_batches(log_dirs, topic, partition, replicas, timeout=30.0):
    """The batches of a partition that `replicas` of log_dirs hold alike.

    Waits up to timeout for exactly that many of the dirs to hold the
    partition and for every copy to have the same batches (a follower may
    still be fetching the last ones), then returns them. Raises
    AssertionError naming the first difference if they never agree.
    """
    deadline = time.time() + timeout
    while True:
        copies = {}
        for d in log_dirs:
            if os.path.isdir(os.path.join(d, "%s-%d" % (topic, partition))):
                copies[d] = list(batches(d, topic, partition))
        problem = _disagreement(copies, replicas)
        if problem is None:
            return next(iter(copies.values()))
        if time.time() > deadline:
            raise AssertionError("%s-%d: replicas on disk disagree after %.0fs: %s" % (
                topic, partition, timeout, problem))
        time.sleep(0.2)


def _disagreement(copies, replicas):
    if len(copies) != replicas:
        return "%d log dirs hold it (%s), want %d" % (
            len(copies), ", ".join(sorted(copies)), replicas)
    (first_dir, first), rest = next(iter(copies.items())), list(copies.items())[1:]
    for d, bs in rest:
        if bs == first:
            continue
        for i, (a, b) in enumerate(zip(first, bs)):
            if a != b:
                return "batch %d: %r in %s, %r in %s" % (i, a, first_dir, b, d)
        return "%d batches in %s, %d in %s" % (len(first), first_dir, len(bs), d)
    return None


def main(argv):
    if len(argv) not in (5, 6) or argv[1] != "codecs":
        sys.stderr.write("usage: segments.py codecs LOGDIR[,LOGDIR...] TOPIC PARTITION [REPLICAS]\n")
        return 2
    dirs = argv[2].split(",")
    replicas = int(argv[5]) if len(argv) == 6 else len(dirs)
    try:
        bs = replica_batches(dirs, argv[3], int(argv[4]), replicas)
    except AssertionError as e:
        sys.stderr.write("segments.py: %s\n" % e)
        return 1
    for b in bs:
        print(b["codec"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
