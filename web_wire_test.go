// Tests of the live wire (/wire): real servers on loopback watched by the
// live wire, its handler on an httptest server, and the event stream read
// as bytes: the frames of classic and modern sessions in order with their
// steps, no text, key or token on the public stream, the texts on the
// teacher's, the token's 403, the history a late or returning viewer gets,
// and viewers that are slow or stuck while the chat goes on.

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const wireTestToken = "teacher-token-5b1f0e"

// wireRig is a server watched by a live wire served over HTTP.
type wireRig struct {
	ts     *testServer
	lw     *liveWire
	web    *httptest.Server
	keylog string // the server's keylog file
}

func startWireRig(t *testing.T, suite, token string, tune func(*liveWire)) *wireRig {
	t.Helper()
	return startWireRigOn(t, suite, token, tune, nil)
}

// startWireRigOn is startWireRig with the web listener wrapped.
func startWireRigOn(t *testing.T, suite, token string, tune func(*liveWire), wrap func(net.Listener) net.Listener) *wireRig {
	t.Helper()
	lw := newLiveWire(token)
	if tune != nil {
		tune(lw)
	}
	web := httptest.NewUnstartedServer(lw)
	if wrap != nil {
		web.Listener = wrap(web.Listener)
	}
	web.Start()
	t.Cleanup(web.Close)
	t.Cleanup(lw.Close) // before web.Close: it ends the streams web.Close waits for
	path := filepath.Join(t.TempDir(), "keys.log")
	kl, err := openKeylog(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kl.Close() })
	rec, kl2 := lw.observe(nil, kl)
	if rec == nil || kl2 != kl {
		t.Fatalf("observe(nil, kl) = %p, %p; want a capture and the same keylog", rec, kl2)
	}
	ts := startTestServer(t, serverConfig{Suite: suite, Record: rec, Keylog: kl2})
	return &wireRig{ts: ts, lw: lw, web: web, keylog: path}
}

// sseEvent is one event read from the stream.
type sseEvent struct {
	ID, Kind string
	Data     []byte
}

// sseStream reads an event stream in its own goroutine, which ends when
// the stream does (the test's cleanup cancels it).
type sseStream struct {
	events chan sseEvent
	mu     sync.Mutex
	raw    bytes.Buffer
	status int
	done   chan struct{}
	lives  int // "live" events read by until: the history is sent
}

func openStream(t *testing.T, url, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sseStream{events: make(chan sseEvent, 4096), status: resp.StatusCode, done: make(chan struct{})}
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(s.done)
		close(s.events)
		return s
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type = %q", ct)
	}
	go func() {
		defer close(s.done)
		defer close(s.events)
		defer resp.Body.Close()
		br := bufio.NewReader(io.TeeReader(resp.Body, lockedWriter{&s.mu, &s.raw}))
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if ev.Kind != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Kind = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = []byte(line[6:])
			}
		}
	}()
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (s *sseStream) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.raw.Bytes())
}

// until reads events until ok says the last one is the one wanted, and
// returns those read.
func (s *sseStream) until(t *testing.T, what string, ok func(ev sseEvent) bool) []sseEvent {
	t.Helper()
	var got []sseEvent
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, open := <-s.events:
			if !open {
				t.Fatalf("the stream ended before %s; read %d events", what, len(got))
			}
			if ev.Kind == "live" {
				// The end of the history: noted, not returned.
				if ev.ID != "" || s.lives > 0 {
					t.Fatalf("a live event with id %q, after %d others", ev.ID, s.lives)
				}
				s.lives++
				continue
			}
			got = append(got, ev)
			if ok(ev) {
				return got
			}
		case <-timeout:
			t.Fatalf("no %s within 20 s; read %d events", what, len(got))
		}
	}
}

// frameOf decodes a frame event.
func frameOf(t *testing.T, ev sseEvent) wireFrame {
	t.Helper()
	var f wireFrame
	if err := json.Unmarshal(ev.Data, &f); err != nil {
		t.Fatalf("frame event %q: %v", ev.Data, err)
	}
	return f
}

// framesOf returns the frames of connection conn among evs.
func framesOf(t *testing.T, evs []sseEvent, conn int) []wireFrame {
	t.Helper()
	var out []wireFrame
	for _, ev := range evs {
		if ev.Kind == "frame" {
			if f := frameOf(t, ev); f.Conn == conn {
				out = append(out, f)
			}
		}
	}
	return out
}

