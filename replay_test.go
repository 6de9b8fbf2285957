package main

// Tests for capture, keylog, replay, pcap export and the tap. The golden
// capture under testdata/replay/ comes from a real loopback session with a
// fixed server key, fixed random sources and a fake clock; "go test -run
// TestReplayGolden -update" records it again and rewrites the expected
// outputs (read the diff before accepting it).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "record testdata/replay/session.jsonl again and rewrite the replay golden files")

const replayTestdata = "testdata/replay"

// lockedRand is a deterministic random source safe for the server's
// concurrent writers.
type lockedRand struct {
	mu sync.Mutex
	r  *mathrand.ChaCha8
}

func newLockedRand(seed byte) *lockedRand {
	var s [32]byte
	s[0] = seed
	return &lockedRand{r: mathrand.NewChaCha8(s)}
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// fakeClock advances a fixed step at every reading.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

var replayEpoch = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// replayServerKey is the fixed server key of the golden capture.
func replayServerKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	path := filepath.Join(replayTestdata, "server.pem")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := testRSAKey(t)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(replayTestdata, 0o755); err != nil {
			t.Fatal(err)
		}
		data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	k, err := parsePrivateKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// chatRun is a recorded loopback chat.
type chatRun struct {
	capture, keylog string
	// addrs maps each real address in the capture to a stable one.
	addrs map[string]string
}

// recordChat runs a real server on loopback that records into dir and logs
// keys, lets script drive clients through connect, then closes everything.
func recordChat(t *testing.T, dir string, key *rsa.PrivateKey, seed byte, script func(connect func(name string) *clientSession)) chatRun {
	return recordSuiteChat(t, dir, suiteClassic, key, seed, script)
}

// recordSuiteChat is recordChat with the server speaking suite.
func recordSuiteChat(t *testing.T, dir, suite string, key *rsa.PrivateKey, seed byte, script func(connect func(name string) *clientSession)) chatRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	run := chatRun{
		capture: filepath.Join(dir, "session.jsonl"),
		keylog:  filepath.Join(dir, "session.keys"),
		addrs:   map[string]string{ln.Addr().String(): "127.0.0.1:5174"},
	}
	f, err := os.Create(run.capture)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: replayEpoch, step: 1500 * time.Microsecond}
	rec := newCapture(f, "server", ln.Addr().String(), clock.now)
	kl, err := openKeylog(run.keylog)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(serverConfig{
		Key:    key,
		Suite:  suite,
		Rand:   newLockedRand(seed),
		Now:    func() time.Time { return replayEpoch },
		Record: rec,
		Keylog: kl,
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var clients []*clientSession
	connect := func(name string) *clientSession {
		t.Helper()
		nc, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		run.addrs[nc.LocalAddr().String()] = fmt.Sprintf("127.0.0.1:%d", 51001+len(clients))
		cs, err := clientHandshake(nc, clientConfig{Name: name, Addr: ln.Addr().String(), Insecure: true, Rand: newLockedRand(seed + byte(len(clients)) + 1)})
		if err != nil {
			t.Fatalf("%s: handshake: %v", name, err)
		}
		clients = append(clients, cs)
		return cs
	}
	script(connect)
	for _, c := range clients {
		c.Close()
	}
	srv.Shutdown()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	if err := kl.Close(); err != nil {
		t.Fatalf("keylog: %v", err)
	}
	return run
}

// expectRecv reads texts until one contains want.
func expectRecv(t *testing.T, cs *clientSession, want string) string {
	t.Helper()
	for i := 0; i < 20; i++ {
		text, err := cs.Recv()
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		if strings.Contains(text, want) {
			return text
		}
	}
	t.Fatalf("no text containing %q", want)
	return ""
}

// Messages of the golden chat.
const (
	goldenHello = "Hello Bob! This message is encrypted!"
	goldenPM    = "psst: the exam key is in the capture"
)

// goldenChat is the scripted chat of the golden capture.
func goldenChat(t *testing.T) func(connect func(string) *clientSession) {
	return func(connect func(string) *clientSession) {
		alice := connect("alice")
		bob := connect("bob")
		expectRecv(t, alice, "bob joined")
		alice.Send(goldenHello)
		expectRecv(t, alice, "alice: "+goldenHello)
		expectRecv(t, bob, "alice: "+goldenHello)
		bob.Send("/pm alice " + goldenPM)
		expectRecv(t, alice, "[PM from bob] "+goldenPM)
		expectRecv(t, bob, "[PM to alice] "+goldenPM)
		alice.Send("/list")
		expectRecv(t, alice, "Online Users (2)")
		bob.Send("/quit")
		expectRecv(t, alice, "bob left")
		alice.Send("/quit")
		if _, err := alice.Recv(); err == nil {
			t.Fatal("alice: the server did not close after /quit")
		}
	}
}

// recordGolden records the golden capture into testdata/replay with stable
// addresses.
func recordGolden(t *testing.T) {
	recordGoldenSuite(t, suiteClassic, 7, "session")
}

// recordGoldenSuite records goldenChat with the server speaking suite into
// testdata/replay/NAME.jsonl and NAME.keys, with stable addresses.
func recordGoldenSuite(t *testing.T, suite string, seed byte, name string) {
	key := replayServerKey(t)
	dir := t.TempDir()
	run := recordSuiteChat(t, dir, suite, key, seed, goldenChat(t))
	for _, ext := range []string{".jsonl", ".keys"} {
		data, err := os.ReadFile(filepath.Join(dir, "session"+ext))
		if err != nil {
			t.Fatal(err)
		}
		for from, to := range run.addrs {
			data = bytes.ReplaceAll(data, []byte(from), []byte(to))
		}
		if err := os.WriteFile(filepath.Join(replayTestdata, name+ext), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runReplayTest runs "encchat replay args..." with COLUMNS set.
func runReplayTest(t *testing.T, columns int, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	t.Setenv("COLUMNS", strconv.Itoa(columns))
	var out, errb bytes.Buffer
	code = runReplay(args, &out, &errb)
	return out.String(), errb.String(), code
}

// checkGolden compares got with testdata/replay/name, or writes it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	checkGoldenFile(t, filepath.Join(replayTestdata, name), got)
}

// checkGoldenFile compares got with the file at path, or writes it with
// -update; a mismatch names the first line that differs.
func checkGoldenFile(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got == string(want) {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d:\n got: %q\nwant: %q\n(run with -update to accept the new output after reading the diff)", filepath.Base(path), i+1, g, w)
		}
	}
}

// goldenFrame finds the number of the first frame whose plaintext has want.
func goldenFrame(t *testing.T, capturePath, keylogPath, want string) int {
	t.Helper()
	for _, f := range replayJSON(t, "-keylog", keylogPath, capturePath) {
		if f.Plaintext != nil && strings.Contains(*f.Plaintext, want) {
			return f.Index
		}
	}
	t.Fatalf("no frame decrypts to %q", want)
	return 0
}

// replayJSON runs replay -json and decodes its lines.
func replayJSON(t *testing.T, args ...string) []jsonFrame {
	t.Helper()
	var out, errb bytes.Buffer
	if code := runReplay(append([]string{"-json"}, args...), &out, &errb); code != 0 {
		t.Fatalf("replay -json %v: exit %d: %s", args, code, errb.String())
	}
	var frames []jsonFrame
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var f jsonFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("replay -json line %q: %v", sc.Text(), err)
		}
		frames = append(frames, f)
	}
	return frames
}

func TestReplayGolden(t *testing.T) {
	if *updateGolden {
		recordGolden(t)
	}
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	keys := filepath.Join(replayTestdata, "session.keys")
	rsaKey := filepath.Join(replayTestdata, "server.pem")
	helloFrame := goldenFrame(t, capturePath, keys, goldenHello)

	// Alice's session key, for -key: conn 1's keylog line.
	entries := readKeylogFile(t, keys)
	aliceKey := hex.EncodeToString(entries[0].Secret)

	cases := []struct {
		golden  string
		columns int
		args    []string
	}{
		{"sniffer.golden", 120, []string{capturePath}},
		{"peer.golden", 120, []string{"-view", "peer", "-keylog", keys, capturePath}},
		{"both.golden", 120, []string{"-keylog", keys, capturePath}},
		{"both-stacked.golden", 80, []string{"-rsa-key", rsaKey, capturePath}},
		{"key-one-session.golden", 80, []string{"-view", "peer", "-key", aliceKey, capturePath}},
		{"json.golden", 80, []string{"-json", "-keylog", keys, capturePath}},
		{"tamper-iv.golden", 80, []string{"-view", "peer", "-conn", "1", "-keylog", keys, "-tamper", fmt.Sprintf("%d:5", helloFrame), capturePath}},
		{"tamper-block.golden", 80, []string{"-view", "peer", "-conn", "1", "-keylog", keys, "-tamper", fmt.Sprintf("%d:%d", helloFrame, 128+3*8+1), capturePath}},
		{"tamper-padding.golden", 80, []string{"-view", "peer", "-conn", "1", "-keylog", keys, "-tamper", fmt.Sprintf("%d:%d", helloFrame, 128+16*8+15*8), capturePath}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			stdout, stderr, code := runReplayTest(t, c.columns, c.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			checkGolden(t, c.golden, stdout)
		})
	}
}

