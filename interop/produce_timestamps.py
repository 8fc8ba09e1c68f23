#!/usr/bin/python3
"""Produces records with given CreateTime timestamps to one partition.

kcat cannot set a record's timestamp, so run.sh uses this to lay down
records whose timestamps it knows before asking `kcat -Q` for offsets.

    produce_timestamps.py HOST:PORT TOPIC PARTITION TS [TS ...]

Each TS is produced in order as value "ts-<TS>". Every record goes in its
own flush, so each lands in a batch of its own, unless TS is prefixed with
"+", which appends it to the previous record's batch. Exits non-zero unless
every record is acknowledged, at offsets 0, 1, 2, ... in order.
"""

import sys

from confluent_kafka import Producer


def main(argv):
    if len(argv) < 5:
        sys.stderr.write(__doc__)
        return 2
    bootstrap, topic, partition = argv[1], argv[2], int(argv[3])
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                  "linger.ms": 1000, "message.timeout.ms": 120000})
    offsets, errors = [], []

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets.append(msg.offset())

    pending = 0
    for arg in argv[4:]:
        same_batch = arg.startswith("+")
        ts = int(arg.lstrip("+"))
        if pending and not same_batch:
            p.flush(120)
            pending = 0
        p.produce(topic, value=b"ts-%d" % ts, partition=partition,
                  timestamp=ts, on_delivery=done)
        pending += 1
    if p.flush(120) != 0:
        sys.stderr.write("produce_timestamps: messages left unflushed\n")
        return 1
    want = list(range(len(argv) - 4))
    if errors or sorted(offsets) != want:
        sys.stderr.write("produce_timestamps: errors %r, offsets %r\n" % (errors, offsets))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
