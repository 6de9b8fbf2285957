// The load generator, "encchat bench": it connects many clients to a
// server (encchat's, or any server speaking the classic protocol), makes a
// few of them talk, and checks that every client gets every message exactly
// once and in each sender's order, while measuring handshakes/s, deliveries/s
// and delivery latency. -rsa-limit puts the handshake rate beside this
// machine's RSA-2048 decrypt rate; -idle measures the server's memory per
// idle connection.
//
// bench returns a benchStats and printBenchStats renders it: the measuring
// code prints nothing.

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
)

// benchConfig is one load run. Zero values get the defaults of the flags.
type benchConfig struct {
	Addr        string  // server to load; empty starts one in-process
	Suite       string  // classic, modern or auto
	Clients     int     // clients that connect and read
	Concurrency int     // handshakes in flight at once
	Warmup      int     // clients connected and closed before measuring; -1: as many as Clients
	Senders     int     // clients (among Clients) that send
	Messages    int     // messages per sender
	Size        int     // bytes of chat text per message (at least the marker)
	Rate        float64 // messages/s per sender; 0 sends as fast as possible
	Stalled     int     // extra clients that connect and never read
	RSALimit    bool    // measure RSA-2048 OAEP decrypts/s on all cores
	Timeout     time.Duration
	Drain       time.Duration // how long to wait for deliveries after the last send

	progress *benchProgress // optional, read by the progress bar
}

// latencyStats summarises a latency distribution.
type latencyStats struct {
	N             int64
	P50, P99, Max time.Duration
}

// benchStats is what a run measured.
type benchStats struct {
	Addr, Suite string
	InProcess   bool

	Clients, Concurrency int
	Warmup               int     // clients connected and closed before the measured ones
	WarmupRate           float64 // their handshakes/s: a fresh process's
	Connected            int
	HandshakeErrors      int
	FirstError           string        // the first handshake or send error
	HandshakeWall        time.Duration // first dial to last welcome
	Handshake            latencyStats  // dial to welcome, per client

	Senders, Messages, Size int
	Expected                int64         // deliveries, counted per reading client
	Delivered               int64         // distinct messages received
	Lost                    int64         // expected but never received
	Duplicated              int64         // received more than once
	OutOfOrder              int64         // received after a later one from the same sender
	Corrupt                 int64         // bench messages whose text did not parse
	SendErrors              int64         // Send calls that failed
	Disconnected            int           // reading clients whose connection ended early
	Dropped                 int           // classic records that did not decrypt
	DeliveryWall            time.Duration // first send to last delivery
	Delivery                latencyStats  // send to receipt, per delivery

	Stalled, StalledClosed int            // never-reading clients, and how many the server closed
	SlowDown               int64          // "[ERROR] Slow down" notices: the server rate-limited a sender
	ServerDrops            map[string]int // in-process server only: why it dropped clients during the run

	RSADecrypts float64 // RSA-2048 OAEP decrypts/s on all cores; 0 when not measured
	RSACores    int

	TimedOut bool // the overall deadline cut the run short
}

// HandshakeRate is completed handshakes per second of the connect phase.
func (s benchStats) HandshakeRate() float64 {
	return perSecond(int64(s.Connected), s.HandshakeWall)
}

// DeliveryRate is deliveries per second from the first send to the last delivery.
func (s benchStats) DeliveryRate() float64 {
	return perSecond(s.Delivered, s.DeliveryWall)
}

// OK reports whether every message arrived exactly once and in order.
func (s benchStats) OK() bool {
	return !s.TimedOut && s.Connected == s.Clients && s.Lost == 0 && s.Duplicated == 0 &&
		s.OutOfOrder == 0 && s.Corrupt == 0 && s.SendErrors == 0
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
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
	case cfg.Stalled < 0:
		return errors.New("-stalled must not be negative")
	case cfg.Warmup < -1:
		return errors.New("-warmup must be -1 (as many as -clients), 0 or more")
	}
	return nil
}

// benchServer is the in-process server a run starts when no -connect is given.
type benchServer struct {
	srv  *server
	key  *rsa.PrivateKey
	addr string
	done chan error

	mu       sync.Mutex
	counting bool           // drops are counted until the run closes its clients
	drops    map[string]int // LEAVE reasons
}

