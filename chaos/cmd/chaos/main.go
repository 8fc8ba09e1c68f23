// Command chaos runs strata's fault-injection workload against real
// `strata serve` processes (one, or a cluster with --nodes), or re-checks
// a saved history (--replay).
//
//	go run ./chaos/cmd/chaos --seed 7 --duration 5m --nemesis all --history run.jsonl
//	go run ./chaos/cmd/chaos --nodes 3 --rf 3 --min-insync 2 --nemesis kill,pause,cut --victims leader,controller,any
//	go run ./chaos/cmd/chaos --replay run.jsonl
//
// It exits 1 when the checker finds an anomaly, 2 on a harness or broker
// failure (a crash, a restart that never becomes ready).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/strata-io/strata/chaos"
)

type sets []string

func (s *sets) String() string     { return strings.Join(*s, ",") }
func (s *sets) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var (
		replay     = flag.String("replay", "", "re-run only the checker on a saved history (JSON lines) and exit")
		bin        = flag.String("strata", "", "strata binary (default: go build ./cmd/strata into a temp dir)")
		seed       = flag.Uint64("seed", uint64(time.Now().UnixNano()%1e6), "seed of the fault plan and the producers' keys")
		duration   = flag.Duration("duration", time.Minute, "how long producers send and faults run")
		nemesis    = flag.String("nemesis", "all", "fault mix: comma-separated kill,pause,term,cut,isolate,diskfull; all (kill,pause,term); none")
		nodes      = flag.Int("nodes", 1, "strata serve processes forming the cluster (1: a plain broker)")
		rf         = flag.Int("rf", 1, "replication factor of the topic")
		minISR     = flag.Int("min-insync", 0, "the topic's min.insync.replicas (0: the broker's default)")
		victims    = flag.String("victims", "any", "victim rules drawn per fault: comma-separated any,leader,controller; all")
		netns      = flag.Bool("netns", false, "run the nodes in network namespaces even without cut/isolate (root, ip, iptables)")
		diskSize   = flag.String("disk-size", "256m", "with diskfull: each node's tmpfs (root), e.g. 64m, 1g")
		nodeLogs   = flag.String("node-logs", "", "dir to keep each node's whole output in (node<i>.log)")
		noReplicas = flag.Bool("no-replica-check", false, "skip stopping the nodes and comparing their replicas on disk at the end")
		history    = flag.String("history", "", "save the history here (JSON lines); default chaos-<seed>.jsonl")
		dir        = flag.String("dir", "", "broker log dir, empty or new, kept afterwards (default: a temp dir, removed afterwards)")
		partitions = flag.Int("partitions", 8, "partitions of the topic")
		producers  = flag.Int("producers", 3, "idempotent producers")
		txn        = flag.Int("txn", 0, "records a transaction: makes the producers transactional (one in five transactions aborted on purpose) and every reader read_committed; 0: plain idempotent producers")
		rate       = flag.Int("rate", 100, "records a second per producer")
		keys       = flag.Int("keys", 256, "distinct keys (k0..k<keys-1>; Kafka's murmur2 partitioner places them)")
		assigned   = flag.Int("assigned", 1, "consumers with every partition assigned")
		grouped    = flag.Int("grouped", 2, "consumers in a consumer group")
		quietMin   = flag.Duration("quiet-min", chaos.DefaultSchedule.QuietMin, "least quiet time between faults")
		quietMax   = flag.Duration("quiet-max", chaos.DefaultSchedule.QuietMax, "most quiet time between faults")
		holdMin    = flag.Duration("hold-min", chaos.DefaultSchedule.HoldMin, "shortest fault")
		holdMax    = flag.Duration("hold-max", chaos.DefaultSchedule.HoldMax, "longest fault")
		show       = flag.Int("show", 20, "examples of each anomaly to print")
		brokerSets sets
	)
	flag.Var(&brokerSets, "set", "broker property name=value (repeatable), e.g. --set log.flush.interval.messages=1")
	flag.Parse()
	log.SetFlags(log.Ltime)

	if *replay != "" {
		f, err := os.Open(*replay)
		if err != nil {
			log.Fatal(err)
		}
		events, err := chaos.ReadJSONL(f)
		f.Close()
		if err != nil {
			log.Fatal(err)
		}
		res := chaos.Check(events)
		fmt.Print(res.Table(*show))
		if !res.OK() {
			os.Exit(1)
		}
		return
	}

	ms, err := chaos.ParseMix(*nemesis)
	if err != nil {
		log.Fatal(err)
	}
	vs, err := chaos.ParseVictims(*victims)
	if err != nil {
		log.Fatal(err)
	}
	ds, err := chaos.ParseSize(*diskSize)
	if err != nil {
		log.Fatal(err)
	}
	if *bin == "" {
		tmp, err := os.MkdirTemp("", "strata-chaos-bin-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		if *bin, err = chaos.Build(tmp); err != nil {
			log.Fatal(err)
		}
	}
	if *history == "" {
		*history = fmt.Sprintf("chaos-%d.jsonl", *seed)
	}
	// Ctrl-C ends the run early but still heals, reads and checks.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Printf("seed %d, duration %v, nemesis %s, victims %s, %d node(s), rf %d", *seed, *duration, *nemesis, *victims, *nodes, *rf)
	res, events, runErr := chaos.Run(ctx, chaos.Config{
		Bin: *bin, Dir: *dir, Seed: *seed, Duration: *duration, Nemeses: ms,
		Schedule:   chaos.Schedule{QuietMin: *quietMin, QuietMax: *quietMax, HoldMin: *holdMin, HoldMax: *holdMax},
		Sets:       brokerSets,
		Partitions: *partitions, Producers: *producers, Rate: *rate, Keys: *keys,
		Assigned: *assigned, Grouped: *grouped, Txn: *txn,
		Nodes: *nodes, RF: *rf, MinISR: *minISR, Victims: vs, NetNS: *netns, SkipReplicaCheck: *noReplicas,
		DiskSize: ds, NodeLogs: *nodeLogs,
		Logf: log.Printf,
	})
	if f, err := os.Create(*history); err != nil {
		log.Printf("save history: %v", err)
	} else {
		if err := chaos.WriteJSONL(f, events); err != nil {
			log.Printf("save history: %v", err)
		}
		f.Close()
		log.Printf("history: %s (%d events); replay with --replay %s", *history, len(events), *history)
	}
	if res != nil {
		fmt.Print(res.Table(*show))
	}
	if runErr != nil {
		log.Printf("run failed: %v", runErr)
		os.Exit(2)
	}
	if !res.OK() {
		os.Exit(1)
	}
}
