package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// raftLogger routes hashicorp/raft's hclog output into strata's slog
// logger. raft logs every election, snapshot and replication error at
// Info and Warn, and heartbeat and RPC details at Debug and Trace; those
// keep their level (Trace becomes Debug), so a broker at Info sees
// leadership changes and problems, not RPC chatter.
func raftLogger(l *slog.Logger) hclog.Logger {
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "raft", Output: io.Discard, Level: hclog.Trace})
	il.RegisterSink(slogSink{l})
	return il
}

type slogSink struct{ l *slog.Logger }

func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	var lv slog.Level
	switch {
	case level >= hclog.Error:
		lv = slog.LevelError
	case level == hclog.Warn:
		lv = slog.LevelWarn
	case level == hclog.Info:
		lv = slog.LevelInfo
	default:
		lv = slog.LevelDebug
	}
	if !s.l.Enabled(context.Background(), lv) {
		return
	}
	attrs := make([]any, 0, len(args)/2+1)
	attrs = append(attrs, slog.String("logger", name))
	for i := 0; i+1 < len(args); i += 2 {
		v := args[i+1]
		// hclog.Fmt values are a format and its arguments, formatted
		// by hclog's own writer.
		if f, ok := v.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				v = fmt.Sprintf(format, f[1:]...)
			}
		}
		attrs = append(attrs, slog.Any(fmt.Sprint(args[i]), v))
	}
	s.l.Log(context.Background(), lv, msg, attrs...)
}