// logEvent counts why the server dropped clients: a run that loses
// messages can say whether the server kicked readers, and why.
func (bs *benchServer) logEvent(ev serverEvent) {
	if ev.Kind != evLeave || isWarmupLeave(ev.Text) {
		return
	}
	_, why, ok := strings.Cut(ev.Text, " left the chat (")
	if !ok {
		return
	}
	bs.mu.Lock()
	if bs.counting {
		bs.drops[strings.TrimSuffix(why, ")")]++
	}
	bs.mu.Unlock()
}

// stopCounting returns the drops seen so far and ignores later ones.
func (bs *benchServer) stopCounting() map[string]int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.counting = false
	return maps.Clone(bs.drops)
}

func startBenchServer(key *rsa.PrivateKey, suite string) (*benchServer, error) {
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, rsaBits); err != nil {
			return nil, err
		}
	}
	if suite == "auto" {
		suite = suiteClassic
	}
	bs := &benchServer{key: key, done: make(chan error, 1), counting: true, drops: make(map[string]int)}
	srv, err := newServer(serverConfig{Key: key, Suite: suite, Log: bs.logEvent})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	bs.srv, bs.addr = srv, ln.Addr().String()
	go func() { bs.done <- srv.Serve(ln) }()
	return bs, nil
}

// waitEmpty waits until the server has let every client go and its
// writers have had time to finish.
func (bs *benchServer) waitEmpty(ctx context.Context) {
	for bs.srv.online() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(2 * noticeDelay)
}

// stop shuts the server down and waits for Serve to return.
func (bs *benchServer) stop() error {
	bs.srv.Shutdown()
	return <-bs.done
}

// connSet closes every connection of a run when its context ends, so no
// blocked read or handshake outlives the deadline.
type connSet struct {
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return
	}
	s.conns = append(s.conns, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
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

// benchTag makes the names and messages of one run unique, so two runs
// against one server, or other users on it, never confuse the checks.
func benchTag() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func benchName(tag string, i int) string { return "b" + tag + "-" + strconv.Itoa(i) }

// isWarmupLeave reports whether a server LEAVE line is a warm-up client's:
// their names are benchName("w"+tag, i).
func isWarmupLeave(text string) bool { return strings.HasPrefix(text, "bw") }

// benchMessage is the text a sender sends: a marker with the sender's
// client index, the per-sender sequence number and the send time, padded
// with 'x' to size bytes.
func benchMessage(tag string, idx, seq int, sent time.Time, size int) string {
	var b strings.Builder
	b.Grow(max(size, 48))
	b.WriteString("~" + tag + "/")
	b.WriteString(strconv.Itoa(idx))
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(seq))
	b.WriteByte('/')
	b.WriteString(strconv.FormatInt(sent.UnixNano(), 10))
	b.WriteByte('~')
	for b.Len() < size {
		b.WriteByte('x')
	}
	return b.String()
}

// parseBenchLine reads "[HH:MM:SS] NAME: TEXT". It reports ok=false for
// lines that are not a chat line of this run (system notices, other users);
// err is a chat line of this run that does not parse.
func parseBenchLine[T ~string | ~[]byte](line T, tag string) (idx, seq int, sent int64, ok bool, err error) {
	if len(line) < 11 || line[0] != '[' || line[9] != ']' || line[10] != ' ' {
		return 0, 0, 0, false, nil
	}
	// "b<tag>-<idx>: ~<tag>/<idx>/<seq>/<sent>~", scanned in one pass: the
	// bench reads 200,000 of these in a fraction of a second.
	rest := line[11:]
	if !hasTagPrefix(rest, 'b', tag, '-') {
		return 0, 0, 0, false, nil
	}
	nameIdx, rest, found := cutNumber(rest[len(tag)+2:], ':')
	if !found || len(rest) == 0 || rest[0] != ' ' || !hasTagPrefix(rest[1:], '~', tag, '/') {
		return 0, 0, 0, false, nil
	}
	bad := func() (int, int, int64, bool, error) { return 0, 0, 0, true, errors.New("bad marker") }
	idx64, rest, ok1 := cutNumber(rest[len(tag)+3:], '/')
	seq64, rest, ok2 := cutNumber(rest, '/')
	sent, _, ok3 := cutNumber(rest, '~')
	if !ok1 || !ok2 || !ok3 || idx64 != nameIdx || idx64 > math.MaxInt32 || seq64 > math.MaxInt32 {
		return bad()
	}
	return int(idx64), int(seq64), sent, true, nil
}

