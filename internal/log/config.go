package log

import (
	"fmt"
	"math"
	"time"
)

// Config is the per-partition log configuration. Field comments give the
// Kafka topic-level config name each one mirrors; defaults are Kafka's.
type Config struct {
	// segment.bytes: roll the active segment when an append would grow
	// it past this size.
	SegmentBytes int64
	// segment.ms: roll when the active segment's first batch is older
	// than this (by its timestamp), so that time retention can delete it.
	SegmentMs int64
	// segment.index.bytes: the size to which offset and time indexes of the
	// active segment are preallocated; a full index rolls the segment.
	SegmentIndexBytes int
	// index.interval.bytes: add an index entry after this many bytes.
	IndexIntervalBytes int
	// retention.ms: delete closed segments whose largest timestamp is
	// older than this. -1 keeps everything.
	RetentionMs int64
	// retention.bytes: delete the oldest closed segments while the log is
	// larger than this. -1 means no limit.
	RetentionBytes int64
	// flush.messages: fsync after this many messages (offsets) are
	// unflushed. 1 is fsync-per-append; concurrent appends share one fsync
	// (group commit). The default (MaxInt64) leaves it to the page cache.
	FlushMessages int64
	// flush.ms: fsync when the last flush is older than this; checked by
	// the Manager's flusher. Default MaxInt64: never.
	FlushMs int64
	// file.delete.delay.ms: deleted segments are renamed to *.deleted and
	// removed after this delay, so readers holding their files finish.
	FileDeleteDelayMs int64
}

// Defaults, as Kafka's LogConfig.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentMs          = 7 * 24 * 60 * 60 * 1000
	DefaultSegmentIndexBytes  = 10 * 1024 * 1024
	DefaultIndexIntervalBytes = 4096
	DefaultRetentionMs        = 7 * 24 * 60 * 60 * 1000
	DefaultRetentionBytes     = -1
	DefaultFileDeleteDelayMs  = 60000
)

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       DefaultSegmentBytes,
		SegmentMs:          DefaultSegmentMs,
		SegmentIndexBytes:  DefaultSegmentIndexBytes,
		IndexIntervalBytes: DefaultIndexIntervalBytes,
		RetentionMs:        DefaultRetentionMs,
		RetentionBytes:     DefaultRetentionBytes,
		FlushMessages:      math.MaxInt64,
		FlushMs:            math.MaxInt64,
		FileDeleteDelayMs:  DefaultFileDeleteDelayMs,
	}
}

// Validate reports the first setting outside the range Kafka accepts.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < 14:
		// Kafka's minimum: LegacyRecord.RECORD_OVERHEAD_V0.
		return fmt.Errorf("log: segment.bytes %d must be at least 14", c.SegmentBytes)
	case c.SegmentBytes > math.MaxInt32:
		// Index positions are 4-byte integers.
		return fmt.Errorf("log: segment.bytes %d must fit in a 32-bit position", c.SegmentBytes)
	case c.SegmentMs < 1:
		return fmt.Errorf("log: segment.ms %d must be at least 1", c.SegmentMs)
	case c.SegmentIndexBytes < timeIndexEntrySize*2:
		return fmt.Errorf("log: segment.index.bytes %d must be at least %d", c.SegmentIndexBytes, timeIndexEntrySize*2)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("log: index.interval.bytes %d must not be negative", c.IndexIntervalBytes)
	case c.RetentionMs < -1:
		return fmt.Errorf("log: retention.ms %d must be -1 or more", c.RetentionMs)
	case c.FlushMessages < 1:
		return fmt.Errorf("log: flush.messages %d must be at least 1", c.FlushMessages)
	case c.FlushMs < 0:
		return fmt.Errorf("log: flush.ms %d must not be negative", c.FlushMs)
	case c.FileDeleteDelayMs < 0:
		return fmt.Errorf("log: file.delete.delay.ms %d must not be negative", c.FileDeleteDelayMs)
	}
	return nil
}

// syncEveryAppend reports whether each append waits for an fsync.
func (c Config) syncEveryAppend() bool { return c.FlushMessages == 1 }

func (c Config) fileDeleteDelay() time.Duration {
	return time.Duration(c.FileDeleteDelayMs) * time.Millisecond
}
