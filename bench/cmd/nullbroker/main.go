// Command nullbroker is the produce ceiling of bench/run.sh: a minimal
// Kafka-wire server that answers produce requests and keeps nothing. It
// reads each request frame, decodes only what its answer needs (for
// Produce, the topic names and partition indexes; the record bytes are
// never parsed), and answers in order on the same connection. Whatever
// throughput a client reaches against it is the client's and the
// machine's limit, with as little server CPU taken from the shared cores
// as a server can take.
//
// With -store DIR it also appends each partition's record bytes, as they
// came, to one file per partition with write(2): the least any broker that
// keeps what it acknowledges must do (the copy into the page cache), and
// nothing more (no parsing, no CRC, no index, no fsync). Against it, a
// broker's throughput shows its own overhead, apart from the cost of
// storing bytes on this machine.
//
// It speaks just enough to be bootstrapped and produced to: ApiVersions,
// Metadata (one broker, itself; a topic exists once created, or when a
// Metadata request that allows auto-creation names it, with -partitions
// partitions, as Kafka's num.partitions), CreateTopics (remembers the
// partition count), InitProducerId and
// Produce. Any other request closes the connection with a log line.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9092", "address to listen on")
	partitions := flag.Int("partitions", 1, "partitions of a topic auto-created by Metadata or created without a count")
	storeDir := flag.String("store", "", "append each partition's records to a file in this directory")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	s := &server{host: host, port: int32(port), defaultPartitions: int32(*partitions), topics: map[string]int32{}}
	if *storeDir != "" {
		if err := os.MkdirAll(*storeDir, 0o755); err != nil {
			log.Fatal(err)
		}
		s.store = &store{dir: *storeDir, files: map[string]*partitionFile{}}
	}
	fmt.Println("nullbroker listening on", ln.Addr())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	ln.Close()
}

type server struct {
	host              string
	port              int32
	defaultPartitions int32
	producerIDs       atomic.Int64

	mu     sync.Mutex
	topics map[string]int32 // partition counts of created topics

	store *store // nil: keep nothing
}

// store is -store: one append-only file per partition.
type store struct {
	dir   string
	mu    sync.Mutex
	files map[string]*partitionFile
}

type partitionFile struct {
	mu sync.Mutex
	f  *os.File
}

// append writes records at the end of the partition's file. Partitions of
// one request are written one after the other, as a broker appends them.
func (st *store) append(topic string, partition int32, records []byte) error {
	name := fmt.Sprintf("%s-%d", topic, partition)
	st.mu.Lock()
	pf := st.files[name]
	if pf == nil {
		f, err := os.OpenFile(filepath.Join(st.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			st.mu.Unlock()
			return err
		}
		pf = &partitionFile{f: f}
		st.files[name] = pf
	}
	st.mu.Unlock()
	pf.mu.Lock()
	defer pf.mu.Unlock()
	_, err := pf.f.Write(records)
	return err
}

// partitionsOf returns topic's partition count, 0 if it does not exist.
// autoCreate creates a missing topic with the default count.
func (s *server) partitionsOf(topic string, autoCreate bool) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.topics[topic]
	if !ok && autoCreate {
		n = s.defaultPartitions
		s.topics[topic] = n
	}
	return n
}

