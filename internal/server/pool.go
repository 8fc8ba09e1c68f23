package server

import (
	"math/bits"
	"sync"
)

// Size-classed buffer pools for request frames and the copy fallback. A
// class holds buffers of capacity 1<<shift; requests of up to 16 MiB (Kafka
// clients send at most max.request.size = 1 MiB by default) are served from
// a pool, larger ones are allocated and left to the GC so that one huge
// produce does not pin its buffer. sync.Pool drops idle buffers across GCs,
// which bounds what the pools hold after a burst.
const (
	minClassShift = 9  // 512 B: smaller frames share this class
	maxClassShift = 24 // 16 MiB
)

var bufPools [maxClassShift - minClassShift + 1]sync.Pool

// getBuf returns a buffer of length n. The pointer is what putBuf takes
// back; storing *[]byte keeps Put from allocating a slice header.
func getBuf(n int) *[]byte {
	shift := minClassShift
	if n > 1<<minClassShift {
		shift = bits.Len(uint(n - 1))
	}
	if shift > maxClassShift {
		b := make([]byte, n)
		return &b
	}
	if p, ok := bufPools[shift-minClassShift].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<shift)
	return &b
}

// putBuf returns a buffer from getBuf to its pool. Buffers whose capacity
// is not one of the classes (the unpooled large ones) are dropped.
func putBuf(p *[]byte) {
	c := cap(*p)
	if c < 1<<minClassShift || c > 1<<maxClassShift || c&(c-1) != 0 {
		return
	}
	bufPools[bits.Len(uint(c))-1-minClassShift].Put(p)
}
