package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one `strata serve` child process, restarted on the same port and
// log dir so that clients reconnect to the next incarnation. Safe for
// concurrent use; the nemesis goroutine drives it and the runner stops it.
type Node struct {
	Bin  string   // strata binary
	Dir  string   // log.dirs
	Sets []string // extra name=value properties, each passed with --set
	// ID is the node.id of a cluster node (1, 2, ...); 0 runs a plain
	// one-node broker, as before clusters.
	ID int32
	// Host is the address the listeners bind and advertise; 127.0.0.1 when
	// empty. In a network namespace it is the namespace's own address.
	Host string
	// NetNS, when set, runs the process inside that network namespace
	// (`ip netns exec`), so that a network nemesis can cut it off.
	NetNS string
	// Port and CtrlPort are the Kafka and CONTROLLER listener ports. A
	// cluster picks them before any node starts, since every node's voter
	// list names every controller address; 0 picks a free Kafka port at the
	// first start (a one-node broker has no CONTROLLER listener).
	Port, CtrlPort int
	// Voters is controller.quorum.voters for a cluster node.
	Voters string
	// LogPath, when set, gets every process's output appended, with a
	// line per start (the runner keeps only the last lines in memory).
	LogPath string
	// ReadyTimeout bounds a start (recovery after kill -9 included). The
	// shared 2-core machine can be slow: a start that misses it is reported
	// as a harness error, not as a broker fault.
	ReadyTimeout time.Duration

	mu struct {
		sync.Mutex
		port   int
		gen    int   // processes started so far
		proc   *proc // nil when no process runs
		paused bool
		log    *procLog
	}
}

// Addr is the node's Kafka listener, fixed after the first Start.
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	port := n.mu.port
	if port == 0 {
		port = n.Port
	}
	return net.JoinHostPort(n.host(), strconv.Itoa(port))
}

func (n *Node) host() string {
	if n.Host == "" {
		return "127.0.0.1"
	}
	return n.Host
}

// CtrlAddr is the node's CONTROLLER listener (cluster nodes only).
func (n *Node) CtrlAddr() string {
	return net.JoinHostPort(n.host(), strconv.Itoa(n.CtrlPort))
}

// args is the `strata serve` command line of the next process.
func (n *Node) argsLocked() []string {
	addr := net.JoinHostPort(n.host(), strconv.Itoa(n.mu.port))
	listeners := "listeners=PLAINTEXT://" + addr
	var cluster []string
	if n.ID != 0 {
		listeners += ",CONTROLLER://" + n.CtrlAddr()
		cluster = []string{
			"--set", "node.id=" + strconv.Itoa(int(n.ID)),
			"--set", "controller.quorum.voters=" + n.Voters,
			"--set", "advertised.listeners=PLAINTEXT://" + addr,
		}
	}
	args := []string{"serve",
		"--set", listeners,
		"--set", "log.dirs=" + n.Dir,
		"--set", "http.listener=127.0.0.1:0"}
	args = append(args, cluster...)
	for _, kv := range n.Sets {
		args = append(args, "--set", kv)
	}
	return args
}

// Running reports whether a process is up (possibly paused).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.proc != nil
}

// Log returns the last lines the current or last process wrote.
func (n *Node) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.log == nil {
		return ""
	}
	return n.mu.log.String()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start runs a process and waits for its "strata ready" line. The first
// start picks a free port on 127.0.0.1; later ones reuse it, retrying a few
// times if the old socket is still being released.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.proc != nil {
		return errors.New("chaos: node already running")
	}
	timeout := n.ReadyTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	var last string
	for attempt := 0; attempt < 5; attempt++ {
		if n.mu.port == 0 && n.Port != 0 {
			n.mu.port = n.Port
		}
		if n.mu.port == 0 {
			p, err := freePort()
			if err != nil {
				return err
			}
			n.mu.port = p
		}
		n.mu.gen++
		lg := newProcLog()
		n.mu.log = lg
		args := n.argsLocked()
		cmd := exec.Command(n.Bin, args...)
		if n.NetNS != "" {
			// ip netns exec enters the namespace and execs the broker in
			// the same process: signals and Pdeathsig reach the broker.
			cmd = exec.Command("ip", append([]string{"netns", "exec", n.NetNS, n.Bin}, args...)...)
		}
		cmd.Stdout, cmd.Stderr = lg, lg
		var logFile *os.File
		if n.LogPath != "" {
			f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return fmt.Errorf("chaos: node log: %w", err)
			}
			fmt.Fprintf(f, "=== chaos: start %d of node %d at %s: %s\n", n.mu.gen, n.ID, time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
			logFile = f
			w := io.MultiWriter(lg, f)
			cmd.Stdout, cmd.Stderr = w, w
		}
		// Its own process group: a Ctrl-C to the runner reaches the runner,
		// which then stops the broker itself (and SIGCONTs it first).
		// Pdeathsig: a runner killed by a test timeout takes its broker
		// with it instead of leaving it bound to the port.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			if logFile != nil {
				logFile.Close()
			}
			return fmt.Errorf("chaos: start broker: %w", err)
		}
		pr := &proc{cmd: cmd, done: make(chan struct{})}
		n.mu.proc, n.mu.paused = pr, false
		go func() {
			pr.err = cmd.Wait()
			if logFile != nil {
				fmt.Fprintf(logFile, "=== chaos: exit at %s: %v\n", time.Now().UTC().Format(time.RFC3339Nano), pr.err)
				logFile.Close()
			}
			close(pr.done)
		}()
		select {
		case <-lg.ready:
			return nil
		case <-pr.done:
			n.mu.proc = nil
			last = fmt.Sprintf("broker exited before ready:\n%s", lg)
			if !strings.Contains(last, "address already in use") {
				return errors.New("chaos: " + last)
			}
			time.Sleep(300 * time.Millisecond)
		case <-time.After(timeout):
			n.killLocked()
			return fmt.Errorf("chaos: broker not ready after %v (CPU starvation or a stuck recovery):\n%s", timeout, lg)
		case <-ctx.Done():
			n.killLocked()
			return ctx.Err()
		}
	}
	return errors.New("chaos: broker could not bind its port: " + last)
}

