package kafka

// Dynamic configs: BROKER and GROUP resources, kept as ConfigRecords in the
// metadata log (cluster.Image.OtherConfigs) and applied from the image, as
// Kafka's KRaft brokers apply them (DynamicBrokerConfig, GroupConfigManager).
//
//   - A BROKER resource named "" holds the cluster-wide defaults; one named
//     by a node id holds that node's configs. For a property, this node's
//     value wins over the cluster-wide one, which wins over the properties
//     file, which wins over the default (Kafka's precedence).
//   - The dynamic log properties are the defaults of topic configs: the
//     effective topic defaults are the static ones (kafka.Config
//     TopicDefaults) overlaid with them, computed once per image.
//   - applyImageConfigs gives local partitions their new log config when an
//     image changes broker defaults or topic overrides, whichever node made
//     the change, and the server its new connection limits.
//   - A GROUP resource holds a KIP-848 group's consumer.session.timeout.ms
//     and consumer.heartbeat.interval.ms, which the coordinator reads on
//     each heartbeat (group.Config.GroupConfigs).

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/log"
)

// brokerTopicConfigs maps each dynamic broker property to the topic config
// it is the default of (Kafka's ServerTopicConfigSynonyms, primary names).
var brokerTopicConfigs = map[string]string{
	"log.segment.bytes":                   "segment.bytes",
	"log.roll.ms":                         "segment.ms",
	"log.retention.ms":                    "retention.ms",
	"log.retention.bytes":                 "retention.bytes",
	"log.index.interval.bytes":            "index.interval.bytes",
	"log.index.size.max.bytes":            "segment.index.bytes",
	"log.flush.interval.messages":         "flush.messages",
	"log.flush.interval.ms":               "flush.ms",
	"log.segment.delete.delay.ms":         "file.delete.delay.ms",
	"log.cleanup.policy":                  "cleanup.policy",
	"log.message.timestamp.type":          "message.timestamp.type",
	"log.message.timestamp.before.max.ms": "message.timestamp.before.max.ms",
	"log.message.timestamp.after.max.ms":  "message.timestamp.after.max.ms",
	"message.max.bytes":                   "max.message.bytes",
	"compression.type":                    "compression.type",
	"min.insync.replicas":                 "min.insync.replicas",
}

// brokerListConfigs are the dynamic broker properties of Kafka's type LIST,
// the only ones IncrementalAlterConfigs may APPEND to or SUBTRACT from.
var brokerListConfigs = map[string]bool{"log.cleanup.policy": true}

