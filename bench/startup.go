package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Issue 6: "idle broker RSS <= 64 MiB; start-up with 100 partitions holding
// 10 GiB <= 1 s after a clean shutdown."

// startupResult is what runStartup measured.
type startupResult struct {
	IdleRSSMiB   float64 // fresh broker, empty data dir, ~2 s after it is ready
	Partitions   int
	DataBytes    int64 // bytes in the topic's segment files after filling
	FillSeconds  float64
	StartSeconds float64 // exec to /readyz 200 and an ApiVersions answer, after a clean SIGTERM shutdown; median of the restarts
	// StartSecondsAll are the warm restarts in order.
	StartSecondsAll []float64
	// RSSAfterStartMiB is the RSS ~2 s after the last warm restart, idle.
	RSSAfterStartMiB float64
	// ColdStartSeconds is one more restart after dropping the page cache
	// (sync; echo 3 > /proc/sys/vm/drop_caches), -1 when that was not
	// possible (not root, or /proc/sys read-only).
	ColdStartSeconds float64
}

const (
	startupTopic      = "startup"
	startupRecordSize = 1024
	startupRestarts   = 3
	// idleSettle is how long a ready broker sits before its RSS is read.
	idleSettle = 2 * time.Second
)

// runStartup measures a strata broker's idle memory and its start-up time
// with data: it starts strataBin on an empty data dir under workDir, reads
// its RSS once idle, fills `partitions` partitions with at least totalBytes
// of 1 KiB random records through `strata perf produce`, stops it with
// SIGTERM, then restarts it startupRestarts times, timing each start from
// exec until /readyz says 200 and the Kafka listener answers ApiVersions.
//
// The warm restarts run with the page cache as the previous run left it
// (everything just written or read is cached): that is the case the target
// describes, a clean restart on a machine with memory to spare, and needs no
// privileges. When the process may write /proc/sys/vm/drop_caches (root, not
// in a read-only /proc/sys), one extra restart runs after dropping the page
// cache, to show whether start-up reads data in proportion to its size; that
// also evicts other processes' cached files, which is why it runs once, last.
//
// The data dir is removed when runStartup returns.
func runStartup(strataBin, workDir string, partitions int, totalBytes int64) (startupResult, error) {
	res := startupResult{Partitions: partitions, ColdStartSeconds: -1}
	dataDir := filepath.Join(workDir, "startup-data")
	if err := os.RemoveAll(dataDir); err != nil {
		return res, err
	}
	defer os.RemoveAll(dataDir)
	kafkaAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	argv := []string{strataBin, "serve",
		"--set", "listeners=PLAINTEXT://" + kafkaAddr,
		"--set", "log.dirs=" + dataDir,
		"--set", "http.listener=" + httpAddr,
	}
	start := func(run string) (*proc, float64, error) {
		t0 := time.Now()
		p, err := startProc("strata", filepath.Join(workDir, "startup-"+run+".log"), kafkaAddr, argv...)
		if err != nil {
			return nil, 0, err
		}
		if err := waitReady(httpAddr, kafkaAddr, t0.Add(2*time.Minute)); err != nil {
			p.stop()
			return nil, 0, fmt.Errorf("strata (%s run): %w", run, err)
		}
		return p, time.Since(t0).Seconds(), nil
	}

	// Idle RSS of a fresh broker, then fill it.
	p, _, err := start("fill")
	if err != nil {
		return res, err
	}
	time.Sleep(idleSettle)
	res.IdleRSSMiB = p.rssMiB()
	t0 := time.Now()
	res.DataBytes, err = fillStartup(strataBin, kafkaAddr, dataDir, partitions, totalBytes)
	res.FillSeconds = time.Since(t0).Seconds()
	p.stop()
	if err != nil {
		return res, err
	}

	restart := func(run string, last bool) (float64, error) {
		if err := checkCleanShutdown(dataDir); err != nil {
			return 0, err
		}
		p, secs, err := start(run)
		if err != nil {
			return 0, err
		}
		if last {
			time.Sleep(idleSettle)
			res.RSSAfterStartMiB = p.rssMiB()
		}
		p.stop()
		return secs, nil
	}
	for i := range startupRestarts {
		secs, err := restart("restart"+strconv.Itoa(i+1), i == startupRestarts-1)
		if err != nil {
			return res, err
		}
		res.StartSecondsAll = append(res.StartSecondsAll, secs)
	}
	sorted := slices.Sorted(slices.Values(res.StartSecondsAll))
	res.StartSeconds = sorted[len(sorted)/2]

	if dropPageCache() == nil {
		secs, err := restart("cold", false)
		if err != nil {
			return res, err
		}
		res.ColdStartSeconds = secs
	}
	return res, nil
}

