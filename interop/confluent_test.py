#!/usr/bin/python3
"""Interop checks with Debian's python3-confluent-kafka (librdkafka).

Run by interop/run.sh against a running strata:

    STRATA_BOOTSTRAP=127.0.0.1:PORT STRATA_LOG_DIR=DIR /usr/bin/python3 confluent_test.py

or against a cluster, with every broker's log dir (node 1's first) and the
replication factor of the topics the tests create:

    STRATA_BOOTSTRAP=HOST:PORT,HOST:PORT,HOST:PORT STRATA_LOG_DIR=DIR1,DIR2,DIR3 \
        INTEROP_RF=3 /usr/bin/python3 confluent_test.py

The checks that read batches on disk then read every replica's copy and
require them all to hold the same batches.

Use /usr/bin/python3: Debian's module is built for Debian's Python, not for
a pyenv one that may come first on PATH.

Besides unittest's own report (on stderr) it prints one machine-readable
line per test on stdout for run.sh to count:

    interop-check total N
    interop-check ok test_name
    interop-check FAIL test_name

Every check compares what was consumed with what was produced, message by
message, so an empty topic or a consumer that read nothing fails.

Most consumers here assign partitions themselves and never join a group
(librdkafka still wants a group.id to build a Consumer; those offsets are
neither committed nor stored). The Groups tests are the exception: their
consumers subscribe, share a group's partitions and commit.
"""

import hashlib
import os
import struct
import sys
import threading
import time
import unittest
import uuid

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic)

import apiversions
import metadata
import segments

BOOTSTRAP = os.environ.get("STRATA_BOOTSTRAP", "127.0.0.1:9092")
# Log dirs, node 1's first; enables the on-disk checks.
LOG_DIRS = [d for d in os.environ.get("STRATA_LOG_DIR", "").split(",") if d]
LOG_DIR = LOG_DIRS[0] if LOG_DIRS else None
RF = int(os.environ.get("INTEROP_RF", "1"))
# Generous: the machine has 2 cores and other suites run beside this one.
TIMEOUT = float(os.environ.get("INTEROP_TIMEOUT", "120"))


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


_admin = None


def admin():
    """The shared AdminClient. It must outlive the futures it returns:
    librdkafka fails them with _DESTROY when the handle is collected."""
    global _admin
    if _admin is None:
        # No auto-creation from this handle's metadata refreshes: it would
        # bring a deleted topic straight back (Kafka does the same).
        _admin = AdminClient({"bootstrap.servers": BOOTSTRAP,
                              "allow.auto.create.topics": False})
    return _admin


def create_topic(name, partitions, config=None):
    fs = admin().create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=RF,
                  config=config or {})],
        request_timeout=TIMEOUT)
    fs[name].result(timeout=TIMEOUT)
    wait_partitions(name, partitions)


def topic_metadata(name):
    md = admin().list_topics(topic=name, timeout=TIMEOUT)
    return md.topics.get(name)


def wait_partitions(name, partitions):
    """Waits until metadata shows the topic with that many led partitions,
    on every broker (metadata.py says why), and returns it."""
    metadata.wait_everywhere(BOOTSTRAP.split(","), name, partitions, TIMEOUT)
    t = topic_metadata(name)
    assert t is not None and t.error is None and len(t.partitions) == partitions, (
        name, t and (t.error, sorted(t.partitions)))
    return t


def produce(topic, messages, **conf):
    """Produces messages (dicts of produce() kwargs) and waits for them.

    Returns the delivery reports as (partition, offset, key, value), in the
    order they arrived, after checking that every one succeeded.
    """
    cfg = {"bootstrap.servers": BOOTSTRAP, "linger.ms": 5,
           "message.timeout.ms": int(TIMEOUT * 1000)}
    cfg.update(conf)
    p = Producer(cfg)
    reports, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append((err, msg.key(), msg.value()))
        else:
            reports.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    for m in messages:
        while True:
            try:
                p.produce(topic, on_delivery=on_delivery, **m)
                break
            except BufferError:  # local queue full: let deliveries drain
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(TIMEOUT)
    assert remaining == 0, "%d messages still queued after %ss" % (remaining, TIMEOUT)
    assert not errors, "%d delivery errors, first: %r" % (len(errors), errors[0])
    assert len(reports) == len(messages), (len(reports), len(messages))
    return reports


