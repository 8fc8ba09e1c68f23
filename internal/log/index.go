package log

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/strata-io/strata/internal/fs"
)

const (
	offsetIndexEntrySize = 8  // relative offset (4) + position (4)
	timeIndexEntrySize   = 12 // timestamp (8) + relative offset (4)

	// warmBytes is the tail of an index that lookups search first: most
	// reads are near the end of the log, and keeping them inside the last
	// few pages keeps those pages hot (Kafka's AbstractIndex warm section).
	warmBytes = 8192
)

// index is a memory-mapped file of fixed-size entries, sorted by their first
// field. The active segment's index is mapped read-write at its preallocated
// size; a closed segment's index is mapped read-only at its real size.
//
// Concurrency: one appender (the Log, holding its append lock) writes
// entries and then publishes the count with an atomic store; readers load
// the count first and read only entries below it. Remapping (trim, resize)
// and closing happen under the Log's structure lock held for writing, which
// readers hold for reading while they look up.
type index struct {
	path       string
	file       fs.File
	mmap       []byte
	entrySize  int
	baseOffset int64
	writable   bool
	entries    atomic.Int64
	// reserved is how many bytes from the file's start have disk blocks
	// allocated (reserve): entries below it are written through the
	// mapping without a fault. Owned by the appender; 0 on a fresh open,
	// since trim frees the blocks past the entries.
	reserved int64
}

// openIndex maps the index at path. A writable index is grown (sparsely) to
// maxBytes so appends need no remap; its existing entries are those the file
// held, which callers check with sanity checks or rebuild. A read-only index
// is mapped at its file size.
func openIndex(fsys fs.FS, path string, baseOffset int64, entrySize, maxBytes int, writable bool) (*index, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR | os.O_CREATE
	}
	f, err := fsys.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	idx := &index{path: path, file: f, entrySize: entrySize, baseOffset: baseOffset, writable: writable}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat index %s: %w", path, err)
	}
	existing := st.Size() / int64(entrySize)
	size := int(existing) * entrySize
	if writable {
		size = maxBytes - maxBytes%entrySize
		if int64(size) < existing*int64(entrySize) {
			existing = int64(size / entrySize)
		}
		if err := f.Truncate(int64(size)); err != nil {
			f.Close()
			return nil, fmt.Errorf("resize index %s: %w", path, err)
		}
	}
	if err := idx.mapFile(size); err != nil {
		f.Close()
		return nil, err
	}
	idx.entries.Store(existing)
	return idx, nil
}

func (x *index) mapFile(size int) error {
	if size == 0 {
		x.mmap = nil
		return nil
	}
	prot := unix.PROT_READ
	if x.writable {
		prot |= unix.PROT_WRITE
	}
	m, err := unix.Mmap(int(x.file.OS().Fd()), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap index %s: %w", x.path, err)
	}
	x.mmap = m
	return nil
}

func (x *index) unmap() error {
	if x.mmap == nil {
		return nil
	}
	err := unix.Munmap(x.mmap)
	x.mmap = nil
	return err
}

// reserveChunk is how much of an index reserve allocates at once, so that
// appends make a fallocate call once every few thousand entries.
const reserveChunk = 64 << 10

// reserve makes sure the next n entries have disk blocks behind them, so
// that writing them through the mapping cannot fault. openIndex grows the
// file sparsely, and on a full file system the first store to a page with
// no block behind it raises SIGBUS, which kills a Go process (Kafka's
// mapped indexes have the same hole, where the JVM throws InternalError).
// Allocating the blocks ahead with fallocate turns that into ENOSPC before
// the append writes anything. A file system without fallocate (or any
// other failure than no space) keeps the old behaviour.
func (x *index) reserve(n int) error {
	need := (x.entries.Load() + int64(n)) * int64(x.entrySize)
	if !x.writable || need <= x.reserved {
		return nil
	}
	end := min((need+reserveChunk-1)/reserveChunk*reserveChunk, int64(len(x.mmap)))
	if end <= x.reserved {
		return nil
	}
	err := unix.Fallocate(int(x.file.OS().Fd()), unix.FALLOC_FL_KEEP_SIZE, x.reserved, end-x.reserved)
	switch {
	case err == nil:
		x.reserved = end
	case noSpace(err):
		return fmt.Errorf("allocate index %s: %w", x.path, err)
	default:
		x.reserved = int64(len(x.mmap)) // cannot reserve here: write as before
	}
	return nil
}

