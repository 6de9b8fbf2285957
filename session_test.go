package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a server on a loopback port with its log collected.
type testServer struct {
	*server
	addr string
	mu   sync.Mutex
	log  []serverEvent
}

func startTestServer(t testing.TB, cfg serverConfig) *testServer {
	t.Helper()
	return startTestServerOn(t, cfg, nil)
}

// smallBuffers shrinks the kernel send buffer of accepted connections, so
// a client that stops reading fills it after kilobytes, not megabytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8192)
	}
	return c, err
}

// bigBuffers gives accepted connections a send buffer of a megabyte.
type bigBuffers struct{ net.Listener }

func (l bigBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(1 << 20)
	}
	return c, err
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
	cs.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
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

func TestChatEndToEnd(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	alice := join(t, ts.addr, "alice")
	if !strings.Contains(alice.Welcome(), "Welcome alice!") || alice.Welcome() != welcomeText("alice") {
		t.Fatalf("welcome = %q", alice.Welcome())
	}
	bob := join(t, ts.addr, "bob")
	expect(t, alice, "[SYSTEM] bob joined (secure channel)")
	carol := join(t, ts.addr, "carol")
	expect(t, alice, "[SYSTEM] carol joined (secure channel)")
	expect(t, bob, "[SYSTEM] carol joined (secure channel)")

	// Broadcast, echoed to the sender too.
	alice.Send("Hello everyone!")
	for _, c := range []*clientSession{alice, bob, carol} {
		expect(t, c, "alice: Hello everyone!")
	}
	ts.logged(t, evBroadcast, "alice: Hello everyone!")

	// /pm reaches only the recipient, and the sender gets a copy.
	bob.Send("/pm carol just between us")
	expect(t, carol, "[PM from bob] just between us")
	expect(t, bob, "[PM to carol] just between us")
	ts.logged(t, evPM, "bob -> carol")
	bob.Send("/pm nobody hello")
	expect(t, bob, "[ERROR] User 'nobody' not found")
	bob.Send("/pm carol")
	expect(t, bob, "[ERROR] Usage: /pm <username> <message>")

	// /list in join order.
	carol.Send("/list")
	expect(t, carol, listText([]string{"alice", "bob", "carol"}))

	// A duplicate name is refused; the holder keeps chatting.
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "alice"}); err == nil || !strings.Contains(err.Error(), "Username already taken") {
		t.Fatalf("duplicate alice: err = %v", err)
	}
	alice.Send("still here")
	skipped := expect(t, bob, "alice: still here")
	for _, s := range skipped {
		if strings.Contains(s, "left") || strings.Contains(s, "joined") {
			t.Errorf("bob saw %q around the refused duplicate", s)
		}
	}
	expect(t, alice, "alice: still here")

	// carol did not see bob's PM errors or the PM copy meant for bob.
	carol.Send("/list")
	skipped = expect(t, carol, listText([]string{"alice", "bob", "carol"}))
	for _, s := range skipped {
		if strings.Contains(s, "ERROR") || strings.Contains(s, "PM to") {
			t.Errorf("carol saw %q", s)
		}
	}

	// Leaving: /quit closes, the others are told.
	carol.Send("/quit")
	expectClosed(t, carol.conn)
	expect(t, alice, "[SYSTEM] carol left the chat")
	expect(t, bob, "[SYSTEM] carol left the chat")
	ts.logged(t, evLeave, "carol")

	// Shutdown: everyone gets the notice, then the connection closes.
	go ts.Shutdown()
	expect(t, alice, shutdownText)
	expect(t, bob, shutdownText)
	expectClosed(t, alice.conn)
}

func TestHelpAndUnknownCommand(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	a := join(t, ts.addr, "alice")
	a.Send("/help")
	a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	text, err := a.Recv()
	if err != nil || !strings.Contains(text, "[HELP]") || !strings.Contains(text, "/pm <username> <message>") {
		t.Fatalf("/help = %q, %v", text, err)
	}
	a.Send("/frobnicate now")
	expect(t, a, "[ERROR] Unknown command: /frobnicate (try /help)")
}

