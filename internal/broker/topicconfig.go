package broker

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-io/strata/internal/log"
)

// ErrInvalidConfig: INVALID_CONFIG.
var ErrInvalidConfig = errors.New("broker: invalid config")

// TopicConfig is a topic's effective configuration: the broker defaults with
// the topic's overrides applied.
type TopicConfig struct {
	Log             log.Config
	MaxMessageBytes int
	LogAppendTime   bool // message.timestamp.type=LogAppendTime
	// KIP-937 bounds on CreateTime timestamps, relative to the broker's
	// clock: message.timestamp.before.max.ms and .after.max.ms.
	TimestampBeforeMaxMs int64
	TimestampAfterMaxMs  int64
	Compression          string // compression.type: producer, uncompressed, gzip, snappy, lz4, zstd
	CleanupPolicy        string // cleanup.policy: delete (compaction not built yet)
	MinInsyncReplicas    int
	// UncleanLeaderElection is unclean.leader.election.enable: the
	// controller reads it from the topic's configs; kept here so that
	// topics accept and describe it.
	UncleanLeaderElection bool
}

// DefaultTopicConfig is Kafka's default topic configuration.
func DefaultTopicConfig() TopicConfig {
	return TopicConfig{
		Log:             log.DefaultConfig(),
		MaxMessageBytes: 1048588,
		// Kafka 4's defaults (KIP-937): any age, at most an hour ahead.
		TimestampBeforeMaxMs: math.MaxInt64,
		TimestampAfterMaxMs:  3600000,
		Compression:          "producer",
		CleanupPolicy:        "delete",
		MinInsyncReplicas:    1,
	}
}

// TopicConfigDef describes one topic-level config key.
type TopicConfigDef struct {
	Name string
	Doc  string
	get  func(*TopicConfig) string
	set  func(*TopicConfig, string) error
}

func int64Def(name, doc string, field func(*TopicConfig) *int64, minimum int64) TopicConfigDef {
	return TopicConfigDef{Name: name, Doc: doc,
		get: func(c *TopicConfig) string { return strconv.FormatInt(*field(c), 10) },
		set: func(c *TopicConfig, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < minimum {
				return fmt.Errorf("%w: %s=%q must be an integer >= %d", ErrInvalidConfig, name, v, minimum)
			}
			*field(c) = n
			return nil
		}}
}

func intDef(name, doc string, field func(*TopicConfig) *int, minimum int) TopicConfigDef {
	return TopicConfigDef{Name: name, Doc: doc,
		get: func(c *TopicConfig) string { return strconv.Itoa(*field(c)) },
		set: func(c *TopicConfig, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if err != nil || int(n) < minimum {
				return fmt.Errorf("%w: %s=%q must be an integer >= %d", ErrInvalidConfig, name, v, minimum)
			}
			*field(c) = int(n)
			return nil
		}}
}

func enumDef(name, doc string, field func(*TopicConfig) *string, allowed ...string) TopicConfigDef {
	return TopicConfigDef{Name: name, Doc: doc,
		get: func(c *TopicConfig) string { return *field(c) },
		set: func(c *TopicConfig, v string) error {
			if !slices.Contains(allowed, v) {
				return fmt.Errorf("%w: %s=%q must be one of %s", ErrInvalidConfig, name, v, strings.Join(allowed, ", "))
			}
			*field(c) = v
			return nil
		}}
}