// wireSteps are the steps (or kinds) each suite's first frames are shown as.
var wireSteps = map[string][]string{
	suiteClassic: {
		"s2c public-key Step 1 · Server RSA Public Key",
		"c2s key-transport Step 4 · Encrypted AES Key",
		"s2c sealed Step 6 · Encrypted Confirmation",
		"c2s sealed Step 8 · Encrypted Username",
		"s2c sealed Welcome",
	},
	suiteModern: {
		"s2c server-hello ServerHello · X25519 share, ML-KEM-768 key, RSA public key",
		"c2s client-hello ClientHello · X25519 share, ML-KEM-768 ciphertext",
		"s2c server-verify ServerVerify · RSA-PSS signature over the transcript",
		"s2c server-finished ServerFinished · proves the server derived the same keys",
		"c2s client-finished ClientFinished · proves the client derived the same keys",
		"c2s sealed Username",
		"s2c sealed Welcome",
	},
}

// TestLiveWireSessions: a classic and a modern session on the public
// stream, frame by frame with their steps; the raw public bytes carry no
// text, name, key or token; the teacher's stream carries the texts.
func TestLiveWireSessions(t *testing.T) {
	for _, suite := range []string{suiteClassic, suiteModern} {
		t.Run(suite, func(t *testing.T) {
			rig := startWireRig(t, suite, wireTestToken, nil)
			pub := openStream(t, rig.web.URL+"/wire/events", "")
			teach := openStream(t, rig.web.URL+"/wire/events?token="+wireTestToken, "")

			const name, other = "Ada_Lovelace-1", "Grace_Hopper-2"
			texts := []string{"meet me by the old mill at 7, bring the map!", "only you should read this, really"}
			ada := join(t, rig.ts.addr, name)
			grace := join(t, rig.ts.addr, other)
			expect(t, ada, "[SYSTEM] "+other+" joined (secure channel)")
			ada.Send(texts[0])
			expect(t, grace, name+": "+texts[0])
			grace.Send("/pm " + name + " " + texts[1])
			expect(t, ada, "[PM from "+other+"] "+texts[1])

			// The teacher's stream: the PM's text, on a frame to ada.
			tevs := teach.until(t, "the PM's text on the teacher's stream", func(ev sseEvent) bool {
				return ev.Kind == "frame" && strings.Contains(string(ev.Data), "[PM from "+other+"] "+texts[1])
			})
			last := tevs[len(tevs)-1].ID
			var hello wireHello
			if tevs[0].Kind != "hello" || json.Unmarshal(tevs[0].Data, &hello) != nil || !hello.Teacher {
				t.Fatalf("the teacher's stream begins %s %q", tevs[0].Kind, tevs[0].Data)
			}
			// The public stream, up to the same event.
			pevs := pub.until(t, "event "+last+" on the public stream", func(ev sseEvent) bool { return ev.ID == last })
			if pevs[0].Kind != "hello" || json.Unmarshal(pevs[0].Data, &hello) != nil || hello.Teacher {
				t.Fatalf("the public stream begins %s %q", pevs[0].Kind, pevs[0].Data)
			}
			if len(pevs) != len(tevs) {
				t.Fatalf("public stream: %d events, teacher's: %d", len(pevs), len(tevs))
			}
			for i := range pevs {
				if pevs[i].ID != tevs[i].ID || pevs[i].Kind != tevs[i].Kind {
					t.Fatalf("event %d: public %s %s, teacher's %s %s", i, pevs[i].ID, pevs[i].Kind, tevs[i].ID, tevs[i].Kind)
				}
			}

			// Each connection's handshake, in order, named as the seed's chart.
			for conn := 1; conn <= 2; conn++ {
				frames := framesOf(t, pevs, conn)
				want := wireSteps[suite]
				if len(frames) < len(want)+1 {
					t.Fatalf("conn %d: %d frames on the public stream, want at least %d", conn, len(frames), len(want)+1)
				}
				for i, w := range want {
					f := frames[i]
					if got := f.Dir + " " + f.Kind + " " + f.Step; got != w {
						t.Errorf("conn %d frame %d: %q, want %q", conn, i, got, w)
					}
					if f.Suite != suite || f.Header != fmt.Sprintf("%010d", f.Len) || f.Peer != nil {
						t.Errorf("conn %d frame %d: suite %q, header %q for %d B, peer %v", conn, i, f.Suite, f.Header, f.Len, f.Peer)
					}
				}
				for i := 1; i < len(frames); i++ {
					if frames[i].N <= frames[i-1].N {
						t.Errorf("conn %d: frame #%d after #%d", conn, frames[i].N, frames[i-1].N)
					}
				}
				if band := frames[len(want)-3].Band + frames[len(want)-2].Band; !strings.Contains(band, "SECURE CHANNEL ESTABLISHED") {
					t.Errorf("conn %d: no secure channel band after the handshake", conn)
				}
			}
			if suite == suiteClassic {
				f := framesOf(t, pevs, 1)[5]
				if f.Kind != "sealed" || !strings.Contains(strings.Join(f.Details, " "), "IV ") || f.Wire == "" {
					t.Errorf("a classic record shows no IV or bytes: %+v", f)
				}
			}

			// The public bytes: no text, no name, no key, no token.
			raw := pub.bytes()
			entries := readKeylogFile(t, rig.keylog)
			if len(entries) != 2 {
				t.Fatalf("the keylog holds %d keys, want 2", len(entries))
			}
			secret := append([]string{name, other, wireTestToken, "joined (secure channel)"}, texts...)
			for _, e := range entries {
				h := hex.EncodeToString(e.Secret)
				secret = append(secret, h, h[:16])
			}
			for _, s := range secret {
				if bytes.Contains(raw, []byte(s)) {
					t.Errorf("the public stream carries %q", s)
				}
			}
			traw := teach.bytes()
			for _, s := range append([]string{name, other}, texts...) {
				if !bytes.Contains(traw, []byte(s)) {
					t.Errorf("the teacher's stream lacks %q", s)
				}
			}
			if bytes.Contains(traw, []byte(wireTestToken)) {
				t.Error("the teacher's stream carries the token")
			}
		})
	}
}