// cutNumber reads the decimal number at the start of s up to the byte end,
// without a leading zero unless it is 0, and returns what follows end.
func cutNumber[T ~string | ~[]byte](s T, end byte) (n int64, rest T, ok bool) {
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, s, false
		}
		n = n*10 + d
	}
	if i == 0 || i == len(s) || s[i] != end || (s[0] == '0' && i > 1) {
		return 0, s, false
	}
	return n, s[i+1:], true
}

// hasTagPrefix reports whether s starts with open, tag, close.
func hasTagPrefix[T ~string | ~[]byte](s T, open byte, tag string, close byte) bool {
	n := len(tag) + 2
	return len(s) >= n && s[0] == open && string(s[1:n-1]) == tag && s[n-1] == close
}

// latencyHist is a log-linear histogram safe for concurrent use: exact below
// 128 ns, then 64 buckets per octave (at most 1.6% error), exact maximum.
type latencyHist struct {
	counts [128 + 57*64]atomic.Int64
	n, max atomic.Int64
}

func histIndex(v int64) int {
	if v < 128 {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - 7
	return 128 + (shift-1)*64 + int(v>>shift) - 64
}

// histValue is the upper bound of bucket i.
func histValue(i int) int64 {
	if i < 128 {
		return int64(i)
	}
	shift := (i-128)/64 + 1
	mant := int64((i-128)%64 + 64)
	return (mant+1)<<shift - 1
}

// recordAll records ds, touching each bucket once per run of equal buckets.
func (h *latencyHist) recordAll(ds []time.Duration) {
	var top int64
	for i := 0; i < len(ds); {
		b := histIndex(int64(ds[i]))
		j := i + 1
		for j < len(ds) && histIndex(int64(ds[j])) == b {
			j++
		}
		h.counts[b].Add(int64(j - i))
		for _, d := range ds[i:j] {
			top = max(top, int64(d))
		}
		i = j
	}
	h.n.Add(int64(len(ds)))
	for {
		m := h.max.Load()
		if top <= m || h.max.CompareAndSwap(m, top) {
			return
		}
	}
}

func (h *latencyHist) stats() latencyStats {
	st := latencyStats{N: h.n.Load(), Max: time.Duration(h.max.Load())}
	if st.N == 0 {
		return st
	}
	quantile := func(q float64) time.Duration {
		rank := int64(math.Ceil(q * float64(st.N)))
		var seen int64
		for i := range h.counts {
			if seen += h.counts[i].Load(); seen >= rank {
				return min(time.Duration(histValue(i)), st.Max)
			}
		}
		return st.Max
	}
	st.P50, st.P99 = quantile(0.50), quantile(0.99)
	return st
}

// exactLatencies summarises a small set of durations exactly.
func exactLatencies(ds []time.Duration) latencyStats {
	if len(ds) == 0 {
		return latencyStats{}
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		return ds[max(int(math.Ceil(q*float64(len(ds))))-1, 0)]
	}
	return latencyStats{N: int64(len(ds)), P50: at(0.50), P99: at(0.99), Max: ds[len(ds)-1]}
}

// senderTrack is one receiver's view of one sender.
type senderTrack struct {
	seen   []bool
	maxSeq int
	n      int
}

// benchReader is one reading client and what it received.
type benchReader struct {
	cs     *clientSession
	tracks map[int]*senderTrack

	delivered, dup, ooo, corrupt int64
	slowDown                     int64
	last                         time.Time       // last bench delivery
	err                          error           // why Recv ended
	pending                      []time.Duration // latencies not yet reported to the run
}

// benchRun is the shared state of one run's readers.
type benchRun struct {
	tag       string
	messages  int
	hist      latencyHist
	delivered atomic.Int64
	expected  atomic.Int64 // set before the first send
	allIn     chan struct{}
	allInOnce sync.Once
	progress  *benchProgress
}

// read receives until the connection ends, checking each bench message.
// Latencies are reported to the run in batches, whenever the reader has
// nothing buffered (its next Recv may wait), so that 200 readers on two
// cores do not fight over the shared counters once per message.
func (r *benchReader) read(run *benchRun) {
	defer r.flush(run)
	r.pending = make([]time.Duration, 0, benchReportBatch)
	var now time.Time
	for {
		if r.cs.br.Buffered() == 0 || len(r.pending) == cap(r.pending) {
			r.flush(run)
		}
		// A message is timed when its bytes come off the socket: frames
		// already whole in the buffer arrived with the read that brought
		// them, which also spares a clock read per message.
		fresh := !frameBuffered(r.cs.br)
		// The text as it decrypted, not copied or cleaned for a terminal:
		// the bench only parses it.
		line, err := r.cs.recvRaw()
		if err != nil {
			r.err = err
			return
		}
		if fresh || now.IsZero() {
			now = time.Now()
		}
		idx, seq, sent, ok, perr := parseBenchLine(line, run.tag)
		if !ok {
			if bytes.HasSuffix(line, []byte("] [ERROR] Slow down")) {
				r.slowDown++
			}
			continue
		}
		if perr != nil || seq >= run.messages {
			r.corrupt++
			continue
		}
		t := r.tracks[idx]
		if t == nil {
			t = &senderTrack{seen: make([]bool, run.messages), maxSeq: -1}
			r.tracks[idx] = t
		}
		if t.seen[seq] {
			r.dup++
			continue
		}
		t.seen[seq] = true
		t.n++
		if seq < t.maxSeq {
			r.ooo++
		}
		t.maxSeq = max(t.maxSeq, seq)
		r.delivered++
		r.last = now
		r.pending = append(r.pending, now.Sub(time.Unix(0, sent)))
	}
}

// frameBuffered reports whether br holds the whole next frame.
func frameBuffered(br *bufio.Reader) bool {
	if br.Buffered() < headerLen {
		return false
	}
	h, _ := br.Peek(headerLen)
	n, err := parseFrameHeader(h)
	return err == nil && br.Buffered() >= headerLen+n
}

// benchReportBatch is the most latencies a reader holds before reporting.
const benchReportBatch = 256

// flush reports the reader's pending latencies to the run.
func (r *benchReader) flush(run *benchRun) {
	n := int64(len(r.pending))
	if n == 0 {
		return
	}
	run.hist.recordAll(r.pending)
	r.pending = r.pending[:0]
	run.progress.add(n)
	if total := run.delivered.Add(n); total == run.expected.Load() {
		run.allInOnce.Do(func() { close(run.allIn) })
	}
}

// measureRSALimit runs classicUnwrapKey on every core for about d and
// returns decrypts per second: the ceiling for classic handshakes/s.
func measureRSALimit(ctx context.Context, key *rsa.PrivateKey, d time.Duration) (float64, int, error) {
	aesKey := make([]byte, aesKeySize)
	rand.Read(aesKey)
	blob, err := classicWrapKey(rand.Reader, &key.PublicKey, aesKey)
	if err != nil {
		return 0, 0, err
	}
	cores := runtime.NumCPU()
	var total atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if _, err := classicUnwrapKey(key, blob); err != nil {
					failed.Store(true)
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		return 0, 0, errors.New("rsa limit: the test blob did not decrypt")
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	return perSecond(total.Load(), time.Since(start)), cores, nil
}

// benchConnect connects n clients named benchName(tag, first+i), at most
// conc at a time. Successful sessions are passed to ready (from the
// connecting goroutines) in completion order.
func benchConnect(ctx context.Context, addr, suite, tag string, first, n, conc int, conns *connSet,
	progress *benchProgress, ready func(i int, cs *clientSession)) (lat []time.Duration, failures int, firstErr error) {
	if suite == "auto" {
		suite = ""
	}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
		d    net.Dialer
	)
	lat = make([]time.Duration, 0, n)
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				start := time.Now()
				cs, err := func() (*clientSession, error) {
					conn, err := d.DialContext(ctx, "tcp", addr)
					if err != nil {
						return nil, err
					}
					conns.add(conn)
					return clientHandshake(conn, clientConfig{
						Name: benchName(tag, first+i), Suite: suite, Addr: addr, Insecure: true,
					})
				}()
				elapsed := time.Since(start)
				mu.Lock()
				if err != nil {
					failures++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					lat = append(lat, elapsed)
				}
				mu.Unlock()
				progress.add(1)
				if err == nil {
					ready(first+i, cs)
				}
			}
		}()
	}
	wg.Wait()
	return lat, failures, firstErr
}

