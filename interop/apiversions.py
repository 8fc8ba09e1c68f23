#!/usr/bin/python3
"""Asks a broker which API versions it serves (ApiVersions v0, stdlib only).

The interop checks need it for one librdkafka rule: librdkafka enables LZ4
only when the broker serves FindCoordinator v0 (a 0.8.2-era heuristic in
its rdkafka_feature.c) and otherwise sends lz4-configured batches
uncompressed. strata serves FindCoordinator since it has consumer groups,
so the lz4 checks require it and then expect lz4 batches on disk.

    python3 apiversions.py HOST:PORT KEY VERSION   # exit 0 if served, 1 if not
"""

import socket
import struct
import sys


def api_versions(addr, timeout=60.0):
    """Returns {api_key: (min, max)} from an ApiVersions v0 request.

    addr may be a bootstrap list (a cluster's brokers, comma-separated,
    all of one build): the first one is asked."""
    host, port = addr.split(",")[0].strip().rsplit(":", 1)
    client_id = b"interop"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _read(s, 4))[0]
        resp = _read(s, size)
    corr, err, n = struct.unpack_from(">ihi", resp, 0)
    if corr != 1 or err != 0:
        raise RuntimeError("ApiVersions: correlation %d, error %d" % (corr, err))
    out = {}
    for i in range(n):
        key, lo, hi = struct.unpack_from(">hhh", resp, 10 + 6 * i)
        out[key] = (lo, hi)
    return out


def serves(addr, key, version):
    r = api_versions(addr).get(key)
    return r is not None and r[0] <= version <= r[1]


def _read(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("ApiVersions: connection closed")
        buf += chunk
    return buf


FIND_COORDINATOR = 10


def librdkafka_lz4(addr):
    """Whether librdkafka will really compress with lz4 against addr."""
    return serves(addr, FIND_COORDINATOR, 0)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.stderr.write("usage: apiversions.py HOST:PORT KEY VERSION\n")
        sys.exit(2)
    sys.exit(0 if serves(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])) else 1)
