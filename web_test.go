// Tests of classroom mode's transport (web.go): WebSocket clients on real
// loopback sockets, through the same handler as TCP ones, with their bad
// input, capture, replay, tap -web, bench over WebSocket and the server's
// -web flags.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startWebFor serves ts's /ws and the client page on a loopback port, as
// -web does; its refusals go to ts's log. It stops before the server.
func startWebFor(t *testing.T, ts *testServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := startWebServer(ln, webConfig{
		Client: webClientFiles(),
		Conn:   func(nc net.Conn) { ts.serveConn(nc) },
		Log:    func(msg string) { ts.logf(evRefused, "%s", msg) },
	})
	t.Cleanup(func() {
		if err := web.Close(); err != nil {
			t.Errorf("web server: %v", err)
		}
	})
	return ln.Addr().String()
}

// dialWSTest opens a WebSocket to webAddr's /ws as a net.Conn.
func dialWSTest(t testing.TB, webAddr string) *wsConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialWS(ctx, wsURL(webAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// joinWS runs the real client handshake over a WebSocket.
func joinWS(t testing.TB, webAddr, name string, cfg clientConfig) *clientSession {
	t.Helper()
	cfg.Name, cfg.Addr, cfg.Insecure = name, webAddr, true
	cs, err := clientHandshake(dialWSTest(t, webAddr), cfg)
	if err != nil {
		t.Fatalf("%s over WebSocket: %v", name, err)
	}
	return cs
}

// rawWS is a WebSocket that has done the classic handshake and joined as
// name, so a test can send any message at all: ws for messages, rc to seal.
func rawWS(t *testing.T, webAddr, name string) (*websocket.Conn, *classicCipher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL(webAddr), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { ws.CloseNow() })
	// The handshake through a NetConn that is never closed: ws stays open.
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	first, err := readFrame(br)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := classicClientHandshake(frameRW{br, nc}, first, &handshakeConfig{CheckKey: anyServerKey})
	if err != nil {
		t.Fatal(err)
	}
	rc := hs.(*classicCipher)
	p, _ := rc.seal([]byte(name))
	writeFrame(nc, p)
	w, err := readFrame(br)
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := rc.open(w); !strings.Contains(string(text), "Welcome") {
		t.Fatalf("welcome = %q", text)
	}
	nc.SetDeadline(time.Time{})
	return ws, rc
}

// wsWrite sends one binary message.
func wsWrite(t *testing.T, ws *websocket.Conn, typ websocket.MessageType, p []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, typ, p); err != nil {
		t.Fatalf("writing a message: %v", err)
	}
}

// wsExpectClosed reads until the server closes the WebSocket, and returns
// the close status it sent (-1 for none).
func wsExpectClosed(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the server did not close the WebSocket")
			}
			return websocket.CloseStatus(err)
		}
	}
}

func TestWebSocketChatsWithTCP(t *testing.T) {
	for _, suite := range []string{suiteClassic, suiteModern} {
		t.Run(suite, func(t *testing.T) {
			ts := startTestServer(t, serverConfig{Suite: suite})
			webAddr := startWebFor(t, ts)
			bob := join(t, ts.addr, "bob")
			alice := joinWS(t, webAddr, "alice", clientConfig{})
			if alice.Suite != suite {
				t.Errorf("alice's suite %q, want %q", alice.Suite, suite)
			}
			expect(t, bob, "[SYSTEM] alice joined (secure channel)")
			ts.logged(t, evJoin, "alice joined from 127.0.0.1:")

			alice.Send("hello from the browser")
			expect(t, bob, "alice: hello from the browser")
			expect(t, alice, "alice: hello from the browser")
			bob.Send("hello from the terminal")
			expect(t, alice, "bob: hello from the terminal")
			alice.Send("/pm bob just you")
			expect(t, bob, "[PM from alice] just you")
			bob.Send("/pm alice and back")
			expect(t, alice, "[PM from bob] and back")
			alice.Send("/list")
			alice.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				text, err := alice.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(text, "bob") && strings.Contains(text, "alice") && !strings.Contains(text, "PM") {
					break
				}
			}
			alice.Send("/quit")
			expect(t, bob, "[SYSTEM] alice left the chat")
			ts.logged(t, evLeave, "alice left the chat (/quit)")
		})
	}
}

