// The load generator, "encchat bench": the command, its flags and
// checks, the verdict and the report. The run itself is in bench_load.go,
// the reading clients' checks in bench_read.go, the latency statistics in
// bench_stats.go and the idle-connection measurement in bench_idle.go.
//
// bench connects many clients to a server (encchat's, or any server
// speaking the classic protocol), makes a few of them talk, and checks that
// every client gets every message exactly once and in each sender's order,
// while measuring handshakes/s, deliveries/s and delivery latency.
// -rsa-limit puts the handshake rate beside this machine's RSA-2048 decrypt
// rate; -idle measures the server's memory per idle connection. The
// measuring code returns its figures and prints nothing; printBenchStats
// and printIdleStats render them.

//go:build !js

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
)

// benchConfig is one load run. Zero values get the defaults of the flags,
// except the in-process server's line-rate limit: zero is none, as in
// serverConfig.
type benchConfig struct {
	Addr        string  // server to load; empty starts one in-process
	Transport   string  // tcp (or "") or websocket: Addr is then the server's -web address
	Suite       string  // classic, modern or auto
	Clients     int     // clients that connect and read
	Concurrency int     // handshakes in flight at once
	Warmup      int     // clients connected and closed before measuring; -1: as many as Clients
	Senders     int     // clients (among Clients) that send
	Messages    int     // messages per sender
	Size        int     // bytes of chat text per message (at least the marker)
	Rate        float64 // messages/s per sender; 0 sends as fast as possible
	ServerRate  float64 // the in-process server's -rate; 0: no limit
	ServerBurst int     // the in-process server's -burst
	Stalled     int     // extra clients that connect and never read
	RSALimit    bool    // measure RSA-2048 OAEP decrypts/s on all cores
	Timeout     time.Duration
	Drain       time.Duration // how long to wait for deliveries after the last send

	progress *benchProgress // optional, read by the progress bar
}

// benchProgress is what the progress bar shows; bench updates it.
type benchProgress struct {
	phase       atomic.Value // string
	done, total atomic.Int64
}

func (p *benchProgress) set(phase string, total int64) {
	if p == nil {
		return
	}
	p.phase.Store(phase)
	p.done.Store(0)
	p.total.Store(total)
}

func (p *benchProgress) add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

// Bench defaults, as the flags show them.
const (
	benchDefaultClients     = 200
	benchDefaultConcurrency = 16
	benchDefaultSenders     = 10
	benchDefaultMessages    = 100
	benchDefaultSize        = 64
	benchDefaultTimeout     = 2 * time.Minute
	benchDefaultDrain       = 10 * time.Second
	benchRSADuration        = time.Second
	benchSettle             = time.Second // after the warm-up, for a server bench cannot see into
)

func (cfg *benchConfig) defaults() {
	if cfg.Suite == "" {
		cfg.Suite = suiteClassic
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = benchDefaultConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = benchDefaultTimeout
	}
	if cfg.Drain <= 0 {
		cfg.Drain = benchDefaultDrain
	}
	if cfg.Warmup < 0 {
		cfg.Warmup = cfg.Clients
	}
}

func (cfg *benchConfig) check() error {
	switch {
	case cfg.Transport != "" && cfg.Transport != transportTCP && cfg.Transport != transportWebSocket:
		return fmt.Errorf("-transport must be tcp or websocket, not %q", cfg.Transport)
	case cfg.Suite != suiteClassic && cfg.Suite != suiteModern && cfg.Suite != "auto":
		return fmt.Errorf("-suite must be classic, modern or auto, not %q", cfg.Suite)
	case cfg.Clients < 1:
		return errors.New("-clients must be at least 1")
	case cfg.Senders < 0 || cfg.Senders > cfg.Clients:
		return fmt.Errorf("-senders must be between 0 and -clients (%d)", cfg.Clients)
	case cfg.Messages < 0:
		return errors.New("-messages must not be negative")
	case cfg.Size < 0 || cfg.Size > maxTextLen:
		return fmt.Errorf("-size must be between 0 and %d", maxTextLen)
	case cfg.Rate < 0:
		return errors.New("-rate must not be negative")
	case cfg.ServerRate < 0:
		return errors.New("-server-rate must be 0 (no limit) or a positive number of lines per second")
	case cfg.ServerRate > 0 && cfg.ServerBurst < 1:
		return errors.New("-server-burst must be at least 1")
	case cfg.Stalled < 0:
		return errors.New("-stalled must not be negative")
	case cfg.Warmup < -1:
		return errors.New("-warmup must be -1 (as many as -clients), 0 or more")
	}
	return nil
}

