package strata

import (
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Each partition holds its active segment open: the .log file and the
// .index and .timeindex files (3 descriptors), the two indexes mapped into
// memory (2 maps). Every older segment costs the same again.
const (
	filesPerSegment = 3
	mapsPerSegment  = 2
	// reservedFiles is left for sockets, the metadata log, and the rest.
	reservedFiles = 1024
)

// partitionLimit returns max.broker.partitions: configured, or with -1
// what the process's file descriptor limit and the kernel's memory-map limit
// allow at one segment per partition (past them, creating a partition or
// rolling a segment fails with "too many open files" or ENOMEM from mmap).
// It logs the limits, and warns when a configured value is above them. (Go
// raises the soft RLIMIT_NOFILE to the hard limit at start; this reads the
// raised value.)
func partitionLimit(logger *slog.Logger, configured int32) int32 {
	allowed := int64(math.MaxInt32)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		logger.Warn("cannot read the open-files limit", "err", err)
	} else if rl.Cur != unix.RLIM_INFINITY {
		// Keep a quarter of the descriptors, at most reservedFiles, for
		// sockets and the rest: a small limit (1024 in some containers)
		// still leaves room for a few hundred partitions.
		reserve := min(int64(rl.Cur)/4, reservedFiles)
		allowed = max(int64(rl.Cur)-reserve, filesPerSegment) / filesPerSegment
	}
	byFiles := allowed
	byMaps := int64(-1)
	if data, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			byMaps = n / mapsPerSegment
			allowed = min(allowed, byMaps)
		}
	}
	allowed = min(allowed, math.MaxInt32)
	attrs := []any{"open_files_limit", rl.Cur, "partitions_by_files", byFiles, "partitions_by_mmaps", byMaps}
	if configured == -1 {
		logger.Info("max.broker.partitions from the process limits", append(attrs, "max.broker.partitions", allowed)...)
		return int32(allowed)
	}
	attrs = append(attrs, "max.broker.partitions", configured)
	if int64(configured) > allowed {
		logger.Warn("max.broker.partitions is above what the process limits allow at one segment per partition: raise ulimit -n or vm.max_map_count, or lower max.broker.partitions", attrs...)
	} else {
		logger.Info("resource limits", attrs...)
	}
	return configured
}
