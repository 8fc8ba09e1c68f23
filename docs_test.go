package strata_test

import (
	"bufio"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/strata-io/strata/internal/broker"
	"github.com/strata-io/strata/internal/config"
	"github.com/strata-io/strata/internal/kafka"
	"github.com/strata-io/strata/internal/record/recordtest"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/CONFIG.md and docs/METRICS.md from the code")

// checkDoc compares a generated document with the committed one, or
// rewrites it with -update-docs.
func checkDoc(t *testing.T, path, want string) {
	t.Helper()
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("%s is out of date with the code: run go test -run TestDocs -update-docs .", path)
	}
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// TestDocsConfigReference keeps docs/CONFIG.md generated from the property
// definitions (internal/config.Defs, broker.TopicConfigDefs), so the
// reference is never written twice.
func TestDocsConfigReference(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from the code by `go test -run TestDocs -update-docs .`; do not edit.\n\n")
	b.WriteString("## Broker properties\n\n")
	b.WriteString("Set in a properties file (`strata serve --config server.properties`) or with\n`--set name=value`. Names and meanings are Kafka's. Unknown names are an error.\n\n")
	b.WriteString("Dynamic properties also change at run time, without a restart, with\n`IncrementalAlterConfigs` or `AlterConfigs` on a BROKER resource: named `\"\"` for\nevery node (`kafka-configs --alter --entity-type brokers --entity-default`),\nor by a node id for that node. They are metadata records; a node's own\nvalue wins over the cluster-wide one, which wins over the file.\n\n")
	b.WriteString("| Property | Default | Dynamic | Meaning |\n|---|---|---|---|\n")
	for _, d := range config.Defs {
		def := d.Default
		if def == "" {
			def = "(see meaning)"
		}
		dyn := ""
		if config.Dynamic[d.Name] {
			dyn = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", d.Name, mdEscape(def), dyn, mdEscape(d.Doc))
	}
	b.WriteString("\nEach `ssl.*` property can also be set for one listener as\n`listener.name.<name>.ssl.*` (the name lower-cased, as Kafka writes it), which wins\nover the plain one for that listener. See OPERATIONS.md, TLS.\n")
	fmt.Fprintf(&b, "\nAlso accepted on BROKER resources, stored and described, with no effect (Kafka's\nthreads, SASL and log cleaner; tools and client test suites set them): %s.\n", "`"+strings.Join(kafka.InertBrokerConfigs(), "`, `")+"`")
	b.WriteString("\n## Group configs\n\n")
	b.WriteString("Set per KIP-848 consumer group with `IncrementalAlterConfigs` or `AlterConfigs` on a\nGROUP resource (type 32) named by the group id (Kafka 4's GroupConfig); new heartbeats\nuse them.\n\n")
	b.WriteString("| Config | Meaning |\n|---|---|\n")
	for _, g := range kafka.GroupConfigDocs() {
		fmt.Fprintf(&b, "| `%s` | %s |\n", g[0], mdEscape(g[1]))
	}
	b.WriteString("\n## Topic configs\n\n")
	b.WriteString("Set per topic at creation (`CreateTopics` configs) or later (`IncrementalAlterConfigs`);\nthe broker's `log.*` properties give the defaults.\n\n")
	b.WriteString("| Config | Default | Meaning |\n|---|---|---|\n")
	defaults := broker.DefaultTopicConfig()
	for _, d := range broker.TopicConfigDefs {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", d.Name, mdEscape(d.Get(&defaults)), mdEscape(d.Doc))
	}
	checkDoc(t, "docs/CONFIG.md", b.String())
}

// TestDocsMetricsReference keeps docs/METRICS.md generated from what a
// running broker exports.
func TestDocsMetricsReference(t *testing.T) {
	props := groupProps()
	props["listeners"] = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"
	props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = `org.apache.kafka.common.security.plain.PlainLoginModule required user_docs="docs";`
	b := startBroker(t, t.TempDir(), props)
	// Traffic of every kind, so that every series exists: a produce, a
	// group consumer that commits, an error, a SASL login.
	if err := newClient(t, b.ListenerAddr("SASL_PLAINTEXT"), kgo.SASL(plain.Auth{User: "docs", Pass: "docs"}.AsMechanism())).Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	createPartitioned(t, b.Addr(), "docs", 1)
	produceSpread(t, b.Addr(), "docs", "d", 10)
	l := newLedger()
	m := startMember(t, b.Addr(), "docs-group", "docs", "c", l)
	waitFor(t, 20*time.Second, "consumed", func() bool { return l.total() >= 10 })
	if err := m.client.CommitUncommittedOffsets(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rawProducePartition(t, newClient(t, b.Addr()), "docs", 7, recordtest.Values(t, 1, "x"))
	resp, err := http.Get("http://" + b.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	help, kind := map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 4)
		if len(f) == 4 && f[0] == "#" && strings.HasPrefix(f[2], "strata_") {
			switch f[1] {
			case "HELP":
				help[f[2]] = f[3]
			case "TYPE":
				kind[f[2]] = f[3]
			}
		}
	}
	names := make([]string, 0, len(help))
	for n := range help {
		names = append(names, n)
	}
	sort.Strings(names)
	var out strings.Builder
	out.WriteString("# Metrics reference\n\n")
	out.WriteString("Generated from a running broker by `go test -run TestDocs -update-docs .`; do not edit.\n\n")
	out.WriteString("Served at `http://<http.listener>/metrics` in Prometheus text format, with the Go runtime\n(`go_*`) and process (`process_*`) collectors. `/healthz` answers 200 while the process\nserves HTTP; `/readyz` answers 200 while the broker accepts Kafka requests and 503 during\nstart-up and shutdown.\n\n")
	out.WriteString("| Metric | Type | Meaning |\n|---|---|---|\n")
	for _, n := range names {
		fmt.Fprintf(&out, "| `%s` | %s | %s |\n", n, kind[n], mdEscape(help[n]))
	}
	checkDoc(t, "docs/METRICS.md", out.String())
}