// checkBenchTarget refuses a target that is not on this machine: a load
// test is an attack on anyone else's server.
func checkBenchTarget(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address", host)
		}
		return nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, which is not a loopback address", host, ip.IP)
		}
	}
	return nil
}

// runBench is "encchat bench".
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg benchConfig
	fs.StringVar(&cfg.Addr, "connect", "", "server `address` to load (default: an in-process server on 127.0.0.1 with an ephemeral key); with -transport websocket, its -web address")
	transports := fs.String("transport", transportTCP, "how the clients connect: tcp, websocket (to the server's -web /ws), or `tcp,websocket` for one run of each, one after the other")
	fs.IntVar(&cfg.Clients, "clients", benchDefaultClients, "clients that connect and read")
	fs.IntVar(&cfg.Concurrency, "concurrency", benchDefaultConcurrency, "handshakes in flight at once")
	fs.IntVar(&cfg.Warmup, "warmup", -1, "clients connected and closed before measuring, to warm a fresh process up (-1: as many as -clients; 0: none)")
	fs.IntVar(&cfg.Senders, "senders", benchDefaultSenders, "clients that send")
	fs.IntVar(&cfg.Messages, "messages", benchDefaultMessages, "messages per sender")
	fs.IntVar(&cfg.Size, "size", benchDefaultSize, "chat text `bytes` per message (at least the ~40-byte marker)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second per sender (0: as fast as the server takes them)")
	fs.Float64Var(&cfg.ServerRate, "server-rate", defaultRate, "the in-process server's -rate: lines per second per client after its burst (0: no limit)")
	fs.IntVar(&cfg.ServerBurst, "server-burst", defaultBurst, "the in-process server's -burst")
	fs.IntVar(&cfg.Stalled, "stalled", 0, "extra clients that connect and never read")
	fs.BoolVar(&cfg.RSALimit, "rsa-limit", false, "also measure RSA-2048 OAEP decrypts/s on all cores, the ceiling for classic handshakes")
	fs.StringVar(&cfg.Suite, "suite", suiteClassic, "`suite`: classic, modern, or auto (follow the server)")
	fs.DurationVar(&cfg.Timeout, "timeout", benchDefaultTimeout, "deadline for the whole run")
	fs.DurationVar(&cfg.Drain, "drain", benchDefaultDrain, "how long to wait for deliveries after the last send")
	allowRemote := fs.Bool("allow-remote", false, "allow a -connect target that is not a loopback address")
	idle := fs.Int("idle", 0, "instead: hold `N` idle clients and report the server's RSS per connection")
	serverPID := fs.Int("server-pid", 0, "with -idle and -connect: the server's `pid`, to read its RSS from /proc")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if err := cfg.check(); err != nil {
		errorf(stderr, "bench: %v", err)
		return 2
	}
	runs, err := parseTransports(*transports)
	if err != nil {
		errorf(stderr, "bench: %v", err)
		return 2
	}
	if *idle > 0 && (len(runs) > 1 || runs[0] != transportTCP) {
		errorf(stderr, "bench: -idle measures TCP connections only")
		return 2
	}
	if *idle < 0 {
		errorf(stderr, "bench: -idle must not be negative")
		return 2
	}
	if *serverPID != 0 && (cfg.Addr == "" || *idle == 0) {
		errorf(stderr, "bench: -server-pid needs -idle and -connect")
		return 2
	}
	if cfg.Addr != "" && !*allowRemote {
		if err := checkBenchTarget(ctx, cfg.Addr); err != nil {
			errorf(stderr, "bench: refusing to load %s: %v", cfg.Addr, err)
			hintf(stderr, "bench only loads servers on this machine; add -allow-remote for a server you run elsewhere")
			return 2
		}
	}

	cfg.progress = &benchProgress{}
	if *idle > 0 {
		return runBenchIdle(ctx, cfg, *idle, *serverPID, stdout, stderr, startProgressBar(stderr, cfg.progress))
	}
	code := 0
	var all []benchStats
	for i, transport := range runs {
		cfg.Transport = transport
		// A bar for each run, gone before its figures are printed.
		stopBar := startProgressBar(stderr, cfg.progress)
		st, err := bench(ctx, cfg)
		stopBar()
		if err != nil {
			errorf(stderr, "bench: %v", err)
			return 1
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printBenchStats(stdout, st)
		if !st.OK() {
			errorf(stderr, "bench: %s: %s", transport, benchVerdict(st))
			code = 1
		}
		all = append(all, st)
	}
	if len(all) == 2 {
		printTransportRatio(stdout, all[0], all[1])
	}
	return code
}

// The transports bench can load a server over.
const (
	transportTCP       = "tcp"
	transportWebSocket = "websocket"
)

