#!/usr/bin/python3
"""Asks one broker for a topic's metadata (Metadata v4, stdlib only).

A cluster's brokers each apply its metadata on their own, so right after
CreateTopics one broker may know a topic another does not yet: a client
that then asks the other is told UNKNOWN_TOPIC_OR_PARTITION (Kafka's
brokers behave the same; its tests wait with
TestUtils.waitForAllPartitionsMetadata). librdkafka's clients pick the
broker they ask themselves, so the interop checks ask each broker here.

    python3 metadata.py HOST:PORT[,HOST:PORT...] TOPIC PARTITIONS
        waits (up to INTEROP_TIMEOUT s) until every broker listed shows
        TOPIC with PARTITIONS partitions, each with a leader.
"""

import os
import socket
import struct
import sys
import time

import apiversions

METADATA = 3


def topic_partitions(addr, topic, timeout=60.0):
    """(error_code, {partition: leader}) of topic as addr's broker sees it,
    asked with AllowAutoTopicCreation=false."""
    host, port = addr.rsplit(":", 1)
    client_id = b"interop"
    name = topic.encode()
    body = (struct.pack(">hhih", METADATA, 4, 1, len(client_id)) + client_id
            + struct.pack(">ih", 1, len(name)) + name + b"\x00")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", apiversions._read(s, 4))[0]
        r = apiversions._read(s, size)
    pos = 4 + 4  # correlation id, throttle_time_ms

    def i16():
        nonlocal pos
        pos += 2
        return struct.unpack_from(">h", r, pos - 2)[0]

    def i32():
        nonlocal pos
        pos += 4
        return struct.unpack_from(">i", r, pos - 4)[0]

    def string():
        nonlocal pos
        n = i16()
        if n < 0:
            return None
        pos += n
        return r[pos - n:pos].decode()

    for _ in range(i32()):  # brokers: node_id, host, port, rack
        i32(), string(), i32(), string()
    string(), i32()  # cluster_id, controller_id
    err, parts = None, {}
    for _ in range(i32()):
        terr, tname = i16(), string()
        pos += 1  # is_internal
        tparts = {}
        for _ in range(i32()):
            _perr, index, leader = i16(), i32(), i32()
            for _ in range(i32()):  # replicas
                i32()
            for _ in range(i32()):  # isr
                i32()
            tparts[index] = leader
        if tname == topic:
            err, parts = terr, tparts
    return err, parts


def wait_everywhere(addrs, topic, partitions, timeout):
    deadline = time.time() + timeout
    for addr in addrs:
        while True:
            err, parts = topic_partitions(addr, topic)
            if err == 0 and len(parts) == partitions and all(l >= 0 for l in parts.values()):
                break
            if time.time() > deadline:
                raise AssertionError("topic %s never showed %d led partitions on %s: error %s, %r"
                                     % (topic, partitions, addr, err, parts))
            time.sleep(0.1)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    try:
        wait_everywhere(sys.argv[1].split(","), sys.argv[2], int(sys.argv[3]),
                        float(os.environ.get("INTEROP_TIMEOUT", "120")))
    except AssertionError as e:
        sys.stderr.write("metadata.py: %s\n" % e)
        sys.exit(1)


def wait_gone_everywhere(addrs, topic, timeout):
    """Waits until every broker listed answers UNKNOWN_TOPIC_OR_PARTITION
    (3) for topic: after DeleteTopics, as after CreateTopics, each broker
    applies the change on its own."""
    deadline = time.time() + timeout
    for addr in addrs:
        while True:
            err, _ = topic_partitions(addr, topic)
            if err == 3:
                break
            if time.time() > deadline:
                raise AssertionError("deleted topic %s still known to %s: error %s" % (topic, addr, err))
            time.sleep(0.1)