// brokerSynonyms lists a property's synonyms in Kafka's order of
// precedence, the property first (DynamicBrokerConfig.brokerConfigSynonyms).
var brokerSynonyms = map[string][]string{
	"log.roll.ms":           {"log.roll.ms", "log.roll.hours"},
	"log.roll.hours":        {"log.roll.ms", "log.roll.hours"},
	"log.retention.ms":      {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
	"log.retention.minutes": {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
	"log.retention.hours":   {"log.retention.ms", "log.retention.minutes", "log.retention.hours"},
	"log.dirs":              {"log.dirs", "log.dir"},
	"log.dir":               {"log.dirs", "log.dir"},
}

// inertBrokerConfigs are dynamic broker configs of Kafka that have no
// meaning in strata (its threads, SASL and the log cleaner are not Kafka's):
// they are accepted, validated by type, stored and described, so that
// tools and client test suites that set them (librdkafka's admin tests
// set background.threads and sasl.kerberos.min.time.before.relogin) work,
// and change nothing.
var inertBrokerConfigs = map[string]func(string) error{
	"background.threads":                       intAtLeast(1),
	"num.io.threads":                           intAtLeast(1),
	"num.network.threads":                      intAtLeast(1),
	"num.replica.fetchers":                     intAtLeast(1),
	"num.recovery.threads.per.data.dir":        intAtLeast(1),
	"log.cleaner.threads":                      intAtLeast(0),
	"log.cleaner.io.max.bytes.per.second":      isDouble,
	"log.cleaner.dedupe.buffer.size":           intAtLeast(0),
	"log.cleaner.backoff.ms":                   intAtLeast(0),
	"sasl.kerberos.min.time.before.relogin":    intAtLeast(0),
	"sasl.kerberos.ticket.renew.jitter":        isDouble,
	"sasl.kerberos.ticket.renew.window.factor": isDouble,
}

// InertBrokerConfigs lists, sorted, the dynamic broker configs of Kafka
// that strata accepts and stores without effect (for documentation).
func InertBrokerConfigs() []string { return slices.Sorted(maps.Keys(inertBrokerConfigs)) }

// GroupConfigDocs lists the KIP-848 group configs with their meaning (for
// documentation).
func GroupConfigDocs() [][2]string {
	return [][2]string{
		{groupHeartbeatIntervalConfig, "the group's heartbeat interval; unset: group.consumer.heartbeat.interval.ms. Within group.consumer.min/max.heartbeat.interval.ms, below the session timeout"},
		{groupSessionTimeoutConfig, "the group's session timeout; unset: group.consumer.session.timeout.ms. Within group.consumer.min/max.session.timeout.ms"},
	}
}

const inertDoc = "a dynamic broker config of Kafka, accepted and stored for compatibility; it has no effect in strata"

func intAtLeast(n int64) func(string) error {
	return func(v string) error {
		if x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil || x < n {
			return fmt.Errorf("must be an integer of at least %d", n)
		}
		return nil
	}
}

func isDouble(v string) error {
	if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
		return errors.New("must be a number (DOUBLE)")
	}
	return nil
}

// dynamicBrokerConfig reports whether name may be set on a BROKER
// resource.
func dynamicBrokerConfig(name string) bool {
	_, inert := inertBrokerConfigs[name]
	return config.Dynamic[name] || inert
}

// clusterDefaultResource is the BROKER resource of cluster-wide defaults.
var clusterDefaultResource = cluster.ConfigResource{Type: records.ResourceBroker, Name: ""}

// nodeResource is this node's BROKER resource.
func (h *Handler) nodeResource() cluster.ConfigResource {
	return cluster.ConfigResource{Type: records.ResourceBroker, Name: strconv.Itoa(int(h.cfg.NodeID))}
}

// dynamicBrokerConfigs returns the dynamic broker properties in effect on
// this node in im: the cluster-wide ones overlaid with this node's.
func (h *Handler) dynamicBrokerConfigs(im *cluster.Image) map[string]string {
	out := maps.Clone(im.ResourceConfigs(clusterDefaultResource))
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, im.ResourceConfigs(h.nodeResource()))
	return out
}

// brokerTopicDefaults returns the topic defaults in effect on this node in
// im: the static ones with the dynamic log properties applied. A value that
// does not parse (written by another version, say) is skipped with a
// warning: the node keeps serving with the rest.
func (h *Handler) brokerTopicDefaults(im *cluster.Image) broker.TopicConfig {
	dyn := h.dynamicBrokerConfigs(im)
	overrides := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(dyn)) {
		tk, ok := brokerTopicConfigs[k]
		if !ok {
			continue
		}
		overrides[tk] = dyn[k]
		if _, err := broker.ParseTopicConfig(h.cfg.TopicDefaults, overrides); err != nil {
			h.logger.Warn("ignoring dynamic broker config", "name", k, "value", dyn[k], "err", err)
			delete(overrides, tk)
		}
	}
	tc, err := broker.ParseTopicConfig(h.cfg.TopicDefaults, overrides)
	if err != nil { // each one parsed: cannot happen
		return h.cfg.TopicDefaults
	}
	return tc
}

// topicDefaults returns the topic defaults in effect now.
func (h *Handler) topicDefaults() broker.TopicConfig {
	return h.configCache(h.meta.Image()).defaults
}

