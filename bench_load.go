// One bench run, phase by phase: the in-process server, the warm-up, the
// RSA limit, connecting the clients, sending, waiting for the deliveries,
// the stalled clients, the tally. bench lists the phases; each is a method
// of benchLoad.

//go:build !js

package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bench runs one load test, phase by phase. An error means the run could
// not be made at all; what went wrong during a run is in the stats.
func bench(ctx context.Context, cfg benchConfig) (benchStats, error) {
	cfg.defaults()
	if err := cfg.check(); err != nil {
		return benchStats{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	b := newBenchLoad(cfg)
	if cfg.Addr == "" {
		if err := b.startServer(); err != nil {
			return b.st, err
		}
		defer b.bs.stop()
	}
	if err := b.warmUp(ctx); err != nil {
		return b.st, err
	}
	if err := b.rsaLimit(ctx); err != nil {
		return b.st, err
	}
	// The deadline closes every connection, so no blocked read or
	// handshake outlives it; and no reader outlives bench.
	stopWatch := context.AfterFunc(ctx, b.conns.closeAll)
	defer stopWatch()
	defer b.closeClients()

	b.connect(ctx)
	b.connectStalled(ctx)
	b.pickSenders()
	b.send(ctx)
	b.awaitDeliveries(ctx)
	b.checkStalled()
	b.stopCountingDrops()
	b.closeClients()
	b.tally()
	return b.st, nil
}

// benchLoad is one load test in progress: its settings, its server and
// clients, and the stats its phases fill in. The phases run one after
// another; the goroutines a phase starts end within it, except the readers,
// which share only run and readWG.
type benchLoad struct {
	cfg benchConfig
	st  benchStats
	run *benchRun

	bs  *benchServer    // the in-process server; nil with -connect
	key *rsa.PrivateKey // its key, for the RSA limit

	conns     *connSet         // every connection of the measured clients
	readers   []*benchReader   // by client index; nil where the handshake failed
	readWG    sync.WaitGroup   // the readers' goroutines
	stalled   []*clientSession // the never-reading clients; nil where the handshake failed
	senders   []int            // indexes into readers
	sendStart time.Time
}

func newBenchLoad(cfg benchConfig) *benchLoad {
	return &benchLoad{
		cfg: cfg,
		st: benchStats{
			Addr: benchTarget(cfg.Addr, cfg.Transport), Transport: cmp.Or(cfg.Transport, transportTCP), Suite: cfg.Suite, Clients: cfg.Clients, Concurrency: cfg.Concurrency, Warmup: cfg.Warmup,
			Senders: cfg.Senders, Messages: cfg.Messages, Size: cfg.Size, Stalled: cfg.Stalled,
		},
		run:     &benchRun{tag: benchTag(), messages: cfg.Messages, allIn: make(chan struct{}), progress: cfg.progress},
		conns:   &connSet{},
		readers: make([]*benchReader, cfg.Clients),
		stalled: make([]*clientSession, cfg.Stalled),
	}
}

// noteError keeps the first error of the run for the report.
func (b *benchLoad) noteError(err error) {
	if err != nil && b.st.FirstError == "" {
		b.st.FirstError = err.Error()
	}
}

// startServer starts the in-process server that a run without -connect loads.
func (b *benchLoad) startServer() error {
	bs, err := startBenchServer(nil, b.cfg.Suite, b.cfg.ServerRate, b.cfg.ServerBurst)
	if err != nil {
		return fmt.Errorf("starting the in-process server: %v", err)
	}
	b.bs, b.key = bs, bs.key
	b.st.Addr, b.st.InProcess = bs.addr, true
	if b.cfg.Transport == transportWebSocket {
		if err := bs.startWeb(); err != nil {
			bs.stop()
			return fmt.Errorf("starting the in-process server's -web: %v", err)
		}
		b.st.Addr = benchTarget(bs.webAddr, transportWebSocket)
	}
	b.st.ServerRate, b.st.ServerBurst = b.cfg.ServerRate, b.cfg.ServerBurst
	return nil
}

// warmUp connects and closes cfg.Warmup clients before anything is
// measured. A fresh process pays once for what a server that has had a
// class already did: memory faulted in, threads and stacks started. A first
// set of clients, timed but not counted, pays it; then the server is left
// to let them go.
func (b *benchLoad) warmUp(ctx context.Context) error {
	cfg := &b.cfg
	if cfg.Warmup == 0 {
		return nil
	}
	cfg.progress.set("warm-up", int64(cfg.Warmup))
	warm := &connSet{}
	start := time.Now()
	lat, _, err := benchConnect(ctx, b.st.Addr, cfg.Suite, "w"+b.run.tag, 0, cfg.Warmup, cfg.Concurrency, warm, cfg.progress,
		func(int, *clientSession) {})
	b.st.WarmupRate = perSecond(int64(len(lat)), time.Since(start))
	warm.closeAll()
	if len(lat) == 0 {
		return fmt.Errorf("warm-up: no client connected: %v", err)
	}
	if b.bs != nil {
		b.bs.waitEmpty(ctx)
	} else {
		time.Sleep(benchSettle)
	}
	return nil
}

// rsaLimit measures, with -rsa-limit, this machine's RSA-2048 OAEP
// decrypts/s: the ceiling for classic handshakes/s.
func (b *benchLoad) rsaLimit(ctx context.Context) error {
	if !b.cfg.RSALimit {
		return nil
	}
	if b.key == nil {
		var err error
		if b.key, err = rsa.GenerateKey(rand.Reader, rsaBits); err != nil {
			return err
		}
	}
	b.cfg.progress.set("rsa limit", 0)
	rate, cores, err := measureRSALimit(ctx, b.key, benchRSADuration)
	if err != nil {
		return err
	}
	b.st.RSADecrypts, b.st.RSACores = rate, cores
	return nil
}

// connect connects the reading clients and times their handshakes. Each
// starts reading as soon as its handshake is done, so join notices never
// pile up in the server's queues.
func (b *benchLoad) connect(ctx context.Context) {
	cfg := &b.cfg
	cfg.progress.set("connect", int64(cfg.Clients+cfg.Stalled))
	start := time.Now()
	lat, failures, err := benchConnect(ctx, b.st.Addr, cfg.Suite, b.run.tag, 0, cfg.Clients, cfg.Concurrency, b.conns, cfg.progress,
		func(i int, cs *clientSession) {
			r := &benchReader{cs: cs, tracks: make(map[int]*senderTrack)}
			b.readers[i] = r
			b.readWG.Add(1)
			go func() {
				defer b.readWG.Done()
				r.read(b.run)
			}()
		})
	b.st.HandshakeWall = time.Since(start)
	b.st.Handshake = exactLatencies(lat)
	b.st.Connected, b.st.HandshakeErrors = len(lat), failures
	b.noteError(err)
}

// connectStalled connects the -stalled clients, which never read.
func (b *benchLoad) connectStalled(ctx context.Context) {
	cfg := &b.cfg
	if cfg.Stalled == 0 {
		return
	}
	_, failures, err := benchConnect(ctx, b.st.Addr, cfg.Suite, b.run.tag, cfg.Clients, cfg.Stalled, cfg.Concurrency, b.conns, cfg.progress,
		func(i int, cs *clientSession) { b.stalled[i-cfg.Clients] = cs })
	b.st.HandshakeErrors += failures
	b.noteError(err)
}

// pickSenders makes the first Senders connected clients the senders and
// counts the deliveries expected: every message to every connected reader,
// the sender included.
func (b *benchLoad) pickSenders() {
	var nReaders int64
	for i, r := range b.readers {
		if r == nil {
			continue
		}
		nReaders++
		if len(b.senders) < b.cfg.Senders {
			b.senders = append(b.senders, i)
		}
	}
	b.st.Expected = nReaders * int64(len(b.senders)) * int64(b.cfg.Messages)
	b.run.expected.Store(b.st.Expected)
	if b.st.Expected == 0 {
		close(b.run.allIn)
	}
}

// send has each sender send its Messages, at -rate if one is set, and
// returns when every sender is done. A sender stops at its first error.
func (b *benchLoad) send(ctx context.Context) {
	cfg := &b.cfg
	var sendErrors atomic.Int64
	var firstSendErr atomic.Value
	cfg.progress.set("deliver", b.st.Expected)
	b.sendStart = time.Now()
	var sendWG sync.WaitGroup
	for _, idx := range b.senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			cs := b.readers[idx].cs
			for seq := range cfg.Messages {
				if cfg.Rate > 0 {
					due := b.sendStart.Add(time.Duration(float64(seq) / cfg.Rate * float64(time.Second)))
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
				if err := cs.Send(benchMessage(b.run.tag, idx, seq, time.Now(), cfg.Size)); err != nil {
					sendErrors.Add(1)
					firstSendErr.CompareAndSwap(nil, err.Error())
					return
				}
			}
		}()
	}
	sendWG.Wait()
	b.st.SendErrors = sendErrors.Load()
	if e, _ := firstSendErr.Load().(string); e != "" && b.st.FirstError == "" {
		b.st.FirstError = e
	}
}

// awaitDeliveries waits until every expected delivery is in, for at most
// -drain after the last send, plus the time the in-process server takes to
// let a sender's messages through at its line rate.
func (b *benchLoad) awaitDeliveries(ctx context.Context) {
	wait := b.cfg.Drain
	if b.bs != nil && b.cfg.ServerRate > 0 && b.cfg.Messages > b.cfg.ServerBurst {
		wait += time.Duration(float64(b.cfg.Messages-b.cfg.ServerBurst) / b.cfg.ServerRate * float64(time.Second))
	}
	drain := time.NewTimer(wait)
	select {
	case <-b.run.allIn:
	case <-drain.C:
	case <-ctx.Done():
	}
	drain.Stop()
	b.st.TimedOut = ctx.Err() != nil
}

// checkStalled counts the stalled clients the server has closed; the others
// are still open.
func (b *benchLoad) checkStalled() {
	var stalledWG sync.WaitGroup
	var stalledClosed atomic.Int64
	for _, cs := range b.stalled {
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
	b.st.StalledClosed = int(stalledClosed.Load())
}

// stopCountingDrops keeps why the in-process server dropped clients during
// the run. It comes before closeClients: the leaves that follow are the
// bench's own.
func (b *benchLoad) stopCountingDrops() {
	if b.bs != nil {
		b.st.ServerDrops = b.bs.stopCounting()
	}
}

// closeClients closes every connection of the run and waits for the
// readers to end. Calling it again does nothing.
func (b *benchLoad) closeClients() {
	b.conns.closeAll()
	b.readWG.Wait()
}

// tally adds up what the readers saw, once they have all ended.
func (b *benchLoad) tally() {
	st := &b.st
	var last time.Time
	for _, r := range b.readers {
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
		if r.delivered < int64(len(b.senders)*b.cfg.Messages) && !errors.Is(r.err, net.ErrClosed) {
			st.Disconnected++
		}
	}
	st.Lost = st.Expected - st.Delivered
	if !last.IsZero() {
		st.DeliveryWall = last.Sub(b.sendStart)
	}
	st.Delivery = b.run.hist.stats()
}

// benchServer is the in-process server a run starts when no -connect is given.
type benchServer struct {
	srv     *server
	key     *rsa.PrivateKey
	addr    string
	web     *webServer // with -transport websocket
	webAddr string
	done    chan error

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

// startBenchServer starts an in-process server limiting each client to
// rate lines per second after burst (rate 0: no limit).
func startBenchServer(key *rsa.PrivateKey, suite string, rate float64, burst int) (*benchServer, error) {
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
	srv, err := newServer(serverConfig{Key: key, Suite: suite, Rate: rate, Burst: burst, Log: bs.logEvent})
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

// startWeb also serves the server's /ws on a loopback port, as -web does.
func (bs *benchServer) startWeb() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bs.web = startWebServer(ln, webConfig{Conn: func(nc net.Conn) { bs.srv.serveConn(nc) }})
	bs.webAddr = ln.Addr().String()
	return nil
}

// benchTarget is what the clients dial: addr itself over TCP, its /ws URL
// over WebSocket.
func benchTarget(addr, transport string) string {
	if transport == transportWebSocket && addr != "" {
		return wsURL(addr)
	}
	return addr
}

// benchDial connects to a target of benchTarget.
func benchDial(ctx context.Context, d *net.Dialer, target string) (net.Conn, error) {
	if strings.HasPrefix(target, "ws://") {
		return dialWS(ctx, target)
	}
	return d.DialContext(ctx, "tcp", target)
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
	if bs.web != nil {
		bs.web.Close()
	}
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
					conn, err := benchDial(ctx, &d, addr)
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
