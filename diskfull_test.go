package strata_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
