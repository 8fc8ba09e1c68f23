package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Endpoint serves /metrics, /healthz and /readyz on its own listener, apart
// from the Kafka port, as operators expect of a broker's admin port.
type Endpoint struct {
	srv   *http.Server
	ln    net.Listener
	ready atomic.Bool
	done  chan struct{}
}

// Serve starts the endpoint on ln. /healthz answers 200 while the process
// serves HTTP at all; /readyz answers 200 only between SetReady(true) and
// SetReady(false) (the broker accepting Kafka requests), 503 otherwise.
// With withPprof it also serves Go's profiler under /debug/pprof/.
func Serve(ln net.Listener, m *Metrics, withPprof bool) *Endpoint {
	e := &Endpoint{ln: ln, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	e.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(e.done)
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed; Close reports nothing more useful
		}
	}()
	return e
}

// Addr is the endpoint's address.
func (e *Endpoint) Addr() string { return e.ln.Addr().String() }

// SetReady sets what /readyz answers.
func (e *Endpoint) SetReady(ready bool) { e.ready.Store(ready) }

// Close stops the endpoint, letting scrapes in progress finish for up to
// five seconds.
func (e *Endpoint) Close() error {
	e.SetReady(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	<-e.done
	return err
}
