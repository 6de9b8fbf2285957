// Tests of the load generator (encchat bench, bench*.go), and the package's
// benchmarks: handshakes, record seal and open, broadcast, what a handshake
// costs the server. Replay's benchmarks are in replay_bench_test.go.

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitGoroutines waits until no more goroutines run than before, so a test
// fails when something it started outlives it.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left running (was %d):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBenchSmallRun(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	st, err := bench(ctx, benchConfig{Clients: 20, Senders: 3, Messages: 10, Size: 64, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if st.Connected != 20 || st.HandshakeErrors != 0 {
		t.Errorf("connected %d of 20, %d handshake errors (%s)", st.Connected, st.HandshakeErrors, st.FirstError)
	}
	if st.Expected != 20*3*10 {
		t.Errorf("expected %d deliveries, want %d", st.Expected, 20*3*10)
	}
	if st.Delivered != st.Expected || st.Lost != 0 || st.Duplicated != 0 || st.OutOfOrder != 0 || st.Corrupt != 0 || st.Disconnected != 0 {
		t.Errorf("delivered %d of %d: lost %d, duplicated %d, out of order %d, corrupt %d, disconnected %d",
			st.Delivered, st.Expected, st.Lost, st.Duplicated, st.OutOfOrder, st.Corrupt, st.Disconnected)
	}
	if !st.OK() || st.TimedOut || st.SlowDown != 0 || len(st.ServerDrops) != 0 {
		t.Errorf("run not OK: %s; slow down %d; server drops %v", benchVerdict(st), st.SlowDown, st.ServerDrops)
	}
	if st.Handshake.N != 20 || st.Handshake.P50 <= 0 || st.Handshake.Max < st.Handshake.P99 || st.Handshake.P99 < st.Handshake.P50 {
		t.Errorf("handshake latencies inconsistent: %+v", st.Handshake)
	}
	if st.Delivery.N != st.Delivered || st.Delivery.Max < st.Delivery.P99 || st.DeliveryRate() <= 0 || st.HandshakeRate() <= 0 {
		t.Errorf("delivery figures inconsistent: %+v, rate %.0f", st.Delivery, st.DeliveryRate())
	}
	waitGoroutines(t, before)
}