// TopicConfigDefs lists the topic configs strata understands, with Kafka's
// names, in name order.
var TopicConfigDefs = []TopicConfigDef{
	enumDef("cleanup.policy", "delete removes old segments (compact is not built yet)",
		func(c *TopicConfig) *string { return &c.CleanupPolicy }, "delete"),
	enumDef("compression.type", "codec batches are stored with; producer keeps the producer's",
		func(c *TopicConfig) *string { return &c.Compression }, "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
	int64Def("file.delete.delay.ms", "delay before a deleted segment's files are removed",
		func(c *TopicConfig) *int64 { return &c.Log.FileDeleteDelayMs }, 0),
	int64Def("flush.messages", "fsync after this many messages; 1 is fsync per append with group commit",
		func(c *TopicConfig) *int64 { return &c.Log.FlushMessages }, 1),
	int64Def("flush.ms", "fsync when the last flush is older than this",
		func(c *TopicConfig) *int64 { return &c.Log.FlushMs }, 0),
	intDef("index.interval.bytes", "bytes between offset index entries",
		func(c *TopicConfig) *int { return &c.Log.IndexIntervalBytes }, 0),
	intDef("max.message.bytes", "largest record batch accepted, as stored (compressed)",
		func(c *TopicConfig) *int { return &c.MaxMessageBytes }, 0),
	int64Def("message.timestamp.after.max.ms", "refuse CreateTime records further ahead of the broker's clock than this (KIP-937)",
		func(c *TopicConfig) *int64 { return &c.TimestampAfterMaxMs }, 0),
	int64Def("message.timestamp.before.max.ms", "refuse CreateTime records older than this (KIP-937)",
		func(c *TopicConfig) *int64 { return &c.TimestampBeforeMaxMs }, 0),
	{Name: "message.timestamp.type", Doc: "CreateTime keeps producer timestamps; LogAppendTime stamps the broker's clock",
		get: func(c *TopicConfig) string {
			if c.LogAppendTime {
				return "LogAppendTime"
			}
			return "CreateTime"
		},
		set: func(c *TopicConfig, v string) error {
			switch v {
			case "CreateTime":
				c.LogAppendTime = false
			case "LogAppendTime":
				c.LogAppendTime = true
			default:
				return fmt.Errorf("%w: message.timestamp.type=%q must be CreateTime or LogAppendTime", ErrInvalidConfig, v)
			}
			return nil
		}},
	intDef("min.insync.replicas", "replicas that must acknowledge an acks=all write",
		func(c *TopicConfig) *int { return &c.MinInsyncReplicas }, 1),
	int64Def("retention.bytes", "delete old segments while the partition is larger; -1 no limit",
		func(c *TopicConfig) *int64 { return &c.Log.RetentionBytes }, -1),
	int64Def("retention.ms", "delete segments older than this; -1 keeps forever",
		func(c *TopicConfig) *int64 { return &c.Log.RetentionMs }, -1),
	int64Def("segment.bytes", "segment file size",
		func(c *TopicConfig) *int64 { return &c.Log.SegmentBytes }, 14),
	intDef("segment.index.bytes", "preallocated index size",
		func(c *TopicConfig) *int { return &c.Log.SegmentIndexBytes }, 24),
	int64Def("segment.ms", "roll a segment after this long",
		func(c *TopicConfig) *int64 { return &c.Log.SegmentMs }, 1),
	{Name: "unclean.leader.election.enable", Doc: "elect a replica outside the ISR when no ISR member can lead, losing the records it lacks",
		get: func(c *TopicConfig) string { return strconv.FormatBool(c.UncleanLeaderElection) },
		set: func(c *TopicConfig, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%w: unclean.leader.election.enable=%q must be true or false", ErrInvalidConfig, v)
			}
			c.UncleanLeaderElection = b
			return nil
		}},
}

// TopicConfigDef returns the definition of name, ok=false if unknown.
func LookupTopicConfig(name string) (TopicConfigDef, bool) {
	i := slices.IndexFunc(TopicConfigDefs, func(d TopicConfigDef) bool { return d.Name == name })
	if i < 0 {
		return TopicConfigDef{}, false
	}
	return TopicConfigDefs[i], true
}

// Get renders the config's current value.
func (d TopicConfigDef) Get(c *TopicConfig) string { return d.get(c) }

// ParseTopicConfig applies overrides to defaults. Unknown names and bad
// values are ErrInvalidConfig, as Kafka rejects them.
func ParseTopicConfig(defaults TopicConfig, overrides map[string]string) (TopicConfig, error) {
	c := defaults
	for name, v := range overrides {
		d, ok := LookupTopicConfig(name)
		if !ok {
			return c, fmt.Errorf("%w: unknown topic config name %q", ErrInvalidConfig, name)
		}
		if err := d.set(&c, v); err != nil {
			return c, err
		}
	}
	if c.Log.SegmentBytes > math.MaxInt32 {
		return c, fmt.Errorf("%w: segment.bytes %d must fit in 32 bits", ErrInvalidConfig, c.Log.SegmentBytes)
	}
	if err := c.Log.Validate(); err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return c, nil
}