def new_consumer(**conf):
    cfg = {
        "bootstrap.servers": BOOTSTRAP,
        "group.id": "interop-unused",  # required by librdkafka; never joined
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",  # an unexpected reset must show up
        "enable.partition.eof": False,
    }
    cfg.update(conf)
    return Consumer(cfg)


def consume(topic, ends, starts=None, **conf):
    """Reads partitions [start, end) of topic without a group.

    ends maps partition -> offset to read up to (exclusive); starts maps
    partition -> first offset (default: the beginning). Returns partition ->
    list of messages, in the order received. Fails on a consumer error or if
    the ends are not reached in time.
    """
    starts = starts or {}
    c = new_consumer(**conf)
    try:
        c.assign([TopicPartition(topic, p, starts.get(p, OFFSET_BEGINNING))
                  for p in ends])
        got = {p: [] for p in ends}
        pending = {p for p, end in ends.items() if end > starts.get(p, 0)}
        deadline = time.time() + TIMEOUT
        while pending:
            assert time.time() < deadline, "timed out; still reading %s, got %s" % (
                sorted(pending), {p: len(v) for p, v in got.items()})
            for m in c.consume(num_messages=1000, timeout=1.0):
                if m.error():
                    raise AssertionError("consumer error: %s" % m.error())
                got[m.partition()].append(m)
                if m.offset() >= ends[m.partition()] - 1:
                    pending.discard(m.partition())
        # Anything past the end must not exist: give the consumer a moment
        # to return extras (duplicates would also show as bad offsets).
        for m in c.consume(num_messages=1000, timeout=1.0):
            if m.error():
                raise AssertionError("consumer error: %s" % m.error())
            got[m.partition()].append(m)
        return got
    finally:
        c.close()


def on_disk(topic, partition):
    """The batch headers of a partition on disk: with several brokers,
    RF of them must hold it, every copy the same batches."""
    return segments.replica_batches(LOG_DIRS, topic, partition, RF, timeout=TIMEOUT)


DYNAMIC_TOPIC = ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def source(entry):
    """A ConfigEntry's source as an int (the binding gives int or enum)."""
    return int(getattr(entry.source, "value", entry.source))


def by_partition(reports):
    """Delivery reports -> partition -> list sorted by offset."""
    out = {}
    for part, off, key, value in reports:
        out.setdefault(part, []).append((off, key, value))
    for v in out.values():
        v.sort()
    return out


def _short(v):
    if isinstance(v, bytes) and len(v) > 60:
        return "<%d bytes sha1 %s ending %r>" % (
            len(v), hashlib.sha1(v).hexdigest()[:12], v[-8:])
    r = repr(v)
    return r if len(r) <= 120 else "%s...(%d chars)" % (r[:120], len(r))


class Case(unittest.TestCase):

    def assertSeq(self, got, want, msg=None):
        """assertEqual for long lists of big values: names the first
        difference instead of diffing everything (which takes minutes)."""
        got, want = list(got), list(want)
        if got == want:
            return
        i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w),
                 min(len(got), len(want)))
        self.fail("%s%d items, want %d; first difference at index %d: got %s, want %s" % (
            msg + ": " if msg else "", len(got), len(want), i,
            _short(got[i]) if i < len(got) else "nothing",
            _short(want[i]) if i < len(want) else "nothing"))