// TestLiveWireToken: a wrong or empty token is 403 on the page and the
// stream, never the public view; without a teacher's view any token is; the
// public page has its strict Content-Security-Policy.
func TestLiveWireToken(t *testing.T) {
	lw := newLiveWire(wireTestToken)
	defer lw.Close()
	none := newLiveWire("")
	defer none.Close()
	get := func(h http.Handler, target string) *http.Response {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		rr := httptest.NewRecorder()
		ctx, cancel := context.WithCancel(req.Context())
		if strings.HasPrefix(target, "/wire/events") {
			cancel() // a stream that would run: end it at once
		} else {
			defer cancel()
		}
		h.ServeHTTP(rr, req.WithContext(ctx))
		return rr.Result()
	}
	for _, c := range []struct {
		h      http.Handler
		target string
		want   int
	}{
		{lw, "/wire", 200},
		{lw, "/wire/", 200},
		{lw, "/wire?token=" + wireTestToken, 200},
		{lw, "/wire?token=wrong", 403},
		{lw, "/wire?token=", 403},
		{lw, "/wire?token=" + wireTestToken + "x", 403},
		{lw, "/wire/events?token=wrong", 403},
		{lw, "/wire/events?token=" + wireTestToken, 200},
		{lw, "/wire/events", 200},
		{none, "/wire?token=", 403},
		{none, "/wire?token=anything", 403},
		{none, "/wire/events?token=x", 403},
		{lw, "/wire/wire.js", 200},
		{lw, "/wire/wire.css", 200},
		{lw, "/wire/nothing", 404},
	} {
		resp := get(c.h, c.target)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.target, resp.StatusCode, c.want)
		}
		if resp.StatusCode == 403 && bytes.Contains(body, []byte("<html")) {
			t.Errorf("GET %s: the 403 is the page", c.target)
		}
		if bytes.Contains(body, []byte(wireTestToken)) {
			t.Errorf("GET %s: the body carries the token", c.target)
		}
		if c.want == 200 && (c.target == "/wire" || strings.HasPrefix(c.target, "/wire?")) {
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("GET %s: Content-Security-Policy %q", c.target, csp)
			}
			if resp.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("GET %s: Referrer-Policy %q", c.target, resp.Header.Get("Referrer-Policy"))
			}
		}
	}
	tok := newWireToken()
	if len(tok) != 22 || tok == newWireToken() || strings.ContainsAny(tok, "+/=") {
		t.Errorf("newWireToken = %q", tok)
	}
	if u := teacherURL("http://192.0.2.7:8080/", "a+b"); u != "http://192.0.2.7:8080/wire?token=a%2Bb" {
		t.Errorf("teacherURL = %q", u)
	}
	req := httptest.NewRequest(http.MethodPost, "/wire", nil)
	rr := httptest.NewRecorder()
	lw.ServeHTTP(rr, req)
	if rr.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /wire: %d", rr.Code)
	}
}

