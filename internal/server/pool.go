package server

import (
	"fmt"
	"math/bits"
	"sync"

	"golang.org/x/sys/unix"
)

// Size-classed buffer pools for request frames and the copy fallback. A
// class holds buffers of capacity 1<<shift, up to maxPooledFrame: Kafka
// clients send at most max.request.size = 1 MiB by default, so nearly every
// request is read into a pooled buffer, and the pools never hold more than
// a few idle MiB per class. sync.Pool drops idle buffers across GCs, which
// bounds what the pools keep after a burst.
//
// Larger frames are not pooled and not on the Go heap: see mapFrame.
const (
	minClassShift = 9  // 512 B: smaller frames share this class
	maxClassShift = 20 // 1 MiB
	// maxPooledFrame is the largest frame read into a pooled buffer,
	// all at once.
	maxPooledFrame = 1 << maxClassShift
	// frameChunk is how much of a larger frame is charged to the memory
	// pool and read at a time.
	frameChunk = 1 << 20
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

// Mappings of frames up to maxCachedMapShift are kept for reuse, at most
// mapCacheBytes of them (counted by their size, resident or not): a fresh
// mapping costs a page fault per 4 KiB and an unmap, which made a 4 MiB
// request three times slower to read than into a warm buffer. The cap keeps
// what idle caches hold small and fixed, where sync.Pool would keep any
// number of buffers until two GCs pass.
const (
	maxCachedMapShift = 24 // 16 MiB
	mapCacheBytes     = 32 << 20
)

var mapCache struct {
	sync.Mutex
	bytes int
	free  [maxCachedMapShift - maxClassShift][][]byte // by class, 2 MiB up
}

// mapFrame returns a mapping of n bytes for a frame larger than
// maxPooledFrame: anonymous and private, so the kernel backs its pages only
// when they are first written, and the frame costs the bytes that arrived,
// not the size its prefix announced (a client announcing 99 MiB and sending
// 1 MiB costs 1 MiB). unmapFrame gives the pages back to the OS at once,
// where a Go heap buffer would wait for a GC (which an idle broker may not
// run for minutes, and which a heap inflated by such buffers puts off
// further) and then for the scavenger. Growing a heap buffer as bytes
// arrive would copy each frame about twice; the mapping is never copied.
// Frames up to 16 MiB get a mapping of their power-of-two class, from the
// cache when it has one.
func mapFrame(n int) ([]byte, error) {
	size := n
	if shift := bits.Len(uint(n - 1)); shift <= maxCachedMapShift {
		size = 1 << shift
		free := &mapCache.free[shift-maxClassShift-1]
		mapCache.Lock()
		if k := len(*free); k > 0 {
			b := (*free)[k-1]
			(*free)[k-1] = nil
			*free = (*free)[:k-1]
			mapCache.bytes -= size
			mapCache.Unlock()
			return b[:n], nil
		}
		mapCache.Unlock()
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("server: map %d-byte request buffer: %w", n, err)
	}
	return b[:n], nil
}

// unmapFrame releases a mapping from mapFrame: to the cache if it is of a
// cached class and the cache has room, otherwise to the OS. Nothing may
// refer to it afterwards: a handler that kept part of a request body past
// its response's Release would fault, or read a later request, which
// Request.Body forbids.
func unmapFrame(b []byte) {
	c := cap(b)
	if shift := bits.Len(uint(c - 1)); c&(c-1) == 0 && shift <= maxCachedMapShift {
		mapCache.Lock()
		if mapCache.bytes+c <= mapCacheBytes {
			mapCache.bytes += c
			free := &mapCache.free[shift-maxClassShift-1]
			*free = append(*free, b[:c])
			mapCache.Unlock()
			return
		}
		mapCache.Unlock()
	}
	if err := unix.Munmap(b[:c]); err != nil {
		// Only a mapping that mapFrame did not return fails: a bug.
		panic(fmt.Sprintf("server: unmap request buffer: %v", err))
	}
}