func TestWebSocketMessageBoundariesMeanNothing(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	webAddr := startWebFor(t, ts)
	bob := join(t, ts.addr, "bob")
	ws, rc := rawWS(t, webAddr, "carol")
	expect(t, bob, "[SYSTEM] carol joined (secure channel)")

	frame := func(text string) []byte {
		p, err := rc.seal([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return appendFrame(nil, p)
	}
	// One frame split mid-header and mid-payload over three messages.
	f := frame("split in three")
	wsWrite(t, ws, websocket.MessageBinary, f[:4])
	wsWrite(t, ws, websocket.MessageBinary, f[4:20])
	wsWrite(t, ws, websocket.MessageBinary, f[20:])
	expect(t, bob, "carol: split in three")
	// Three frames in one message, the last one cut and finished by the next.
	var many []byte
	many = append(many, frame("one")...)
	many = append(many, frame("two")...)
	third := frame("three")
	many = append(many, third[:7]...)
	wsWrite(t, ws, websocket.MessageBinary, many)
	wsWrite(t, ws, websocket.MessageBinary, third[7:])
	for _, want := range []string{"carol: one", "carol: two", "carol: three"} {
		if skipped := expect(t, bob, want); len(skipped) != 0 {
			t.Errorf("before %q bob saw %q", want, skipped)
		}
	}
}

func TestWebCrossOriginRefused(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	webAddr := startWebFor(t, ts)
	bob := join(t, ts.addr, "bob")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, origin := range []string{"http://evil.example", "null", "http://" + webAddr + ".evil.example"} {
		h := http.Header{"Origin": {origin}}
		_, resp, err := websocket.Dial(ctx, wsURL(webAddr), &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			t.Fatalf("Origin %s: the WebSocket opened", origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("Origin %s: %v (response %v), want 403", origin, err, resp)
		}
		ts.logged(t, evRefused, fmt.Sprintf("cross-site WebSocket refused: Origin %q", origin))
	}
	// The page's own origin is let in, and bob noticed nothing.
	h := http.Header{"Origin": {"http://" + webAddr}}
	c, _, err := websocket.Dial(ctx, wsURL(webAddr), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("same origin: %v", err)
	}
	c.CloseNow()
	bob.Send("still here")
	if skipped := expect(t, bob, "bob: still here"); len(skipped) != 0 {
		t.Errorf("bob saw %q", skipped)
	}
}

func TestWebTextMessageDropsOnlyThatClient(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	webAddr := startWebFor(t, ts)
	bob := join(t, ts.addr, "bob")
	alice := joinWS(t, webAddr, "alice", clientConfig{})
	expect(t, bob, "[SYSTEM] alice joined (secure channel)")
	ws, _ := rawWS(t, webAddr, "mallory")
	expect(t, bob, "[SYSTEM] mallory joined (secure channel)")

	wsWrite(t, ws, websocket.MessageText, []byte("0000000005hello"))
	if status := wsExpectClosed(t, ws); status != websocket.StatusUnsupportedData {
		t.Errorf("closed with %v, want %v", status, websocket.StatusUnsupportedData)
	}
	expect(t, bob, "[SYSTEM] mallory left the chat")
	ts.logged(t, evLeave, "mallory left the chat (protocol violation: a text message")

	alice.Send("unaffected")
	expect(t, bob, "alice: unaffected")
	expect(t, alice, "alice: unaffected")
}

func TestWebFrameViolationsDropOnlyThatClient(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	webAddr := startWebFor(t, ts)
	watcher := join(t, ts.addr, "watcher")
	for i, bad := range []string{"9999999999", "0000065537", "00000001x0", "0x00000010"} {
		name := fmt.Sprintf("bad%d", i)
		ws, _ := rawWS(t, webAddr, name)
		expect(t, watcher, "[SYSTEM] "+name+" joined (secure channel)")
		wsWrite(t, ws, websocket.MessageBinary, []byte(bad))
		wsExpectClosed(t, ws)
		expect(t, watcher, "[SYSTEM] "+name+" left the chat")
		// The same line as its TCP twin (TestFrameViolationsDropOnlyThatClient).
		want := name + " left the chat (protocol violation: " + errFrameHeader.Error() + ")"
		if i < 2 {
			want = name + " left the chat (protocol violation: " + errFrameTooLong.Error() + ": over 65536 bytes)"
		}
		ts.logged(t, evLeave, want)
	}
	// A message over the bound, though every frame in it would be legal.
	ws, rc := rawWS(t, webAddr, "big")
	expect(t, watcher, "[SYSTEM] big joined (secure channel)")
	p, _ := rc.seal([]byte("x"))
	var msg []byte
	for len(msg) <= wsMaxMessage {
		msg = appendFrame(msg, p)
	}
	wsWrite(t, ws, websocket.MessageBinary, msg)
	if status := wsExpectClosed(t, ws); status != websocket.StatusMessageTooBig {
		t.Errorf("closed with %v, want %v", status, websocket.StatusMessageTooBig)
	}
	ts.logged(t, evLeave, fmt.Sprintf("big left the chat (protocol violation: a WebSocket message over %d bytes)", wsMaxMessage))
	// A frame cut by a close, as TestHalfFrameThenDisconnect.
	ws, _ = rawWS(t, webAddr, "half")
	expect(t, watcher, "[SYSTEM] half joined (secure channel)")
	wsWrite(t, ws, websocket.MessageBinary, []byte("0000000100abc"))
	ws.Close(websocket.StatusNormalClosure, "")
	ts.logged(t, evLeave, "half left the chat (connection closed mid-frame)")

	watcher.Send("still fine")
	if skipped := expect(t, watcher, "watcher: still fine"); len(skipped) != 1 || !strings.HasSuffix(skipped[0], "half left the chat") {
		t.Errorf("watcher saw %q", skipped)
	}
}

func TestWebHandshakeTimeout(t *testing.T) {
	ts := startTestServer(t, serverConfig{HandshakeTimeout: 200 * time.Millisecond})
	webAddr := startWebFor(t, ts)
	c := dialWSTest(t, webAddr)
	expectClosed(t, c) // reads the PEM frame, then the close
	ts.logged(t, evRefused, "handshake timeout during handshake")
}

func TestWebPerAddrLimitCountsWebSockets(t *testing.T) {
	ts := startTestServer(t, serverConfig{MaxPerAddr: 3})
	webAddr := startWebFor(t, ts)
	bob := join(t, ts.addr, "bob") // TCP and WebSocket count together
	joinWS(t, webAddr, "a", clientConfig{})
	b := joinWS(t, webAddr, "b", clientConfig{})
	const connects = 1000
	for i := range connects {
		cs, err := clientHandshake(dialWSTest(t, webAddr), clientConfig{Name: fmt.Sprint("x", i), Addr: webAddr, Insecure: true})
		var re *refusedError
		if !errors.As(err, &re) || re.Text != tooManyText {
			if cs != nil {
				cs.Close()
			}
			t.Fatalf("WebSocket connect %d from one address: %v", i, err)
		}
	}
	ev := ts.logged(t, evRefused, "too many connections from 127.0.0.1 (max 3)")
	if !regexp.MustCompile(`^127\.0\.0\.1:\d+: `).MatchString(ev.Text) {
		t.Errorf("refusal names %q, not the real peer address", ev.Text)
	}
	// A TCP connect is refused the same way.
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "y"}); err == nil || !strings.Contains(err.Error(), "Too many connections") {
		t.Errorf("TCP connect over the limit: %v", err)
	}
	// A slot frees when a WebSocket client leaves.
	b.Send("/quit")
	expectClosed(t, b.conn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := clientHandshake(dialWSTest(t, webAddr), clientConfig{Name: "c", Addr: webAddr, Insecure: true})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	bob.Send("fine")
	expect(t, bob, "bob: fine")
}

func TestWebCaptureReplayAndSend(t *testing.T) {
	dir := t.TempDir()
	capPath, keysPath := filepath.Join(dir, "chat.jsonl"), filepath.Join(dir, "keys.log")
	rec, err := openCapture(capPath, "server", "test")
	if err != nil {
		t.Fatal(err)
	}
	kl, err := openKeylog(keysPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, serverConfig{Record: rec, Keylog: kl})
	webAddr := startWebFor(t, ts)
	bob := join(t, ts.addr, "bob") // conn 1, TCP
	alice := joinWS(t, webAddr, "alice", clientConfig{})
	expect(t, bob, "[SYSTEM] alice joined (secure channel)")
	alice.Send("pay bob 10 coins")
	expect(t, bob, "alice: pay bob 10 coins")
	alice.Send("/quit")
	expect(t, bob, "[SYSTEM] alice left the chat")
	ts.logged(t, evLeave, "alice left the chat (/quit)")
	bob.Close()
	ts.logged(t, evLeave, "bob left the chat")
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	kl.Close()

	data, err := os.ReadFile(capPath)
	if err != nil {
		t.Fatal(err)
	}
	var opens []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, `"ev":"open"`) {
			opens = append(opens, l)
		}
	}
	if len(opens) != 2 || strings.Contains(opens[0], "transport") || !strings.HasSuffix(opens[1], `,"transport":"websocket"}`) {
		t.Fatalf("open events:\n%s", strings.Join(opens, "\n"))
	}
	_, evs := readEvents(t, string(data))
	if evs[0].Transport != "" {
		t.Errorf("TCP open read as transport %q", evs[0].Transport)
	}
	for _, ev := range evs {
		if ev.Kind == capOpen && ev.Conn == 2 && ev.Transport != "websocket" {
			t.Errorf("conn 2 read as transport %q", ev.Transport)
		}
	}

	var texts []string
	for _, f := range replayJSON(t, "-keylog", keysPath, "-conn", "2", capPath) {
		if f.Dir == "c2s" && f.Plaintext != nil {
			texts = append(texts, *f.Plaintext)
		}
	}
	if got := strings.Join(texts, "|"); got != "alice|pay bob 10 coins|/quit" {
		t.Errorf("replay of the WebSocket connection: %q", got)
	}
	html := filepath.Join(dir, "lesson.html")
	if code, out, errs := runSend(t, "-keylog", keysPath, "-html", html, capPath); code != 0 {
		t.Fatalf("replay -html: exit %d\n%s%s", code, out, errs)
	}
	if page, _ := os.ReadFile(html); !bytes.Contains(page, []byte("pay bob 10 coins")) {
		t.Error("the lesson page lacks the WebSocket client's message")
	}

	// The replay attack on the recorded WebSocket connection, over TCP.
	bob = join(t, ts.addr, "bob")
	code, out, errs := runSend(t, "-send", ts.addr, "-conn", "2", capPath)
	if code != 0 || !strings.Contains(out, "ACCEPTED") {
		t.Fatalf("replay -send: exit %d\n%s%s", code, out, errs)
	}
	expect(t, bob, "alice: pay bob 10 coins")
}