func TestUsernameRules(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	for _, name := range []string{"", "System", "SERVER", "has space", "semi;colon",
		"esc\x1b[2J", "new\nline", strings.Repeat("x", 33), "bidi\u202ename"} {
		_, err := dialTest(t, ts.addr, clientConfig{Name: name})
		var re *refusedError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Text, "ERROR: Invalid username: ") {
			t.Errorf("name %q: err = %v, want an invalid-username refusal", name, err)
		}
	}
	for _, name := range []string{"alice", "Zoë", "名前", "a.b-c_d", strings.Repeat("x", 32), "a"} {
		join(t, ts.addr, name)
	}
	ts.logged(t, evRefused, "invalid username")
}

func TestValidateNameBoundaries(t *testing.T) {
	for n, ok := range map[int]bool{0: false, 1: true, 31: true, 32: true, 33: false} {
		if err := validateName(strings.Repeat("é", n)); (err == nil) != ok {
			t.Errorf("name of %d runes: err = %v", n, err)
		}
	}
}

func TestControlCharactersNeverRelayed(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	a := join(t, ts.addr, "alice")
	b := join(t, ts.addr, "bob")
	a.Send("clear\x1b[2J screen\r\nfake [SYSTEM]\u202e\x7f\u0085 done\t!")
	expect(t, b, "alice: clear[2J screenfake [SYSTEM] done!")
	a.Send("/pm bob \x1b]0;title\x07hi")
	expect(t, b, "[PM from alice] ]0;titlehi")
	// A message that is only control characters is not relayed at all.
	a.Send("\x1b\x07")
	a.Send("after")
	if skipped := expect(t, b, "alice: after"); len(skipped) != 0 {
		t.Errorf("bob got %q before the next message", skipped)
	}
}

func TestSanitize(t *testing.T) {
	in := "a\x00b\x1fc\x7fd\u0080e\u009ff\u061cg\u200eh\u200fi\u202aj\u202ek\u2066l\u2069m\nn\tö"
	if got, want := sanitizeText(in), "abcdefghijklmnö"; got != want {
		t.Errorf("sanitizeText = %q, want %q", got, want)
	}
	if got, want := sanitizeForTerminal(in), "abcdefghijklm\nnö"; got != want {
		t.Errorf("sanitizeForTerminal = %q, want %q", got, want)
	}
}