class Admin(Case):

    def test_create_list_delete_topic(self):
        name = unique("adm")
        create_topic(name, 3)
        t = wait_partitions(name, 3)
        self.assertEqual(sorted(t.partitions), [0, 1, 2])
        seeds = BOOTSTRAP.split(",")
        for p in t.partitions.values():
            self.assertIsNone(p.error)
            self.assertEqual(len(p.replicas), RF)
            self.assertEqual(len(set(p.replicas)), RF)
            self.assertIn(p.leader, p.replicas)
            self.assertEqual(sorted(p.isrs), sorted(p.replicas))
        if RF > 1:
            # Leaders spread over the brokers (Kafka's placement).
            self.assertEqual(len({p.leader for p in t.partitions.values()}), 3)
        md = admin().list_topics(timeout=TIMEOUT)
        self.assertIn(name, md.topics)
        self.assertEqual(sorted("%s:%d" % (b.host, b.port) for b in md.brokers.values()),
                         sorted(seeds))

        # Creating it again is an error, reported as Kafka does.
        fs = admin().create_topics([NewTopic(name, 3, RF)], request_timeout=TIMEOUT)
        with self.assertRaises(KafkaException) as cm:
            fs[name].result(timeout=TIMEOUT)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS)

        fs = admin().delete_topics([name], request_timeout=TIMEOUT)
        fs[name].result(timeout=TIMEOUT)
        deadline = time.time() + TIMEOUT
        while name in admin().list_topics(timeout=TIMEOUT).topics:
            self.assertLess(time.time(), deadline, "deleted topic still listed")
            time.sleep(0.2)
        # Every broker must have applied the deletion before any answer
        # is checked: librdkafka picks which one it asks.
        metadata.wait_gone_everywhere(BOOTSTRAP.split(","), name, TIMEOUT)
        t = topic_metadata(name)
        self.assertEqual(t.error.code(), KafkaError.UNKNOWN_TOPIC_OR_PART)
        fs = admin().delete_topics([name], request_timeout=TIMEOUT)
        with self.assertRaises(KafkaException) as cm:
            fs[name].result(timeout=TIMEOUT)
        self.assertEqual(cm.exception.args[0].code(), KafkaError.UNKNOWN_TOPIC_OR_PART)

    def test_metadata_without_auto_create(self):
        # A consumer's metadata request says AllowAutoTopicCreation=false:
        # the topic must not appear.
        name = unique("noauto")
        c = new_consumer()
        try:
            t = c.list_topics(topic=name, timeout=TIMEOUT).topics[name]
            self.assertEqual(t.error.code(), KafkaError.UNKNOWN_TOPIC_OR_PART)
        finally:
            c.close()
        self.assertNotIn(name, admin().list_topics(timeout=TIMEOUT).topics)

    def test_create_partitions(self):
        name = unique("parts")
        create_topic(name, 3)
        fs = admin().create_partitions([NewPartitions(name, 5)], request_timeout=TIMEOUT)
        fs[name].result(timeout=TIMEOUT)
        wait_partitions(name, 5)
        # The new partitions take writes and give them back.
        msgs = [{"key": b"k%d" % i, "value": b"v%d" % i, "partition": i % 5}
                for i in range(50)]
        produce(name, msgs, acks="all")
        got = consume(name, {p: 10 for p in range(5)})
        for p in range(5):
            self.assertSeq([m.value() for m in got[p]],
                           [b"v%d" % i for i in range(p, 50, 5)])

    def test_describe_and_alter_configs(self):
        name = unique("cfg")
        create_topic(name, 1, config={"retention.ms": "3600000"})
        res = ConfigResource("topic", name)
        entries = admin().describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
        self.assertEqual(entries["retention.ms"].value, "3600000")
        self.assertEqual(source(entries["retention.ms"]), DYNAMIC_TOPIC)
        self.assertIn("cleanup.policy", entries)
        self.assertIn("segment.bytes", entries)
        self.assertNotEqual(source(entries["segment.bytes"]), DYNAMIC_TOPIC)

        # This python binding (1.7) has no incremental_alter_configs; its
        # alter_configs is the legacy AlterConfigs, which replaces the
        # topic's whole set of overrides.
        res = ConfigResource("topic", name,
                             set_config={"retention.ms": "7200000",
                                         "max.message.bytes": "2000000"})
        admin().alter_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
        res = ConfigResource("topic", name)
        entries = admin().describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
        self.assertEqual(entries["retention.ms"].value, "7200000")
        self.assertEqual(entries["max.message.bytes"].value, "2000000")
        self.assertEqual(source(entries["max.message.bytes"]), DYNAMIC_TOPIC)

        # An unknown key is refused and changes nothing.
        bad = ConfigResource("topic", name, set_config={"no.such.config": "1"})
        with self.assertRaises(KafkaException):
            admin().alter_configs([bad], request_timeout=TIMEOUT)[bad].result(TIMEOUT)
        entries = admin().describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
        self.assertEqual(entries["retention.ms"].value, "7200000")

        # strata answers broker resources with an empty list for now
        # (32_describe_configs.go): no error, and whatever it lists is right.
        res = ConfigResource("broker", "1")
        entries = admin().describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)
        if LOG_DIR and "log.dirs" in entries:  # node 1's
            self.assertEqual(entries["log.dirs"].value, LOG_DIR)
        # (No check for an unknown broker id: librdkafka sends a broker
        # resource to that broker and so just waits out its timeout.)


