package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// perfReport is what `strata perf ... --json` prints.
type perfReport struct {
	Records        int64     `json:"records"`
	Bytes          int64     `json:"bytes"`
	Seconds        float64   `json:"seconds"`
	RecordsPerSec  float64   `json:"records_per_sec"`
	MBPerSec       float64   `json:"mb_per_sec"`
	Latency        latencyMs `json:"latency_ms"`
	ProduceLatency latencyMs `json:"produce_latency_ms"`
	Errors         int64     `json:"errors"`
	Checksum       string    `json:"checksum"`
	ChecksumOK     *bool     `json:"checksum_ok"`
	// Requests: the Produce requests (strata perf's produce_requests),
	// their mean size and round trip.
	Requests struct {
		Count     int64   `json:"count"`
		MeanBytes float64 `json:"mean_bytes"`
		MeanMs    float64 `json:"mean_round_trip_ms"`
	} `json:"produce_requests"`
	// Config.Partitions is the partition count the run produced to: the
	// topic's, whatever --partitions asked for when it already existed.
	Config struct {
		Partitions int32 `json:"partitions"`
	} `json:"config"`
	// ClientCPU is the perf process's user+system CPU seconds, measured
	// by the bench (the client shares the machine's cores with the
	// server: what one spends, the other cannot).
	ClientCPU float64 `json:"client_cpu_s"`
}

type latencyMs struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// target is a Kafka-protocol server the benchmark can start fresh.
type target struct {
	name       string
	canConsume bool // false for the discarding kfake and the null broker
	start      func(b *bench, dir string) (*server, error)
}

// server is a started target.
type server struct {
	*proc
	addr     string // Kafka listener
	httpAddr string // strata's admin listener (pprof), "" for others
}

func strataTarget(name string, sets ...string) target {
	return target{name: name, canConsume: true, start: func(b *bench, dir string) (*server, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		argv := []string{filepath.Join(b.bin, "strata"), "serve",
			"--log-level", "warn",
			"--set", "listeners=PLAINTEXT://" + addr,
			"--set", "log.dirs=" + filepath.Join(dir, "data"),
			"--set", "http.listener=" + httpAddr,
			"--set", "http.pprof.enable=true",
		}
		for _, s := range sets {
			argv = append(argv, "--set", s)
		}
		p, err := startProc(name, filepath.Join(dir, name+".log"), addr, argv...)
		if err != nil {
			return nil, err
		}
		return &server{proc: p, addr: addr, httpAddr: httpAddr}, nil
	}}
}

func kfakeTarget(name string, blackhole bool) target {
	return target{name: name, canConsume: !blackhole, start: func(b *bench, dir string) (*server, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		argv := []string{filepath.Join(b.bin, "kfake"), "-addr", addr}
		if blackhole {
			argv = append(argv, "-blackhole")
		}
		p, err := startProc(name, filepath.Join(dir, name+".log"), addr, argv...)
		if err != nil {
			return nil, err
		}
		return &server{proc: p, addr: addr}, nil
	}}
}

// nullTarget is bench/cmd/nullbroker: answers produce requests, keeps
// nothing, decodes only what its answers need. The produce ceiling of the
// client on this machine (kfake-discard is not one: it decodes every
// request and runs it through its event loop, CPU taken from the client).
//
// With store, the null broker also appends the record bytes to a file per
// partition (-store): the least a broker that keeps its records must do,
// so that strata ÷ null-store is strata's own overhead and null-store ÷
// null the cost of storing bytes on this machine.
func nullTarget(name string, store bool) target {
	return target{name: name, canConsume: false, start: func(b *bench, dir string) (*server, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		argv := []string{filepath.Join(b.bin, "nullbroker"), "-addr", addr}
		if store {
			argv = append(argv, "-store", filepath.Join(dir, "data"))
		}
		p, err := startProc(name, filepath.Join(dir, name+".log"), addr, argv...)
		if err != nil {
			return nil, err
		}
		return &server{proc: p, addr: addr}, nil
	}}
}

// workload is one produce-then-consume job.
type workload struct {
	name        string
	size        int // record value bytes
	partitions  int
	compression string
	payload     string
	records     int64
}