func TestMessageLengthLimit(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	a := join(t, ts.addr, "alice")
	a.Send(strings.Repeat("x", maxTextLen))
	expect(t, a, "alice: "+strings.Repeat("x", maxTextLen))
	a.Send(strings.Repeat("y", maxTextLen+1))
	expect(t, a, "[ERROR] Message too long (max 4096 bytes)")
	a.Send("short")
	expect(t, a, "alice: short")
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

func TestFrameViolationsDropOnlyThatClient(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	watcher := join(t, ts.addr, "watcher")
	for i, bad := range []string{
		"9999999999",   // the seed accepts this and tries to read 10 GB
		"0000065537",   // one over the limit
		"00000001x0",   // not ten digits
		"-000000010",   // a sign
		" 000000010",   // a space
		"0x00000010",   // hex
		"00000000\r\n", // line noise
	} {
		name := fmt.Sprintf("bad%d", i)
		conn, _ := rawClassic(t, ts.addr, name)
		expect(t, watcher, "[SYSTEM] "+name+" joined (secure channel)")
		conn.Write([]byte(bad))
		expectClosed(t, conn)
		expect(t, watcher, "[SYSTEM] "+name+" left the chat")
		ts.logged(t, evLeave, name+" left the chat (protocol violation")
	}
	watcher.Send("still fine")
	expect(t, watcher, "watcher: still fine")
}

func TestParseFrameHeaderBoundaries(t *testing.T) {
	for h, want := range map[string]int{"0000000000": 0, "0000065535": 65535, "0000065536": 65536, "0000065537": -1} {
		n, err := parseFrameHeader([]byte(h))
		if want < 0 && err == nil || want >= 0 && (err != nil || n != want) {
			t.Errorf("%s: %d, %v", h, n, err)
		}
	}
}

func TestCorruptedRecordsDroppedTheSameWay(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	bob := join(t, ts.addr, "bob")
	conn, rc := rawClassic(t, ts.addr, "mallory")
	expect(t, bob, "[SYSTEM] mallory joined (secure channel)")
	good, _ := rc.seal([]byte("a valid message"))
	badPad, _ := rc.seal([]byte("x"))
	raw := make([]byte, 48)
	n, _ := decodeB64(raw, badPad)
	raw[n-17] ^= 0x01 // flip a bit of the last byte's block input: padding breaks
	badUTF8, _ := rc.seal([]byte{0xff, 0xfe})
	for _, p := range [][]byte{
		[]byte("!!!not base64!!!"),
		[]byte("AAAA"), // decodes to 3 bytes: too short
		encodeB64(raw[:n]),
		badUTF8,
		encodeB64(make([]byte, 16+15)), // not a multiple of the block size
	} {
		writeFrame(conn, p)
	}
	writeFrame(conn, good)
	if skipped := expect(t, bob, "mallory: a valid message"); len(skipped) != 0 {
		t.Errorf("bob saw %q", skipped)
	}
	ev := ts.logged(t, evDropped, "(5 so far)")
	for _, i := range []string{"(1 so far)", "(2 so far)", "(3 so far)", "(4 so far)"} {
		e := ts.logged(t, evDropped, i)
		if strings.TrimSuffix(e.Text, i) != strings.TrimSuffix(ev.Text, "(5 so far)") {
			t.Errorf("drop reasons differ: %q vs %q", e.Text, ev.Text)
		}
	}
}

func TestHandshakeTimeout(t *testing.T) {
	ts := startTestServer(t, serverConfig{HandshakeTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	expectClosed(t, conn) // reads the PEM frame, then the close
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	ts.logged(t, evRefused, "handshake timeout")

	// A client stuck after the key exchange (no username) is also closed.
	conn2, _ := rawClassic(t, ts.addr, "")
	expectClosed(t, conn2)
}

func TestHalfFrameThenDisconnect(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	bob := join(t, ts.addr, "bob")
	conn, _ := rawClassic(t, ts.addr, "half")
	expect(t, bob, "[SYSTEM] half joined (secure channel)")
	conn.Write([]byte("0000000100abc"))
	conn.Close()
	expect(t, bob, "[SYSTEM] half left the chat")
	ts.logged(t, evLeave, "half left the chat (connection closed mid-frame)")
	join(t, ts.addr, "half") // the name is free again
}

func TestSlowReaderDoesNotStallOthers(t *testing.T) {
	ts := startTestServerOn(t, serverConfig{QueueLen: 64}, func(l net.Listener) net.Listener { return smallBuffers{l} })
	// The sluggard completes the handshake and then never reads again.
	slow, _ := rawClassic(t, ts.addr, "sluggard")
	slow.(*net.TCPConn).SetReadBuffer(4096)
	a := join(t, ts.addr, "alice")
	b := join(t, ts.addr, "bob")
	expect(t, a, "[SYSTEM] bob joined (secure channel)")
	big := strings.Repeat("z", 2000)
	const n = 400
	last := fmt.Sprintf("alice: %d %s", n-1, big)
	bDone := make(chan []string, 1)
	bGot := make(chan string, 1)
	go func() {
		var seen []string
		b.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			text, err := b.Recv()
			if err != nil {
				bDone <- append(seen, "error: "+err.Error())
				close(bGot)
				return
			}
			text = stampRE.ReplaceAllString(text, "")
			if !strings.HasPrefix(text, "alice: ") {
				seen = append(seen, text)
				continue
			}
			bGot <- text
			if text == last {
				bDone <- seen
				return
			}
		}
	}()
	// alice waits for each message to reach her and bob, so only the
	// sluggard falls behind; its socket buffers fill, then its queue, then
	// it is dropped.
	start := time.Now()
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("%d %s", i, big)
		if err := a.Send(msg); err != nil {
			t.Fatal(err)
		}
		expect(t, a, "alice: "+msg)
		if got, ok := <-bGot; !ok || got != "alice: "+msg {
			t.Fatalf("bob got %.40q, want message %d", got, i)
		}
	}
	if seen := <-bDone; len(seen) != 1 || seen[0] != "[SYSTEM] sluggard left the chat" {
		t.Errorf("besides the chat, bob saw %q; want only the sluggard leaving", seen)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("%d messages took %v with a stalled reader", n, d)
	}
	ts.logged(t, evLeave, "sluggard left the chat (outbound queue full")
}

func TestMaxClients(t *testing.T) {
	ts := startTestServer(t, serverConfig{MaxClients: 2})
	join(t, ts.addr, "a")
	join(t, ts.addr, "b")
	_, err := dialTest(t, ts.addr, clientConfig{Name: "c"})
	var re *refusedError
	if !errors.As(err, &re) || re.Text != serverFullText {
		t.Fatalf("third client: %v", err)
	}
	ts.logged(t, evRefused, "server full")
}

func TestFramesAreWholeUnderConcurrentSends(t *testing.T) {
	ts := startTestServer(t, serverConfig{QueueLen: 4096})
	reader := join(t, ts.addr, "reader")
	const senders, each = 8, 50
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		cs := join(t, ts.addr, fmt.Sprintf("s%d", s))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				cs.Send(fmt.Sprintf("m%d %s", i, strings.Repeat("p", 200)))
			}
		}()
	}
	wg.Wait()
	// Every record must open: a split frame would fail to decrypt or parse.
	got := 0
	reader.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got < senders*each {
		text, err := reader.Recv()
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		if strings.Contains(text, strings.Repeat("p", 200)) {
			got++
		}
	}
	if reader.Dropped != 0 {
		t.Errorf("%d records did not decrypt", reader.Dropped)
	}
}

