package cluster

import (
	"sync"
	"sync/atomic"
)

// imageCell holds the current image: read without locks, and watched by
// those who act on every change (Store.Changed).
type imageCell struct {
	atomic.Pointer[Image]
	mu      sync.Mutex
	changed chan struct{}
}

func newImageCell() *imageCell { return &imageCell{changed: make(chan struct{})} }

// Store publishes im and wakes the watchers.
func (c *imageCell) Store(im *Image) {
	c.Pointer.Store(im)
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Changed returns a channel closed at the next Store.
func (c *imageCell) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}