// bench runs one load test. An error means the run could not be made at
// all; what went wrong during a run is in the stats.
func bench(ctx context.Context, cfg benchConfig) (benchStats, error) {
	cfg.defaults()
	if err := cfg.check(); err != nil {
		return benchStats{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	st := benchStats{
		Addr: cfg.Addr, Suite: cfg.Suite, Clients: cfg.Clients, Concurrency: cfg.Concurrency, Warmup: cfg.Warmup,
		Senders: cfg.Senders, Messages: cfg.Messages, Size: cfg.Size, Stalled: cfg.Stalled,
	}
	var key *rsa.PrivateKey
	var bs *benchServer
	if cfg.Addr == "" {
		var err error
		if bs, err = startBenchServer(nil, cfg.Suite); err != nil {
			return st, fmt.Errorf("starting the in-process server: %v", err)
		}
		defer bs.stop()
		key, st.Addr, st.InProcess = bs.key, bs.addr, true
	}
	run := &benchRun{tag: benchTag(), messages: cfg.Messages, allIn: make(chan struct{}), progress: cfg.progress}
	st.Warmup = cfg.Warmup
	if cfg.Warmup > 0 {
		// A fresh process pays once for what a server that has had a class
		// already did: memory faulted in, threads and stacks started. A
		// first set of clients, timed but not counted, pays it; then the
		// server is left to let them go before anything is measured.
		cfg.progress.set("warm-up", int64(cfg.Warmup))
		warm := &connSet{}
		start := time.Now()
		lat, _, err := benchConnect(ctx, st.Addr, cfg.Suite, "w"+run.tag, 0, cfg.Warmup, cfg.Concurrency, warm, cfg.progress,
			func(int, *clientSession) {})
		st.WarmupRate = perSecond(int64(len(lat)), time.Since(start))
		warm.closeAll()
		if len(lat) == 0 {
			return st, fmt.Errorf("warm-up: no client connected: %v", err)
		}
		if bs != nil {
			bs.waitEmpty(ctx)
		} else {
			time.Sleep(benchSettle)
		}
	}
	if cfg.RSALimit {
		if key == nil {
			var err error
			if key, err = rsa.GenerateKey(rand.Reader, rsaBits); err != nil {
				return st, err
			}
		}
		cfg.progress.set("rsa limit", 0)
		rate, cores, err := measureRSALimit(ctx, key, benchRSADuration)
		if err != nil {
			return st, err
		}
		st.RSADecrypts, st.RSACores = rate, cores
	}

	conns := &connSet{}
	stopWatch := context.AfterFunc(ctx, conns.closeAll)
	defer stopWatch()
	defer conns.closeAll()

	readers := make([]*benchReader, cfg.Clients)
	var readWG sync.WaitGroup
	defer readWG.Wait()
	defer conns.closeAll() // runs before readWG.Wait: closing ends every reader

	// Connect: every client starts reading as soon as its handshake is
	// done, so join notices never pile up in the server's queues.
	cfg.progress.set("connect", int64(cfg.Clients+cfg.Stalled))
	start := time.Now()
	lat, failures, firstErr := benchConnect(ctx, st.Addr, cfg.Suite, run.tag, 0, cfg.Clients, cfg.Concurrency, conns, cfg.progress,
		func(i int, cs *clientSession) {
			r := &benchReader{cs: cs, tracks: make(map[int]*senderTrack)}
			readers[i] = r
			readWG.Add(1)
			go func() {
				defer readWG.Done()
				r.read(run)
			}()
		})
	st.HandshakeWall = time.Since(start)
	st.Handshake = exactLatencies(lat)
	st.Connected, st.HandshakeErrors = len(lat), failures
	if firstErr != nil {
		st.FirstError = firstErr.Error()
	}
	stalled := make([]*clientSession, cfg.Stalled)
	if cfg.Stalled > 0 {
		_, failures, firstErr := benchConnect(ctx, st.Addr, cfg.Suite, run.tag, cfg.Clients, cfg.Stalled, cfg.Concurrency, conns, cfg.progress,
			func(i int, cs *clientSession) { stalled[i-cfg.Clients] = cs })
		st.HandshakeErrors += failures
		if firstErr != nil && st.FirstError == "" {
			st.FirstError = firstErr.Error()
		}
	}

	// Send: the first Senders connected clients each send Messages.
	var senders []int
	var nReaders int64
	for i, r := range readers {
		if r == nil {
			continue
		}
		nReaders++
		if len(senders) < cfg.Senders {
			senders = append(senders, i)
		}
	}
	st.Expected = nReaders * int64(len(senders)) * int64(cfg.Messages)
	run.expected.Store(st.Expected)
	if st.Expected == 0 {
		close(run.allIn)
	}
	var sendErrors atomic.Int64
	var firstSendErr atomic.Value
	cfg.progress.set("deliver", st.Expected)
	sendStart := time.Now()
	var sendWG sync.WaitGroup
	for _, idx := range senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			cs := readers[idx].cs
			for seq := range cfg.Messages {
				if cfg.Rate > 0 {
					due := sendStart.Add(time.Duration(float64(seq) / cfg.Rate * float64(time.Second)))
					if wait := time.Until(due); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
						}
					}
				}
				if ctx.Err() != nil {
					return
				}
				if err := cs.Send(benchMessage(run.tag, idx, seq, time.Now(), cfg.Size)); err != nil {
					sendErrors.Add(1)
					firstSendErr.CompareAndSwap(nil, err.Error())
					return
				}
			}
		}()
	}
	sendWG.Wait()
	drain := time.NewTimer(cfg.Drain)
	select {
	case <-run.allIn:
	case <-drain.C:
	case <-ctx.Done():
	}
	drain.Stop()
	st.TimedOut = ctx.Err() != nil

	// Stalled clients: did the server close them, or are they still open?
	var stalledWG sync.WaitGroup
	var stalledClosed atomic.Int64
	for _, cs := range stalled {
		if cs == nil {
			continue
		}
		stalledWG.Add(1)
		go func() {
			defer stalledWG.Done()
			cs.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, err := io.Copy(io.Discard, cs.conn)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				stalledClosed.Add(1)
			}
		}()
	}
	stalledWG.Wait()
	st.StalledClosed = int(stalledClosed.Load())

	if bs != nil {
		st.ServerDrops = bs.stopCounting()
	}
	conns.closeAll()
	readWG.Wait()
	st.SendErrors = sendErrors.Load()
	if e, _ := firstSendErr.Load().(string); e != "" && st.FirstError == "" {
		st.FirstError = e
	}
	var last time.Time
	for _, r := range readers {
		if r == nil {
			continue
		}
		st.Delivered += r.delivered
		st.Duplicated += r.dup
		st.OutOfOrder += r.ooo
		st.Corrupt += r.corrupt
		st.SlowDown += r.slowDown
		st.Dropped += r.cs.Dropped
		if r.last.After(last) {
			last = r.last
		}
		if r.delivered < int64(len(senders)*cfg.Messages) && !errors.Is(r.err, net.ErrClosed) {
			st.Disconnected++
		}
	}
	st.Lost = st.Expected - st.Delivered
	if !last.IsZero() {
		st.DeliveryWall = last.Sub(sendStart)
	}
	st.Delivery = run.hist.stats()
	return st, nil
}