// tapWeb is a tap on tapListen (a TCP address when listen is given, and
// -web), run by run, with its report lines collected.
type tapWeb struct {
	tcpAddr, webAddr string
	reports          func() []string
	stop             func() // ends the tap and its web side; safe to call twice
}

func startTapWeb(t *testing.T, listen string, run func(ctx context.Context, ln net.Listener, report func(string)) error) *tapWeb {
	t.Helper()
	var mu sync.Mutex
	var lines []string
	report := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, s)
	}
	ln, web, where, err := tapListen(listen, "127.0.0.1:0", report)
	if err != nil {
		t.Fatal(err)
	}
	tw := &tapWeb{reports: func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}}
	m := regexp.MustCompile(`http://(\S+)/ \(browsers\)$`).FindStringSubmatch(where)
	if m == nil {
		t.Fatalf("where = %q", where)
	}
	tw.webAddr = m[1]
	if listen != "" {
		tw.tcpAddr = ln.Addr().String()
		if !strings.HasPrefix(where, tw.tcpAddr+" and http://") {
			t.Errorf("where = %q", where)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, report) }()
	var once sync.Once
	tw.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("tap: %v", err)
			}
			if err := web.Close(); err != nil {
				t.Errorf("tap -web: %v", err)
			}
		})
	}
	t.Cleanup(tw.stop)
	return tw
}