class Produce(Case):

    def check_roundtrip(self, topic, reports, got):
        """Every produced message, exactly once, in offset order, per partition."""
        want = by_partition(reports)
        self.assertEqual(sorted(got), sorted(want))
        total = 0
        for p, msgs in want.items():
            # The broker assigned offsets 0..n-1 with no gap or duplicate.
            self.assertSeq([o for o, _, _ in msgs], list(range(len(msgs))),
                           "partition %d offsets" % p)
            have = [(m.offset(), m.key(), m.value()) for m in got[p]]
            self.assertEqual(len(have), len(msgs), "partition %d count" % p)
            self.assertSeq(have, msgs, "partition %d content" % p)
            total += len(have)
        self.assertEqual(total, len(reports))

    def test_idempotent_producer_5000_keyed(self):
        topic = unique("idem")
        create_topic(topic, 3)
        n = 5000
        msgs = [{"key": b"key-%d" % (i % 97), "value": b"value-%05d" % i}
                for i in range(n)]
        reports = produce(topic, msgs, **{"enable.idempotence": True, "acks": "all",
                                          "max.in.flight.requests.per.connection": 5,
                                          "batch.num.messages": 200})
        parts = by_partition(reports)
        self.assertEqual(sorted(parts), [0, 1, 2], "keys should spread over all partitions")
        # Same key, same partition; per key, values stay in produce order.
        key_part = {}
        for p, _, key, _ in reports:
            self.assertEqual(key_part.setdefault(key, p), p, "key %r split" % key)
        got = consume(topic, {p: len(v) for p, v in parts.items()})
        self.check_roundtrip(topic, reports, got)
        for p, msgs_p in got.items():
            per_key = {}
            for m in msgs_p:
                per_key.setdefault(m.key(), []).append(m.value())
            for key, values in per_key.items():
                self.assertSeq(values, sorted(values), "order of key %r" % key)
        c = new_consumer()
        try:
            for p, v in parts.items():
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)
                self.assertEqual((lo, hi), (0, len(v)))
        finally:
            c.close()
        if LOG_DIR:
            # The batches on disk carry the producer id and sequences the
            # broker accepted: proof that idempotence was really on.
            for p in parts:
                bs = on_disk(topic, p)
                self.assertTrue(bs)
                self.assertEqual(sum(b["record_count"] for b in bs), len(parts[p]))
                self.assertTrue(all(b["producer_id"] >= 0 for b in bs), bs[:3])
                self.assertEqual(len({b["producer_id"] for b in bs}), 1)
                seq = 0
                for b in bs:
                    self.assertEqual(b["base_sequence"], seq)
                    seq += b["record_count"]

    def roundtrip_acks(self, acks):
        topic = unique("acks%s" % acks)
        create_topic(topic, 2)
        msgs = [{"value": b"acks-%d" % i, "partition": i % 2} for i in range(1000)]
        produce(topic, msgs, acks=acks)
        got = consume(topic, {0: 500, 1: 500})
        for p in (0, 1):
            self.assertSeq([m.offset() for m in got[p]], list(range(500)))
            self.assertSeq([m.value() for m in got[p]],
                           [b"acks-%d" % i for i in range(p, 1000, 2)])

    def test_acks_0(self):
        self.roundtrip_acks("0")

    def test_acks_1(self):
        self.roundtrip_acks("1")

    def test_pipelined_produce_keeps_order(self):
        # One message per ProduceRequest, up to 100 of them in flight on
        # one connection, no idempotence: Kafka applies a connection's
        # requests in the order they were sent, so offsets follow send order.
        topic = unique("order")
        create_topic(topic, 1)
        msgs = [{"value": b"o%05d" % i, "partition": 0} for i in range(3000)]
        reports = produce(topic, msgs, **{"acks": "1", "batch.num.messages": 1,
                                          "linger.ms": 0,
                                          "max.in.flight.requests.per.connection": 100})
        self.assertSeq([v for _, v in sorted((o, v) for _, o, _, v in reports)],
                       [m["value"] for m in msgs], "acknowledged offsets vs send order")
        got = consume(topic, {0: len(msgs)})[0]
        self.assertSeq([(m.offset(), m.value()) for m in got],
                       [(i, m["value"]) for i, m in enumerate(msgs)])

    def test_headers_and_timestamps(self):
        topic = unique("hdr")
        create_topic(topic, 1)
        base = int(time.time() * 1000) - 3600 * 1000
        msgs = [{"key": None if i % 3 == 0 else b"k%d" % i,
                 "value": None if i == 7 else b"v%d" % i,
                 "headers": [("h", b"x%d" % i), ("empty", b""), ("h", b"dup")],
                 "timestamp": base + i, "partition": 0}
                for i in range(20)]
        produce(topic, msgs)
        got = consume(topic, {0: 20})[0]
        self.assertEqual(len(got), 20)
        for i, m in enumerate(got):
            self.assertEqual(m.offset(), i)
            self.assertEqual(m.key(), msgs[i]["key"])
            self.assertEqual(m.value(), msgs[i]["value"])
            self.assertEqual(m.headers(), [("h", b"x%d" % i), ("empty", b""), ("h", b"dup")])
            self.assertEqual(m.timestamp(), (1, base + i))  # CreateTime

    def test_large_message(self):
        topic = unique("large")
        create_topic(topic, 1)
        big = bytes(range(256)) * 3000  # 768 KB, below max.message.bytes
        msgs = [{"value": big + b"%d" % i, "partition": 0} for i in range(4)]
        produce(topic, msgs, **{"compression.type": "none"})
        got = consume(topic, {0: 4})[0]
        self.assertSeq([m.value() for m in got], [m["value"] for m in msgs])

    def test_assign_at_offset(self):
        topic = unique("seek")
        create_topic(topic, 1)
        msgs = [{"value": b"m%d" % i, "partition": 0} for i in range(300)]
        produce(topic, msgs)
        got = consume(topic, {0: 300}, starts={0: 123})[0]
        self.assertSeq([m.offset() for m in got], list(range(123, 300)))
        self.assertSeq([m.value() for m in got], [b"m%d" % i for i in range(123, 300)])

    def test_offsets_for_times(self):
        topic = unique("ts")
        create_topic(topic, 1)
        base = int(time.time() * 1000) - 24 * 3600 * 1000
        # Two batches: 10 records 1 s apart, then 10 more after a gap, so
        # lookups land inside a batch as well as on batch boundaries.
        first = [{"value": b"a%d" % i, "timestamp": base + i * 1000, "partition": 0}
                 for i in range(10)]
        second = [{"value": b"b%d" % i, "timestamp": base + 60000 + i * 1000, "partition": 0}
                  for i in range(10)]
        produce(topic, first)
        produce(topic, second)
        cases = {
            base - 1: 0,                   # before everything
            base: 0,                       # exact first
            base + 1: 1,                   # just after first: next record
            base + 4500: 5,                # inside the first batch
            base + 9000: 9,                # last of the first batch
            base + 9001: 10,               # in the gap: first of the second
            base + 60000 + 3000: 13,       # exact, inside the second batch
            base + 60000 + 9000: 19,       # exact last
            base + 60000 + 9001: -1,       # after everything: no offset
        }
        c = new_consumer()
        try:
            for ts, want in sorted(cases.items()):
                res = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=TIMEOUT)
                self.assertEqual(len(res), 1)
                self.assertIsNone(res[0].error)
                self.assertEqual(res[0].offset, want, "timestamp base%+d" % (ts - base))
        finally:
            c.close()
        # And the records are really there with those timestamps.
        got = consume(topic, {0: 20})[0]
        self.assertSeq([m.timestamp()[1] for m in got],
                       [m["timestamp"] for m in first + second])


