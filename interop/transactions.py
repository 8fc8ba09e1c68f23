#!/usr/bin/python3
"""Transactions through librdkafka (python3-confluent-kafka), as run.sh's
transaction check drives them:

    python3 transactions.py HOST:PORT TOPIC

Creates TOPIC (2 partitions, INTEROP_RF replicas) and an input topic, then:
  1. commits a transaction of 10 records per partition;
  2. aborts one of 10 records per partition;
  3. commits a consume-transform-produce transaction: reads the input
     topic in a group and sends the group's offsets to the transaction
     (send_offsets_to_transaction), so the offsets become visible only
     with the commit;
  4. fences a zombie: a second producer with the same transactional.id
     makes the first one's commit fail.
A read_committed consumer must then see every committed record once and
no aborted one; a read_uncommitted consumer sees the aborted records too;
the group's committed offset must be the input's end. Prints one "ok"
line per check and exits non-zero on the first failure.
"""

import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import metadata

TIMEOUT = float(os.environ.get("INTEROP_TIMEOUT", "120"))
RF = int(os.environ.get("INTEROP_RF", "1"))


def fail(msg):
    print("transactions.py: FAIL: " + msg)
    sys.exit(1)


def create(boot, topics, partitions):
    admin = AdminClient({"bootstrap.servers": boot})
    fs = admin.create_topics([NewTopic(t, partitions, RF) for t in topics], request_timeout=TIMEOUT)
    for t in topics:
        fs[t].result(timeout=TIMEOUT)
        metadata.wait_everywhere(boot.split(","), t, partitions, TIMEOUT)


def producer(boot, txn_id):
    # librdkafka wants message.timeout.ms <= transaction.timeout.ms.
    ms = int(TIMEOUT * 1000)
    p = Producer({"bootstrap.servers": boot, "transactional.id": txn_id,
                  "transaction.timeout.ms": max(60000, ms), "message.timeout.ms": ms})
    p.init_transactions(TIMEOUT)
    return p


def produce(p, topic, prefix, n):
    for part in (0, 1):
        for i in range(n):
            p.produce(topic, key=b"k", value=("%s-%d-%d" % (prefix, part, i)).encode(), partition=part)
    if p.flush(TIMEOUT) != 0:
        fail("records of %s not delivered" % prefix)


def read_all(boot, topic, isolation):
    c = Consumer({"bootstrap.servers": boot, "group.id": "reader-" + uuid.uuid4().hex,
                  "isolation.level": isolation, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        seen, eof, deadline = [], set(), time.time() + TIMEOUT
        while len(eof) < 2 and time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == -191:  # _PARTITION_EOF
                    eof.add(m.partition())
                    continue
                fail("consume %s (%s): %s" % (topic, isolation, m.error()))
            seen.append(m.value().decode())
        if len(eof) < 2:
            fail("consume %s (%s): no end of partition within %ss" % (topic, isolation, TIMEOUT))
        return seen
    finally:
        c.close()


def main():
    boot, topic = sys.argv[1], sys.argv[2]
    src = topic + "-in"
    create(boot, [topic, src], 2)
    txn_id = "interop-" + uuid.uuid4().hex

    p = producer(boot, txn_id)
    p.begin_transaction()
    produce(p, topic, "committed", 10)
    p.commit_transaction(TIMEOUT)
    print("ok commit")

    p.begin_transaction()
    produce(p, topic, "aborted", 10)
    p.abort_transaction(TIMEOUT)
    print("ok abort")

    # Consume-transform-produce: input written without a transaction.
    plain = Producer({"bootstrap.servers": boot})
    for i in range(20):
        plain.produce(src, value=("in-%d" % i).encode(), partition=i % 2)
    if plain.flush(TIMEOUT) != 0:
        fail("input records not delivered")
    group = "etl-" + uuid.uuid4().hex
    c = Consumer({"bootstrap.servers": boot, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    c.subscribe([src])
    got, deadline = [], time.time() + TIMEOUT
    while len(got) < 20 and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error() is not None:
            continue
        got.append(m)
    if len(got) < 20:
        fail("etl: read %d of 20 input records" % len(got))
    p.begin_transaction()
    for m in got:
        p.produce(topic, value=b"etl-" + m.value(), partition=m.partition())
    positions = c.position([TopicPartition(src, 0), TopicPartition(src, 1)])
    p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), TIMEOUT)
    p.commit_transaction(TIMEOUT)
    c.close()
    print("ok consume-transform-produce")

    committed = read_all(boot, topic, "read_committed")
    want = sorted(["committed-%d-%d" % (part, i) for part in (0, 1) for i in range(10)] +
                  ["etl-in-%d" % i for i in range(20)])
    if sorted(committed) != want:
        fail("read_committed saw %d records, want %d; extra %s missing %s" % (
            len(committed), len(want), sorted(set(committed) - set(want))[:5], sorted(set(want) - set(committed))[:5]))
    print("ok read_committed sees %d committed records and no aborted one" % len(committed))

    uncommitted = read_all(boot, topic, "read_uncommitted")
    aborted = [v for v in uncommitted if v.startswith("aborted-")]
    if len(aborted) != 20:
        fail("read_uncommitted saw %d aborted records, want 20" % len(aborted))
    print("ok read_uncommitted sees the 20 aborted records")

    check = Consumer({"bootstrap.servers": boot, "group.id": group, "enable.auto.commit": False})
    offs = check.committed([TopicPartition(src, 0), TopicPartition(src, 1)], timeout=TIMEOUT)
    check.close()
    if [o.offset for o in offs] != [10, 10]:
        fail("group offsets after the transaction: %s, want [10, 10]" % [o.offset for o in offs])
    print("ok group offsets committed with the transaction")

    # A zombie: the same transactional.id initialised again fences p.
    p.begin_transaction()
    p.produce(topic, value=b"zombie", partition=0)
    p.flush(TIMEOUT)
    p2 = producer(boot, txn_id)
    try:
        p.commit_transaction(TIMEOUT)
        fail("the fenced producer's commit succeeded")
    except KafkaException as e:
        err = e.args[0]
        if not (err.fatal() or err.txn_requires_abort()):
            fail("fenced producer's commit failed with an unexpected error: %s" % err)
    print("ok zombie fenced")
    p2.begin_transaction()
    p2.produce(topic, value=b"after-fence", partition=0)
    p2.commit_transaction(TIMEOUT)
    final = read_all(boot, topic, "read_committed")
    if "zombie" in final or "after-fence" not in final:
        fail("after fencing, read_committed saw zombie=%s after-fence=%s" % ("zombie" in final, "after-fence" in final))
    print("ok new producer commits after fencing; the zombie's record is not visible")


if __name__ == "__main__":
    main()
