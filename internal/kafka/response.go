package kafka

import (
	"sync"

	"github.com/strata-io/strata/internal/server"
)

// pooledResponse is a server.Response with the memory behind it: the
// encoded bytes, the parts that point into them and, for Fetch, the records
// markers and the length prefixes of its file regions. The server calls
// Release once the response is written (or the connection failed), which
// puts it back for the next response of any API: a steady stream of
// requests then encodes without allocating buffers.
type pooledResponse struct {
	resp    server.Response
	buf     []byte        // the encoded kmsg response
	parts   []server.Part // resp.Parts
	scratch []byte        // fetch: records markers, then region length prefixes
	release func()        // made once per pooledResponse, so Release costs nothing
}

// maxPooledBytes bounds the buffers a pooled response keeps: a rare large
// response (Metadata of thousands of topics) is left to the GC rather than
// pinned in the pool.
const maxPooledBytes = 64 << 10

var responsePool sync.Pool

func getResponse() *pooledResponse {
	if pr, ok := responsePool.Get().(*pooledResponse); ok {
		return pr
	}
	pr := &pooledResponse{}
	pr.release = func() { putResponse(pr) }
	return pr
}

func putResponse(pr *pooledResponse) {
	if cap(pr.buf) > maxPooledBytes || cap(pr.scratch) > maxPooledBytes || cap(pr.parts) > maxPooledBytes/64 {
		return
	}
	clear(pr.parts) // drop the file regions' *os.File references
	pr.parts = pr.parts[:0]
	pr.buf, pr.scratch = pr.buf[:0], pr.scratch[:0]
	pr.resp = server.Response{}
	responsePool.Put(pr)
}

// response fills in and returns the server.Response of pr's parts.
func (pr *pooledResponse) response() *server.Response {
	pr.resp.Parts = pr.parts
	pr.resp.Release = pr.release
	return &pr.resp
}

// noResponse answers Produce with acks=0. The server only reads a
// Response, so one value serves every such request.
var noResponse = &server.Response{None: true}