// proc is one broker process; err is written before done is closed.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// killLocked SIGKILLs and reaps the process, if any. SIGKILL cannot be
// caught, even by a stopped process, so reaping is prompt.
func (n *Node) killLocked() {
	if pr := n.mu.proc; pr != nil {
		_ = pr.cmd.Process.Signal(syscall.SIGKILL)
		<-pr.done
	}
	n.mu.proc, n.mu.paused = nil, false
}

// Kill SIGKILLs the process (it need not be running). The page cache
// survives, so whatever the broker wrote, synced or not, is still there
// for the next process: Kafka's behaviour on a process crash.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killLocked()
}

// Term sends SIGTERM and waits up to wait for a clean exit (Kafka's
// controlled shutdown: in-flight requests finish, logs are flushed). A
// broker that does not stop in time is killed and the error says so.
func (n *Node) Term(wait time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	pr := n.mu.proc
	if pr == nil {
		return nil
	}
	if n.mu.paused {
		_ = pr.cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = pr.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-pr.done:
		if pr.err != nil {
			err = fmt.Errorf("chaos: broker exit after SIGTERM: %v\n%s", pr.err, n.mu.log)
		}
	case <-time.After(wait):
		err = fmt.Errorf("chaos: broker did not stop within %v of SIGTERM:\n%s", wait, n.mu.log)
		_ = pr.cmd.Process.Signal(syscall.SIGKILL)
		<-pr.done
	}
	n.mu.proc, n.mu.paused = nil, false
	return err
}

// Pause SIGSTOPs the process: connections stay open and requests hang, as
// with a long GC pause or a stalled VM (Jepsen's pause nemesis).
func (n *Node) Pause() error { return n.signal(syscall.SIGSTOP, true) }

// Resume SIGCONTs a paused process.
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT, false) }

func (n *Node) signal(sig syscall.Signal, paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.proc == nil {
		return errors.New("chaos: node not running")
	}
	if err := n.mu.proc.cmd.Process.Signal(sig); err != nil {
		return err
	}
	n.mu.paused = paused
	return nil
}

// Exited reports whether the current process died on its own (not by a
// nemesis): a crash of the broker is itself a finding.
func (n *Node) Exited() (bool, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.proc == nil {
		return false, ""
	}
	select {
	case <-n.mu.proc.done:
		return true, fmt.Sprintf("%v\n%s", n.mu.proc.err, n.mu.log)
	default:
		return false, ""
	}
}

// Close stops the node for good: SIGCONT then SIGKILL, and reap.
func (n *Node) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.proc != nil && n.mu.paused {
		_ = n.mu.proc.cmd.Process.Signal(syscall.SIGCONT)
	}
	n.killLocked()
}

// procLog keeps a broker's last output lines and notices its ready line.
// Safe for concurrent use.
type procLog struct {
	ready chan struct{}
	mu    struct {
		sync.Mutex
		partial []byte
		lines   []string
		ready   bool
	}
}

const procLogLines = 60

func newProcLog() *procLog { return &procLog{ready: make(chan struct{})} }

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.partial = append(l.mu.partial, p...)
	for {
		i := bytes.IndexByte(l.mu.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.mu.partial[:i])
		l.mu.partial = l.mu.partial[i+1:]
		l.mu.lines = append(l.mu.lines, line)
		if len(l.mu.lines) > procLogLines {
			l.mu.lines = l.mu.lines[1:]
		}
		if !l.mu.ready && strings.Contains(line, "strata ready") {
			l.mu.ready = true
			close(l.ready)
		}
	}
	return len(p), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.mu.lines, "\n")
}