// applyImageConfigs gives the local partitions of topics whose config may
// differ between old and new images (all when the broker's dynamic
// defaults changed; else those whose overrides changed, and topics new
// since old) their config, where it is not already theirs. It is called
// after this node's changes and must be called for every new image,
// whichever node wrote it. Calls may come late and out of order (a request
// goroutine's and the image watcher's), so the configs applied are those
// of the newest image, never older ones than a partition has. It takes
// topicMu, so that a partition being created meanwhile either is created
// with the newest config or is created before and updated here; callers
// must not hold it, nor block the metadata log's progress (a change
// holding topicMu may be waiting for it).
func (h *Handler) applyImageConfigs(old, new *cluster.Image) {
	if old == nil || new == nil || old == new {
		return
	}
	h.applyConnectionLimits(new)
	h.topicMu.Lock()
	defer h.topicMu.Unlock()
	if cur := h.meta.Image(); cur.EndOffset > new.EndOffset {
		new = cur
	}
	oldDefaults, newDefaults := h.brokerTopicDefaults(old), h.brokerTopicDefaults(new)
	if oldDefaults != newDefaults {
		h.logger.Info("dynamic broker configs changed", "metadata_offset", new.EndOffset, "configs", h.dynamicBrokerConfigs(new))
	}
	for _, name := range slices.Sorted(maps.Keys(new.Topics)) {
		t, ot := new.Topics[name], old.Topics[name]
		// A topic new since old may have had its partitions created
		// with a config older than new's: it is checked too.
		if oldDefaults == newDefaults && ot != nil && ot.ID == t.ID && maps.Equal(ot.Configs, t.Configs) {
			continue
		}
		tc, err := broker.ParseTopicConfig(newDefaults, t.Configs)
		if err != nil {
			h.logger.Error("topic config", "topic", t.Name, "err", err)
			continue
		}
		for p := int32(0); p < t.Partitions; p++ {
			part := h.broker.Partition(log.TopicPartition{Topic: t.Name, Partition: p})
			if part == nil || part.Log.Config() == tc.Log {
				continue
			}
			if err := part.Log.SetConfig(tc.Log); err != nil {
				h.logger.Error("apply topic config", "partition", part.TP, "err", err)
			}
		}
	}
}

// ConnectionLimits are max.connections, max.connections.per.ip and
// max.connections.per.ip.overrides.
type ConnectionLimits struct {
	Max, PerIP     int
	PerIPOverrides map[netip.Addr]int
}

func (a ConnectionLimits) equal(b ConnectionLimits) bool {
	return a.Max == b.Max && a.PerIP == b.PerIP && maps.Equal(a.PerIPOverrides, b.PerIPOverrides)
}

// connectionLimits returns the limits in effect on this node in im: the
// static ones (Config.ConnectionLimits) with the dynamic values that parse.
func (h *Handler) connectionLimits(im *cluster.Image) ConnectionLimits {
	l := h.cfg.ConnectionLimits
	dyn := h.dynamicBrokerConfigs(im)
	if v, ok := dyn["max.connections"]; ok {
		if n, err := parseConnectionLimit(v); err == nil {
			l.Max = n
		}
	}
	if v, ok := dyn["max.connections.per.ip"]; ok {
		if n, err := parseConnectionLimit(v); err == nil {
			l.PerIP = n
		}
	}
	if v, ok := dyn["max.connections.per.ip.overrides"]; ok {
		if m, err := config.ParseConnectionOverrides(v); err == nil {
			l.PerIPOverrides = m
		}
	}
	return l
}

// parseConnectionLimit parses max.connections and max.connections.per.ip:
// at least 1, as strata's static config requires.
func parseConnectionLimit(v string) (int, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || n < 1 {
		return 0, errors.New("must be an integer of at least 1 (INT)")
	}
	return int(n), nil
}

// OnConnectionLimits has fn called with this node's connection limits now
// and whenever applyImageConfigs finds an image that changes them: the
// server's SetConnectionLimits.
func (h *Handler) OnConnectionLimits(fn func(ConnectionLimits)) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	h.onConnLimits = fn
	h.connLimits = h.connectionLimits(h.meta.Image())
	fn(h.connLimits)
}

