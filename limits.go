package strata

import (
	"log/slog"
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

// checkResourceLimits logs how many partitions the process's file
// descriptor limit and the kernel's memory-map limit allow at one segment
// each, and warns when max.broker.partitions is above either: past them,
// creating a partition or rolling a segment fails with "too many open
// files" or ENOMEM from mmap. (Go raises the soft RLIMIT_NOFILE to the hard
// limit at start; this reads the raised value.)
func checkResourceLimits(logger *slog.Logger, maxPartitions int32) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		logger.Warn("cannot read the open-files limit", "err", err)
		return
	}
	byFiles := int64(0)
	if rl.Cur > reservedFiles {
		byFiles = int64(rl.Cur-reservedFiles) / filesPerSegment
	}
	if rl.Cur == unix.RLIM_INFINITY || byFiles > 1<<31 {
		byFiles = 1 << 31
	}
	byMaps := int64(-1)
	if data, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			byMaps = n / mapsPerSegment
		}
	}
	allowed := byFiles
	if byMaps >= 0 && byMaps < allowed {
		allowed = byMaps
	}
	attrs := []any{"open_files_limit", rl.Cur, "partitions_by_files", byFiles, "partitions_by_mmaps", byMaps, "max.broker.partitions", maxPartitions}
	if int64(maxPartitions) > allowed {
		logger.Warn("max.broker.partitions is above what the process limits allow at one segment per partition: raise ulimit -n or vm.max_map_count, or lower max.broker.partitions", attrs...)
		return
	}
	logger.Info("resource limits", attrs...)
}