func readKeylogFile(t *testing.T, path string) keylogEntries {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := parseKeylog(f)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ---------------------------------------------------------------------------
// Capture writer and keylog

// memFile is an io.WriteCloser into memory.
type memFile struct {
	mu     sync.Mutex
	b      bytes.Buffer
	closed bool
	writes int
}

func (m *memFile) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	return m.b.Write(p)
}

func (m *memFile) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func (m *memFile) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.String()
}

// readEvents parses a whole capture.
func readEvents(t *testing.T, data string) (captureHeader, []captureEvent) {
	t.Helper()
	cr, err := newCaptureReader(strings.NewReader(data))
	if err != nil {
		t.Fatalf("capture header: %v\n%s", err, data)
	}
	var evs []captureEvent
	for {
		var ev captureEvent
		err := cr.next(&ev)
		if err == io.EOF {
			return cr.Header, evs
		}
		if err != nil {
			t.Fatalf("capture: %v\n%s", err, data)
		}
		ev.Data = bytes.Clone(ev.Data)
		evs = append(evs, ev)
	}
}

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	return client, server
}

func TestCaptureWrapConnDirections(t *testing.T) {
	for _, side := range []string{"server", "client"} {
		t.Run(side, func(t *testing.T) {
			out := &memFile{}
			clock := &fakeClock{t: replayEpoch, step: time.Millisecond}
			rec := newCapture(out, side, "127.0.0.1:5174", clock.now)
			var ids []int
			for i := 0; i < 2; i++ {
				rawC, rawS := loopbackPair(t)
				mine, peer := rawS, rawC // the recorder's end and the other end
				if side == "client" {
					mine, peer = rawC, rawS
				}
				conn := rec.wrapConn(mine, side)
				ids = append(ids, conn.(*recConn).rec.id)
				fromClient, fromServer := []byte("hello from the client"), []byte("and from the server")
				toMe, fromMe := fromClient, fromServer
				if side == "client" {
					toMe, fromMe = fromServer, fromClient
				}
				if _, err := peer.Write(toMe); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(toMe))
				if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, toMe) {
					t.Fatalf("read %q, %v", got, err)
				}
				if _, err := conn.Write(fromMe); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(peer, make([]byte, len(fromMe))); err != nil {
					t.Fatal(err)
				}
				conn.Close()
				conn.Close() // a second Close records nothing more
				peer.Close()
				if err := rec.Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			if !out.closed {
				t.Error("Close did not close the file")
			}
			if ids[0] != 1 || ids[1] != 2 {
				t.Errorf("connection ids %v, want [1 2] in open order", ids)
			}
			hdr, evs := readEvents(t, out.String())
			if hdr.Recorder != side || hdr.Addr != "127.0.0.1:5174" || hdr.Version != 1 {
				t.Errorf("header %+v", hdr)
			}
			if hdr.Started != replayEpoch.Add(time.Millisecond).Format(time.RFC3339Nano) {
				t.Errorf("started %q", hdr.Started)
			}
			var kinds []string
			for _, ev := range evs {
				k := fmt.Sprintf("%d %s", ev.Conn, ev.Kind)
				if ev.Kind == capData {
					k += " " + ev.Dir.String() + " " + string(ev.Data)
				}
				kinds = append(kinds, k)
				if ev.Kind == capOpen && (!strings.HasPrefix(ev.Client, "127.0.0.1:") || !strings.HasPrefix(ev.Server, "127.0.0.1:") || ev.Client == ev.Server) {
					t.Errorf("open addresses %q %q", ev.Client, ev.Server)
				}
			}
			want := []string{
				"1 open", "1 data c2s hello from the client", "1 data s2c and from the server", "1 close",
				"2 open", "2 data c2s hello from the client", "2 data s2c and from the server", "2 close",
			}
			if side == "client" { // the client writes first
				want = []string{
					"1 open", "1 data s2c and from the server", "1 data c2s hello from the client", "1 close",
					"2 open", "2 data s2c and from the server", "2 data c2s hello from the client", "2 close",
				}
			}
			if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
			}
			for i := 1; i < len(evs); i++ {
				if evs[i].T <= evs[i-1].T {
					t.Errorf("times not increasing: %v then %v", evs[i-1].T, evs[i].T)
				}
			}
		})
	}
}

func TestCaptureOpenAddresses(t *testing.T) {
	out := &memFile{}
	rec := newCapture(out, "server", "127.0.0.1:5174", nil)
	rawC, rawS := loopbackPair(t)
	defer rawC.Close()
	conn := rec.wrapConn(rawS, "server")
	conn.Close()
	rec.Close()
	_, evs := readEvents(t, out.String())
	if len(evs) != 2 || evs[0].Client != rawC.LocalAddr().String() || evs[0].Server != rawS.LocalAddr().String() {
		t.Fatalf("events %+v, want open client %s server %s", evs, rawC.LocalAddr(), rawS.LocalAddr())
	}
}

func TestCaptureAndKeylogNil(t *testing.T) {
	var c *capture
	rawC, rawS := loopbackPair(t)
	defer rawC.Close()
	defer rawS.Close()
	if got := c.wrapConn(rawS, "server"); got != rawS {
		t.Error("a nil capture wrapped the connection")
	}
	if c.Close() != nil || c.Err() != nil || c.open("a", "b") != nil {
		t.Error("a nil capture is not a no-op")
	}
	var cc *capConn
	cc.data(wireC2S, []byte("x"))
	cc.close()
	var k *keylog
	k.logKey(keylogClassic, []byte("12345678"), make([]byte, 32))
	if k.Close() != nil || k.Err() != nil {
		t.Error("a nil keylog is not a no-op")
	}
}

func TestCaptureFlushesPeriodically(t *testing.T) {
	out := &memFile{}
	rec := newCapture(out, "server", "x", nil)
	defer rec.Close()
	rec.open("a", "b").data(wireC2S, []byte("tick"))
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(out.String(), base64.StdEncoding.EncodeToString([]byte("tick"))) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing flushed without Close after 3s (flush period %v); file: %q", captureFlushEvery, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failingFile fails every write, like a full disk.
type failingFile struct{ writes int }

func (f *failingFile) Write([]byte) (int, error) {
	f.writes++
	return 0, errors.New("no space left on device")
}
func (f *failingFile) Close() error { return nil }

func TestCaptureWriteErrorReportedOnce(t *testing.T) {
	f := &failingFile{}
	rec := newCapture(f, "server", "x", nil)
	cc := rec.open("a", "b")
	cc.data(wireC2S, []byte("lost"))
	deadline := time.Now().Add(3 * time.Second)
	for rec.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("write error never reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 100; i++ {
		cc.data(wireS2C, []byte("more")) // the chat goes on; nothing is queued
	}
	err := rec.Close()
	if err == nil || !strings.Contains(err.Error(), "no space") || rec.Err() != err {
		t.Fatalf("Close = %v, Err = %v", err, rec.Err())
	}
	if f.writes != 1 {
		t.Errorf("%d writes after the first failure, want none", f.writes-1)
	}
}

// stuckFile blocks every write until released.
type stuckFile struct {
	release chan struct{}
	memFile
}

func (s *stuckFile) Write(p []byte) (int, error) {
	<-s.release
	return s.memFile.Write(p)
}

func TestCaptureNeverBlocksChat(t *testing.T) {
	f := &stuckFile{release: make(chan struct{})}
	rec := newCapture(f, "server", "x", nil)
	rec.maxPending = 1 << 20
	cc := rec.open("a", "b")
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	start := time.Now()
	for i := 0; i < 100; i++ { // 3.2 MB against a disk that takes nothing
		cc.data(wireC2S, chunk)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("recording 3.2 MB into a stuck file took %v", d)
	}
	if !errors.Is(rec.Err(), errCaptureBehind) {
		t.Errorf("Err = %v, want %v", rec.Err(), errCaptureBehind)
	}
	close(f.release)
	if err := rec.Close(); !errors.Is(err, errCaptureBehind) {
		t.Errorf("Close = %v", err)
	}
}

func TestKeylogWriteAndParse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.log")
	k, err := openKeylog(path)
	if err != nil {
		t.Fatal(err)
	}
	id := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	secret := bytes.Repeat([]byte{0xab}, 32)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.logKey(keylogClassic, id, secret)
		}()
	}
	wg.Wait()
	k.logKey("MODERN", []byte("random-32-bytes-random-32-bytes!"), []byte("traffic secret"))
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("keylog mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[0], "#") {
		t.Fatalf("keylog:\n%s", data)
	}
	if want := "CLASSIC 0102030405060708 " + strings.Repeat("ab", 32); lines[1] != want {
		t.Errorf("line %q, want %q", lines[1], want)
	}
	entries, err := parseKeylog(bytes.NewReader(data))
	if err != nil || len(entries) != 9 {
		t.Fatalf("parse: %d entries, %v", len(entries), err)
	}
	if got, ok := entries.lookup(keylogClassic, id); !ok || !bytes.Equal(got, secret) {
		t.Error("lookup of the classic session failed")
	}
	if got, ok := entries.lookup("MODERN", []byte("random-32-bytes-random-32-bytes!")); !ok || string(got) != "traffic secret" {
		t.Error("lookup of the modern session failed")
	}
	// Appending keeps what is there.
	k2, _ := openKeylog(path)
	k2.logKey(keylogClassic, id, secret)
	k2.Close()
	data2, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data2), string(data)) || strings.Count(string(data2), "#") != 1 {
		t.Error("reopening the keylog did not append")
	}
}

