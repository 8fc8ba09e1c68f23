package broker

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-io/strata/internal/fs"
)

func TestPartitionMetadataFile(t *testing.T) {
	dir := t.TempDir()
	b := openBroker(t, dir)
	p := partition(t, b)
	path := filepath.Join(p.Log.Dir(), partitionMetadataFile)
	if _, ok := p.TopicID(); ok || exists(t, path) {
		t.Fatal("new partition already has a topic id")
	}
	id := [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	if err := p.WriteMetadata(id); err != nil {
		t.Fatal(err)
	}
	// Kafka's Uuid.toString: unpadded URL-safe base64 of the 16 bytes.
	const want = "version: 0\ntopic_id: AAECAwQFBgcICQoLDA0ODw\n"
	if data, err := os.ReadFile(path); err != nil || string(data) != want {
		t.Fatalf("partition.metadata %q, %v; want %q", data, err, want)
	}
	// The same id again writes nothing (a rewrite would rename a new
	// file over it).
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteMetadata(id); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Fatalf("same id rewrote the file (%v)", err)
	}
	if err := p.WriteMetadata([16]byte{}); err == nil {
		t.Fatal("zero topic id accepted")
	}
	// A leftover temporary from a crash goes at the next open.
	tmp := filepath.Join(p.Log.Dir(), partitionMetadataFile+".123"+fs.TempSuffix)
	if err := os.WriteFile(tmp, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	closeBroker(t, b)

	b = openBroker(t, dir)
	defer closeBroker(t, b)
	p = partition(t, b)
	if got, ok := p.TopicID(); !ok || got != id {
		t.Fatalf("topic id after reopen: %x %v", got, ok)
	}
	if exists(t, tmp) {
		t.Fatal("temporary file left after open")
	}
	// Another topic's id: the directory holds an older topic's records,
	// which the new topic must not inherit (Kafka's INCONSISTENT_TOPIC_ID).
	other := [16]byte{15: 1}
	if err := p.WriteMetadata(other); !errors.Is(err, ErrInconsistentTopicID) {
		t.Fatalf("another topic id: %v, want ErrInconsistentTopicID", err)
	}
	if got, ok := p.TopicID(); !ok || got != id {
		t.Fatalf("topic id after refused write: %x %v", got, ok)
	}
	if data, _ := os.ReadFile(path); string(data) != string(encodePartitionMetadata(id)) {
		t.Fatalf("partition.metadata changed by a refused write: %q", data)
	}
	if got, err := decodePartitionMetadata([]byte("version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ\n")); err != nil || got != other {
		t.Fatalf("decode: %x, %v", got, err)
	}
	for _, bad := range []string{"", "version: 1\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ\n", "version: 0\ntopic_id: short\n", "topic_id: AAAAAAAAAAAAAAAAAAAAAQ\n"} {
		if _, err := decodePartitionMetadata([]byte(bad)); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}