// parseTransports reads -transport: one transport, or a comma-separated
// list run one after the other.
func parseTransports(s string) ([]string, error) {
	var runs []string
	for t := range strings.SplitSeq(s, ",") {
		t = strings.TrimSpace(t)
		if t != transportTCP && t != transportWebSocket {
			return nil, fmt.Errorf("-transport must be tcp, websocket or tcp,websocket, not %q", s)
		}
		if slices.Contains(runs, t) {
			return nil, fmt.Errorf("-transport names %s twice", t)
		}
		runs = append(runs, t)
	}
	return runs, nil
}

// printTransportRatio puts the second run's rates beside the first's.
func printTransportRatio(w io.Writer, a, b benchStats) {
	ratio := func(x, y float64) string {
		if y == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", x/y)
	}
	fmt.Fprintf(w, "\n%s / %s: handshakes/s %s, deliveries/s %s\n", b.Transport, a.Transport,
		ratio(b.HandshakeRate(), a.HandshakeRate()), ratio(b.DeliveryRate(), a.DeliveryRate()))
}

// runBenchIdle is "encchat bench -idle N": the server runs as a child
// process (or is the -connect one with -server-pid) so that the RSS read is
// the server's alone.
func runBenchIdle(ctx context.Context, cfg benchConfig, n, pid int, stdout, stderr io.Writer, stopBar func()) int {
	defer stopBar()
	cfg.defaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	addr := cfg.Addr
	rss := func() (int64, error) { return 0, errors.New("no server pid") }
	switch {
	case addr != "" && pid != 0:
		rss = func() (int64, error) { return processRSS(strconv.Itoa(pid)) }
	case addr == "":
		exe, err := os.Executable()
		if err != nil {
			errorf(stderr, "bench: %v", err)
			return 1
		}
		sp, err := startServerProcess(ctx, func(args ...string) *exec.Cmd { return exec.Command(exe, args...) }, cfg.Suite, n+10)
		if err != nil {
			errorf(stderr, "bench: starting the server: %v", err)
			return 1
		}
		defer sp.stop()
		addr = sp.addr
		rss = func() (int64, error) { return processRSS(strconv.Itoa(sp.cmd.Process.Pid)) }
	default:
		errorf(stderr, "bench: -idle with -connect needs -server-pid to read the server's memory")
		return 2
	}
	st, err := benchIdle(ctx, addr, cfg.Suite, n, cfg.Concurrency, 2*time.Second, rss, cfg.progress)
	stopBar()
	if err != nil {
		errorf(stderr, "bench: %v", err)
		return 1
	}
	printIdleStats(stdout, st)
	if st.Connected < n {
		errorf(stderr, "bench: %d of %d clients failed to connect: %s", st.HandshakeErrors, n, st.FirstError)
		if strings.Contains(st.FirstError, "too many open files") {
			hintf(stderr, "raise the open-files limit (ulimit -n); each idle client needs one descriptor here and one in the server")
		}
		return 1
	}
	return 0
}

// benchVerdict says in one line why a run failed its checks.
func benchVerdict(st benchStats) string {
	var why []string
	if st.TimedOut {
		why = append(why, "the run hit its deadline (-timeout)")
	}
	if st.Connected < st.Clients {
		why = append(why, fmt.Sprintf("%d of %d clients did not connect (%s)", st.Clients-st.Connected, st.Clients, st.FirstError))
	}
	if st.SendErrors > 0 {
		why = append(why, fmt.Sprintf("%d senders failed (%s)", st.SendErrors, st.FirstError))
	}
	if st.Lost > 0 || st.Duplicated > 0 || st.OutOfOrder > 0 || st.Corrupt > 0 {
		why = append(why, fmt.Sprintf("%d lost, %d duplicated, %d out of order, %d corrupt", st.Lost, st.Duplicated, st.OutOfOrder, st.Corrupt))
	}
	return strings.Join(why, "; ")
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(10 * time.Millisecond).String()
}

func fmtLatency(l latencyStats) string {
	if l.N == 0 {
		return "latency -"
	}
	return fmt.Sprintf("latency p50 %s  p99 %s  max %s", fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.Max))
}

