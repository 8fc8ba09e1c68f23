#!/usr/bin/python3
"""Small librdkafka helpers for run.sh's consumer-group checks with kcat.

kcat cannot create topics or show a group's committed offsets, so the kcat
-G check asks python3-confluent-kafka for both:

    python3 groups.py create HOST:PORT TOPIC PARTITIONS
    python3 groups.py offsets HOST:PORT GROUP TOPIC   # "partition committed high", one a line

"offsets" prints -1 as committed for a partition the group has no commit for
(librdkafka's OFFSET_INVALID, -1001, is mapped to -1 to keep the output
plain). It only reads: the consumer it uses never joins the group.
"create" gives the topic INTEROP_RF replicas (default 1; run.sh sets 3
against a cluster).
"""

import os
import sys

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import metadata

TIMEOUT = float(os.environ.get("INTEROP_TIMEOUT", "120"))
RF = int(os.environ.get("INTEROP_RF", "1"))


def create(boot, topic, partitions):
    admin = AdminClient({"bootstrap.servers": boot})
    fs = admin.create_topics([NewTopic(topic, partitions, RF)], request_timeout=TIMEOUT)
    fs[topic].result(timeout=TIMEOUT)
    # On every broker: a client may ask any of them (metadata.py).
    metadata.wait_everywhere(boot.split(","), topic, partitions, TIMEOUT)


def offsets(boot, group, topic):
    c = Consumer({"bootstrap.servers": boot, "group.id": group,
                  "enable.auto.commit": False})
    try:
        t = c.list_topics(topic=topic, timeout=TIMEOUT).topics[topic]
        if t.error is not None:
            raise SystemExit("groups.py: topic %s: %s" % (topic, t.error))
        tps = [TopicPartition(topic, p) for p in sorted(t.partitions)]
        for tp in c.committed(tps, timeout=TIMEOUT):
            if tp.error is not None:
                raise SystemExit("groups.py: committed %s [%d]: %s" % (topic, tp.partition, tp.error))
            _, high = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=TIMEOUT)
            print(tp.partition, tp.offset if tp.offset >= 0 else -1, high)
    finally:
        c.close()


def main(argv):
    if len(argv) == 5 and argv[1] == "create":
        create(argv[2], argv[3], int(argv[4]))
    elif len(argv) == 5 and argv[1] == "offsets":
        offsets(argv[2], argv[3], argv[4])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
