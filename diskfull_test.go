package strata_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata"
	"github.com/strata-io/strata/internal/record/recordtest"
)

// smallDisk mounts a tmpfs of size bytes on a temp dir (root only) and
// fills part of it with a ballast file that freeSpace removes.
func smallDisk(t *testing.T, size int) (dir, ballast string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs takes root")
	}
	dir = t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	ballast = filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, size/4), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, ballast
}

// A full disk refuses the write that does not fit with
// KAFKA_STORAGE_ERROR, keeps what it acknowledged, and takes writes again
// at the next offset once space is freed, with no restart; after one, every
// acknowledged record is there.
func TestDiskFullRefusesThenRecovers(t *testing.T) {
	disk, ballast := smallDisk(t, 24<<20)
	data := filepath.Join(disk, "data")
	b := startBroker(t, data, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := newClient(t, b.Addr())
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, "full"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	value := bytes.Repeat([]byte("v"), 64<<10)
	produce := func(i int) (int64, int16) {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "full"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = recordtest.Values(t, time.Now().UnixMilli(), fmt.Sprintf("%06d", i)+string(value))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		for {
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			sp := resp.Topics[0].Partitions[0]
			if sp.ErrorCode == kerr.LeaderNotAvailable.Code || sp.ErrorCode == kerr.UnknownTopicOrPartition.Code {
				time.Sleep(50 * time.Millisecond) // the topic is being created
				continue
			}
			return sp.BaseOffset, sp.ErrorCode
		}
	}
	acked := 0
	for ; ; acked++ {
		off, code := produce(acked)
		if code == kerr.KafkaStorageError.Code {
			break
		}
		if code != 0 || off != int64(acked) {
			t.Fatalf("produce %d: offset %d, %v", acked, off, kerr.ErrorForCode(code))
		}
		if acked > 1000 {
			t.Fatal("the disk never filled")
		}
	}
	t.Logf("the disk took %d records of 64 KiB", acked)
	if _, code := produce(acked); code != kerr.KafkaStorageError.Code {
		t.Fatalf("a second write to the full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if off, code := produce(acked); code != 0 || off != int64(acked) {
		t.Fatalf("after freeing space: offset %d, %v; want offset %d", off, kerr.ErrorForCode(code), acked)
	}
	acked++

	check := func(addr string) {
		t.Helper()
		cons := newClient(t, addr, kgo.ConsumeTopics("full"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		for n := 0; n < acked; {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read %d of %d records", n, acked)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) {
				if want := fmt.Sprintf("%06d", r.Offset) + string(value); r.Offset != int64(n) || string(r.Value) != want {
					t.Fatalf("offset %d (record %d) holds %.10q...", r.Offset, n, r.Value)
				}
				n++
			})
		}
	}
	check(b.Addr())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	check(startBroker(t, data, nil).Addr())
}

// fillDisk fallocates a ballast in dir until less than leave bytes are
// free, and returns its path.
func fillDisk(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 10 {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		free := int64(st.Bavail) * st.Bsize
		if free <= leave {
			return path
		}
		cur, _ := f.Seek(0, io.SeekEnd)
		if err := unix.Fallocate(int(f.Fd()), 0, cur, free-leave); err != nil && !errors.Is(err, unix.ENOSPC) {
			t.Fatal(err)
		}
	}
	return path
}

// A follower whose disk fills leaves the ISR at once, rather than after
// replica.lag.time.max.ms of stalled acks=all writes: its failed append
// makes it ask the controller to fence it (Kafka stops such a broker).
// With min.insync.replicas=2 the other two take acks=all writes on. Space
// freed, the follower asks to be unfenced, catches up and rejoins the ISR
// with the same bytes as the others. Also when the full disk is the
// active controller's.
func TestDiskFullFollowerLeavesISR(t *testing.T) {
	t.Run("follower", func(t *testing.T) { testDiskFullFollower(t, false) })
	t.Run("controller", func(t *testing.T) { testDiskFullFollower(t, true) })
}

func testDiskFullFollower(t *testing.T, onController bool) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs takes root")
	}
	dir := t.TempDir()
	for id := 1; id <= 3; id++ {
		d := filepath.Join(dir, fmt.Sprintf("node-%d", id))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", d, "tmpfs", 0, "size=64m"); err != nil {
			t.Skipf("mount a tmpfs: %v", err)
		}
		t.Cleanup(func() {
			if err := syscall.Unmount(d, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", d, err)
			}
		})
	}
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: dir, Logger: testLogger(), Properties: map[string]string{
		"broker.heartbeat.interval.ms": "250",
		"broker.session.timeout.ms":    "3000",
		// Long enough that the lag rule alone could not explain the
		// follower leaving the ISR in time.
		"replica.lag.time.max.ms": "120000",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctrl, err := c.WaitController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := others(ctrl)
	leader, victim := o[0], o[1]
	if onController {
		victim, ctrl = ctrl, victim // ctrl: where the ISR is read
	}
	admin := newClient(t, c.Node(ctrl).Addr())
	createAssigned(t, ctx, admin, "df", []int32{leader, victim, ctrl}, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")})
	// The ISR as the controller's node sees it: the victim's own image
	// stops where its full disk stopped the metadata log.
	isr := func() []int32 {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("df")
		req.Topics = append(req.Topics, rt)
		resp, err := admin.Broker(int(ctrl)).Request(ctx, req)
		if err != nil {
			return nil
		}
		md := resp.(*kmsg.MetadataResponse)
		if len(md.Topics) == 0 || len(md.Topics[0].Partitions) == 0 {
			return nil
		}
		return md.Topics[0].Partitions[0].ISR
	}
	waitISR := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for len(isr()) != n {
			if time.Now().After(deadline) {
				t.Fatalf("ISR %v, want %d members within %v", isr(), n, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	p := newClient(t, c.Node(leader).Addr(), kgo.DefaultProduceTopic("df"))
	value := make([]byte, 32<<10)
	rand.Read(value) // the client compresses: random bytes take the space they say
	sent := 0
	produce := func(n int, within time.Duration) {
		t.Helper()
		pctx, pcancel := context.WithTimeout(ctx, within)
		defer pcancel()
		for range n {
			if err := p.ProduceSync(pctx, &kgo.Record{Value: fmt.Appendf(nil, "%06d%s", sent, value)}).FirstErr(); err != nil {
				t.Fatalf("produce %d (ISR %v): %v", sent, isr(), err)
			}
			sent++
		}
	}
	produce(20, time.Minute)
	waitISR(3, time.Minute)

	ballast := fillDisk(t, c.Node(victim).Dir(), 16<<10)
	start := time.Now()
	produce(100, 30*time.Second)
	t.Logf("100 acks=all records of 32 KiB in %v with node %d's disk full; ISR %v", time.Since(start), victim, isr())
	if slices.Contains(isr(), victim) {
		t.Fatalf("node %d with a full disk is still in the ISR %v", victim, isr())
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	produce(20, time.Minute)
	waitISR(3, time.Minute)
	waitReplicasEqual(t, c, "df", 1, time.Minute)
}
