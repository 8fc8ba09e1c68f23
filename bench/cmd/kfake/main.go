// Command kfake runs franz-go's in-memory fake Kafka (pkg/kfake) as a
// single broker on a given port: the stored-nothing reference target of
// bench/run.sh. With -blackhole it acknowledges produce requests without
// keeping the records (kfake.BlackholeProduce). That is no ceiling: kfake
// still decodes every request and runs it through one event loop, CPU
// taken from the client on the same cores; bench/cmd/nullbroker is the
// ceiling.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9092", "address to listen on")
	blackhole := flag.Bool("blackhole", false, "acknowledge produce requests without storing the records")
	partitions := flag.Int("partitions", 1, "partitions of auto-created topics")
	flag.Parse()

	_, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		fail(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		fail(err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DefaultNumPartitions(*partitions),
		kfake.AllowAutoTopicCreation(),
	}
	if *blackhole {
		opts = append(opts, kfake.BlackholeProduce())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fail(err)
	}
	fmt.Println("kfake listening on", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kfake:", err)
	os.Exit(1)
}