def make_codec_test(codec):
    def test(self):
        if codec == "lz4":
            # librdkafka's rule (apiversions.py): lz4 only against a broker
            # serving FindCoordinator v0, which strata does since it has groups.
            self.assertTrue(apiversions.librdkafka_lz4(BOOTSTRAP),
                            "strata does not serve FindCoordinator v0: librdkafka "
                            "would send lz4 batches uncompressed")
        topic = unique("codec-%s" % codec)
        create_topic(topic, 1)
        # Repetitive text so every codec really shrinks every batch, even one
        # holding a single record: librdkafka sends a batch uncompressed when
        # compressing would not help (seen with a lone 18-byte zstd record).
        msgs = [{"key": b"k%04d" % i,
                 "value": (b"%s record %05d " % (codec.encode(), i)) * (12 + i % 20),
                 "partition": 0} for i in range(2000)]
        reports = produce(topic, msgs, **{"compression.type": codec, "linger.ms": 50})
        got = consume(topic, {0: len(msgs)})[0]
        self.assertEqual(len(got), len(msgs))
        self.assertSeq([(m.offset(), m.key(), m.value()) for m in got],
                       [(i, m["key"], m["value"]) for i, m in enumerate(msgs)])
        self.assertEqual(sorted(o for _, o, _, _ in reports), list(range(len(msgs))))
        if LOG_DIR:
            codecs = [b["codec"] for b in on_disk(topic, 0)]
            self.assertTrue(codecs)
            self.assertEqual(set(codecs), {codec}, "batch codecs on disk")
            if codec == "lz4":
                sys.stderr.write("NOTE: lz4: %d batches on disk, all lz4\n" % len(codecs))
    test.__name__ = "test_compression_%s" % codec
    return test