func TestPinning(t *testing.T) {
	dir := t.TempDir()
	known := filepath.Join(dir, "known_servers")
	ts := startTestServer(t, serverConfig{})
	var notes []string
	step := func(s handshakeStep) { notes = append(notes, s.Results...) }

	// First use: pinned.
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "a", KnownServers: known, Step: step}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(known)
	fp := fingerprint(&testRSAKey(t).PublicKey)
	if want := ts.addr + " classic " + fp + "\n"; string(data) != want {
		t.Fatalf("known_servers = %q, want %q", data, want)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "first seen now") {
		t.Errorf("notes: %q", notes)
	}
	// Second use: matches, nothing appended.
	notes = nil
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "b", KnownServers: known, Step: step}); err != nil {
		t.Fatal(err)
	}
	if d, _ := os.ReadFile(known); string(d) != string(data) || !strings.Contains(strings.Join(notes, "\n"), "matches the pin") {
		t.Errorf("second use: file %q, notes %q", d, notes)
	}

	// The same address with another key: refused before the name is sent.
	other, err := newServer(serverConfig{Key: otherRSAKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	ts.Shutdown()
	ln, err := net.Listen("tcp", ts.addr)
	if err != nil {
		t.Skipf("cannot reuse %s: %v", ts.addr, err)
	}
	go other.Serve(ln)
	defer other.Shutdown()
	_, err = dialTest(t, ts.addr, clientConfig{Name: "c", KnownServers: known})
	var km *keyMismatchError
	if !errors.As(err, &km) || km.Want != fp {
		t.Fatalf("changed key: err = %v", err)
	}
	// -fingerprint pins out of band; -insecure skips the check.
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "d", Fingerprint: fp}); !errors.As(err, &km) {
		t.Fatalf("-fingerprint mismatch: %v", err)
	}
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "e", Fingerprint: fingerprint(&otherRSAKey(t).PublicKey)}); err != nil {
		t.Fatalf("-fingerprint match: %v", err)
	}
	notes = nil
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "f", Insecure: true, Step: step}); err != nil || !strings.Contains(strings.Join(notes, "\n"), "NOT CHECKED") {
		t.Fatalf("-insecure: %v %q", err, notes)
	}
}

func TestDowngradeRefused(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	known := filepath.Join(t.TempDir(), "known_servers")
	fp := fingerprint(&testRSAKey(t).PublicKey)
	os.WriteFile(known, []byte(ts.addr+" modern "+fp+"\n"), 0o600)
	_, err := dialTest(t, ts.addr, clientConfig{Name: "a", KnownServers: known})
	var de *downgradeError
	if !errors.As(err, &de) {
		t.Fatalf("pinned modern, classic answer: %v", err)
	}
	_, err = dialTest(t, ts.addr, clientConfig{Name: "a", Suite: suiteModern, Insecure: true})
	if !errors.As(err, &de) {
		t.Fatalf("-suite modern against classic: %v", err)
	}
}

var (
	otherKeyOnce sync.Once
	otherKey     *rsa.PrivateKey
)

// otherRSAKey is a second server key, for key-change tests.
func otherRSAKey(t testing.TB) *rsa.PrivateKey {
	otherKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			panic(err)
		}
		otherKey = k
	})
	return otherKey
}

func encodeB64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

func decodeB64(dst, src []byte) (int, error) { return base64.StdEncoding.Decode(dst, src) }

func TestRateLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := startTestServer(t, serverConfig{Rate: 2, Burst: 3, Now: clock})
	a := join(t, ts.addr, "alice")
	for i := 0; i < 6; i++ {
		a.Send(fmt.Sprintf("m%d", i))
	}
	// The burst passes, then one "Slow down", and the excess is dropped.
	expect(t, a, "alice: m0")
	expect(t, a, "alice: m1")
	expect(t, a, "alice: m2")
	expect(t, a, "[ERROR] Slow down")
	mu.Lock()
	now = now.Add(time.Second) // two more lines' worth
	mu.Unlock()
	for i := 1; i <= 3; i++ {
		a.Send(fmt.Sprintf("later%d", i))
	}
	// m4 and m5 may be read before or after the clock moved, so the two
	// lines that pass are the next two in order from m4, m5 or later1; the
	// line after them gets the second "Slow down". Nothing else arrives.
	order := []string{"alice: m4", "alice: m5", "alice: later1", "alice: later2", "alice: later3"}
	var got []string
	a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < 3 {
		text, err := a.Recv()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, stampRE.ReplaceAllString(text, ""))
	}
	ok := got[2] == "[ERROR] Slow down"
	for i := 0; ok && i+1 < len(order); i++ {
		if got[0] == order[i] {
			ok = got[1] == order[i+1]
			break
		}
	}
	if !ok || got[0] == "alice: later3" {
		t.Errorf("after the clock moved: %q; want two consecutive lines of %q, then Slow down", got, order)
	}
	ts.logged(t, evLimit, "alice: over 2 lines/s")
}

func TestTokenBucketBoundaries(t *testing.T) {
	b := tokenBucket{rate: 1, burst: 2, tokens: 2}
	t0 := time.Unix(0, 0)
	if !b.allow(t0) || !b.allow(t0) || b.allow(t0) {
		t.Fatal("burst of 2 not exact")
	}
	if b.allow(t0.Add(999 * time.Millisecond)) {
		t.Error("allowed before a whole token refilled")
	}
	if !b.allow(t0.Add(2 * time.Second)) {
		t.Error("refused after a token refilled")
	}
	// Idle time never banks more than the burst.
	for i := 0; i < 2; i++ {
		if !b.allow(t0.Add(time.Hour)) {
			t.Fatal("burst not restored")
		}
	}
	if b.allow(t0.Add(time.Hour)) {
		t.Error("banked more than the burst")
	}
}