// idleStats is what an idle-connection run measured.
type idleStats struct {
	Addr            string
	Clients         int
	Connected       int
	HandshakeErrors int
	FirstError      string
	HandshakeWall   time.Duration
	RSSBefore       int64 // server process, bytes
	RSSAfter        int64
	Notices         int64 // texts the idle clients received (join notices)
}

// PerConn is the server's RSS growth per idle connection, in bytes.
func (s idleStats) PerConn() float64 {
	if s.Connected == 0 {
		return 0
	}
	return float64(s.RSSAfter-s.RSSBefore) / float64(s.Connected)
}

// benchIdle connects n clients that only read, then reads the server's RSS
// through rss (called once before connecting and once after).
func benchIdle(ctx context.Context, addr, suite string, n, conc int, settle time.Duration,
	rss func() (int64, error), progress *benchProgress) (idleStats, error) {
	st := idleStats{Addr: addr, Clients: n}
	before, err := rss()
	if err != nil {
		return st, err
	}
	st.RSSBefore = before
	conns := &connSet{}
	stopWatch := context.AfterFunc(ctx, conns.closeAll)
	defer stopWatch()
	var readWG sync.WaitGroup
	defer readWG.Wait()
	defer conns.closeAll()
	var notices atomic.Int64
	progress.set("connect", int64(n))
	start := time.Now()
	lat, failures, firstErr := benchConnect(ctx, addr, suite, benchTag(), 0, n, conc, conns, progress,
		func(i int, cs *clientSession) {
			readWG.Add(1)
			go func() {
				defer readWG.Done()
				for {
					if _, err := cs.Recv(); err != nil {
						return
					}
					notices.Add(1)
				}
			}()
		})
	st.HandshakeWall = time.Since(start)
	st.Connected, st.HandshakeErrors = len(lat), failures
	if firstErr != nil {
		st.FirstError = firstErr.Error()
	}
	// Let the join notices drain and the server settle before measuring.
	progress.set("settle", 0)
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return st, ctx.Err()
	}
	after, err := rss()
	if err != nil {
		return st, err
	}
	st.RSSAfter = after
	st.Notices = notices.Load() // before closing: each close sends the others a leave notice
	conns.closeAll()
	readWG.Wait()
	return st, nil
}

