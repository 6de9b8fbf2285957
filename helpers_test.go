// Helpers shared by the tests of several files: the shared server key, a
// server on a loopback port with its log, clients that join it (whole
// sessions, or a raw classic handshake to send anything at all), a buffer
// safe for concurrent writers, and outside tools.

package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// testRSAKey returns one RSA-2048 key shared by every test in the binary:
// generating keys is the slowest thing the tests would otherwise do.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	testKeyOnce.Do(func() {
		testKey, testKeyErr = rsa.GenerateKey(rand.Reader, rsaBits)
	})
	if testKeyErr != nil {
		t.Fatalf("generating test RSA key: %v", testKeyErr)
	}
	return testKey
}

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
	testKeyErr  error
)

// testServer is a server on a loopback port with its log collected.
type testServer struct {
	*server
	addr string
	mu   sync.Mutex
	log  []serverEvent
}

// logged waits until the server logged an event of kind whose text contains sub.
func (ts *testServer) logged(t testing.TB, kind eventKind, sub string) serverEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ts.mu.Lock()
		for _, ev := range ts.log {
			if ev.Kind == kind && strings.Contains(ev.Text, sub) {
				ts.mu.Unlock()
				return ev
			}
		}
		ts.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t.Fatalf("no [%s] log line containing %q; log: %v", kind, sub, ts.log)
	return serverEvent{}
}

func startTestServer(t testing.TB, cfg serverConfig) *testServer {
	t.Helper()
	return startTestServerOn(t, cfg, nil)
}

func startTestServerOn(t testing.TB, cfg serverConfig, wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = testRSAKey(t)
	}
	ts := &testServer{}
	cfg.Log = func(ev serverEvent) {
		ts.mu.Lock()
		ts.log = append(ts.log, ev)
		ts.mu.Unlock()
	}
	srv, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.server, ts.addr = srv, ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func dialTest(t testing.TB, addr string, cfg clientConfig) (*clientSession, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KnownServers == "" && cfg.Fingerprint == "" {
		cfg.Insecure = true
	}
	cfg.Addr = addr
	cs, err := clientHandshake(conn, cfg)
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

func join(t testing.TB, addr, name string) *clientSession {
	t.Helper()
	cs, err := dialTest(t, addr, clientConfig{Name: name})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cs
}

var stampRE = regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] `)

// expect reads texts until one, with its timestamp removed, equals want.
// Texts in between are returned so callers can check what they skipped.
func expect(t testing.TB, cs *clientSession, want string) []string {
	t.Helper()
	return expectWithin(t, cs, want, 5*time.Second)
}

// expectWithin is expect with a bound of the caller's.
func expectWithin(t testing.TB, cs *clientSession, want string, bound time.Duration) []string {
	t.Helper()
	cs.conn.SetReadDeadline(time.Now().Add(bound))
	defer cs.conn.SetReadDeadline(time.Time{})
	var skipped []string
	for {
		text, err := cs.Recv()
		if err != nil {
			t.Fatalf("waiting for %q: %v (got %q)", want, err, skipped)
		}
		if stampRE.ReplaceAllString(text, "") == want {
			return skipped
		}
		skipped = append(skipped, text)
	}
}

// expectClosed reads until the server closes the connection.
func expectClosed(t testing.TB, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("server did not close the connection")
	}
}

// anyServerKey is a client's key check that accepts every key.
func anyServerKey(*rsa.PublicKey) (string, error) { return "", nil }

// rawClassic does the classic handshake and returns the raw connection and
// its cipher, so tests can send anything at all.
func rawClassic(t testing.TB, addr, name string) (net.Conn, *classicCipher) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	first, err := readFrame(br)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := classicClientHandshake(frameRW{br, conn}, first, &handshakeConfig{CheckKey: anyServerKey})
	if err != nil {
		t.Fatal(err)
	}
	rc := hs.(*classicCipher)
	if name != "" {
		p, _ := rc.seal([]byte(name))
		writeFrame(conn, p)
		w, err := readFrame(br)
		if err != nil {
			t.Fatal(err)
		}
		if text, _ := rc.open(w); !strings.Contains(string(text), "Welcome") {
			t.Fatalf("welcome = %q", text)
		}
	}
	conn.SetDeadline(time.Time{})
	return conn, rc
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

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
