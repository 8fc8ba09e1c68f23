package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lab is a private network for a run's nodes, so that a nemesis can cut
// one node off: each node gets a network namespace of its own, joined by a
// veth pair to a bridge in the runner's namespace, on a /24 of 10.201.0.0/16
// made only for this run:
//
//	runner (root namespace)          schaos<x>  bridge, 10.201.<x>.1
//	  |-- veth schaos<x>v0 --- eth0 in netns schaos<x>n0, 10.201.<x>.11  node 1
//	  |-- veth schaos<x>v1 --- eth0 in netns schaos<x>n1, 10.201.<x>.12  node 2
//	  `-- veth schaos<x>v2 --- eth0 in netns schaos<x>n2, 10.201.<x>.13  node 3
//
// Every node listens on its own address (ports 9092 and 9093 in each
// namespace), the clients reach them from 10.201.<x>.1, and the nodes talk
// to each other across the bridge. A cut is iptables DROP rules inside the
// victim's namespace (INPUT from, OUTPUT to each peer; and the runner's
// address when clients are cut too), so no rule touches the machine's own
// tables; a heal flushes them. Traffic only ever goes to addresses inside
// namespaces the lab created. The bridge carries "strata-chaos pid <pid>"
// as its alias, so that SweepLabs can remove what a killed runner left.
//
// Needs root, ip (iproute2) and iptables. Safe for concurrent use.
type Lab struct {
	Bridge  string
	Gateway string   // the runner's address on the bridge: the clients' source address
	NetNS   []string // node i's namespace
	Hosts   []string // node i's address
	mu      sync.Mutex
}

// LabAvailable says why a lab cannot be built here, or nil.
func LabAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("chaos: network namespaces need root (run as root, or drop the cut/isolate nemeses)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("chaos: network faults need %s (apt-get install iproute2 iptables): %w", tool, err)
		}
	}
	return nil
}

func runCmd(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

const labAliasPrefix = "strata-chaos pid "

// NewLab builds namespaces for n nodes on the first free subnet. On error
// it removes whatever it made.
func NewLab(n int) (*Lab, error) {
	if err := LabAvailable(); err != nil {
		return nil, err
	}
	SweepLabs()
	pid := os.Getpid()
	var l *Lab
	// Creating the bridge claims the subnet: a name taken by a concurrent
	// run makes `ip link add` fail, and we try the next.
	for try := 0; try < 200 && l == nil; try++ {
		x := 20 + (pid+try)%230
		br := fmt.Sprintf("schaos%d", x)
		if out, _ := exec.Command("ip", "-4", "route", "show", fmt.Sprintf("10.201.%d.0/24", x)).Output(); len(strings.TrimSpace(string(out))) > 0 {
			continue
		}
		if err := runCmd("ip", "link", "add", br, "type", "bridge"); err != nil {
			continue
		}
		l = &Lab{Bridge: br, Gateway: fmt.Sprintf("10.201.%d.1", x)}
		for i := 0; i < n; i++ {
			l.NetNS = append(l.NetNS, fmt.Sprintf("schaos%dn%d", x, i))
			l.Hosts = append(l.Hosts, fmt.Sprintf("10.201.%d.%d", x, 11+i))
		}
	}
	if l == nil {
		return nil, errors.New("chaos: no free 10.201.x.0/24 subnet for a lab")
	}
	x := strings.TrimPrefix(l.Bridge, "schaos")
	steps := [][]string{
		{"ip", "link", "set", l.Bridge, "alias", labAliasPrefix + strconv.Itoa(pid)},
		{"ip", "addr", "add", l.Gateway + "/24", "dev", l.Bridge},
		{"ip", "link", "set", l.Bridge, "up"},
	}
	for i, ns := range l.NetNS {
		veth := fmt.Sprintf("schaos%sv%d", x, i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "link", "set", veth, "master", l.Bridge},
			[]string{"ip", "link", "set", veth, "up"},
			[]string{"ip", "-n", ns, "addr", "add", l.Hosts[i] + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := runCmd(s[0], s[1:]...); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// Cut drops every packet between node victim and the other nodes, and
// with clients between it and the runner too. Established connections
// stay open and stall, as on a real partition.
func (l *Lab) Cut(victim int, clients bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	peers := []string{}
	for i, h := range l.Hosts {
		if i != victim {
			peers = append(peers, h)
		}
	}
	if clients {
		peers = append(peers, l.Gateway)
	}
	ns := l.NetNS[victim]
	for _, p := range peers {
		for _, rule := range [][]string{{"INPUT", "-s", p}, {"OUTPUT", "-d", p}} {
			args := append([]string{"netns", "exec", ns, "iptables", "-w", "-A"}, rule...)
			if err := runCmd("ip", append(args, "-j", "DROP")...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Heal removes every rule of the victim's namespace (the lab's own: no
// other rule lives there).
func (l *Lab) Heal(victim int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ns := l.NetNS[victim]
	return errors.Join(runCmd("ip", "netns", "exec", ns, "iptables", "-w", "-F", "INPUT"),
		runCmd("ip", "netns", "exec", ns, "iptables", "-w", "-F", "OUTPUT"))
}

// Close removes the namespaces (their veth pairs and rules go with them)
// and the bridge. It is safe to call on a half-built lab.
func (l *Lab) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ns := range l.NetNS {
		_ = runCmd("ip", "netns", "del", ns)
	}
	_ = runCmd("ip", "link", "del", l.Bridge)
}

// SweepLabs removes the bridges and namespaces of labs whose runner is
// gone (killed before its Close ran).
func SweepLabs() {
	out, err := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output()
	if err != nil {
		return
	}
	nss, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		// "7: schaos42: <...> ... \    alias strata-chaos pid 1234"
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "schaos") {
			continue
		}
		br := strings.TrimSuffix(f[1], ":")
		i := strings.Index(line, labAliasPrefix)
		if i < 0 {
			continue
		}
		pid, err := strconv.Atoi(strings.Fields(line[i+len(labAliasPrefix):])[0])
		if err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its runner still runs
		}
		for _, nl := range strings.Split(string(nss), "\n") {
			if nf := strings.Fields(nl); len(nf) > 0 && strings.HasPrefix(nf[0], br+"n") {
				_ = runCmd("ip", "netns", "del", nf[0])
			}
		}
		_ = runCmd("ip", "link", "del", br)
	}
}