func TestMaxPerAddr(t *testing.T) {
	ts := startTestServer(t, serverConfig{MaxPerAddr: 2})
	join(t, ts.addr, "a")
	b := join(t, ts.addr, "b")
	_, err := dialTest(t, ts.addr, clientConfig{Name: "c"})
	var re *refusedError
	if !errors.As(err, &re) || re.Text != tooManyText {
		t.Fatalf("third connection from one address: %v", err)
	}
	ts.logged(t, evRefused, "too many connections from 127.0.0.1 (max 2)")
	// A slot frees when someone leaves.
	b.Send("/quit")
	expectClosed(t, b.conn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := dialTest(t, ts.addr, clientConfig{Name: "c"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChatRightBehindTheName(t *testing.T) {
	// A client may send its first line in the same segment as its name.
	ts := startTestServer(t, serverConfig{})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	first, _ := readFrame(br)
	rc, err := classicClientHandshake(frameRW{br, conn}, first, &handshakeConfig{CheckKey: anyServerKey})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := rc.seal([]byte("eager"))
	line, _ := rc.seal([]byte("first words"))
	conn.Write(appendFrame(appendFrame(nil, name), line)) // one write, one segment
	for {
		p, err := readFrame(br)
		if err != nil {
			t.Fatalf("never saw the first line: %v", err)
		}
		if text, _ := rc.open(p); strings.HasSuffix(string(text), "eager: first words") {
			return
		}
	}
}

func TestMaxFrameFlag(t *testing.T) {
	ts := startTestServer(t, serverConfig{MaxFrame: 2048})
	w := join(t, ts.addr, "watcher")
	a := join(t, ts.addr, "alice")
	a.Send(strings.Repeat("k", 1000)) // a 1,368-byte record: under the limit
	expect(t, w, "alice: "+strings.Repeat("k", 1000))
	a.Send(strings.Repeat("m", 1500)) // 2,028 bytes: just under
	expect(t, w, "alice: "+strings.Repeat("m", 1500))
	a.Send(strings.Repeat("n", 1600)) // 2,176 bytes: over the limit
	expectClosed(t, a.conn)
	expect(t, w, "[SYSTEM] alice left the chat")
	ts.logged(t, evLeave, "alice left the chat (protocol violation: frame too long: over 2048 bytes)")
}

func TestClientKilledMidHandshake(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	w := join(t, ts.addr, "watcher")
	for i, cut := range []int{0, 5, headerLen, headerLen + 100} {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := readFrame(conn); err != nil { // the public key
			t.Fatal(err)
		}
		// Part of the 266-byte key-transport frame, then the process dies.
		conn.Write(appendFrame(nil, make([]byte, rsaBlobSize))[:cut])
		conn.Close()
		if ev := ts.logged(t, evRefused, "closed during handshake"); i == 0 && ev.Text == "" {
			t.Fatal("no refusal logged")
		}
	}
	w.Send("unbothered")
	expect(t, w, "watcher: unbothered")
}

// TestOutQueueNotices checks that join and leave notices wait for company
// but never hold up, or change the order of, anything else.
func TestOutQueueNotices(t *testing.T) {
	q := newOutQueue(8)
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	type result struct {
		items []string
		ok    bool
	}
	take := func(wait time.Duration) <-chan result {
		c := make(chan result, 1)
		go func() {
			items, ok := q.take(delay, wait)
			c <- result{append([]string(nil), items...), ok}
		}()
		return c
	}
	expect := func(c <-chan result, want ...string) {
		t.Helper()
		select {
		case r := <-c:
			if !r.ok || strings.Join(r.items, ",") != strings.Join(want, ",") {
				t.Fatalf("take = %q, %v; want %q", r.items, r.ok, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("take did not return; want %q", want)
		}
	}

	// Notices alone wait; a chat line takes them along, in order.
	q.push("join a", true)
	q.push("join b", true)
	c := take(time.Hour)
	select {
	case r := <-c:
		t.Fatalf("notices alone were taken at once: %q", r.items)
	case <-time.After(30 * time.Millisecond):
	}
	q.push("chat", false)
	expect(c, "join a", "join b", "chat")

	// A chat line queued first is not held by a notice behind it.
	q.push("chat 2", false)
	q.push("join c", true)
	expect(take(time.Hour), "chat 2", "join c")

	// A queue half full of notices is not held back.
	for i := range q.limit/2 + 1 {
		q.push(fmt.Sprintf("join %d", i), true)
	}
	expect(take(time.Hour), "join 0", "join 1", "join 2", "join 3", "join 4")

	// Notices alone go after the delay, and when the queue closes.
	q.push("join d", true)
	expect(take(time.Millisecond), "join d")
	q.push("leave d", true)
	c = take(time.Hour)
	q.close()
	expect(c, "leave d")
	if items, ok := q.take(delay, time.Hour); ok {
		t.Fatalf("closed and empty: take = %q, true", items)
	}
}

// TestBurstLongerThanQueueKeepsReaders sends bursts far longer than the
// queue bound to clients that all read: pacing must slow the senders down
// instead of disconnecting readers whose writers are only waiting for CPU.
//
// Socket buffers are made large enough for the whole burst, so no writer
// ever blocks in a Write: pacing rightly does not wait for a client whose
// socket is full (it may have stopped reading), and on a loaded machine a
// reader that is not scheduled for a while would look like one.
func TestBurstLongerThanQueueKeepsReaders(t *testing.T) {
	ts := startTestServerOn(t, serverConfig{QueueLen: 16}, func(l net.Listener) net.Listener { return bigBuffers{l} })
	const readers, senders, each = 20, 2, 150
	var rs []*clientSession
	for i := range readers {
		cs := join(t, ts.addr, fmt.Sprintf("r%d", i))
		cs.conn.(*net.TCPConn).SetReadBuffer(1 << 20)
		rs = append(rs, cs)
	}
	counts := make([]int, readers)
	var wg sync.WaitGroup
	for i, cs := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			for counts[i] < senders*each {
				text, err := cs.Recv()
				if err != nil {
					return
				}
				if strings.Contains(text, ": burst ") {
					counts[i]++
				}
			}
		}()
	}
	for s := range senders {
		go func() {
			for j := range each {
				rs[s].Send(fmt.Sprintf("burst %d", j))
			}
		}()
	}
	wg.Wait()
	for i, n := range counts {
		if n != senders*each {
			t.Errorf("reader r%d got %d of %d messages", i, n, senders*each)
		}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, ev := range ts.log {
		if ev.Kind == evLeave {
			t.Errorf("a reader was dropped: %s", ev.Text)
		}
	}
}