// serve answers one connection's requests in order. Reads are buffered
// (one read syscall takes several pipelined requests); each response is
// one write.
func (s *server) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1<<20)
	var frame, out []byte
	for {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n < 8 || n > 256<<20 {
			log.Printf("nullbroker: %s: bad frame size %d", c.RemoteAddr(), n)
			return
		}
		if cap(frame) < n {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		resp, err := s.handle(frame, out[:0])
		if err != nil {
			log.Printf("nullbroker: %s: %v", c.RemoteAddr(), err)
			return
		}
		out = resp
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// handle decodes one request frame and appends the framed response to dst.
func (s *server) handle(frame, dst []byte) ([]byte, error) {
	key := int16(binary.BigEndian.Uint16(frame))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("unknown api key %d", key)
	}
	req.SetVersion(version)
	body := kbin.Reader{Src: frame[8:]}
	body.NullableString() // client id
	if req.IsFlexible() {
		skipTags(&body) // request header v2
	}
	if err := body.Complete(); err != nil {
		return nil, fmt.Errorf("api %d v%d: header: %w", key, version, err)
	}
	var resp kmsg.Response
	var err error
	switch req := req.(type) {
	case *kmsg.ProduceRequest:
		if err := req.ReadFrom(body.Src); err != nil {
			return nil, fmt.Errorf("produce: %w", err)
		}
		if req.Acks == 0 {
			return dst, nil // no answer to acks=0
		}
		if resp, err = s.produce(req); err != nil {
			return nil, err
		}
	case *kmsg.ApiVersionsRequest:
		resp = apiVersions(req)
	case *kmsg.MetadataRequest:
		if err := req.ReadFrom(body.Src); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		resp = s.metadata(req)
	case *kmsg.CreateTopicsRequest:
		if err := req.ReadFrom(body.Src); err != nil {
			return nil, fmt.Errorf("create topics: %w", err)
		}
		resp = s.createTopics(req)
	case *kmsg.InitProducerIDRequest:
		r := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		r.ProducerID = s.producerIDs.Add(1)
		resp = r
	default:
		return nil, fmt.Errorf("api %d (%T) is not served", key, req)
	}
	resp.SetVersion(version)
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && key != 18 { // ApiVersions answers with header v0
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}

func skipTags(b *kbin.Reader) {
	for n := b.Uvarint(); n > 0; n-- {
		b.Uvarint()
		b.Span(int(b.Uvarint()))
	}
}

func (s *server) produce(req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			rp.Partition = p.Partition
			rp.BaseOffset = 0 // offsets are not counted: every batch "starts" at 0
			rp.LogAppendTime = -1
			if s.store != nil && len(p.Records) > 0 {
				if err := s.store.append(t.Topic, p.Partition, p.Records); err != nil {
					return nil, err
				}
			}
		}
	}
	return resp, nil
}

func apiVersions(req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	for _, k := range []struct{ key, min, max int16 }{
		{0, 3, 11}, {3, 0, 12}, {18, 0, 4}, {19, 0, 7}, {22, 0, 5},
	} {
		resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.key, MinVersion: k.min, MaxVersion: k.max})
	}
	return resp
}

func (s *server) metadata(req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: s.host, Port: s.port}}
	resp.ClusterID = kmsg.StringPtr("nullbroker")
	resp.ControllerID = 0
	var names []string
	if req.Topics == nil {
		s.mu.Lock()
		for t := range s.topics {
			names = append(names, t)
		}
		s.mu.Unlock()
	}
	for _, t := range req.Topics {
		if t.Topic != nil {
			names = append(names, *t.Topic)
		}
	}
	for _, name := range names {
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		rt.TopicID = topicID(name)
		n := s.partitionsOf(name, req.AllowAutoTopicCreation)
		if n == 0 {
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		for p := range n {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.Leader, rp.LeaderEpoch = p, 0, 0
			rp.Replicas, rp.ISR = []int32{0}, []int32{0}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *server) createTopics(req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	for _, t := range req.Topics {
		n := t.NumPartitions
		if n <= 0 {
			n = s.defaultPartitions
		}
		if !req.ValidateOnly {
			s.mu.Lock()
			s.topics[t.Topic] = n
			s.mu.Unlock()
		}
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.TopicID, rt.NumPartitions, rt.ReplicationFactor = t.Topic, topicID(t.Topic), n, 1
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// topicID derives a stable non-zero id from the name.
func topicID(name string) [16]byte {
	var id [16]byte
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	binary.BigEndian.PutUint64(id[:], h|1)
	binary.BigEndian.PutUint64(id[8:], h*31+7)
	return id
}