func TestTapWebRewritesABrowserStudent(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	spec, err := parseRewrite("pay bob 10=pay bob 90")
	if err != nil {
		t.Fatal(err)
	}
	capPath := filepath.Join(t.TempDir(), "tap.jsonl")
	rec, err := openCapture(capPath, "tap", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	tw := startTapWeb(t, "127.0.0.1:0", func(ctx context.Context, ln net.Listener, report func(string)) error {
		return rewriteTap(ctx, ln, ts.addr, spec, rec, report)
	})

	bob := join(t, ts.addr, "bob")
	alice := joinWS(t, tw.webAddr, "alice", clientConfig{})
	expect(t, bob, "[SYSTEM] alice joined (secure channel)")
	// A terminal client through the same tap, as before.
	carol := join(t, tw.tcpAddr, "carol")
	expect(t, bob, "[SYSTEM] carol joined (secure channel)")

	alice.Send("pay bob 10 coins")
	expect(t, bob, "alice: pay bob 90 coins")
	carol.Send("pay bob 10 coins")
	expect(t, bob, "carol: pay bob 90 coins")
	alice.Close()
	carol.Close()
	waitReport(t, tw.reports, "closed after 1 rewritten record(s)")
	tw.stop()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(capPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), `"transport":"websocket"`); n != 1 {
		t.Errorf("%d open events say websocket, want 1 (alice's leg to the tap):\n%s", n, data)
	}
}