// printBenchStats renders a run's figures.
func printBenchStats(w io.Writer, st benchStats) {
	where := st.Addr
	if st.InProcess {
		where = "in-process server on " + st.Addr
	}
	over := ""
	if st.Transport == transportWebSocket {
		over = " over WebSocket"
	}
	fmt.Fprintf(w, "encchat bench: %s suite%s, %s\n", st.Suite, over, where)
	if st.Warmup > 0 {
		fresh := ""
		if st.InProcess {
			fresh = ", into a fresh process"
		}
		fmt.Fprintf(w, "warm-up     %d clients first%s, not counted: %.0f handshakes/s", st.Warmup, fresh, st.WarmupRate)
		if st.RSADecrypts > 0 {
			fmt.Fprintf(w, ", %.0f%% of the rsa limit", 100*st.WarmupRate/st.RSADecrypts)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "clients     %d of %d connected, %d at a time, in %s\n", st.Connected, st.Clients, st.Concurrency, fmtDur(st.HandshakeWall))
	fmt.Fprintf(w, "handshakes  %.0f/s  %s\n", st.HandshakeRate(), fmtLatency(st.Handshake))
	if st.RSADecrypts > 0 {
		fmt.Fprintf(w, "rsa limit   %.0f RSA-2048 OAEP decrypts/s on %d cores: handshakes at %.0f%% of it\n",
			st.RSADecrypts, st.RSACores, 100*st.HandshakeRate()/st.RSADecrypts)
	}
	fmt.Fprintf(w, "messages    %d senders × %d × %d B to %d readers: %d deliveries expected\n",
		st.Senders, st.Messages, st.Size, st.Connected, st.Expected)
	fmt.Fprintf(w, "deliveries  %.0f/s  %s  (%d in %s)\n", st.DeliveryRate(), fmtLatency(st.Delivery), st.Delivered, fmtDur(st.DeliveryWall))
	fmt.Fprintf(w, "checks      lost %d  duplicated %d  out of order %d", st.Lost, st.Duplicated, st.OutOfOrder)
	if st.Corrupt > 0 || st.Dropped > 0 {
		fmt.Fprintf(w, "  corrupt %d  undecryptable %d", st.Corrupt, st.Dropped)
	}
	if st.Disconnected > 0 {
		fmt.Fprintf(w, "  disconnected %d", st.Disconnected)
	}
	fmt.Fprintln(w)
	if st.Stalled > 0 {
		fmt.Fprintf(w, "stalled     %d never-reading clients, %d closed by the server\n", st.Stalled, st.StalledClosed)
	}
	switch {
	case st.InProcess && st.ServerRate > 0:
		fmt.Fprintf(w, "rate limit  the server paces each client to %g lines/s after %d at once; it told senders %d times their lines are delayed (-server-rate 0 measures it unthrottled)\n",
			st.ServerRate, st.ServerBurst, st.SlowDown)
	case st.SlowDown > 0:
		fmt.Fprintf(w, "rate limit  the server told senders %d times their lines are delayed (run it with -rate 0 to measure it unthrottled)\n", st.SlowDown)
	}
	if len(st.ServerDrops) > 0 {
		reasons := slices.Sorted(maps.Keys(st.ServerDrops))
		for i, why := range reasons {
			reasons[i] = fmt.Sprintf("%d × %s", st.ServerDrops[why], why)
		}
		fmt.Fprintf(w, "server      dropped clients during the run: %s\n", strings.Join(reasons, "; "))
	}
}

// printIdleStats renders an idle run's figures.
func printIdleStats(w io.Writer, st idleStats) {
	fmt.Fprintf(w, "encchat bench -idle: server %s\n", st.Addr)
	fmt.Fprintf(w, "clients     %d of %d connected in %s (%.0f handshakes/s), %d join notices read\n",
		st.Connected, st.Clients, fmtDur(st.HandshakeWall), perSecond(int64(st.Connected), st.HandshakeWall), st.Notices)
	fmt.Fprintf(w, "server RSS  %.1f MiB before, %.1f MiB with the clients: %.1f KiB per idle connection\n",
		float64(st.RSSBefore)/(1<<20), float64(st.RSSAfter)/(1<<20), st.PerConn()/1024)
}

// startProgressBar draws the progress on w when w is a terminal, once the
// run has lasted more than a moment. The returned func stops it and clears
// the line; it may be called more than once.
func startProgressBar(w io.Writer, p *benchProgress) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !(isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		drawn := false
		delay := time.NewTimer(700 * time.Millisecond)
		defer delay.Stop()
		select {
		case <-delay.C:
		case <-quit:
			return
		}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			phase, _ := p.phase.Load().(string)
			done, total := p.done.Load(), p.total.Load()
			line := fmt.Sprintf("%-9s", phase)
			if total > 0 {
				const width = 30
				filled := int(min(done, total) * width / total)
				line += fmt.Sprintf(" [%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total)
			}
			fmt.Fprintf(w, "\r\033[K%s", line)
			drawn = true
			select {
			case <-tick.C:
			case <-quit:
				if drawn {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}
