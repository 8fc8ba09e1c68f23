package kafka

import (
	"reflect"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/internal/group"
)

// countErrors counts every non-zero ErrorCode in a response (top level,
// per topic, per partition, per member), by walking the kmsg struct: the
// handlers set codes in many places, and this sees all of them.
func (h *Handler) countErrors(resp kmsg.Response) {
	if h.cfg.Metrics == nil {
		return
	}
	key := resp.Key()
	count := func(code int16) {
		if code != 0 {
			h.cfg.Metrics.Error(key, code)
		}
	}
	// Produce and Fetch, the hot paths, are walked by hand; the rest
	// by reflection.
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				count(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		count(r.ErrorCode)
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				count(r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	default:
		walkErrorCodes(reflect.ValueOf(resp), count)
	}
}

func walkErrorCodes(v reflect.Value, fn func(int16)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkErrorCodes(v.Elem(), fn)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			f := v.Field(i)
			if t.Field(i).Name == "ErrorCode" && f.Kind() == reflect.Int16 {
				fn(int16(f.Int()))
				continue
			}
			switch f.Kind() {
			case reflect.Struct, reflect.Pointer:
				walkErrorCodes(f, fn)
			case reflect.Slice:
				if f.Type().Elem().Kind() == reflect.Struct {
					for j := range f.Len() {
						walkErrorCodes(f.Index(j), fn)
					}
				}
			}
		}
	}
}

// stateCollector reports, at scrape time, each partition's log size and
// offsets and each group's lag per partition (high watermark minus the
// committed offset).
type stateCollector struct {
	h                                                  *Handler
	size, start, end, hw, lag, groupCount              *prometheus.Desc
	ongoingTxns, lsoLag, txnOngoing, txnMarkersPending *prometheus.Desc
}

func newStateCollector(h *Handler) *stateCollector {
	tp := []string{"topic", "partition"}
	return &stateCollector{
		h:     h,
		size:  prometheus.NewDesc("strata_partition_log_size_bytes", "Bytes in a partition's segment files.", tp, nil),
		start: prometheus.NewDesc("strata_partition_log_start_offset", "A partition's log start offset.", tp, nil),
		end:   prometheus.NewDesc("strata_partition_log_end_offset", "A partition's log end offset.", tp, nil),
		hw:    prometheus.NewDesc("strata_partition_high_watermark", "A partition's high watermark.", tp, nil),
		lag: prometheus.NewDesc("strata_group_lag", "Records between a group's committed offset and the high watermark.",
			[]string{"group", "topic", "partition"}, nil),
		groupCount: prometheus.NewDesc("strata_groups", "Groups known to the coordinator.", nil, nil),
		ongoingTxns: prometheus.NewDesc("strata_partition_ongoing_transactions",
			"Transactions open on a partition (a transactional batch written, no marker yet).", tp, nil),
		lsoLag: prometheus.NewDesc("strata_partition_last_stable_offset_lag",
			"Offsets between a partition's last stable offset and its high watermark: what read_committed consumers wait for.", tp, nil),
		txnOngoing: prometheus.NewDesc("strata_transactions_ongoing",
			"Transactions this node coordinates that are open or being ended (Ongoing, PrepareCommit, PrepareAbort).", nil, nil),
		txnMarkersPending: prometheus.NewDesc("strata_txn_markers_pending",
			"Transactions whose commit or abort markers this coordinator is still sending: a count that stays up is a partition leader that does not take them.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.size, c.start, c.end, c.hw, c.lag, c.groupCount, c.ongoingTxns, c.lsoLag, c.txnOngoing, c.txnMarkersPending} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for _, p := range c.h.broker.Partitions() {
		part := strconv.Itoa(int(p.TP.Partition))
		if size, err := p.Log.Size(); err == nil {
			gauge(c.size, size, p.TP.Topic, part)
		}
		gauge(c.start, p.Log.LogStartOffset(), p.TP.Topic, part)
		gauge(c.end, p.Log.LogEndOffset(), p.TP.Topic, part)
		lso := p.LastStableOffset()
		gauge(c.hw, p.Log.HighWatermark(), p.TP.Topic, part)
		gauge(c.lsoLag, max(p.Log.HighWatermark()-lso, 0), p.TP.Topic, part)
		gauge(c.ongoingTxns, int64(p.OngoingTransactions()), p.TP.Topic, part)
	}
	groups := map[string]bool{}
	c.h.groups.EachOffset(func(o group.CommittedOffset) {
		groups[o.Group] = true
		p, code := c.h.lookup(o.Topic, o.Partition)
		if code != 0 || o.Offset < 0 {
			return
		}
		gauge(c.lag, max(p.Log.HighWatermark()-o.Offset, 0), o.Group, o.Topic, strconv.Itoa(int(o.Partition)))
	})
	gauge(c.groupCount, int64(c.h.groups.Count()))
	ongoing, pending := c.h.txns.coord.Stats()
	gauge(c.txnOngoing, int64(ongoing))
	gauge(c.txnMarkersPending, int64(pending))
}