func TestTapWebMITMReadsABrowserStudent(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	key, err := mitmKey()
	if err != nil {
		t.Fatal(err)
	}
	// -web alone, no -listen.
	tw := startTapWeb(t, "", func(ctx context.Context, ln net.Listener, report func(string)) error {
		return runMITMTap(ctx, ln, ts.addr, key, nil, report)
	})
	bob := join(t, ts.addr, "bob")
	alice := joinWS(t, tw.webAddr, "alice", clientConfig{})
	expect(t, bob, "[SYSTEM] alice joined (secure channel)")
	alice.Send("meet at noon")
	expect(t, bob, "alice: meet at noon")
	waitReport(t, tw.reports, "meet at noon")
}

func TestBenchOverWebSocket(t *testing.T) {
	before := runtime.NumGoroutine()
	st, err := bench(context.Background(), benchConfig{Transport: transportWebSocket, Clients: 20, Senders: 3, Messages: 10, Size: 64, Timeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Addr, "ws://127.0.0.1:") || st.Transport != transportWebSocket {
		t.Errorf("loaded %s over %s", st.Addr, st.Transport)
	}
	if st.Connected != 20 || st.Expected != 20*3*10 || st.Delivered != st.Expected || st.Lost != 0 || !st.OK() {
		t.Errorf("connected %d, delivered %d of %d, lost %d (%s)", st.Connected, st.Delivered, st.Expected, st.Lost, benchVerdict(st))
	}
	waitGoroutines(t, before)
}

func TestRunBenchTransportFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runBench(context.Background(), []string{"-transport", "carrier-pigeon"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-transport must be tcp, websocket or tcp,websocket") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	errb.Reset()
	if code := runBench(context.Background(), []string{"-transport", "websocket", "-idle", "3"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-idle measures TCP connections only") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	args := []string{"-transport", "tcp,websocket", "-clients", "6", "-senders", "2", "-messages", "5", "-warmup", "0"}
	if code := runBench(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"encchat bench: classic suite, in-process", "encchat bench: classic suite over WebSocket, in-process server on ws://", "websocket / tcp: handshakes/s "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestWebFlags(t *testing.T) {
	for _, c := range []struct{ web, token, want string }{
		{"", "", ""},
		{":8080", "", ""},
		{"127.0.0.1:0", "teacher-secret-1", ""},
		{"", "teacher-secret-1", "-web-token needs -web"},
		{"8080", "", "-web wants HOST:PORT"},
		{":8080", "short", "at least 12 characters"},
		{":8080", "has a space in it", "only letters, digits"},
	} {
		got := webFlagsError(c.web, c.token)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("webFlagsError(%q, %q) = %q, want %q", c.web, c.token, got, c.want)
		}
	}
	if a, b := newWireToken(), newWireToken(); a == b || len(a) < 20 || checkWebToken(a) != "" {
		t.Errorf("tokens %q and %q", a, b)
	}
}

// TestRunServerWeb runs "encchat server -web": the banner's URLs, the page,
// /wire, a browser client beside a terminal one, and a clean stop.
func TestRunServerWeb(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runServer(ctx, []string{"-listen", "127.0.0.1:0", "-web", "127.0.0.1:0", "-ephemeral", "-no-color"}, &out, &errb)
	}()
	banner := regexp.MustCompile(`Server: (\S+)\nSuite: .*\n(?:.*\n)*?Students open: http://(\S+)/\nLive wire: http://\S+/wire .*\nTeacher's wire: http://\S+/wire\?token=([A-Za-z0-9_-]{22}) `)
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil; time.Sleep(10 * time.Millisecond) {
		if m = banner.FindStringSubmatch(out.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no banner with the URLs:\n%s%s", out.String(), errb.String())
		}
	}
	tcpAddr, webAddr := m[1], m[2]
	// Where go generate has not built the client, the server says how to.
	if missing := webClientMissing(); (missing != "") != strings.Contains(errb.String(), "go generate") {
		t.Errorf("client missing: %q; the server's warnings:\n%s", missing, errb.String())
	}

	resp, err := http.Get("http://" + webAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(bytes.ToLower(page), []byte("<html")) {
		t.Errorf("GET /: %d %q", resp.StatusCode, page)
	}
	for path, want := range map[string]int{
		"/wire":                     http.StatusOK,
		"/wire?token=" + m[3]:       http.StatusOK,
		"/wire?token=not-the-token": http.StatusForbidden,
	} {
		resp, err := http.Get("http://" + webAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	bob := join(t, tcpAddr, "bob")
	alice := joinWS(t, webAddr, "alice", clientConfig{})
	expect(t, bob, "[SYSTEM] alice joined (secure channel)")
	alice.Send("hi")
	expect(t, bob, "alice: hi")

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not stop")
	}
	expect(t, alice, "[SYSTEM] Server shutting down")
	if _, err := net.DialTimeout("tcp", webAddr, time.Second); err == nil {
		t.Error("the web port still accepts after the server stopped")
	}
}

// TestWebStopsWithTheServer stops a server with a browser client joined, a
// request half sent and /wire's stream open, in cmd_server's order, and
// checks that nothing it started is left running.
func TestWebStopsWithTheServer(t *testing.T) {
	before := runtime.NumGoroutine()
	wire := newLiveWire("teacher-token-123")
	rec, kl := wire.observe(nil, nil)
	srv, err := newServer(serverConfig{Key: testRSAKey(t), Record: rec, Keylog: kl})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	webLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := startWebServer(webLn, webConfig{Client: webClientFiles(), Wire: wire, Conn: func(nc net.Conn) { srv.serveConn(nc) }})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	webAddr := webLn.Addr().String()

	alice := joinWS(t, webAddr, "alice", clientConfig{})
	half, err := net.Dial("tcp", webAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	half.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n")) // never finished
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + webAddr + "/wire/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/wire/events: %d", resp.StatusCode)
	}

	if err := web.Close(); err != nil {
		t.Errorf("web.Close: %v", err)
	}
	srv.Shutdown()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	wire.Close()
	expect(t, alice, "[SYSTEM] Server shutting down")
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("/wire/events after the stop: %v", err)
	}
	alice.Close()
	half.Close()
	resp.Body.Close()
	client.CloseIdleConnections()
	waitGoroutines(t, before)
}

// BenchmarkJoin is one client's dial, classic handshake and username, up
// to the welcome as bench times it, over TCP and over WebSocket, one client
// at a time against one server: what the WebSocket adds to a join (the
// HTTP upgrade) beside the RSA work both share.
func BenchmarkJoin(b *testing.B) {
	bs, err := startBenchServer(testRSAKey(b), suiteClassic, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer bs.stop()
	if err := bs.startWeb(); err != nil {
		b.Fatal(err)
	}
	for _, target := range []struct{ name, addr string }{
		{transportTCP, bs.addr},
		{transportWebSocket, benchTarget(bs.webAddr, transportWebSocket)},
	} {
		b.Run(target.name, func(b *testing.B) {
			var d net.Dialer
			for i := range b.N {
				conn, err := benchDial(context.Background(), &d, target.addr)
				if err != nil {
					b.Fatal(err)
				}
				cs, err := clientHandshake(conn, clientConfig{Name: fmt.Sprint("j", i), Addr: target.addr, Insecure: true})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cs.Close()
				b.StartTimer()
			}
		})
	}
}

// TestWebSocketSocketTuning: the hub's socket tuning (bounded buffers, and
// the reset of a client dropped for not reading) reaches the TCP
// connection under a WebSocket, through a recording's wrapper too.
func TestWebSocketSocketTuning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan net.Conn, 1)
	rec := newCapture(&memFile{}, "server", ln.Addr().String(), nil)
	defer rec.Close()
	web := startWebServer(ln, webConfig{Conn: func(nc net.Conn) { got <- rec.wrapConn(nc, "server") }})
	defer web.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialWS(ctx, wsURL(ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn := <-got
	defer conn.Close()
	tc := tcpConn(conn)
	if tc == nil {
		t.Fatalf("tcpConn(%T) is nil: the hub cannot bound or reset a WebSocket's socket", conn)
	}
	if tc.RemoteAddr().String() != c.raw.LocalAddr().String() {
		t.Errorf("tcpConn gives the socket of %s, want the client's %s", tc.RemoteAddr(), c.raw.LocalAddr())
	}
}