class Compression(Case):
    pass


for _codec in ("none", "gzip", "snappy", "lz4", "zstd"):
    setattr(Compression, "test_compression_%s" % _codec, make_codec_test(_codec))


def decode_assignment(data):
    """A consumer protocol Assignment (as DescribeGroups returns it for each
    member) -> {topic: sorted partitions}."""
    _version, n = struct.unpack_from(">hi", data, 0)
    pos, out = 6, {}
    for _ in range(n):
        (size,) = struct.unpack_from(">h", data, pos)
        topic = data[pos + 2:pos + 2 + size].decode()
        pos += 2 + size
        (count,) = struct.unpack_from(">i", data, pos)
        out[topic] = sorted(struct.unpack_from(">%di" % count, data, pos + 4))
        pos += 4 + 4 * count
    return out


class Member(threading.Thread):
    """One group member: a subscribed Consumer polled by its own thread.

    It records every message and its assignment as the rebalance callbacks
    report it. stop() ends the poll loop; the thread then commits (when
    commit_on_stop) and closes the consumer, which leaves the group.
    """

    def __init__(self, group, topic, name, commit_on_stop, **conf):
        super().__init__(name=name, daemon=True)
        cfg = {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": group,
            "client.id": name,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            # Notice a rebalance quickly (the default is 3 s).
            "heartbeat.interval.ms": 300,
        }
        cfg.update(conf)
        self.consumer = Consumer(cfg)
        self.topic = topic
        self.commit_on_stop = commit_on_stop
        self.lock = threading.Lock()
        self.assigned = set()
        self.rebalances = 0  # assign and revoke callbacks
        self.msgs = []       # (partition, offset, value)
        self.errors = []
        self._halt = threading.Event()

    # Both kinds of rebalance: eager revokes everything and then assigns
    # the whole new set; cooperative revokes and assigns only what moves.
    def _on_assign(self, _consumer, parts):
        with self.lock:
            self.assigned |= {tp.partition for tp in parts}
            self.rebalances += 1

    def _on_revoke(self, _consumer, parts):
        with self.lock:
            self.assigned -= {tp.partition for tp in parts}
            self.rebalances += 1

    def run(self):
        try:
            self.consumer.subscribe([self.topic], on_assign=self._on_assign,
                                    on_revoke=self._on_revoke)
            while not self._halt.is_set():
                for m in self.consumer.consume(num_messages=500, timeout=0.1):
                    with self.lock:
                        if m.error():
                            self.errors.append(m.error())
                        else:
                            self.msgs.append((m.partition(), m.offset(), m.value()))
            if self.commit_on_stop:
                # Commits the offsets of the messages consume() returned.
                self.consumer.commit(asynchronous=False)
        except Exception as e:  # reported by the test
            with self.lock:
                self.errors.append(e)
        finally:
            self.consumer.close()

    def state(self):
        with self.lock:
            return set(self.assigned), self.rebalances, list(self.msgs), list(self.errors)

    def stop(self):
        self._halt.set()
        self.join(TIMEOUT)
        assert not self.is_alive(), "%s did not close within %ss" % (self.name, TIMEOUT)