// fillStartup produces 1 KiB random records to a new topic of `partitions`
// partitions until its segment files hold at least totalBytes, and returns
// their size. Records carry batch and record headers, so one pass of
// totalBytes/1 KiB records is normally enough.
func fillStartup(strataBin, kafkaAddr, dataDir string, partitions int, totalBytes int64) (int64, error) {
	for pass := 0; ; pass++ {
		have, err := topicBytes(dataDir, startupTopic)
		if err != nil {
			return 0, err
		}
		if have >= totalBytes {
			return have, nil
		}
		if pass == 3 {
			return have, fmt.Errorf("fill: %d of %d bytes after %d passes", have, totalBytes, pass)
		}
		n := max((totalBytes-have+startupRecordSize-1)/startupRecordSize, 1)
		cmd := exec.Command(strataBin, "perf", "produce", "--bootstrap", kafkaAddr,
			"--topic", startupTopic, "--partitions", strconv.Itoa(partitions),
			"--num-records", strconv.FormatInt(n, 10), "--record-size", strconv.Itoa(startupRecordSize),
			"--report-interval", "0", "--json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return 0, fmt.Errorf("strata perf produce: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		var r struct {
			Records int64 `json:"records"`
			Errors  int64 `json:"errors"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return 0, fmt.Errorf("strata perf produce output %q: %w", out, err)
		}
		if r.Errors > 0 || r.Records != n {
			return 0, fmt.Errorf("strata perf produce: %d of %d records acknowledged, %d errors", r.Records, n, r.Errors)
		}
	}
}

// topicBytes sums the .log files of topic's partition directories.
func topicBytes(dataDir, topic string) (int64, error) {
	dirs, err := filepath.Glob(filepath.Join(dataDir, topic+"-*"))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".log") {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			n += info.Size()
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// checkCleanShutdown fails unless the broker left Kafka's clean-shutdown
// marker: without it the next start recovers segments, and the time
// measured would be that of recovery.
func checkCleanShutdown(dataDir string) error {
	if _, err := os.Stat(filepath.Join(dataDir, ".kafka_cleanshutdown")); err != nil {
		return fmt.Errorf("no clean shutdown marker after SIGTERM: %w", err)
	}
	return nil
}

// dropPageCache writes back dirty pages and drops the page cache, dentries
// and inodes. It needs root and a writable /proc/sys.
func dropPageCache() error {
	if err := exec.Command("sync").Run(); err != nil {
		return err
	}
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// waitReady polls until GET /readyz on httpAddr answers 200 and the Kafka
// listener answers an ApiVersions request, or deadline passes. The broker
// binds both listeners before it loads its logs, so a connection may be
// accepted by the kernel long before anything answers on it: every attempt
// has a short timeout and is retried.
func waitReady(httpAddr, kafkaAddr string, deadline time.Time) error {
	client := &http.Client{Timeout: time.Second}
	for {
		err := readyz(client, httpAddr)
		if err == nil {
			err = apiVersions(kafkaAddr)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readyz(client *http.Client, httpAddr string) error {
	resp, err := client.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}

// apiVersions sends one ApiVersions v0 request and checks the answer.
func apiVersions(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	const corrID = 1
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("strata-bench"))
	if _, err := c.Write(f.AppendRequest(nil, req, corrID)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("ApiVersions: response of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corrID {
		return fmt.Errorf("ApiVersions: correlation id %d", got)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body[4:]); err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		return errors.New("ApiVersions: error code or no keys in the answer")
	}
	return nil
}