func (w workload) String() string {
	s := fmt.Sprintf("%s/%dp", sizeName(w.size), w.partitions)
	if w.compression != "" && w.compression != "none" {
		s += "/" + w.compression
	}
	return s
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// run is one repetition of a workload against one target.
type run struct {
	Target     string
	Workload   string
	Rep        int
	Produce    perfReport
	ProduceCPU float64 // server CPU seconds during the produce phase
	Consume    *perfReport
	ConsumeCPU float64
	E2E        *perfReport
}

// perf runs `strata perf MODE` against addr and decodes its JSON report.
func (b *bench) perf(mode, addr string, args ...string) (perfReport, error) {
	argv := append([]string{"perf", mode, "--bootstrap", addr, "--json", "--report-interval", "0"}, args...)
	cmd := exec.Command(filepath.Join(b.bin, "strata"), argv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	b.logCmd("strata " + strings.Join(argv, " "))
	err := cmd.Run()
	var r perfReport
	jerr := json.Unmarshal(out.Bytes(), &r)
	if cmd.ProcessState != nil {
		r.ClientCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	if jerr != nil {
		return r, fmt.Errorf("strata perf %s: %v: %s", mode, err, strings.TrimSpace(errb.String()))
	}
	if err != nil {
		return r, fmt.Errorf("strata perf %s: %v: %s", mode, err, strings.TrimSpace(errb.String()))
	}
	if r.Errors != 0 {
		return r, fmt.Errorf("strata perf %s: %d records failed: %s", mode, r.Errors, strings.TrimSpace(errb.String()))
	}
	return r, nil
}

func produceArgs(w workload, topic string, n int64, extra ...string) []string {
	args := []string{"--topic", topic, "--partitions", fmt.Sprint(w.partitions),
		"--record-size", fmt.Sprint(w.size)}
	if n > 0 {
		args = append(args, "--num-records", fmt.Sprint(n))
	}
	if w.compression != "" {
		args = append(args, "--compression", w.compression)
	}
	if w.payload != "" {
		args = append(args, "--payload", w.payload)
	}
	return append(args, extra...)
}

// runOnce starts t fresh, produces w.records records, consumes them all
// back (checking count and checksum) and stops t.
func (b *bench) runOnce(t target, w workload, rep int) (run, error) {
	r := run{Target: t.name, Workload: w.String(), Rep: rep}
	err := b.withServer(t, func(s *server) error { return b.produceConsume(s, t, w, &r) })
	return r, err
}

// withServer starts t fresh in a new directory, runs fn, and stops t and
// removes the directory.
func (b *bench) withServer(t target, fn func(s *server) error) error {
	dir, err := os.MkdirTemp(b.work, t.name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := t.start(b, dir)
	if err != nil {
		return err
	}
	defer s.stop()
	return fn(s)
}

// produceConsume produces w.records records to s, consumes them all back
// (checking count, bytes and checksum), and records both phases in r.
func (b *bench) produceConsume(s *server, t target, w workload, r *run) error {
	var err error
	c0 := s.cpu()
	r.Produce, err = b.perf("produce", s.addr, produceArgs(w, "bench", w.records)...)
	r.ProduceCPU = s.cpu() - c0
	if err != nil {
		return fmt.Errorf("%s %s: %w", t.name, w, err)
	}
	if p := r.Produce.Config.Partitions; p != int32(w.partitions) {
		// A target that reports a topic it never created (the null
		// broker once did) would compare one partition with eight.
		return fmt.Errorf("%s %s: produced to %d partitions, want %d", t.name, w, p, w.partitions)
	}
	if r.Produce.Records != w.records {
		return fmt.Errorf("%s %s: produced %d records, want %d", t.name, w, r.Produce.Records, w.records)
	}
	if !t.canConsume {
		return nil
	}
	c0 = s.cpu()
	cr, err := b.perf("consume", s.addr, "--topic", "bench", "--num-records", fmt.Sprint(w.records))
	r.ConsumeCPU = s.cpu() - c0
	if err != nil {
		return fmt.Errorf("%s %s: %w", t.name, w, err)
	}
	if cr.Records != r.Produce.Records || cr.Bytes != r.Produce.Bytes || cr.Checksum != r.Produce.Checksum {
		return fmt.Errorf("%s %s: consumed %d records, %d bytes, checksum %s; produced %d, %d, %s",
			t.name, w, cr.Records, cr.Bytes, cr.Checksum, r.Produce.Records, r.Produce.Bytes, r.Produce.Checksum)
	}
	r.Consume = &cr
	return nil
}

// runE2E starts t fresh and measures end-to-end latency at a fixed rate.
func (b *bench) runE2E(t target, w workload, rate int, d time.Duration, rep int) (run, error) {
	r := run{Target: t.name, Workload: w.String(), Rep: rep}
	err := b.withServer(t, func(s *server) error {
		e, err := b.perf("e2e", s.addr, produceArgs(w, "e2e", 0,
			"--throughput", fmt.Sprint(rate), "--duration", d.String())...)
		if err != nil {
			return fmt.Errorf("%s e2e %s: %w", t.name, w, err)
		}
		if e.ChecksumOK != nil && !*e.ChecksumOK {
			return fmt.Errorf("%s e2e %s: checksum mismatch", t.name, w)
		}
		r.E2E = &e
		return nil
	})
	return r, err
}

// profileOnce runs w against a fresh strata with pprof on, saving CPU and
// allocation profiles of the broker for each phase into b.profile. The
// profile lengths come from the phases' measured durations.
func (b *bench) profileOnce(t target, w workload, produceSecs, consumeSecs float64) error {
	return b.withServer(t, func(s *server) error { return b.profilePhases(s, t, w, produceSecs, consumeSecs) })
}

func (b *bench) profilePhases(s *server, t target, w workload, produceSecs, consumeSecs float64) error {
	base := filepath.Join(b.profile, strings.ReplaceAll(t.name+"-"+w.String(), "/", "-"))
	phase := func(name string, secs float64, fn func() error) error {
		sec := max(1, int(secs*0.8))
		done := make(chan error, 2)
		go func() { done <- fetchProfile(s.httpAddr, "profile", sec, base+"-"+name+".cpu.pprof") }()
		go func() { done <- fetchProfile(s.httpAddr, "allocs", sec, base+"-"+name+".allocs.pprof") }()
		time.Sleep(100 * time.Millisecond) // let the profiles start
		err := fn()
		for range 2 {
			if perr := <-done; err == nil {
				err = perr
			}
		}
		return err
	}
	if err := phase("produce", produceSecs, func() error {
		_, err := b.perf("produce", s.addr, produceArgs(w, "bench", w.records)...)
		return err
	}); err != nil {
		return err
	}
	return phase("consume", consumeSecs, func() error {
		_, err := b.perf("consume", s.addr, "--topic", "bench", "--num-records", fmt.Sprint(w.records))
		return err
	})
}

// fetchProfile saves /debug/pprof/KIND?seconds=sec (a delta profile for
// allocs) from strata's admin listener.
func fetchProfile(httpAddr, kind string, sec int, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(sec+30)*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", httpAddr, kind, sec), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("pprof %s: %s", kind, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