// processRSS reads VmRSS of a process ("self" or a pid) from /proc.
func processRSS(pid string) (int64, error) {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading the server's RSS: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + pid + "/status")
}

// selfRSS is the in-process RSS after a GC has returned what it can.
func selfRSS() (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	return processRSS("self")
}

// serverProcess is an "encchat server" child started for -idle, so its RSS
// is the server's alone.
type serverProcess struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startServerProcess starts command("server", flags...) on a free loopback
// port and waits until it accepts connections.
func startServerProcess(ctx context.Context, command func(args ...string) *exec.Cmd, suite string, maxClients int) (*serverProcess, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if suite == "auto" {
		suite = suiteClassic
	}
	cmd := command("server", "-ephemeral", "-listen", addr, "-suite", suite,
		"-max-clients", strconv.Itoa(maxClients), "-max-per-addr", "0", "-no-color")
	cmd.Stdout = io.Discard // the server's log, one line per event
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sp := &serverProcess{cmd: cmd, addr: addr, done: make(chan error, 1)}
	go func() { sp.done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return sp, nil
		}
		select {
		case err := <-sp.done:
			sp.done <- err
			return nil, fmt.Errorf("server process exited: %v: %s", err, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			sp.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			sp.stop()
			return nil, fmt.Errorf("server process did not listen on %s", addr)
		}
	}
}