// applyConnectionLimits gives the server the limits of im if they differ
// from those it has.
func (h *Handler) applyConnectionLimits(im *cluster.Image) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.onConnLimits == nil {
		return
	}
	// Always from the newest image: calls for older images may come
	// late.
	if cur := h.meta.Image(); cur.EndOffset > im.EndOffset {
		im = cur
	}
	if l := h.connectionLimits(im); !l.equal(h.connLimits) {
		h.logger.Info("connection limits changed", "max_connections", l.Max, "max_connections_per_ip", l.PerIP, "overrides", len(l.PerIPOverrides))
		h.connLimits = l
		h.onConnLimits(l)
	}
}

// brokerConfigError is INVALID_CONFIG with Kafka's message.
func brokerConfigError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{broker.ErrInvalidConfig}, args...)...)
}

// validateBrokerConfigs checks the dynamic broker configs a resource would
// hold: every name dynamic (Kafka's DynamicBrokerConfig.validateConfigs),
// every value one the property takes.
func (h *Handler) validateBrokerConfigs(next map[string]string) error {
	var unknown, static []string
	for _, k := range slices.Sorted(maps.Keys(next)) {
		switch {
		case dynamicBrokerConfig(k):
		case slices.ContainsFunc(config.Defs, func(d config.Def) bool { return d.Name == k }):
			static = append(static, k)
		default:
			unknown = append(unknown, k)
		}
	}
	if len(static) > 0 {
		return brokerConfigError("Cannot update these configs dynamically: Set(%s)", strings.Join(static, ", "))
	}
	if len(unknown) > 0 {
		return brokerConfigError("Unknown broker configs: Set(%s)", strings.Join(unknown, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(next)) {
		var err error
		switch k {
		case "max.connections", "max.connections.per.ip":
			_, err = parseConnectionLimit(next[k])
		case "max.connections.per.ip.overrides":
			_, err = config.ParseConnectionOverrides(next[k])
		default:
			if check, ok := inertBrokerConfigs[k]; ok {
				err = check(next[k])
			}
		}
		if err != nil {
			return brokerConfigError("Invalid value %s for configuration %s: %v", next[k], k, err)
		}
		tk, ok := brokerTopicConfigs[k]
		if !ok {
			continue
		}
		if _, err := broker.ParseTopicConfig(h.cfg.TopicDefaults, map[string]string{tk: next[k]}); err != nil {
			return brokerConfigError("Invalid value %s for configuration %s: %v", next[k], k, strings.TrimPrefix(err.Error(), broker.ErrInvalidConfig.Error()+": "))
		}
	}
	return nil
}

// validBrokerName checks a BROKER resource's name: "" or a node id, as
// Kafka's ControllerConfigurationValidator.
func validBrokerName(name string) error {
	if name == "" {
		return nil
	}
	n, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return errors.New("Unable to parse broker name as a base 10 number.")
	}
	if n < 0 {
		return errors.New("Invalid negative broker ID.")
	}
	return nil
}

// KIP-848 group configs (Kafka's GroupConfig): a group's own session
// timeout and heartbeat interval.
const (
	groupSessionTimeoutConfig    = "consumer.session.timeout.ms"
	groupHeartbeatIntervalConfig = "consumer.heartbeat.interval.ms"
)

var groupConfigNames = []string{groupHeartbeatIntervalConfig, groupSessionTimeoutConfig}

// GroupConsumerBounds bound a group's consumer.session.timeout.ms and
// consumer.heartbeat.interval.ms (group.consumer.min/max.session.timeout.ms
// and group.consumer.min/max.heartbeat.interval.ms; zero: Kafka's defaults,
// 45-60 s and 5-15 s). The broker's own values are always allowed.
type GroupConsumerBounds struct {
	MinSession, MaxSession, MinHeartbeat, MaxHeartbeat time.Duration
}

// groupDefaults are the broker's KIP-848 session timeout and heartbeat
// interval, in ms.
func (h *Handler) groupDefaults() (session, heartbeat int64) {
	session, heartbeat = 45000, 5000
	if d := h.cfg.Group.ConsumerSessionTimeout; d > 0 {
		session = d.Milliseconds()
	}
	if d := h.cfg.Group.ConsumerHeartbeatInterval; d > 0 {
		heartbeat = d.Milliseconds()
	}
	return session, heartbeat
}

func groupResource(id string) cluster.ConfigResource {
	return cluster.ConfigResource{Type: records.ResourceGroup, Name: id}
}

// groupConfigValues returns a group's effective session timeout and
// heartbeat interval (ms) from configs, the broker's where unset or
// unparsable.
func (h *Handler) groupConfigValues(configs map[string]string) (session, heartbeat int64) {
	session, heartbeat = h.groupDefaults()
	if v, err := strconv.ParseInt(configs[groupSessionTimeoutConfig], 10, 32); err == nil && v > 0 {
		session = v
	}
	if v, err := strconv.ParseInt(configs[groupHeartbeatIntervalConfig], 10, 32); err == nil && v > 0 {
		heartbeat = v
	}
	return session, heartbeat
}

// groupConfigs is group.Config.GroupConfigs: a group's own timeouts from
// the current image.
func (h *Handler) groupConfigs(groupID string) (session, heartbeat time.Duration, ok bool) {
	configs := h.meta.Image().ResourceConfigs(groupResource(groupID))
	if len(configs) == 0 {
		return 0, 0, false
	}
	s, hb := h.groupConfigValues(configs)
	return time.Duration(s) * time.Millisecond, time.Duration(hb) * time.Millisecond, true
}

// validateGroupConfigs checks the configs a group would hold, as Kafka's
// GroupConfig.validate: known names, integers within the bounds, the
// heartbeat interval below the session timeout.
func (h *Handler) validateGroupConfigs(next map[string]string) error {
	for _, k := range slices.Sorted(maps.Keys(next)) {
		if !slices.Contains(groupConfigNames, k) {
			return brokerConfigError("Unknown group config name: %s", k)
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(next[k]), 10, 32); err != nil || n <= 0 {
			return brokerConfigError("Invalid value %s for configuration %s: must be a positive integer (INT)", next[k], k)
		}
	}
	defSession, defHeartbeat := h.groupDefaults()
	b := h.cfg.GroupConsumerBounds
	ms := func(d time.Duration, def int64) int64 {
		if d <= 0 {
			return def
		}
		return d.Milliseconds()
	}
	minS, maxS := min(ms(b.MinSession, 45000), defSession), max(ms(b.MaxSession, 60000), defSession)
	minH, maxH := min(ms(b.MinHeartbeat, 5000), defHeartbeat), max(ms(b.MaxHeartbeat, 15000), defHeartbeat)
	session, heartbeat := h.groupConfigValues(next)
	switch {
	case session < minS:
		return brokerConfigError("%s must be greater than or equal to group.consumer.min.session.timeout.ms (%d)", groupSessionTimeoutConfig, minS)
	case session > maxS:
		return brokerConfigError("%s must be less than or equal to group.consumer.max.session.timeout.ms (%d)", groupSessionTimeoutConfig, maxS)
	case heartbeat < minH:
		return brokerConfigError("%s must be greater than or equal to group.consumer.min.heartbeat.interval.ms (%d)", groupHeartbeatIntervalConfig, minH)
	case heartbeat > maxH:
		return brokerConfigError("%s must be less than or equal to group.consumer.max.heartbeat.interval.ms (%d)", groupHeartbeatIntervalConfig, maxH)
	case heartbeat >= session:
		return brokerConfigError("%s %d must be less than %s %d", groupHeartbeatIntervalConfig, heartbeat, groupSessionTimeoutConfig, session)
	}
	return nil
}
