// Package server is strata's network layer: it accepts connections, reads
// Kafka request frames, hands each request to a Handler, and writes the
// responses back in request order, sending file regions with sendfile(2).
// It knows the request and response headers and nothing of the bodies.
//
// # Framing
//
// Every request and response is a frame: a 4-byte big-endian size, then
// that many bytes. A size that is negative or above MaxRequestSize
// (socket.request.max.bytes) closes the connection before the body is read
// or allocated, as Kafka's InvalidReceiveException does.
//
// # Memory
//
// A size prefix is a claim, not a cost. A frame up to 1 MiB (Kafka clients'
// max.request.size) is read into a pooled buffer; a larger one into an
// anonymous mapping whose pages the kernel backs only as bytes arrive, read
// 1 MiB at a time, and unmapped (its pages back to the OS) when released;
// up to 32 MiB of mappings of frames up to 16 MiB are kept for reuse, so
// that large produce requests do not fault in fresh pages every time.
// Every frame is charged to one memory pool per server before its bytes
// are read, whole or chunk by chunk, and released when its response has
// been written: queued.max.request.bytes, Kafka's MemoryPool, in Kafka's
// non-strict mode. While the pool is spent, readers wait (the socket is not
// read, TCP pushes back) until bytes are released.
//
// Connections past max.connections, or past max.connections.per.ip for
// their address (or its override), are closed at accept, counted through
// Config.OnConnRejected and logged at most once per 10 seconds.
//
//	request frame
//	+--------+---------+---------+-------------+-----------+---------+------+
//	| size   | api key | version | correlation | client id | tagged  | body |
//	| int32  | int16   | int16   | int32       | nullable  | fields  |      |
//	|        |         |         |             | string    | (v2)    |      |
//	+--------+---------+---------+-------------+-----------+---------+------+
//	         |<------------------ size bytes ------------------------------>|
//
//	client id:     int16 length (-1 = null), then that many bytes; it stays
//	               a non-compact string in header v2 (KIP-482)
//	tagged fields: uvarint count, then per field a uvarint tag, a uvarint
//	               size and size bytes; none are defined, all are skipped
//
// Request header v2 (with tagged fields) is used by a key's flexible
// versions, v1 otherwise; the first flexible version of each key comes
// from kmsg, and a version newer than kmsg knows counts as its newest, so
// a newer client's ApiVersions request is still understood. A header that
// does not parse closes the connection.
//
//	response frame
//	+--------+-------------+--------+-----------------------------------+
//	| size   | correlation | 0x00   | parts: bytes and file regions     |
//	| int32  | int32       | (v1)   | in order                          |
//	+--------+-------------+--------+-----------------------------------+
//
// Response header v1 adds the empty tagged-field byte; the Handler chooses
// it (ApiVersions always answers with header v0). Byte parts are gathered
// with writev; a file region goes with sendfile(2) at its explicit offset,
// so concurrent fetches never share a file position (DESIGN.md principle
// 1). Connections that are not plain TCP or Unix sockets (TLS, pipes) copy
// regions through a pooled buffer with pread.
//
// # Concurrency
//
//	          +--------+  slots (arrival order)  +--------+
//	socket -->| reader |------------------------>| writer |--> socket
//	          +--------+                         +--------+
//	               |  work (arrival order)            ^
//	               +--> handler loop: one at a time --+ done, per slot
//
// Each connection has one reader goroutine, one handler goroutine and one
// writer goroutine. The reader reads a frame and queues its slot for both
// the handler loop and the writer. The handler loop runs the connection's
// requests one at a time, in arrival order, as Kafka does by muting a
// connection while its request is processed: two pipelined produce
// requests for a partition are applied in the order they were sent, which
// record order and idempotent sequence numbers depend on. Reading the next
// requests and writing earlier responses overlap with handling; requests of
// different connections run in parallel. The writer takes slots in order,
// waits for each, and sends responses ready back to back in one writev. At
// most MaxInFlightPerConn requests are read and not yet answered: the
// reader then stops reading the socket, and TCP pushes back on the client.
//
// A handler error, a panic (recovered, logged with its stack) or a failed
// write closes that connection only; the server keeps serving the others.
// Request buffers come from size-classed pools (or are mappings) and return
// to them, with their charge in the memory pool, after the response is
// written and its Release called.
//
// Ownership: Server.Shutdown waits for every connection goroutine (the
// reader); a reader waits for its writer; the writer waits for every
// handler goroutine of the slots it drains, even after the connection
// failed. Shutdown stops the readers (a read deadline in the past), lets
// the requests already read be answered, then closes the connections.
//
// Lock order: Server.mu, then conn.mu. The memory pool's mutex, the
// mapping cache's and the reject log's are leaves: nothing is locked under
// them.
package server