// stop interrupts the server (it says goodbye to its clients), then kills
// it if it is still there after a few seconds.
func (sp *serverProcess) stop() {
	sp.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-sp.done:
		sp.done <- err
	case <-time.After(5 * time.Second):
		sp.cmd.Process.Kill()
		sp.done <- <-sp.done
	}
}

// runBench is "encchat bench".
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var cfg benchConfig
	fs.StringVar(&cfg.Addr, "connect", "", "server `address` to load (default: an in-process server on 127.0.0.1 with an ephemeral key)")
	fs.IntVar(&cfg.Clients, "clients", benchDefaultClients, "clients that connect and read")
	fs.IntVar(&cfg.Concurrency, "concurrency", benchDefaultConcurrency, "handshakes in flight at once")
	fs.IntVar(&cfg.Warmup, "warmup", -1, "clients connected and closed before measuring, to warm a fresh process up (-1: as many as -clients; 0: none)")
	fs.IntVar(&cfg.Senders, "senders", benchDefaultSenders, "clients that send")
	fs.IntVar(&cfg.Messages, "messages", benchDefaultMessages, "messages per sender")
	fs.IntVar(&cfg.Size, "size", benchDefaultSize, "chat text `bytes` per message (at least the ~40-byte marker)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second per sender (0: as fast as the server takes them)")
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
	stopBar := startProgressBar(stderr, cfg.progress)
	if *idle > 0 {
		return runBenchIdle(ctx, cfg, *idle, *serverPID, stdout, stderr, stopBar)
	}
	st, err := bench(ctx, cfg)
	stopBar()
	if err != nil {
		errorf(stderr, "bench: %v", err)
		return 1
	}
	printBenchStats(stdout, st)
	if !st.OK() {
		errorf(stderr, "bench: %s", benchVerdict(st))
		return 1
	}
	return 0
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
	fmt.Fprintf(w, "encchat bench: %s suite, %s\n", st.Suite, where)
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
	if st.SlowDown > 0 {
		fmt.Fprintf(w, "rate limit  the server told senders %d times to slow down (run it with -rate 0 to measure it unthrottled)\n", st.SlowDown)
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