func TestParseKeylogErrors(t *testing.T) {
	good := "CLASSIC 0102030405060708 " + strings.Repeat("00", 32)
	cases := []struct{ in, want string }{
		{"# comment\n\n" + good + "\n   # indented comment\n", ""},
		{good + "\nCLASSIC 0102\n", "line 2: want"},
		{"\n\nclassic 0102030405060708 00\n", "line 3: label"},
		{"CLASSIC zz " + strings.Repeat("00", 32), "line 1: session id is not hex"},
		{"CLASSIC 0102030405060708 0g", "line 1: secret is not hex"},
		{"CLASSIC 01020304050607 " + strings.Repeat("00", 32), "line 1: CLASSIC session id is 7 bytes, want 8"},
		{"CLASSIC 0102030405060708 " + strings.Repeat("00", 31), "line 1: CLASSIC key is 31 bytes, want 32"},
		{"MODERN 01 02", ""},
	}
	for _, c := range cases {
		_, err := parseKeylog(strings.NewReader(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
	var le *lineError
	_, err := parseKeylog(strings.NewReader("\nbad"))
	if !errors.As(err, &le) || le.in("keys.log") != `keys.log:2: want "LABEL <session id hex> <secret hex>"` {
		t.Errorf("error %v", err)
	}
}

// ---------------------------------------------------------------------------
// Frame reassembly and capture parsing

// reasmLog records what a frameReassembler reports, as text.
type reasmLog struct {
	events   []string
	frames   [][]byte
	consumed int // bytes accounted for
}

func (l *reasmLog) frame(p []byte) {
	l.frames = append(l.frames, bytes.Clone(p))
	l.events = append(l.events, fmt.Sprintf("frame %q", p))
	l.consumed += headerLen + len(p)
}

func (l *reasmLog) skipped(n int, why string) {
	l.events = append(l.events, fmt.Sprintf("skip %d: %s", n, why))
	l.consumed += n
}

func (l *reasmLog) partial(got []byte, want int) {
	l.events = append(l.events, fmt.Sprintf("partial %q want %d", got, want))
	l.consumed += len(got)
	if want >= 0 {
		l.consumed += headerLen
	}
}

// reassemble feeds stream in chunks cut at the given offsets.
func reassemble(stream []byte, cuts []int) *reasmLog {
	l := &reasmLog{}
	r := &frameReassembler{sink: l}
	prev := 0
	for _, c := range cuts {
		if c > prev && c < len(stream) {
			r.feed(stream[prev:c])
			prev = c
		}
	}
	r.feed(stream[prev:])
	r.end()
	return l
}

func frames(payloads ...string) []byte {
	var b []byte
	for _, p := range payloads {
		b = appendFrame(b, []byte(p))
	}
	return b
}

func TestFrameReassembler(t *testing.T) {
	three := frames("hello", "", "a longer payload with 0123456789 digits")
	cases := []struct {
		name   string
		stream []byte
		want   []string
	}{
		{"whole frames", three, []string{`frame "hello"`, `frame ""`, `frame "a longer payload with 0123456789 digits"`}},
		{"starts mid-frame", append([]byte("lo world"), three...), []string{
			"skip 8: the stream does not start at a frame boundary (capture begun mid-frame?)",
			`frame "hello"`, `frame ""`, `frame "a longer payload with 0123456789 digits"`}},
		{"ends mid-frame", three[:len(three)-5], []string{`frame "hello"`, `frame ""`, `partial "a longer payload with 0123456789 d" want 39`}},
		{"ends mid-header", append(frames("x"), "00000"...), []string{`frame "x"`, `partial "00000" want -1`}},
		{"bad header mid-stream", append(append(frames("one"), "??"...), frames("two")...), []string{
			`frame "one"`, "skip 2: bad frame header: frame header is not ten ASCII digits", `frame "two"`}},
		{"too long", append([]byte("0000099999xx"), frames("ok")...), []string{
			"skip 12: the stream does not start at a frame boundary (capture begun mid-frame?)", `frame "ok"`}},
		{"only garbage", []byte("not a frame at all"), []string{"skip 18: the stream does not start at a frame boundary (capture begun mid-frame?)"}},
		{"a long digit run is no header", append([]byte("x12345678901234 "), frames("ok")...), []string{
			"skip 16: the stream does not start at a frame boundary (capture begun mid-frame?)", `frame "ok"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One chunk, every byte its own chunk, and chunks of 7.
			var every, sevens []int
			for i := 1; i < len(c.stream); i++ {
				every = append(every, i)
				if i%7 == 0 {
					sevens = append(sevens, i)
				}
			}
			for _, cuts := range [][]int{nil, every, sevens} {
				l := reassemble(c.stream, cuts)
				if got := strings.Join(l.events, "\n"); got != strings.Join(c.want, "\n") {
					t.Errorf("cuts %v:\n%s\nwant:\n%s", cuts, got, strings.Join(c.want, "\n"))
				}
				if l.consumed != len(c.stream) {
					t.Errorf("accounted for %d of %d bytes", l.consumed, len(c.stream))
				}
			}
		})
	}
}

// FuzzReassemble checks that the reassembler accounts for every byte, does
// not depend on where chunks are cut, and returns well-formed frames intact.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte("0000000005hello0000000000"), uint64(1))
	f.Add([]byte("lo0000000003abc000"), uint64(7))
	f.Add([]byte("0000099999x0000000001y"), uint64(3))
	f.Add(frames("-----BEGIN PUBLIC KEY-----", "AAAA", "12345678901"), uint64(42))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		rng := mathrand.New(mathrand.NewPCG(seed, 1))
		var cuts []int
		for i := 1; i < len(stream); i++ {
			if rng.IntN(4) == 0 {
				cuts = append(cuts, i)
			}
		}
		whole, chunked := reassemble(stream, nil), reassemble(stream, cuts)
		if a, b := strings.Join(whole.events, "\n"), strings.Join(chunked.events, "\n"); a != b {
			t.Fatalf("chunking changed the result:\nwhole:\n%s\nchunked %v:\n%s", a, cuts, b)
		}
		if whole.consumed != len(stream) {
			t.Fatalf("accounted for %d of %d bytes", whole.consumed, len(stream))
		}
		// The same bytes as payloads of well-formed frames come back whole.
		payloads := bytes.Split(stream, []byte{0xff})
		var enc []byte
		for _, p := range payloads {
			enc = appendFrame(enc, p)
		}
		l := reassemble(enc, cuts)
		if len(l.frames) != len(payloads) || len(l.events) != len(payloads) {
			t.Fatalf("%d payloads became %v", len(payloads), l.events)
		}
		for i := range payloads {
			if !bytes.Equal(l.frames[i], payloads[i]) {
				t.Fatalf("frame %d: %q, want %q", i, l.frames[i], payloads[i])
			}
		}
	})
}

// captureLog reads a capture and describes every event and the error.
func captureLog(data []byte) string {
	cr, err := newCaptureReader(bytes.NewReader(data))
	if err != nil {
		return "header: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%+v\n", cr.Header)
	lastLine := 1
	for {
		var ev captureEvent
		err := cr.next(&ev)
		if err != nil {
			b.WriteString("end: " + err.Error())
			return b.String()
		}
		if ev.Line <= lastLine {
			panic(fmt.Sprintf("line %d after line %d", ev.Line, lastLine))
		}
		lastLine = ev.Line
		fmt.Fprintf(&b, "%d %v %d %s %v %q %q %x\n", ev.Line, ev.T, ev.Conn, ev.Kind, ev.Dir, ev.Client, ev.Server, ev.Data)
	}
}

// FuzzCaptureParse checks the capture reader: a bad line is named and never
// panics, and replay and pcap export survive any capture.
func FuzzCaptureParse(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join(replayTestdata, "session.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.SplitAfter(golden, []byte("\n"))
	f.Add(bytes.Join(lines[:6], nil))
	hdr := string(lines[0])
	for _, s := range []string{
		`{"t":0.5,"conn":1,"dir":"c2s","data":"MDAwMDAwMDAwMw=="}`,
		`{"t":1e-3,"conn":1,"dir":"s2c","data":"AA=="}`,
		`{"t":0.1,"conn":2,"ev":"open","client":"[::1]:5","server":"x\u00e9"}`,
		`{"T":0.1,"Conn":2,"EV":"close"}`,
		`{"t":0.1,"conn":1.0,"ev":"close"}`,
		`{"t":-1,"conn":1,"ev":"close"}`,
		`{"t":0.1,"conn":1,"dir":"c2s","data":"!!"}`,
		`{"t":0.1,"conn":1,"dir":"c2s","data":null}`,
		`{"t":0.1,"conn":1,"ev":"open","extra":{"x":[1]}}`,
		`{"t":0.1,"conn":1,"dir":"c2s","data":"MDAwMDAwMDAw` + "\n",
	} {
		f.Add([]byte(hdr + s + "\n"))
	}
	f.Add([]byte(`{"encchat_capture":2}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if log := captureLog(data); !strings.Contains(log, "end: EOF") && !strings.Contains(log, "end: line ") && !strings.HasPrefix(log, "header: line ") {
			t.Fatalf("an error that names no line:\n%s", log)
		}
		opts := &replayOptions{name: "fuzz", view: "both", width: 120, keys: &replayKeys{key: make([]byte, 32)}, tamper: tamperSpec{frame: 3, bit: 130, set: true}}
		replayCapture(bytes.NewReader(data), opts, newTextOutput(io.Discard, opts))
		opts.json = true
		replayCapture(bytes.NewReader(data), opts, newJSONOutput(io.Discard))
		exportPcap(bytes.NewReader(data), io.Discard, 0)
	})
}

func TestCaptureParseRoundTrip(t *testing.T) {
	// What the writer writes, the reader reads back, byte for byte.
	out := &memFile{}
	clock := &fakeClock{t: replayEpoch, step: 1234567 * time.Nanosecond}
	rec := newCapture(out, "client", `we"ird\addr`, clock.now)
	cc := rec.open("127.0.0.1:1", `"quoted" é`)
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	var sent [][]byte
	for i := 0; i < 50; i++ {
		p := make([]byte, rng.IntN(3000))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		sent = append(sent, p)
		cc.data(wireDir(i%2), p)
	}
	cc.close()
	rec.Close()
	hdr, evs := readEvents(t, out.String())
	if hdr.Addr != `we"ird\addr` || evs[0].Server != `"quoted" é` {
		t.Errorf("strings did not survive: %q %q", hdr.Addr, evs[0].Server)
	}
	for i, p := range sent {
		ev := evs[i+1]
		if ev.Kind != capData || ev.Dir != wireDir(i%2) || !bytes.Equal(ev.Data, p) {
			t.Fatalf("record %d differs", i)
		}
	}
}

// ---------------------------------------------------------------------------
// Bad input and flags

// goldenLines returns the golden capture's lines.
func goldenLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(replayTestdata, "session.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(data), "\n")
}

func writeCapture(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplayBadInput(t *testing.T) {
	lines := goldenLines(t)
	head := strings.Join(lines[:16], "")
	var midFrame []string
	for _, l := range lines[:8] {
		midFrame = append(midFrame, l)
	}
	cases := []struct {
		name, content, stderr string
		stdout                []string // must appear
	}{
		{"bad base64", head + `{"t":0.5,"conn":1,"dir":"c2s","data":"###"}` + "\n" + strings.Join(lines[16:], ""),
			"encchat: capture.jsonl:17: bad base64\nencchat: hint: everything before that line was replayed\n",
			[]string{"#1 ", "HANDSHAKE_OK", "still open when the capture ends"}},
		{"cut mid-line", head + lines[16][:40],
			"encchat: capture.jsonl:17: the capture ends mid-line (bad JSON)\nencchat: hint: everything before that line was replayed\n",
			[]string{"Welcome alice!"}},
		{"unknown version", `{"encchat_capture":2,"started":"2026-11-26T09:00:00Z"}` + "\n",
			"encchat: capture.jsonl:1: unknown capture version 2 (this encchat reads version 1)\n", nil},
		{"not a capture", "hello\n",
			"encchat: capture.jsonl:1: not an encchat capture (the first line is not a capture header)\n", nil},
		{"unknown direction", head + `{"t":0.5,"conn":1,"dir":"up","data":""}` + "\n",
			"encchat: capture.jsonl:17: unknown direction \"up\"\nencchat: hint: everything before that line was replayed\n", nil},
		{"data after close", lines[0] + `{"t":0.1,"conn":1,"ev":"open"}` + "\n" + `{"t":0.2,"conn":1,"ev":"close"}` + "\n" + `{"t":0.3,"conn":1,"dir":"c2s","data":"AA=="}` + "\n",
			"encchat: capture.jsonl:4: data on connection 1 after its close\nencchat: hint: everything before that line was replayed\n", nil},
		{"frame cut mid-header", lines[0] + `{"t":0.1,"conn":1,"ev":"open"}` + "\n" +
			`{"t":0.2,"conn":1,"dir":"s2c","data":"` + base64.StdEncoding.EncodeToString([]byte("00000")) + `"}` + "\n" + `{"t":0.3,"conn":1,"ev":"close"}` + "\n",
			"", []string{"partial frame: the stream ends mid-header (5 of 10 header bytes)", "never delivered: the frame is incomplete"}},
		{"capture begun mid-connection", lines[0] + strings.Join(lines[9:16], ""), // conn 2's records without its open
			"", []string{"no open record, the capture began during this connection"}},
	}
	// A capture begun mid-frame: conn 1's first s2c chunk without its first 100 bytes.
	var ev struct {
		T    float64 `json:"t"`
		Conn int     `json:"conn"`
		Dir  string  `json:"dir"`
		Data []byte  `json:"data"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &ev); err != nil || ev.Dir != "s2c" {
		t.Fatalf("golden line 3 is not conn 1's first s2c chunk: %v", err)
	}
	ev.Data = ev.Data[100:]
	cut, _ := json.Marshal(ev)
	midFrame[2] = string(cut) + "\n"
	cases = append(cases, struct {
		name, content, stderr string
		stdout                []string
	}{"begun mid-frame", strings.Join(midFrame, ""), "", []string{
		"conn 1 server → client: 360 bytes skipped: the stream does not start at a frame boundary (capture begun mid-frame?)",
		"HANDSHAKE_OK", "Welcome alice!"}})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeCapture(t, "capture.jsonl", c.content)
			stdout, stderr, code := runReplayTest(t, 80, "-keylog", filepath.Join(replayTestdata, "session.keys"), path)
			if stderr = strings.ReplaceAll(stderr, path, "capture.jsonl"); stderr != c.stderr {
				t.Errorf("stderr %q, want %q", stderr, c.stderr)
			}
			if wantCode := map[bool]int{true: 0, false: 1}[c.stderr == ""]; code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
			for _, s := range c.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
		})
	}
}

func TestReplayWrongKeys(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	other := filepath.Join(t.TempDir(), "other.pem")
	k := testRSAKey(t)
	if k.Equal(replayServerKey(t)) {
		t.Skip("the shared test key is the golden server key")
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	wrongLog := writeCapture(t, "wrong.keys", "CLASSIC "+hex.EncodeToString(mustJSONFrames(t, capturePath)[1].sessionID())+" "+strings.Repeat("11", 32)+"\n")

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"wrong rsa key", []string{"-rsa-key", other}, []string{
			"is not this server's key", "no key fits this session: its records are shown as ciphertext", "0 records decrypted, 18 shown as ciphertext"}},
		{"wrong keylog key", []string{"-keylog", wrongLog}, []string{
			"conn 1: wrong key: keylog wrong.keys does not decrypt this session", "conn 2: no key fits this session"}},
		{"wrong -key", []string{"-key", strings.Repeat("22", 32)}, []string{"conn 1: wrong key: -key does not decrypt this session"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := runReplayTest(t, 80, append(c.args, capturePath)...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, s := range c.want {
				if !strings.Contains(stdout, s) {
					t.Errorf("output lacks %q", s)
				}
			}
			if strings.Contains(stdout, goldenHello) {
				t.Error("a wrong key decrypted the chat")
			}
			if n := strings.Count(stdout, "no key fits this session") + strings.Count(stdout, "wrong key:"); n != 2 {
				t.Errorf("%d key notes, want one per session", n)
			}
		})
	}
}

// sessionID of a key-transport frame in -json output.
func (f jsonFrame) sessionID() []byte {
	b, _ := hex.DecodeString(f.SessionID)
	return b
}

func mustJSONFrames(t *testing.T, capturePath string, args ...string) []jsonFrame {
	return replayJSON(t, append(args, capturePath)...)
}

func TestReplayFlags(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-nope", capturePath}, 2, "encchat: replay: flag provided but not defined: -nope\n"},
		{[]string{"-conn", "x", capturePath}, 2, "encchat: replay: invalid value \"x\" for flag -conn: parse error\n"},
		{[]string{"-view", "side", capturePath}, 2, "encchat: replay: -view must be sniffer, peer or both, not \"side\"\n"},
		{[]string{"-key", "abcd", capturePath}, 2, "encchat: replay: -key must be 32 bytes in hex (64 digits) or base64 (44 characters)\n"},
		{[]string{"-tamper", "3", capturePath}, 2, "encchat: replay: -tamper wants FRAME:BIT (a frame number from 1, a bit number from 0), not \"3\"\n"},
		{[]string{"-speed", "-1", capturePath}, 2, "encchat: replay: -speed must be a positive factor\n"},
		{[]string{"-json", "-view", "peer", capturePath}, 2, "encchat: replay: -json and -view cannot be used together\n"},
		{[]string{"-pcap", "x.pcap", "-json", "-keylog", "k", capturePath}, 2, "encchat: replay: -pcap exports the wire bytes only; it cannot be used with -json, -keylog\n"},
		{[]string{}, 2, "encchat: replay needs a capture file\nencchat: hint: encchat replay [-keylog FILE] [-view sniffer|peer|both] CAPTURE\n"},
		{[]string{capturePath, "more"}, 2, "encchat: replay: unexpected argument \"more\"\n"},
		{[]string{"/no/such/capture"}, 1, "encchat: open /no/such/capture: no such file or directory\n"},
		{[]string{"-keylog", "/no/such/keys", capturePath}, 1, "encchat: open /no/such/keys: no such file or directory\n"},
		{[]string{"-conn", "9", capturePath}, 1, "encchat: -conn: the capture has no connection 9\n"},
		{[]string{"-tamper", "99:1", capturePath}, 1, "encchat: -tamper: there is no frame 99 (the capture has 22)\n"},
		{[]string{"-h"}, 0, ""},
	}
	for _, c := range cases {
		_, stderr, code := runReplayTest(t, 80, c.args...)
		if code != c.code || stderr != c.stderr {
			t.Errorf("replay %q: exit %d, stderr %q; want exit %d, %q", c.args, code, stderr, c.code, c.stderr)
		}
	}
	// Flags after the capture name work too.
	stdout, _, code := runReplayTest(t, 80, capturePath, "-view", "peer", "-keylog", filepath.Join(replayTestdata, "session.keys"))
	if code != 0 || !strings.Contains(stdout, goldenHello) {
		t.Errorf("flags after the capture: exit %d", code)
	}
	// A bad keylog line is named.
	bad := writeCapture(t, "bad.keys", "# keys\nCLASSIC 00 11\n")
	_, stderr, code := runReplayTest(t, 80, "-keylog", bad, capturePath)
	if code != 1 || stderr != "encchat: "+bad+":2: CLASSIC session id is 1 bytes, want 8\n" {
		t.Errorf("bad keylog: exit %d, %q", code, stderr)
	}
}

func TestRunTapFlags(t *testing.T) {
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-mitm", "-listen", "127.0.0.1:0"}, 2, "encchat: tap needs -upstream, -record\nencchat: hint: encchat tap -listen 127.0.0.1:6000 -upstream 127.0.0.1:5174 -record chat.jsonl\n"},
		{[]string{"-listen", "127.0.0.1:0"}, 2, "encchat: tap needs -upstream, -record\nencchat: hint: encchat tap -listen 127.0.0.1:6000 -upstream 127.0.0.1:5174 -record chat.jsonl\n"},
		{[]string{"-bogus"}, 2, "encchat: tap: flag provided but not defined: -bogus\n"},
		{[]string{"-listen", "127.0.0.1:0", "-upstream", "x", "-record", "y", "extra"}, 2, "encchat: tap: unexpected argument \"extra\"\n"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := runTap(c.args, &out, &errb)
		if code != c.code || errb.String() != c.stderr {
			t.Errorf("tap %q: exit %d, stderr %q; want %d, %q", c.args, code, errb.String(), c.code, c.stderr)
		}
	}
}

func TestReplaySpeed(t *testing.T) {
	f, err := os.Open(filepath.Join(replayTestdata, "session.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var slept time.Duration
	naps := 0
	opts := &replayOptions{name: "x", view: "sniffer", speed: 0.5, keys: &replayKeys{}, sleep: func(d time.Duration) {
		slept += d
		naps++
	}}
	if err := replayCapture(f, opts, newTextOutput(io.Discard, opts)); err != nil {
		t.Fatal(err)
	}
	_, evs := readEvents(t, strings.Join(goldenLines(t), ""))
	span := evs[len(evs)-1].T
	want := time.Duration(span / 0.5 * float64(time.Second))
	if d := slept - want; d < -time.Millisecond || d > time.Millisecond || naps < 20 {
		t.Errorf("slept %v in %d naps, want %v (capture spans %.4fs, speed 0.5)", slept, naps, want, span)
	}
}

func TestReplayConnFilter(t *testing.T) {
	stdout, _, code := runReplayTest(t, 80, "-conn", "2", "-view", "peer", "-keylog", filepath.Join(replayTestdata, "session.keys"), filepath.Join(replayTestdata, "session.jsonl"))
	if code != 0 || strings.Contains(stdout, "conn 1 ") || !strings.Contains(stdout, "conn 2 ") || !strings.Contains(stdout, "#6 ") {
		t.Errorf("-conn 2 output:\n%s", stdout)
	}
	// Frame numbers stay those of the whole capture.
	if strings.Contains(stdout, "#1 ") {
		t.Error("-conn renumbered the frames")
	}
}

// ---------------------------------------------------------------------------
// Property: random chats

// randomText is a message that cannot appear in base64 or hex by chance.
func randomText(rng *mathrand.Rand) string {
	alphabet := []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?éü✓日本語")
	n := 12 + rng.IntN(300)
	r := make([]rune, n)
	for i := range r {
		r[i] = alphabet[rng.IntN(len(alphabet))]
	}
	r[0], r[n-1] = 'M', '!' // no leading or trailing space (the server trims)
	return string(r)
}

// randomChat is a recorded chat of random texts.
type randomChat struct {
	run   chatRun
	names []string            // the clients, in connection order
	sent  map[string][]string // per name, in order
}

// recordRandomChat records 1–3 clients sending 3–10 random texts to a
// server speaking suite; seed decides everything but the ciphertext.
func recordRandomChat(t *testing.T, suite string, seed uint64) randomChat {
	t.Helper()
	key := replayServerKey(t)
	rng := mathrand.New(mathrand.NewPCG(seed, 99))
	rc := randomChat{names: []string{"ann", "ben", "cat"}[:1+rng.IntN(3)], sent: map[string][]string{}}
	rc.run = recordSuiteChat(t, t.TempDir(), suite, key, byte(seed), func(connect func(string) *clientSession) {
		var cs []*clientSession
		for i, n := range rc.names {
			cs = append(cs, connect(n))
			for _, earlier := range cs[:i] {
				expectRecv(t, earlier, n+" joined")
			}
		}
		for i := 0; i < 3+rng.IntN(8); i++ {
			who := rng.IntN(len(rc.names))
			text := randomText(rng)
			rc.sent[rc.names[who]] = append(rc.sent[rc.names[who]], text)
			if err := cs[who].Send(text); err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				expectRecv(t, c, rc.names[who]+": "+text)
			}
		}
	})
	return rc
}

// checkHidden checks that the capture holds no plaintext and none of keys'
// secrets, in any encoding.
func (rc randomChat) checkHidden(t *testing.T, keys keylogEntries) {
	t.Helper()
	raw, err := os.ReadFile(rc.run.capture)
	if err != nil {
		t.Fatal(err)
	}
	_, evs := readEvents(t, string(raw))
	var wire []byte
	for _, ev := range evs {
		wire = append(wire, ev.Data...)
	}
	for _, texts := range rc.sent {
		for _, text := range texts {
			if bytes.Contains(raw, []byte(text)) || bytes.Contains(wire, []byte(text)) {
				t.Errorf("the capture holds the plaintext %q", text)
			}
		}
	}
	for _, k := range keys {
		for _, form := range [][]byte{k.Secret, []byte(hex.EncodeToString(k.Secret)), []byte(base64.StdEncoding.EncodeToString(k.Secret))} {
			if bytes.Contains(raw, form) || bytes.Contains(wire, form) {
				t.Errorf("the capture holds a session key")
			}
		}
	}
}

// checkRecovered checks that frames hold, for each connection in conns,
// its client → server texts exactly: its name, then what it sent.
func (rc randomChat) checkRecovered(t *testing.T, source string, frames []jsonFrame, conns map[int]bool) {
	t.Helper()
	got := map[int][]string{}
	for _, f := range frames {
		if f.Dir == "c2s" && f.Kind == "sealed" {
			if f.Plaintext == nil {
				got[f.Conn] = append(got[f.Conn], "<not decrypted>")
				continue
			}
			got[f.Conn] = append(got[f.Conn], *f.Plaintext)
		}
	}
	for i, n := range rc.names {
		if !conns[i+1] {
			continue
		}
		want := append([]string{n}, rc.sent[n]...)
		if strings.Join(got[i+1], "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%s: conn %d recovered %q, want %q", source, i+1, got[i+1], want)
		}
	}
}

func TestReplayPropertyRandomChats(t *testing.T) {
	rsaPath := filepath.Join(replayTestdata, "server.pem")
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rc := recordRandomChat(t, suiteClassic, seed)
			run := rc.run
			keys := readKeylogFile(t, run.keylog)
			if len(keys) != len(rc.names) {
				t.Fatalf("%d keylog lines for %d sessions", len(keys), len(rc.names))
			}
			// The capture holds no plaintext and no key, in any encoding.
			rc.checkHidden(t, keys)

			// Every key source recovers every message exactly.
			all := map[int]bool{1: true, 2: true, 3: true}
			rc.checkRecovered(t, "-keylog", replayJSON(t, "-keylog", run.keylog, run.capture), all)
			rc.checkRecovered(t, "-rsa-key", replayJSON(t, "-rsa-key", rsaPath, run.capture), all)
			for i, k := range keys {
				frames := replayJSON(t, "-key", base64.StdEncoding.EncodeToString(k.Secret), run.capture)
				rc.checkRecovered(t, "-key", frames, map[int]bool{i + 1: true})
				for _, f := range frames {
					if f.Conn != i+1 && f.Plaintext != nil {
						t.Errorf("-key of conn %d decrypted a frame of conn %d", i+1, f.Conn)
					}
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// pcap export

// needTool returns the path of an outside tool, or skips (fails with
// ENCCHAT_REQUIRE_TOOLS=1) when it is missing.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("ENCCHAT_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not found (ENCCHAT_REQUIRE_TOOLS=1)", name)
		}
		t.Skipf("%s not found; install it to run this test", name)
	}
	return path
}

// streams returns each connection's bytes per direction, from a capture.
func streams(t *testing.T, data string) map[int]*[2][]byte {
	t.Helper()
	_, evs := readEvents(t, data)
	out := map[int]*[2][]byte{}
	for _, ev := range evs {
		if out[ev.Conn] == nil {
			out[ev.Conn] = &[2][]byte{}
		}
		if ev.Kind == capData {
			out[ev.Conn][ev.Dir] = append(out[ev.Conn][ev.Dir], ev.Data...)
		}
	}
	return out
}

// tsharkFollow returns the two directions of TCP stream n as tshark's
// "Follow TCP Stream" rebuilds them (raw mode: hex, the server's side
// indented by a tab).
func tsharkFollow(t *testing.T, tshark, pcapPath string, n int) (c2s, s2c []byte, ascii string) {
	t.Helper()
	run := func(mode string) string {
		cmd := exec.Command(tshark, "-r", pcapPath, "-q", "-z", fmt.Sprintf("follow,tcp,%s,%d", mode, n))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark follow %s: %v\n%s", mode, err, stderr.String())
		}
		return string(out)
	}
	raw := run("raw")
	body := false
	for _, line := range strings.Split(raw, "\n") {
		switch {
		case strings.HasPrefix(line, "Node 1:"):
			body = true
			continue
		case !body || strings.HasPrefix(line, "====") || line == "":
			continue
		}
		b, err := hex.DecodeString(strings.TrimPrefix(line, "\t"))
		if err != nil {
			t.Fatalf("tshark raw line %q: %v", line, err)
		}
		if strings.HasPrefix(line, "\t") {
			s2c = append(s2c, b...)
		} else {
			c2s = append(c2s, b...)
		}
	}
	return c2s, s2c, run("ascii")
}

func TestReplayPcapTshark(t *testing.T) {
	tshark := needTool(t, "tshark")
	dir := t.TempDir()

	// The golden chat, plus a capture with a chunk larger than one segment.
	big := &memFile{}
	rec := newCapture(big, "tap", "127.0.0.1:5174", nil)
	cc := rec.open("127.0.0.1:40001", "127.0.0.1:5174")
	large := bytes.Repeat([]byte("0123456789abcdef"), 400) // 6400 bytes: five segments
	cc.data(wireC2S, large)
	cc.data(wireS2C, []byte("short answer"))
	cc.close()
	rec.Close()
	golden := strings.Join(goldenLines(t), "")

	for _, c := range []struct{ name, capture string }{{"golden", golden}, {"large", big.String()}} {
		t.Run(c.name, func(t *testing.T) {
			in := writeCapture(t, "capture.jsonl", c.capture)
			out := filepath.Join(dir, c.name+".pcap")
			var stdout, stderr bytes.Buffer
			if code := runReplay([]string{"-pcap", out, in}, &stdout, &stderr); code != 0 {
				t.Fatalf("replay -pcap: exit %d: %s", code, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "wrote "+out+": ") {
				t.Errorf("stdout %q", stdout.String())
			}
			want := streams(t, c.capture)
			for conn := 1; conn <= len(want); conn++ {
				c2s, s2c, ascii := tsharkFollow(t, tshark, out, conn-1)
				if !bytes.Equal(c2s, want[conn][wireC2S]) || !bytes.Equal(s2c, want[conn][wireS2C]) {
					t.Errorf("tcp stream %d: tshark follows %d+%d bytes, the capture has %d+%d", conn-1, len(c2s), len(s2c), len(want[conn][wireC2S]), len(want[conn][wireS2C]))
				}
				if conn == 1 && c.name == "golden" && (!strings.Contains(ascii, "-----BEGIN PUBLIC KEY-----") || !strings.Contains(ascii, "127.0.0.1:51001")) {
					t.Errorf("follow,tcp,ascii,0 does not show the stream:\n%s", ascii)
				}
			}
			// No segment is larger than an Ethernet MSS, and tshark sees no
			// broken sequence numbers.
			cmd := exec.Command(tshark, "-r", out, "-T", "fields", "-e", "tcp.len", "-e", "tcp.analysis.flags")
			fields, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(fields)), "\n") {
				f := strings.Split(line, "\t")
				if n, _ := strconv.Atoi(f[0]); n > pcapMSS {
					t.Errorf("segment of %d bytes", n)
				}
				if len(f) > 1 && f[1] != "" {
					t.Errorf("tshark flags a segment: %q", line)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Tap

// startTap runs tap in front of upstream and returns its address, the
// capture path, and a stop function that waits for tap to return.
func startTap(t *testing.T, upstream string) (addr, capturePath string, reports func() []string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	capturePath = filepath.Join(t.TempDir(), "tap.jsonl")
	rec, err := openCapture(capturePath, "tap", upstream)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var lines []string
	done := make(chan error, 1)
	go func() {
		done <- tap(ctx, ln, upstream, rec, func(s string) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, s)
		})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("tap: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("tap did not stop within 10s")
			}
			if err := rec.Close(); err != nil {
				t.Errorf("capture: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	reports = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
	return ln.Addr().String(), capturePath, reports, stop
}

func TestTapRelaysAndRecords(t *testing.T) {
	key := replayServerKey(t)
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(serverConfig{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sln) }()
	defer func() {
		srv.Shutdown()
		<-served
	}()

	addr, capturePath, reports, stop := startTap(t, sln.Addr().String())
	keylogPath := filepath.Join(t.TempDir(), "keys.log")
	kl, err := openKeylog(keylogPath)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(name string) *clientSession {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		cs, err := clientHandshake(nc, clientConfig{Name: name, Addr: addr, Fingerprint: fingerprint(&key.PublicKey), Keylog: kl})
		if err != nil {
			t.Fatalf("handshake through the tap: %v", err)
		}
		return cs
	}
	dave, erin := dial("dave"), dial("erin")
	expectRecv(t, dave, "erin joined")
	long := strings.Repeat("a long line through the tap ", 140) + "end" // several TCP segments
	dave.Send(long)
	expectRecv(t, erin, "dave: "+long)
	erin.Send("/quit")
	expectRecv(t, dave, "erin left")
	erin.Close()
	dave.Close()
	kl.Close()
	// Let the relays see both closes before stopping the tap.
	deadline := time.Now().Add(5 * time.Second)
	for countClosed(reports()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := countClosed(reports()); n != 2 {
		t.Errorf("%d relays ended by themselves after both clients left, want 2", n)
	}
	stop()

	rep := reports()
	if len(rep) != 4 || !strings.Contains(rep[0], "conn 1") || !strings.Contains(rep[0], "relaying to "+sln.Addr().String()) {
		t.Errorf("tap reports %q", rep)
	}
	data, _ := os.ReadFile(capturePath)
	hdr, evs := readEvents(t, string(data))
	if hdr.Recorder != "tap" || hdr.Addr != sln.Addr().String() {
		t.Errorf("header %+v", hdr)
	}
	var opens, closes int
	for _, ev := range evs {
		switch ev.Kind {
		case capOpen:
			opens++
			if ev.Server != sln.Addr().String() {
				t.Errorf("open records server %q, want the upstream %s", ev.Server, sln.Addr())
			}
		case capClose:
			closes++
		}
	}
	if opens != 2 || closes != 2 {
		t.Errorf("%d opens, %d closes", opens, closes)
	}
	var plain []string
	for _, f := range replayJSON(t, "-keylog", keylogPath, capturePath) {
		if f.Plaintext != nil {
			plain = append(plain, *f.Plaintext)
		}
	}
	joined := strings.Join(plain, "\n")
	for _, want := range []string{"dave", "erin", long, "[SYSTEM] erin left the chat", handshakeOKText} {
		if !strings.Contains(joined, want) {
			t.Errorf("the tap's capture does not replay %q", truncateRunes(want, 40))
		}
	}
}

func countClosed(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, ": closed (") {
			n++
		}
	}
	return n
}

func TestTapUpstreamDown(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	addr, capturePath, reports, stop := startTap(t, deadAddr)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Error("the tap kept a client whose upstream is down")
	}
	nc.Close()
	stop()
	if rep := reports(); len(rep) != 1 || !strings.Contains(rep[0], "unreachable") {
		t.Errorf("reports %q", rep)
	}
	data, _ := os.ReadFile(capturePath)
	if _, evs := readEvents(t, string(data)); len(evs) != 0 {
		t.Errorf("recorded %d events for a connection that never reached upstream", len(evs))
	}
}

func TestTapStopsWithClientsConnected(t *testing.T) {
	// An upstream that accepts and never speaks: the tap must still stop.
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	addr, _, reports, stop := startTap(t, up.Addr().String())
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("0000000003abc"))
	deadline := time.Now().Add(5 * time.Second)
	for len(reports()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopping took %v", d)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Error("the client's connection stayed open after the tap stopped")
	}
}

// TestTapPythonServer puts the tap in front of the independent Python
// server: a Go client chats through it, and the capture replays with the
// client's keylog.
func TestTapPythonServer(t *testing.T) {
	py := startPyPeer(t, "python server", "server", "--listen", "127.0.0.1:0")
	upstream, ok := strings.CutPrefix(py.next(t, interopStartup), "LISTENING ")
	if !ok {
		t.Fatal("the Python server did not print LISTENING first")
	}
	fp, ok := strings.CutPrefix(py.next(t, interopWait), "FINGERPRINT ")
	if !ok {
		t.Fatal("the Python server did not print its FINGERPRINT")
	}
	addr, capturePath, reports, stop := startTap(t, upstream)
	keylogPath := filepath.Join(t.TempDir(), "keys.log")
	kl, err := openKeylog(keylogPath)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	cs, err := clientHandshake(nc, clientConfig{Name: "gopher", Addr: addr, Fingerprint: fp, Keylog: kl})
	if err != nil {
		t.Fatalf("handshake with the Python server through the tap: %v", err)
	}
	const msg = "hello Python, through a recording tap ✓"
	cs.Send(msg)
	expectRecv(t, cs, "gopher: "+msg)
	cs.Close()
	kl.Close()
	deadline := time.Now().Add(5 * time.Second)
	for countClosed(reports()) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()

	frames := replayJSON(t, "-keylog", keylogPath, capturePath)
	if len(frames) < 5 || frames[0].Kind != "public-key" || frames[0].Fingerprint != fp || frames[1].Kind != "key-transport" {
		t.Fatalf("replay of the Python session: %+v", frames)
	}
	var got []string
	for _, f := range frames {
		if f.Plaintext != nil {
			got = append(got, *f.Plaintext)
		}
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{handshakeOKText, "gopher", msg, "Welcome gopher!"} {
		if !strings.Contains(joined, want) {
			t.Errorf("replay lacks %q; got %q", want, got)
		}
	}
}

// ---------------------------------------------------------------------------
// Benchmark

// benchCapture streams a synthetic classic capture of about size bytes: a
// block of sessions (PEM key, blob, sealed chat texts of 20–400 bytes, in
// chunks of one frame, two frames, or a frame split in two) recorded once
// and repeated under new connection numbers, so the reader itself holds
// only one block.
type benchCapture struct {
	lines [][]byte // per line: the part after `"conn":N`
	conns []int    // per line: the connection's index in the block
	block int      // connections per block
	size  int
	sent  int
	round int
	line  int
	buf   []byte
}

// benchKey is the session key of every benchmark connection (-key).
var benchKey = bytes.Repeat([]byte{0x42}, 32)

func newBenchCapture(b *testing.B, size int) *benchCapture {
	b.Helper()
	rc, err := newClassicCipher(benchKey, newLockedRand(1))
	if err != nil {
		b.Fatal(err)
	}
	pemKey, err := marshalPublicKeyPEM(&replayServerKey(b).PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	rng := mathrand.New(mathrand.NewPCG(5, 6))
	bc := &benchCapture{size: size, block: 20}
	add := func(conn int, rest string) {
		bc.lines = append(bc.lines, []byte(rest))
		bc.conns = append(bc.conns, conn)
	}
	chunk := func(conn int, dir wireDir, data []byte) {
		add(conn, `,"dir":"`+dir.String()+`","data":"`+base64.StdEncoding.EncodeToString(data)+`"}`)
	}
	for conn := 0; conn < bc.block; conn++ {
		add(conn, `,"ev":"open","client":"127.0.0.1:`+strconv.Itoa(50000+conn)+`","server":"127.0.0.1:5174"}`)
		chunk(conn, wireS2C, appendFrame(nil, pemKey))
		blob := make([]byte, rsaBlobSize)
		for i := range blob {
			blob[i] = byte(rng.Uint32())
		}
		chunk(conn, wireC2S, appendFrame(nil, blob))
		var pending []byte
		for i := 0; i < 400; i++ {
			text := make([]byte, 20+rng.IntN(380))
			for j := range text {
				text[j] = "abcdefghijklmnopqrstuvwxyz     "[rng.IntN(31)]
			}
			rec, err := rc.seal(text)
			if err != nil {
				b.Fatal(err)
			}
			frame := appendFrame(nil, rec)
			dir := wireDir(i % 2)
			switch rng.IntN(3) {
			case 0: // one frame
				chunk(conn, dir, frame)
			case 1: // split in two
				cut := 1 + rng.IntN(len(frame)-1)
				chunk(conn, dir, frame[:cut])
				chunk(conn, dir, frame[cut:])
			case 2: // two frames of the same direction in one chunk
				if pending == nil {
					pending = frame
					continue
				}
				chunk(conn, wireC2S, append(pending, frame...))
				pending = nil
			}
		}
		add(conn, `,"ev":"close"}`)
	}
	return bc
}

func (bc *benchCapture) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(bc.buf) == 0 {
			switch {
			case bc.sent == 0 && bc.round == 0 && bc.line == 0 && bc.buf == nil:
				bc.buf = []byte(`{"encchat_capture":1,"started":"2026-11-26T09:00:00Z","recorder":"tap","addr":"127.0.0.1:5174"}` + "\n")
			case bc.sent >= bc.size && bc.line == 0:
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			default:
				i := bc.line
				conn := bc.round*bc.block + bc.conns[i] + 1
				t := float64(bc.round) + float64(i)*0.0001
				bc.buf = append(bc.buf[:0], `{"t":`...)
				bc.buf = strconv.AppendFloat(bc.buf, t, 'f', 4, 64)
				bc.buf = append(bc.buf, `,"conn":`...)
				bc.buf = strconv.AppendInt(bc.buf, int64(conn), 10)
				bc.buf = append(bc.buf, bc.lines[i]...)
				bc.buf = append(bc.buf, '\n')
				if bc.line++; bc.line == len(bc.lines) {
					bc.line = 0
					bc.round++
				}
			}
		}
		c := copy(p[n:], bc.buf)
		n += c
		bc.sent += c
		bc.buf = bc.buf[c:]
	}
	return n, nil
}

// BenchmarkReplay replays a synthetic capture with a key, decrypting every
// record and rendering the both view to a discarded writer. It reports
// MB/s of capture and the peak heap while replaying, which must not grow
// with the size of the capture.
func BenchmarkReplay(b *testing.B) {
	for _, size := range []int{10 << 20, 100 << 20} {
		for _, view := range []string{"both", "json"} {
			b.Run(fmt.Sprintf("%s/%dMB", view, size>>20), func(b *testing.B) {
				template := newBenchCapture(b, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var peak uint64
				stop := make(chan struct{})
				sampled := make(chan struct{})
				go func() {
					defer close(sampled)
					var ms runtime.MemStats
					tick := time.NewTicker(50 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							runtime.ReadMemStats(&ms)
							peak = max(peak, ms.HeapInuse)
						}
					}
				}()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					bc := *template
					bc.buf = nil
					opts := &replayOptions{name: "bench", view: view, width: 120, keys: &replayKeys{key: benchKey}}
					var out replayOutput = newTextOutput(io.Discard, opts)
					if view == "json" {
						opts.json = true
						out = newJSONOutput(io.Discard)
					}
					if err := replayCapture(&bc, opts, out); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				close(stop)
				<-sampled
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			})
		}
	}
}

// TestReplayModernCapture: a modern session is recognised, its handshake
// named, and -rsa-key says plainly that the server key cannot decrypt it.
func TestReplayModernCapture(t *testing.T) {
	key := replayServerKey(t)
	const secret = "modern secret: forward secrecy holds"
	run := recordSuiteChat(t, t.TempDir(), suiteModern, key, 3, func(connect func(string) *clientSession) {
		c := connect("mo")
		if c.Suite != suiteModern {
			t.Fatalf("client negotiated %q", c.Suite)
		}
		c.Send(secret)
		expectRecv(t, c, secret)
	})
	stdout, stderr, code := runReplayTest(t, 80, "-rsa-key", filepath.Join(replayTestdata, "server.pem"), run.capture)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "ServerHello: ephemeral key shares") || !strings.Contains(stdout, "cannot decrypt it (forward secrecy)") {
		t.Errorf("replay of a modern capture:\n%s", stdout)
	}
	if strings.Count(stdout, "forward secrecy") != 1 {
		t.Error("the forward secrecy note is not said once per session")
	}
	if strings.Contains(stdout, secret) {
		t.Error("the server key decrypted a modern session")
	}
}

// TestCaptureNoDataAfterClose: reads and writes racing with Close never
// land after the connection's close record, so replay accepts the capture.
func TestCaptureNoDataAfterClose(t *testing.T) {
	out := &memFile{}
	rec := newCapture(out, "server", "x", nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		cc := rec.open("c", "s")
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 50; j++ {
					cc.data(wireDir(j%2), []byte("0000000001x"))
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%5) * 100 * time.Microsecond)
			cc.close()
		}()
	}
	wg.Wait()
	rec.Close()
	closed := map[int]bool{}
	_, evs := readEvents(t, out.String())
	for _, ev := range evs {
		if closed[ev.Conn] {
			t.Fatalf("line %d: %s on connection %d after its close", ev.Line, ev.Kind, ev.Conn)
		}
		if ev.Kind == capClose {
			closed[ev.Conn] = true
		}
	}
	if len(closed) != 20 {
		t.Errorf("%d connections closed, want 20", len(closed))
	}
	path := writeCapture(t, "race.jsonl", out.String())
	if _, stderr, code := runReplayTest(t, 80, path); code != 0 {
		t.Errorf("replay: exit %d: %s", code, stderr)
	}
}

// TestStepTables checks the step tables against their readers: the
// walk-through's five titles (the classic ones are the seed client's), a
// frame kind and a lesson name for every step that sends a frame, and how a
// frame finds its step.
func TestStepTables(t *testing.T) {
	titles := map[string][]string{
		suiteClassic: {"Receiving server's RSA public key...", "Generating AES-256 symmetric key...",
			"Encrypting AES key with server's RSA public key...", "Sending encrypted AES key to server...",
			"Receiving encrypted confirmation from server..."},
		suiteModern: {"Receiving server hello...", "Generating ephemeral key shares...", "Sending client hello...",
			"Verifying the server's signature over the transcript...", "Exchanging Finished messages..."},
	}
	for suite, want := range titles {
		steps := stepsOf(suite)
		for n, w := range want {
			if got := steps.title(n + 1); got != w {
				t.Errorf("%s walk-through step %d: %q, want %q", suite, n+1, got, w)
			}
		}
		if got := steps.title(len(want) + 1); got != "" {
			t.Errorf("%s walk-through has a step %d: %q", suite, len(want)+1, got)
		}
		from := 0
		for i, st := range steps {
			if st.Kind == kindNone {
				if st.Name != "" || st.Sniffer != "" || st.Band != "" {
					t.Errorf("%s step %d sends nothing but has a frame's words", suite, i)
				}
				continue
			}
			if st.Name == "" || st.Label == "" || st.Work != "" {
				t.Errorf("%s step %d (%v): a frame's step wants a name and a label, and no work", suite, i, st.Kind)
			}
			if got := steps.next(from, st.By.sends(), st.Kind); got != i {
				t.Errorf("%s step %d (%v) in order: next finds %d", suite, i, st.Kind, got)
			}
			from = i + 1
		}
	}
	cases := []struct {
		steps protocolSteps
		from  int
		dir   wireDir
		kind  frameKind
		want  int
	}{
		{classicSteps, 0, wireC2S, kindKeyTransport, -1}, // the capture began after step 1
		{classicSteps, 1, wireS2C, kindSealed, -1},       // step 4 is missing: a sealed step is known only by its place
		{classicSteps, 4, wireS2C, kindOpaque, 5},        // step 6 whatever the decoder made of it
		{modernSteps, 0, wireC2S, kindClientHello, -1},   // the capture missed the ServerHello
		{modernSteps, 1, wireS2C, kindServerVerify, 4},   // the capture missed the ClientHello
		{modernSteps, 8, wireS2C, kindSealed, -1},        // the welcome before the username
	}
	for _, c := range cases {
		if got := c.steps.next(c.from, c.dir, c.kind); got != c.want {
			t.Errorf("next(%d, %v, %v) = %d, want %d", c.from, c.dir, c.kind, got, c.want)
		}
	}
	for k := kindNone; k <= kindHandshake; k++ {
		if s := k.String(); s == "unknown" || s == "" {
			t.Errorf("frame kind %d has no name", k)
		}
	}
}