func (x *index) maxEntries() int64 { return int64(len(x.mmap) / x.entrySize) }

func (x *index) isFull() bool { return x.entries.Load() >= x.maxEntries() }

func (x *index) entry(i int64) []byte {
	off := int(i) * x.entrySize
	return x.mmap[off : off+x.entrySize]
}

// search returns the index of the last entry whose key (as keyOf reads it)
// is <= target, or -1 when every entry is greater or there are none. It looks
// in the warm tail first.
func (x *index) search(n int64, target int64, keyOf func([]byte) int64) int64 {
	if n == 0 || keyOf(x.entry(0)) > target {
		return -1
	}
	warm := n - int64(warmBytes/x.entrySize)
	if warm < 0 {
		warm = 0
	}
	lo, hi := int64(0), n-1
	if keyOf(x.entry(warm)) <= target {
		lo = warm
	} else {
		hi = warm
	}
	// Invariant: key(lo) <= target; answer in [lo, hi].
	for lo < hi {
		mid := hi - (hi-lo)/2
		if keyOf(x.entry(mid)) <= target {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// truncateEntries drops entries from i on.
func (x *index) truncateEntries(i int64) {
	if i < x.entries.Load() {
		x.entries.Store(i)
	}
}

// trim shrinks the file to its entries and remaps it read-only: done when the
// segment stops being active. Caller holds the structure lock for writing.
func (x *index) trim() error {
	n := x.entries.Load()
	if err := x.unmap(); err != nil {
		return fmt.Errorf("unmap index %s: %w", x.path, err)
	}
	size := int(n) * x.entrySize
	if err := x.file.Truncate(int64(size)); err != nil {
		return fmt.Errorf("trim index %s: %w", x.path, err)
	}
	x.writable = false
	return x.mapFile(size)
}

// flush writes the index to disk. fsync of the file also writes pages
// dirtied through a shared mapping, so it works whether the mapping is still
// writable or was already trimmed and remapped read-only by a roll (the
// flush after a roll runs after the seal). The *os.File holds a reference on
// its descriptor during Sync, so a concurrent close cannot pull it away.
func (x *index) flush() error {
	if err := x.file.Sync(); err != nil {
		return fmt.Errorf("fsync index %s: %w", x.path, err)
	}
	return nil
}

// close trims a writable index to its entries and releases it.
func (x *index) close() error {
	var err error
	if x.writable {
		err = x.trim()
	}
	if uerr := x.unmap(); err == nil && uerr != nil {
		err = uerr
	}
	if cerr := x.file.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// offsetIndex maps offsets to file positions: entry = (offset - base: uint32,
// position: uint32), big endian, as Kafka's OffsetIndex. An entry's offset is
// the last offset of the batch that starts at its position.
type offsetIndex struct{ *index }

func openOffsetIndex(fsys fs.FS, path string, base int64, maxBytes int, writable bool) (offsetIndex, error) {
	x, err := openIndex(fsys, path, base, offsetIndexEntrySize, maxBytes, writable)
	return offsetIndex{x}, err
}

func (x offsetIndex) at(i int64) (offset int64, pos int64) {
	e := x.entry(i)
	return x.baseOffset + int64(binary.BigEndian.Uint32(e)), int64(binary.BigEndian.Uint32(e[4:]))
}

func (x offsetIndex) relOffsetKey(e []byte) int64 { return int64(binary.BigEndian.Uint32(e)) }

func positionKey(e []byte) int64 { return int64(binary.BigEndian.Uint32(e[4:])) }

// lookup returns the position of the last indexed batch whose last offset is
// <= offset, or 0 (the segment start) when there is none. The batch holding
// offset starts at or after the returned position.
func (x offsetIndex) lookup(offset int64) int64 {
	i := x.search(x.entries.Load(), offset-x.baseOffset, x.relOffsetKey)
	if i < 0 {
		return 0
	}
	_, pos := x.at(i)
	return pos
}

// lookupPosition returns the last indexed batch position <= pos, or 0.
// Positions grow with offsets, so the same entries answer both questions.
func (x offsetIndex) lookupPosition(pos int64) int64 {
	i := x.search(x.entries.Load(), pos, positionKey)
	if i < 0 {
		return 0
	}
	_, p := x.at(i)
	return p
}

// lastEntry returns the last entry, ok=false when empty.
func (x offsetIndex) lastEntry() (offset, pos int64, ok bool) {
	n := x.entries.Load()
	if n == 0 {
		return x.baseOffset, 0, false
	}
	offset, pos = x.at(n - 1)
	return offset, pos, true
}

// append adds an entry; the caller guarantees offsets and positions increase.
func (x offsetIndex) append(offset, pos int64) {
	n := x.entries.Load()
	e := x.entry(n)
	binary.BigEndian.PutUint32(e, uint32(offset-x.baseOffset))
	binary.BigEndian.PutUint32(e[4:], uint32(pos))
	x.entries.Store(n + 1)
}

// truncateTo drops entries for offsets >= offset.
func (x offsetIndex) truncateTo(offset int64) {
	i := x.search(x.entries.Load(), offset-x.baseOffset-1, x.relOffsetKey)
	x.truncateEntries(i + 1)
}

// timeIndex maps timestamps to offsets: entry = (timestamp: int64, offset -
// base: uint32), big endian, as Kafka's TimeIndex. Timestamps are the running
// maximum of the segment, so entries increase in both fields; the offset is
// that of the batch that first reached the timestamp (its last offset).
type timeIndex struct{ *index }

func openTimeIndex(fsys fs.FS, path string, base int64, maxBytes int, writable bool) (timeIndex, error) {
	x, err := openIndex(fsys, path, base, timeIndexEntrySize, maxBytes, writable)
	return timeIndex{x}, err
}

func (x timeIndex) at(i int64) (ts, offset int64) {
	e := x.entry(i)
	return int64(binary.BigEndian.Uint64(e)), x.baseOffset + int64(binary.BigEndian.Uint32(e[8:]))
}

func timestampKey(e []byte) int64 { return int64(binary.BigEndian.Uint64(e)) }

// lookup returns the offset of the last entry with timestamp <= ts, or the
// segment base offset when there is none.
func (x timeIndex) lookup(ts int64) int64 {
	i := x.search(x.entries.Load(), ts, timestampKey)
	if i < 0 {
		return x.baseOffset
	}
	_, off := x.at(i)
	return off
}

func (x timeIndex) lastEntry() (ts, offset int64, ok bool) {
	n := x.entries.Load()
	if n == 0 {
		return -1, x.baseOffset, false
	}
	ts, offset = x.at(n - 1)
	return ts, offset, true
}

// isFull leaves room for the entry added when the segment is closed, as
// Kafka's TimeIndex does.
func (x timeIndex) isFull() bool { return x.entries.Load() >= x.maxEntries()-1 }

// maybeAppend adds (ts, offset) if ts is larger than the last entry's.
// force skips the fullness check (used for the final entry on close).
func (x timeIndex) maybeAppend(ts, offset int64, force bool) {
	n := x.entries.Load()
	if n >= x.maxEntries() || (!force && x.isFull()) {
		return
	}
	if last, lastOff, ok := x.lastEntry(); ok && (ts <= last || offset < lastOff) {
		return
	}
	e := x.entry(n)
	binary.BigEndian.PutUint64(e, uint64(ts))
	binary.BigEndian.PutUint32(e[8:], uint32(offset-x.baseOffset))
	x.entries.Store(n + 1)
}

// truncateTo drops entries for offsets >= offset. Timestamps grow with
// offsets, so the entries to keep are a prefix.
func (x timeIndex) truncateTo(offset int64) {
	n := x.entries.Load()
	keep := n
	for keep > 0 {
		_, off := x.at(keep - 1)
		if off < offset {
			break
		}
		keep--
	}
	x.truncateEntries(keep)
}