def wait_until(what, cond, members=()):
    deadline = time.time() + TIMEOUT
    while not cond():
        for m in members:
            _, _, _, errors = m.state()
            assert not errors, "%s: %r" % (m.name, errors)
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


class Groups(Case):

    def describe_group(self, group):
        gs = admin().list_groups(group=group, timeout=TIMEOUT)
        self.assertEqual([g.id for g in gs], [group])
        self.assertIsNone(gs[0].error)
        return gs[0]

    def test_two_members_share_partitions_exactly_once(self):
        parts = 6
        topic, group = unique("grp"), unique("grp")
        create_topic(topic, parts)
        everything = set(range(parts))
        # m0 auto-commits (librdkafka commits on revoke and on close); m1
        # commits explicitly before it leaves.
        m0 = Member(group, topic, "interop-m0", commit_on_stop=False,
                    **{"enable.auto.commit": True})
        m1 = Member(group, topic, "interop-m1", commit_on_stop=True,
                    **{"enable.auto.commit": False})
        members = (m0, m1)
        try:
            # Alone, m0 gets every partition; m1 joining rebalances them.
            m0.start()
            wait_until("m0 to get all partitions", lambda: m0.state()[0] == everything, members)
            m1.start()

            def split():
                a0, a1 = m0.state()[0], m1.state()[0]
                return a0 and a1 and not a0 & a1 and a0 | a1 == everything
            wait_until("m0 and m1 to split the partitions", split, members)
            a0, r0, _, _ = m0.state()
            a1, r1, _, _ = m1.state()
            sys.stderr.write("NOTE: group of two: m0 got partitions %s, m1 got %s\n"
                             % (sorted(a0), sorted(a1)))

            # DescribeGroups agrees, member by member.
            g = self.describe_group(group)
            self.assertEqual(g.state, "Stable")
            self.assertEqual(g.protocol_type, "consumer")
            self.assertEqual(g.protocol, "range")  # librdkafka's first choice
            got = {m.client_id: decode_assignment(m.assignment) for m in g.members}
            self.assertEqual(got, {"interop-m0": {topic: sorted(a0)},
                                   "interop-m1": {topic: sorted(a1)}})

            # Produce only now, so each record goes to the member that owns
            # its partition for good.
            n = 600
            msgs = [{"value": b"grp-%04d" % i, "partition": i % parts} for i in range(n)]
            reports = produce(topic, msgs)
            want = sorted((p, o, v) for p, o, _, v in reports)
            wait_until("all %d records consumed" % n,
                       lambda: len(m0.state()[2]) + len(m1.state()[2]) >= n, members)
            time.sleep(0.5)  # room for duplicates to show up
            s0, s1 = m0.state(), m1.state()
            self.assertEqual((s0[0], s0[1]), (a0, r0), "m0 rebalanced while consuming")
            self.assertEqual((s1[0], s1[1]), (a1, r1), "m1 rebalanced while consuming")
            for name, (assigned, _, got_msgs, _) in (("m0", s0), ("m1", s1)):
                self.assertTrue(got_msgs, name + " consumed nothing")
                outside = {p for p, _, _ in got_msgs} - assigned
                self.assertFalse(outside, "%s read partitions it was not assigned" % name)
            self.assertSeq(sorted(s0[2] + s1[2]), want, "records consumed by the group")

            # m1 commits and leaves: m0 takes over every partition and
            # resumes m1's at its commits, so it reads nothing more.
            m1.stop()
            wait_until("m0 to take over all partitions", lambda: m0.state()[0] == everything,
                       (m0,))
            time.sleep(0.5)
            self.assertEqual(len(m0.state()[2]), len(s0[2]), "m0 re-read records after m1 left")
            self.assertEqual(m0.state()[3], [])
            m0.stop()  # auto-commit on close
        finally:
            for m in members:
                if m.is_alive():
                    m.stop()
        self.assertEqual(m0.state()[3] + m1.state()[3], [])
        g = self.describe_group(group)
        self.assertEqual((g.state, len(g.members)), ("Empty", 0))

        # The commits are there: the end of every partition.
        c = new_consumer(**{"group.id": group})
        try:
            committed = c.committed([TopicPartition(topic, p) for p in range(parts)],
                                    timeout=TIMEOUT)
        finally:
            c.close()
        self.assertEqual([(tp.partition, tp.offset, tp.error) for tp in committed],
                         [(p, n // parts, None) for p in range(parts)])

        # A new member resumes there: it gets exactly what came after.
        more = [{"value": b"more-%04d" % i, "partition": i % parts} for i in range(60)]
        reports = produce(topic, more)
        want = sorted((p, o, v) for p, o, _, v in reports)
        self.assertEqual({o for _, o, _ in want}, set(range(n // parts, n // parts + 10)))
        m2 = Member(group, topic, "interop-m2", commit_on_stop=False,
                    **{"enable.auto.commit": False})
        try:
            m2.start()
            wait_until("m2 to read the new records", lambda: len(m2.state()[2]) >= len(more), (m2,))
            time.sleep(0.5)
        finally:
            m2.stop()
        self.assertEqual(m2.state()[3], [])
        self.assertSeq(sorted(m2.state()[2]), want, "records after the commits")


class Result(unittest.TextTestResult):
    """Adds the lines run.sh counts; a skip counts as a failure."""

    def _report(self, test, ok):
        name = test.id().rsplit(".", 1)[-1]
        print("interop-check %s %s" % ("ok" if ok else "FAIL", name), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._report(test, True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._report(test, False)

    def addError(self, test, err):
        super().addError(test, err)
        self._report(test, False)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._report(test, False)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    if len(sys.argv) > 1:  # run only tests whose name contains an argument
        suite = unittest.TestSuite(
            t for cls in suite for t in cls
            if any(a in t.id() for a in sys.argv[1:]))
    print("interop-check total %d" % suite.countTestCases(), flush=True)
    res = unittest.TextTestRunner(stream=sys.stderr, verbosity=2,
                                  resultclass=Result).run(suite)
    return 0 if res.wasSuccessful() and res.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