// TestLiveWireKeepsTheRecording: a user's own -record goes on as before
// under the live wire's watch: the file replays to the same frames the
// stream showed. Without a user keylog the wire keeps the keys to itself.
func TestLiveWireKeepsTheRecording(t *testing.T) {
	lw := newLiveWire(wireTestToken)
	web := httptest.NewServer(lw)
	t.Cleanup(web.Close)
	t.Cleanup(lw.Close)
	path := filepath.Join(t.TempDir(), "run.capture")
	userRec, err := openCapture(path, "server", "test")
	if err != nil {
		t.Fatal(err)
	}
	rec, kl := lw.observe(userRec, nil)
	if rec != userRec || kl == nil {
		t.Fatalf("observe(rec, nil) = %p, %p: want the user's capture and a keylog of the wire's own", rec, kl)
	}
	ts := startTestServer(t, serverConfig{Suite: suiteModern, Record: rec, Keylog: kl})
	teach := openStream(t, web.URL+"/wire/events?token="+wireTestToken, "")
	a := join(t, ts.addr, "recorded")
	a.Send("in the file and on the wire")
	expect(t, a, "recorded: in the file and on the wire")
	a.Close()
	evs := teach.until(t, "the close", func(ev sseEvent) bool { return ev.Kind == "close" })
	if got := framesOf(t, evs, 1); len(got) != 9 || got[8].Peer == nil || got[8].Peer.Text == "" {
		t.Fatalf("the teacher's stream: %d frames of conn 1, want 9 with the echo's text", len(got))
	}
	if err := userRec.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n countFrames
	if err := replayCapture(f, &replayOptions{name: "run", view: "sniffer", keys: &replayKeys{}}, &n); err != nil {
		t.Fatal(err)
	}
	if n.frames != 9 {
		t.Fatalf("the recording replays to %d frames, want 9", n.frames)
	}
	if bytes.Contains(mustReadFile(t, path), []byte("in the file and on the wire")) {
		t.Fatal("the recording holds the text")
	}
}

// countFrames is a replay view that counts frames.
type countFrames struct {
	discardOutput
	frames int
}

func (c *countFrames) frame(*replayFrame) { c.frames++ }

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLiveWireLateViewer: a viewer who comes after the session gets the
// recent frames first, at most the history; one who reconnects with
// Last-Event-ID gets only what it missed.
func TestLiveWireLateViewer(t *testing.T) {
	rig := startWireRig(t, suiteClassic, "", nil)
	first := openStream(t, rig.web.URL+"/wire/events", "")
	first.until(t, "hello", func(ev sseEvent) bool { return ev.Kind == "hello" })
	a := join(t, rig.ts.addr, "early")
	a.Send("hello before anyone watched")
	expect(t, a, "early: hello before anyone watched")
	evs := first.until(t, "the echo's frame", func(ev sseEvent) bool {
		return ev.Kind == "frame" && frameOf(t, ev).N == 7 // key, blob, confirmation, name, welcome, text, echo
	})
	mid := evs[3].ID // say the first viewer had seen up to here (evs[0] is the open)

	late := openStream(t, rig.web.URL+"/wire/events", "")
	levs := late.until(t, "the late viewer's copy of the echo", func(ev sseEvent) bool { return ev.ID == evs[len(evs)-1].ID })
	var hello wireHello
	if levs[0].Kind != "hello" || json.Unmarshal(levs[0].Data, &hello) != nil || hello.Resumed || len(hello.Conns) != 1 || hello.Conns[0].Suite != suiteClassic {
		t.Fatalf("late viewer's hello: %s %q", levs[0].Kind, levs[0].Data)
	}
	if got := framesOf(t, levs, 1); len(got) != 7 || got[0].Step != "Step 1 · Server RSA Public Key" {
		t.Fatalf("the late viewer got %d frames of conn 1, the first %q", len(got), got[0].Step)
	}

	back := openStream(t, rig.web.URL+"/wire/events", mid)
	bevs := back.until(t, "the returning viewer's copy of the echo", func(ev sseEvent) bool { return ev.ID == evs[len(evs)-1].ID })
	if bevs[0].Kind != "hello" || json.Unmarshal(bevs[0].Data, &hello) != nil || !hello.Resumed {
		t.Fatalf("returning viewer's hello: %q", bevs[0].Data)
	}
	if len(bevs)-1 != len(evs)-4 || bevs[1].ID != evs[4].ID {
		t.Fatalf("the returning viewer got %d events from %s, want %d from %s", len(bevs)-1, bevs[1].ID, len(evs)-4, evs[4].ID)
	}

	// The history holds every event so far (evs, after the hello).
	rig.lw.hmu.Lock()
	n := len(rig.lw.hist)
	rig.lw.hmu.Unlock()
	if n != len(evs) {
		t.Fatalf("the history holds %d events, want %d", n, len(evs))
	}

	// Then the live event, and what crosses next.
	a.Send("and one after")
	late.until(t, "a frame after the history", func(ev sseEvent) bool { return ev.Kind == "frame" })
	if late.lives != 1 {
		t.Fatalf("the late viewer read %d live events between the history and what followed, want 1", late.lives)
	}
}