// TestBenchStalledClient runs with a client that never reads: the others
// still get everything.
func TestBenchStalledClient(t *testing.T) {
	before := runtime.NumGoroutine()
	st, err := bench(context.Background(), benchConfig{Clients: 10, Senders: 2, Messages: 20, Size: 64, Stalled: 1, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !st.OK() {
		t.Errorf("run not OK with a stalled client: %s", benchVerdict(st))
	}
	if st.Stalled != 1 {
		t.Errorf("stalled = %d, want 1", st.Stalled)
	}
	waitGoroutines(t, before)
}

// TestBenchRateLimitedServer loads a separately started server that paces
// lines: nothing is lost, and bench says the senders were slowed.
func TestBenchRateLimitedServer(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, err := newServer(serverConfig{Key: testRSAKey(t), Rate: 10, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	// 8 lines past the burst at 10/s: 0.8 s, well within the drain.
	st, err := bench(context.Background(), benchConfig{Addr: ln.Addr().String(), Clients: 4, Senders: 1, Messages: 10, Size: 64,
		Timeout: 30 * time.Second, Drain: 5 * time.Second})
	srv.Shutdown()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !st.OK() || st.Lost != 0 || st.SlowDown == 0 || st.InProcess {
		t.Errorf("rate-limited run: %s; lost %d, slow down %d, in-process %v", benchVerdict(st), st.Lost, st.SlowDown, st.InProcess)
	}
	var out strings.Builder
	printBenchStats(&out, st)
	if !strings.Contains(out.String(), "their lines are delayed") {
		t.Errorf("output does not say the server slowed the senders:\n%s", out.String())
	}
	waitGoroutines(t, before)
}

// TestRunBenchAtServerDefaults runs bench's in-process server at the
// server's own -rate and -burst (bench's defaults): senders of twice the
// burst are slowed, and every message arrives.
func TestRunBenchAtServerDefaults(t *testing.T) {
	before := runtime.NumGoroutine()
	var out, errOut bytes.Buffer
	args := []string{"-clients", "10", "-senders", "2", "-messages", strconv.Itoa(2 * defaultBurst), "-warmup", "0"}
	start := time.Now()
	code := runBench(context.Background(), args, &out, &errOut)
	elapsed := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"800 deliveries expected", "(800 in ", "lost 0  duplicated 0  out of order 0",
		"rate limit  the server paces each client to 10 lines/s after 20 at once; it told senders 2 times their lines are delayed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// 20 messages past the burst at 10 lines/s take 2 s.
	if elapsed < 2*time.Second {
		t.Errorf("the run took %v: the server did not pace the senders", elapsed)
	}
	waitGoroutines(t, before)
}

func TestRunBenchCommand(t *testing.T) {
	before := runtime.NumGoroutine()
	var out, errOut bytes.Buffer
	code := runBench(context.Background(), []string{"-clients", "6", "-senders", "2", "-messages", "5", "-size", "100", "-suite", "classic"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	for _, want := range []string{"classic suite, in-process server on 127.0.0.1:", "6 of 6 connected", "handshakes", "60 deliveries expected", "lost 0  duplicated 0  out of order 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr not empty (no progress bar off a terminal): %q", errOut.String())
	}
	waitGoroutines(t, before)
}

func TestRunBenchRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-connect", "192.0.2.1:5174"}, "not a loopback address"},
		{[]string{"-connect", "[2001:db8::1]:5174"}, "not a loopback address"},
		{[]string{"-senders", "5", "-clients", "4"}, "-senders must be between 0 and -clients"},
		{[]string{"-suite", "rot13"}, "-suite must be classic, modern or auto"},
		{[]string{"-server-rate", "-1"}, "-server-rate must be 0 (no limit) or a positive number"},
		{[]string{"-server-burst", "0"}, "-server-burst must be at least 1"},
		{[]string{"-clients", "x"}, "invalid value"},
		{[]string{"-server-pid", "1"}, "-server-pid needs -idle and -connect"},
		{[]string{"-idle", "5", "-connect", "127.0.0.1:1"}, "-idle with -connect needs -server-pid"},
	} {
		var out, errOut bytes.Buffer
		code := runBench(context.Background(), tc.args, &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}

func TestBenchTargetLoopback(t *testing.T) {
	ctx := context.Background()
	for _, addr := range []string{"127.0.0.1:5174", "127.9.9.9:1", "[::1]:5174", "localhost:5174"} {
		if err := checkBenchTarget(ctx, addr); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
	for _, addr := range []string{"10.0.0.1:5174", "0.0.0.0:5174", "[::]:1", "nohost"} {
		if err := checkBenchTarget(ctx, addr); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
}

func TestParseBenchLine(t *testing.T) {
	const tag = "a1b2c3"
	sent := time.Unix(1700000000, 123456789)
	msg := benchMessage(tag, 7, 42, sent, 64)
	if len(msg) != 64 {
		t.Errorf("message is %d bytes, want 64", len(msg))
	}
	if short := benchMessage(tag, 7, 42, sent, 10); !strings.HasSuffix(short, "~") {
		t.Errorf("a size below the marker should give the bare marker, got %q", short)
	}
	line := "[12:34:56] " + benchName(tag, 7) + ": " + msg
	idx, seq, ns, ok, err := parseBenchLine([]byte(line), tag)
	if !ok || err != nil || idx != 7 || seq != 42 || ns != sent.UnixNano() {
		t.Errorf("parse = %d %d %d %v %v", idx, seq, ns, ok, err)
	}
	for _, other := range []string{
		"[12:34:56] [SYSTEM] " + benchName(tag, 7) + " joined (secure channel)",
		"[12:34:56] alice: hello",
		"[12:34:56] " + benchName("ffffff", 7) + ": " + benchMessage("ffffff", 7, 1, sent, 64),
		"\n==================================================\nOnline Users (1): x",
		"[SYSTEM] Server shutting down",
	} {
		if _, _, _, ok, _ := parseBenchLine([]byte(other), tag); ok {
			t.Errorf("%q taken for a bench message", other)
		}
	}
	for _, bad := range []string{
		"[12:34:56] " + benchName(tag, 8) + ": " + msg, // name does not match the index
		"[12:34:56] " + benchName(tag, 7) + ": ~" + tag + "/7/x/1~",
		"[12:34:56] " + benchName(tag, 7) + ": ~" + tag + "/7/1~",
		"[12:34:56] " + benchName(tag, 7) + ": ~" + tag + "/7/1/2",
		"[12:34:56] " + benchName(tag, 7) + ": ~" + tag + "/7/01/2~",                   // not how benchMessage writes 1
		"[12:34:56] " + benchName(tag, 7) + ": ~" + tag + "/7/1/99999999999999999999~", // over int64
	} {
		if _, _, _, ok, err := parseBenchLine([]byte(bad), tag); !ok || err == nil {
			t.Errorf("%q: ok=%v err=%v, want a corrupt bench message", bad, ok, err)
		}
	}
}

func TestLatencyHist(t *testing.T) {
	var h latencyHist
	for i := 1; i <= 1000; i++ {
		h.recordAll([]time.Duration{time.Duration(i) * time.Millisecond})
	}
	st := h.stats()
	near := func(got, want time.Duration) bool {
		return got >= want && float64(got) <= float64(want)*1.02
	}
	if st.N != 1000 || st.Max != time.Second || !near(st.P50, 500*time.Millisecond) || !near(st.P99, 990*time.Millisecond) {
		t.Errorf("stats = %+v", st)
	}
	for _, v := range []int64{0, 1, 127, 128, 129, 1000, 1 << 20, 1<<40 + 12345, 1<<62 + 1} {
		i := histIndex(v)
		if i < 0 || i >= len(h.counts) || histValue(i) < v || (i > 0 && histValue(i-1) >= v) {
			t.Errorf("value %d: bucket %d holds up to %d, previous up to %d", v, i, histValue(i), histValue(max(i-1, 0)))
		}
	}
	// A batch with runs of equal buckets counts the same as one by one.
	var one, batch latencyHist
	ds := []time.Duration{5, 5, 5, 300, 301, 300, 7 * time.Millisecond, 5, time.Second, time.Second}
	for _, d := range ds {
		one.recordAll([]time.Duration{d})
	}
	batch.recordAll(ds)
	batch.recordAll(nil)
	for i := range one.counts {
		if one.counts[i].Load() != batch.counts[i].Load() {
			t.Errorf("bucket %d: one by one %d, batch %d", i, one.counts[i].Load(), batch.counts[i].Load())
		}
	}
	if one.n.Load() != batch.n.Load() || one.max.Load() != batch.max.Load() {
		t.Errorf("batch n=%d max=%d, one by one n=%d max=%d", batch.n.Load(), batch.max.Load(), one.n.Load(), one.max.Load())
	}
	if exact := exactLatencies([]time.Duration{3, 1, 2}); exact.P50 != 2 || exact.P99 != 3 || exact.Max != 3 {
		t.Errorf("exact = %+v", exact)
	}
}

// TestBenchServerProcess is not a test: it is the server child that
// TestBenchIdle starts, in place of "encchat server".
func TestBenchServerProcess(t *testing.T) {
	if os.Getenv("ENCCHAT_BENCH_SERVER") != "1" {
		t.Skip("helper process for TestBenchIdle")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := flag.Args()
	if len(args) == 0 || args[0] != "server" {
		t.Fatalf("want server args, got %q", args)
	}
	if code := runServer(ctx, args[1:], os.Stdout, os.Stderr); code != 0 {
		t.Fatalf("server exit %d", code)
	}
}

func testServerCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestBenchServerProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "ENCCHAT_BENCH_SERVER=1")
	return cmd
}

func TestBenchIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sp, err := startServerProcess(ctx, testServerCommand, suiteClassic, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.stop()
	pid := strconv.Itoa(sp.cmd.Process.Pid)
	st, err := benchIdle(ctx, sp.addr, suiteClassic, 30, 8, 200*time.Millisecond,
		func() (int64, error) { return processRSS(pid) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Connected != 30 || st.RSSBefore <= 0 || st.RSSAfter <= 0 {
		t.Errorf("idle stats = %+v", st)
	}
	// Client i sees the joins of the clients after it: 29+28+...+0.
	if st.Notices != 30*29/2 {
		t.Errorf("idle clients read %d join notices, want %d", st.Notices, 30*29/2)
	}
	sp.stop()
	waitGoroutines(t, before)
}

func BenchmarkClassicHandshake(b *testing.B) {
	benchmarkHandshake(b, testRSAKey(b), suiteClassic)
}

// BenchmarkModernHandshake is BenchmarkClassicHandshake with the modern
// suite.
func BenchmarkModernHandshake(b *testing.B) {
	benchmarkHandshake(b, modernTestKey(b), suiteModern)
}

// benchmarkHandshake times a full client handshake and username exchange
// against an in-process server over loopback, both sides on this machine.
func benchmarkHandshake(b *testing.B, key *rsa.PrivateKey, suite string) {
	bs, err := startBenchServer(key, suite, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer bs.stop()
	b.ReportAllocs()
	i := 0
	start := time.Now()
	for b.Loop() {
		conn, err := net.Dial("tcp", bs.addr)
		if err != nil {
			b.Fatal(err)
		}
		cs, err := clientHandshake(conn, clientConfig{Name: "h" + strconv.Itoa(i), Insecure: true})
		if err != nil {
			b.Fatal(err)
		}
		if cs.Suite != suite {
			b.Fatalf("suite %q, want %q", cs.Suite, suite)
		}
		cs.Close()
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "handshakes/s")
}

// BenchmarkHandshakeServerCost measures what one handshake costs the
// server, in each suite, with a client that does no cryptography: it
// replays a fixed key blob (classic), or sends fixed shares and a zero
// Finished (modern; the server does all of its work, then refuses the
// Finished). Handshakes per second that a server can take are 1/ns·op.
func BenchmarkHandshakeServerCost(b *testing.B) {
	priv := modernTestKey(b)
	b.Run("classic", func(b *testing.B) {
		blob, err := classicWrapKey(rand.Reader, &priv.PublicKey, make([]byte, aesKeySize))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			c, s := net.Pipe()
			done := make(chan error, 1)
			go func() {
				_, err := classicServerHandshake(s, &handshakeConfig{Key: priv})
				done <- err
			}()
			br := bufio.NewReader(c)
			readFrame(br)
			writeFrame(c, blob)
			readFrame(br)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			c.Close()
			s.Close()
		}
	})
	b.Run("modern", func(b *testing.B) {
		x, _ := newX25519Key(rand.Reader)
		ct := make([]byte, mlkemCTLen)
		rand.Read(ct)
		hello := appendFrame(nil, (&clientHelloMsg{random: make([]byte, modernRandomLen), x25519: x.PublicKey().Bytes(), mlkemCT: ct}).marshal())
		fin := appendFrame(nil, (&finishedMsg{typ: typeClientFinished, verifyData: make([]byte, finishedLen)}).marshal())
		b.ReportAllocs()
		for b.Loop() {
			c, s := net.Pipe()
			done := make(chan error, 1)
			go func() {
				_, err := serverHandshakeModern(s, &handshakeConfig{Key: priv})
				done <- err
			}()
			br := bufio.NewReader(c)
			readFrame(br)
			c.Write(hello)
			readFrame(br)
			readFrame(br)
			c.Write(fin)
			if err := <-done; !errors.Is(err, alertBadFinished) {
				b.Fatalf("server: %v, want it to get as far as the Finished", err)
			}
			c.Close()
			s.Close()
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	key := make([]byte, aesKeySize)
	rand.Read(key)
	c, err := newClassicCipher(key, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"64B", 64}, {"4KiB", 4096}} {
		// The hot paths: a server writer's sealing and a reader's open.
		b.Run("classic/"+size.name, func(b *testing.B) {
			text := strings.Repeat("a", size.n)
			seal := frameSealer(c)
			var frame []byte
			b.SetBytes(int64(size.n))
			b.ReportAllocs()
			for b.Loop() {
				frame, err = seal(frame[:0], text)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.open(frame[headerLen:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkModernSealOpen seals and opens one record per op.
// (BenchmarkSealOpen in bench_test.go can run the same as modern/64B and
// modern/4KiB through benchmarkModernSealOpen.)
func BenchmarkModernSealOpen(b *testing.B) {
	b.Run("64B", func(b *testing.B) { benchmarkModernSealOpen(b, 64) })
	b.Run("4KiB", func(b *testing.B) { benchmarkModernSealOpen(b, 4096) })
}

func benchmarkModernSealOpen(b *testing.B, n int) {
	key, iv := make([]byte, gcmKeyLen), make([]byte, gcmNonceLen)
	rand.Read(key)
	se, _ := newHalfConn(key, iv)
	op, _ := newHalfConn(key, iv)
	text := bytes.Repeat([]byte("a"), n)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		p, err := se.encrypt(text)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := op.decrypt(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBroadcast measures one sender's messages delivered to every
// member over loopback. An op is one message (64 bytes of text) reaching
// all recipients; at most broadcastWindow messages are in flight, so the
// queues stay far below their bound. Allocations are the whole process's:
// server and client side.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchmarkBroadcast(b, n) })
	}
}

const broadcastWindow = 32

func benchmarkBroadcast(b *testing.B, n int) {
	bs, err := startBenchServer(testRSAKey(b), suiteClassic, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer bs.stop()
	conns := &connSet{}
	defer conns.closeAll()
	var delivered atomic.Int64
	poke := make(chan struct{}, 1)
	readDone := make(chan struct{}, n)
	sessions := make([]*clientSession, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stopWatch := context.AfterFunc(ctx, conns.closeAll)
	defer stopWatch()
	tag := benchTag()
	_, failures, firstErr := benchConnect(ctx, bs.addr, suiteClassic, tag, 0, n, 16, conns, nil,
		func(i int, cs *clientSession) { sessions[i] = cs })
	if failures > 0 {
		b.Fatalf("%d handshakes failed: %v", failures, firstErr)
	}
	// Everyone connected: drain the join notices, then count chat lines.
	prefix := ": m"
	for _, cs := range sessions {
		go func() {
			defer func() { readDone <- struct{}{} }()
			for {
				line, err := cs.Recv()
				if err != nil {
					return
				}
				if strings.Contains(line, prefix) {
					delivered.Add(1)
					select {
					case poke <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	defer func() {
		conns.closeAll()
		for range n {
			<-readDone
		}
	}()
	text := "m" + strings.Repeat("x", 63)
	sender := sessions[0]
	wait := func(target int64) {
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for delivered.Load() < target {
			select {
			case <-poke:
			case <-timeout.C:
				b.Fatalf("delivered %d of %d", delivered.Load(), target)
			}
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ReportAllocs()
	sent := 0
	start := time.Now()
	for b.Loop() {
		if sent >= broadcastWindow {
			wait(int64(sent-broadcastWindow+1) * int64(n))
		}
		if err := sender.Send(text); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	wait(int64(sent) * int64(n))
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(sent*n)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(sent*n), "allocs/delivery")
	if got := delivered.Load(); got != int64(sent*n) {
		b.Errorf("delivered %d, want %d", got, sent*n)
	}
}

// TestBenchOpener checks that the bench readers' opener returns what
// classicCipher.open does, record after record with one opener, and
// refuses what it refuses.
func TestBenchOpener(t *testing.T) {
	c, err := newClassicCipher(bytes.Repeat([]byte{7}, aesKeySize), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := benchOpener{rc: c}
	for _, text := range []string{"", "a", "exactly 16 bytes", strings.Repeat("é", 700), "[12:00:00] alice: hi"} {
		payload, err := c.seal([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.open(payload)
		if err != nil || string(got) != text {
			t.Errorf("open(seal(%.20q)) = %.20q, %v", text, got, err)
		}
	}
	good, _ := c.seal([]byte("hello"))
	raw, _ := base64.StdEncoding.DecodeString(string(good))
	raw[cbcIVSize-1] ^= 1 // the IV's last bit flips the padding's: 0x0b becomes 0x0a
	for name, payload := range map[string][]byte{
		"bad base64":  []byte("!!!!"),
		"one block":   good[:24],
		"bad padding": []byte(base64.StdEncoding.EncodeToString(raw)),
	} {
		if _, err := c.open(payload); err != errOpen {
			t.Errorf("%s: classicCipher.open = %v, want errOpen", name, err)
		}
		if _, err := o.open(payload); err != errOpen {
			t.Errorf("%s: benchOpener.open = %v, want errOpen", name, err)
		}
	}
}
