package strata

import (
	"log/slog"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPartitionLimitFollowsOpenFiles: max.broker.partitions=-1 is what the
// open-files limit allows at 3 files per partition, after a reserve; a
// configured value is kept as it is.
func TestPartitionLimitFollowsOpenFiles(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur < 4096 {
		t.Skipf("open-files limit %d is below the 4096 this test lowers it to", rl.Cur)
	}
	lowered := rl
	lowered.Cur = 4096
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	logger := slog.New(slog.DiscardHandler)
	if got, want := partitionLimit(logger, -1), int32((4096-reservedFiles)/filesPerSegment); got != want {
		t.Fatalf("derived limit %d, want %d", got, want)
	}
	// A container's 1024 keeps a quarter for sockets, not all of it.
	lowered.Cur = 1024
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	if got, want := partitionLimit(logger, -1), int32((1024-256)/filesPerSegment); got != want {
		t.Fatalf("derived limit at ulimit 1024: %d, want %d", got, want)
	}
	if got := partitionLimit(logger, 5000); got != 5000 {
		t.Fatalf("configured limit became %d", got)
	}
}