// waitPublished waits until the live wire has published n events.
func waitPublished(t *testing.T, lw *liveWire, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		lw.hmu.Lock()
		seq := lw.seq
		lw.hmu.Unlock()
		if seq >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the live wire published %d events in 20 s, want %d", seq, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLiveWireBoundedHistory: the history keeps histLen events; a new
// viewer gets those, and the oldest are gone.
func TestLiveWireBoundedHistory(t *testing.T) {
	rig := startWireRig(t, suiteModern, "", func(lw *liveWire) { lw.histLen = 4 })
	a := join(t, rig.ts.addr, "solo")
	a.Send("one")
	expect(t, a, "solo: one")
	waitPublished(t, rig.lw, 10) // the open and 9 frames
	watch := openStream(t, rig.web.URL+"/wire/events", "")
	evs := watch.until(t, "the echo", func(ev sseEvent) bool {
		return ev.Kind == "frame" && frameOf(t, ev).N == 9 // 5 handshake, name, welcome, text, echo
	})
	if len(evs) != 5 || evs[1].Kind != "frame" || frameOf(t, evs[1]).N != 6 {
		t.Fatalf("a new viewer got %d events, the first %s %q; want hello and the last 4 frames", len(evs), evs[1].Kind, evs[1].Data)
	}
}

// smallSendBuffers makes each accepted connection's send buffer small, so
// that a viewer who does not read blocks the server's writes at once.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestLiveWireStuckViewer: a viewer that never reads its stream does not
// hold the chat up, the viewers who read see every frame, and the stuck
// one is dropped once a write has waited writeTimeout.
func TestLiveWireStuckViewer(t *testing.T) {
	rig := startWireRigOn(t, suiteClassic, "", func(lw *liveWire) { lw.histLen = 16; lw.writeTimeout = 2 * time.Second },
		func(ln net.Listener) net.Listener { return smallSendBuffers{ln} })
	// The stuck viewer: a request, then never a read, on a small buffer.
	nc, err := net.Dial("tcp", rig.web.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(nc, "GET /wire/events HTTP/1.1\r\nHost: x\r\n\r\n")
	watch := openStream(t, rig.web.URL+"/wire/events", "")

	a := join(t, rig.ts.addr, "sender")
	b := join(t, rig.ts.addr, "reader")
	expect(t, a, "[SYSTEM] reader joined (secure channel)")
	big := strings.Repeat("x", 900)
	const n = 300
	for i := range n {
		a.Send(fmt.Sprintf("%d %s", i, big))
		expect(t, b, fmt.Sprintf("sender: %d %s", i, big))
	}
	// 5 handshake frames each, the join notice, and per message one frame
	// in and two out (the echo and the relay).
	want := 5*2 + 1 + 3*n
	evs := watch.until(t, "every frame", func(ev sseEvent) bool {
		return ev.Kind == "frame" && frameOf(t, ev).N == want
	})
	skips := 0
	for _, ev := range evs {
		if ev.Kind == "skipped" {
			skips++
		}
	}
	t.Logf("the reading viewer: %d events, %d skip notices", len(evs), skips)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rig.lw.hmu.Lock()
		viewers := len(rig.lw.viewers)
		rig.lw.hmu.Unlock()
		if viewers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d viewers, want the reading one only: the stuck one was not dropped", viewers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockingWriter is a viewer's ResponseWriter that takes nothing until
// released, and honours write deadlines.
type blockingWriter struct {
	h        http.Header
	mu       sync.Mutex
	buf      bytes.Buffer
	release  chan struct{}
	deadline time.Time
	writes   chan struct{}
}

func (w *blockingWriter) Header() http.Header { return w.h }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) FlushError() error   { return nil }
func (w *blockingWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	w.deadline = t
	w.mu.Unlock()
	return nil
}
func (w *blockingWriter) Write(p []byte) (int, error) {
	select {
	case w.writes <- struct{}{}:
	default:
	}
	w.mu.Lock()
	dl := w.deadline
	w.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		timer := time.NewTimer(time.Until(dl))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-w.release:
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestLiveWireSlowViewer: a viewer whose writes block while more events
// go by than the history holds is told how many it skipped, then goes on;
// one whose write never returns is dropped after writeTimeout. Neither
// holds up publish.
func TestLiveWireSlowViewer(t *testing.T) {
	lw := newLiveWire("")
	lw.histLen = 8
	defer lw.Close()
	serve := func(w *blockingWriter) chan struct{} {
		done := make(chan struct{})
		req := httptest.NewRequest(http.MethodGet, "/wire/events", nil)
		ctx, cancel := context.WithCancel(req.Context())
		t.Cleanup(func() { cancel(); <-done })
		go func() {
			defer close(done)
			lw.ServeHTTP(w, req.WithContext(ctx))
		}()
		return done
	}
	viewers := func() int {
		lw.hmu.Lock()
		defer lw.hmu.Unlock()
		return len(lw.viewers)
	}

	slow := &blockingWriter{h: http.Header{}, release: make(chan struct{}), writes: make(chan struct{}, 1)}
	serve(slow)
	<-slow.writes // blocked in its first write, the hello
	for i := range 50 {
		lw.publish("note", mustJSON(wireNote{Text: fmt.Sprint("event ", i)}), nil) // never waits for the viewer
	}
	close(slow.release)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(slow.text(), "event 49") {
		if time.Now().After(deadline) {
			t.Fatalf("the slow viewer never got the last event:\n%s", slow.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := slow.text()
	if !strings.Contains(got, "event: skipped\ndata: {\"skipped\":42,") || strings.Contains(got, `"event 41"`) || !strings.Contains(got, `"event 42"`) {
		t.Fatalf("the slow viewer's stream:\n%s", got)
	}

	// A write deadline, not a wait: the viewer is dropped when it passes.
	lw2 := newLiveWire("")
	lw2.writeTimeout = 50 * time.Millisecond
	defer lw2.Close()
	lw = lw2
	stuck := &blockingWriter{h: http.Header{}, release: make(chan struct{}), writes: make(chan struct{}, 1)}
	done := serve(stuck)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a viewer whose writes never return was not dropped")
	}
	if n := viewers(); n != 0 {
		t.Fatalf("%d viewers left, want none", n)
	}
}

func (w *blockingWriter) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLiveFeedGap: past its bound the feed drops data and tells the engine
// of the gap before the connection's next record; opens and closes always
// get through.
func TestLiveFeedGap(t *testing.T) {
	f := newLiveFeed(100)
	f.record(captureEvent{Kind: capOpen, Conn: 1})
	f.record(captureEvent{Kind: capData, Conn: 1, Dir: wireC2S, Data: make([]byte, 80)})
	f.record(captureEvent{Kind: capData, Conn: 1, Dir: wireC2S, Data: make([]byte, 30)}) // over the bound
	f.record(captureEvent{Kind: capData, Conn: 1, Dir: wireS2C, Data: make([]byte, 25)}) // over it too
	var ev captureEvent
	for _, want := range []string{"open", "data 80"} {
		if err := f.next(&ev); err != nil || describeEvent(ev) != want {
			t.Fatalf("next = %q, %v; want %q", describeEvent(ev), err, want)
		}
	}
	f.record(captureEvent{Kind: capData, Conn: 1, Dir: wireC2S, Data: make([]byte, 10)})
	f.record(captureEvent{Kind: capClose, Conn: 1})
	for _, want := range []string{"gap c2s 30", "data 10", "gap s2c 25", "close"} {
		if err := f.next(&ev); err != nil || describeEvent(ev) != want {
			t.Fatalf("next = %q, %v; want %q", describeEvent(ev), err, want)
		}
	}
	f.close()
	if err := f.next(&ev); err != io.EOF {
		t.Fatalf("next after close = %v", err)
	}
}

func describeEvent(ev captureEvent) string {
	switch ev.Kind {
	case capData:
		return fmt.Sprintf("data %d", len(ev.Data))
	case capGap:
		return fmt.Sprintf("gap %s %d", ev.Dir, ev.Gap)
	}
	return ev.Kind
}
