package kafka

// DescribeLogDirs: v1-4
//
// Behavior: every log dir with the partitions in it (all, or those asked
// for), their sizes and offset lag 0; v4+ total and usable bytes of the
// dir's file system.

import (
	"context"
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/strata-io/strata/internal/acl"
	"github.com/strata-io/strata/internal/server"
)

func init() { register(35, 1, 4, (*Handler).handleDescribeLogDirs) }

func (h *Handler) handleDescribeLogDirs(ctx context.Context, sr *server.Request, kreq kmsg.Request) (*server.Response, error) {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !h.auth(ctx, sr).cluster(acl.OpDescribe) {
		// Kafka: DESCRIBE on the cluster; no log dirs, and from v3
		// the error.
		resp.ErrorCode = codeClusterAuth
		return h.encode(resp), nil
	}
	wanted := func(topic string, p int32) bool {
		if req.Topics == nil {
			return true
		}
		for _, rt := range req.Topics {
			if rt.Topic == topic && slices.Contains(rt.Partitions, p) {
				return true
			}
		}
		return false
	}
	dirs := map[string]*kmsg.DescribeLogDirsResponseDir{}
	var order []string
	for _, p := range h.broker.Partitions() {
		if !wanted(p.TP.Topic, p.TP.Partition) {
			continue
		}
		dir := filepath.Dir(p.Log.Dir())
		d := dirs[dir]
		if d == nil {
			nd := kmsg.NewDescribeLogDirsResponseDir()
			nd.Dir = dir
			var st unix.Statfs_t
			if unix.Statfs(dir, &st) == nil {
				nd.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
				nd.UsableBytes = int64(st.Bavail) * int64(st.Bsize)
			}
			d = &nd
			dirs[dir] = d
			order = append(order, dir)
		}
		i := slices.IndexFunc(d.Topics, func(t kmsg.DescribeLogDirsResponseDirTopic) bool { return t.Topic == p.TP.Topic })
		if i < 0 {
			nt := kmsg.NewDescribeLogDirsResponseDirTopic()
			nt.Topic = p.TP.Topic
			d.Topics = append(d.Topics, nt)
			i = len(d.Topics) - 1
		}
		size, _ := p.Log.Size()
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition, dp.Size = p.TP.Partition, size
		d.Topics[i].Partitions = append(d.Topics[i].Partitions, dp)
	}
	slices.Sort(order)
	for _, dir := range order {
		resp.Dirs = append(resp.Dirs, *dirs[dir])
	}
	return h.encode(resp), nil
}
