package strata_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata"
)

// interBrokerSASLProps are a cluster's properties with a PLAINTEXT client
// listener and an INTERNAL SASL_PLAINTEXT one that brokers replicate on,
// whose PLAIN users (and, with login, the brokers' own login) come from
// the listener's JAAS configuration, as in Kafka's documentation.
func interBrokerSASLProps(login string) map[string]string {
	return map[string]string{
		"listener.security.protocol.map":                "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":                    "INTERNAL",
		"sasl.mechanism.inter.broker.protocol":          "PLAIN",
		"listener.name.internal.plain.sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required ` + login + ` user_broker="broker-secret";`,
		"offsets.topic.replication.factor":              "1",
	}
}

// TestClusterSASLInterBroker: with the inter-broker listener
// SASL_PLAINTEXT and PLAIN, followers authenticate to the leaders with
// the login of the listener's JAAS configuration and replicate an RF 3
// topic that takes acks=all with min.insync.replicas=3.
func TestClusterSASLInterBroker(t *testing.T) {
	c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(), ExtraListeners: []string{"INTERNAL"},
		Properties: interBrokerSASLProps(`username="broker" password="broker-secret"`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr := c.Node(1).Addr()
	adm := kadm.NewClient(newClient(t, addr))
	if r, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("3")}, "rf3"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	p := newClient(t, addr, kgo.DefaultProduceTopic("rf3"), kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 200
	for i := range n {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	md, err := adm.Metadata(ctx, "rf3")
	if err != nil {
		t.Fatal(err)
	}
	for _, pd := range md.Topics["rf3"].Partitions {
		if len(pd.ISR) != 3 {
			t.Errorf("partition %d ISR %v", pd.Partition, pd.ISR)
		}
	}
}

// TestInterBrokerSASLStartErrors: a broker whose inter-broker listener is
// SASL_* does not start without a login for it, and says which property
// to set.
func TestInterBrokerSASLStartErrors(t *testing.T) {
	noJAAS := interBrokerSASLProps("")
	delete(noJAAS, "listener.name.internal.plain.sasl.jaas.config")
	for _, tc := range []struct {
		props map[string]string
		want  string
	}{
		{noJAAS, "set listener.name.internal.plain.sasl.jaas.config (or sasl.jaas.config)"},
		{interBrokerSASLProps(`username="broker"`), "no username or no password"},
	} {
		c, err := newTestCluster(t, strata.ClusterOptions{Dir: t.TempDir(), Logger: testLogger(), ExtraListeners: []string{"INTERNAL"}, Properties: tc.props})
		if err == nil {
			c.Close()
			t.Errorf("started with %q", tc.props["listener.name.internal.plain.sasl.jaas.config"])
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "broker-secret") {
			t.Errorf("%v, want %q and no password", err, tc.want)
		}
	}
}
