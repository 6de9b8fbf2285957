// Tests of the client's UI in process (repl.go): piped stdin, the name
// prompt, what a malicious server can print, a server that goes away, the
// key warning, exit codes and the colours of texts. The helpers here run a
// server, or a fake one, for repl_pty_test.go too.

package main

import (
	"bytes"
	"context"
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
	"unicode"
)

const replWait = 10 * time.Second // every wait in these tests is bounded

// replServer runs an encchat server on a loopback port until the test ends.
type replServer struct {
	srv  *server
	addr string
	done chan error

	mu     sync.Mutex
	events []serverEvent
}

func startReplServer(t *testing.T) *replServer {
	t.Helper()
	s := &replServer{done: make(chan error, 1)}
	srv, err := newServer(serverConfig{Key: testRSAKey(t), Log: func(ev serverEvent) {
		s.mu.Lock()
		s.events = append(s.events, ev)
		s.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv, s.addr = srv, ln.Addr().String()
	go func() { s.done <- srv.Serve(ln) }()
	t.Cleanup(s.stop)
	return s
}

// stop shuts the server down and waits for Serve; it may be called twice.
func (s *replServer) stop() {
	s.srv.Shutdown()
	select {
	case <-s.done:
		s.done <- nil
	case <-time.After(replWait):
	}
}

// logged reports whether the server logged an event of kind with text.
func (s *replServer) logged(kind, text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.events {
		if string(ev.Kind) == kind && ev.Text == text {
			return true
		}
	}
	return false
}

// waitLoggedPrefix waits until the server logged an event of kind whose
// text, after the peer's address, starts with prefix.
func (s *replServer) waitLoggedPrefix(kind, prefix string) bool {
	deadline := time.Now().Add(replWait)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, ev := range s.events {
			if _, text, _ := strings.Cut(ev.Text, ": "); string(ev.Kind) == kind && strings.HasPrefix(text, prefix) {
				s.mu.Unlock()
				return true
			}
		}
		s.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// waitLogged waits until the server logged an event of kind with text (the
// server logs some events after it closed the connection).
func (s *replServer) waitLogged(kind, text string) bool {
	deadline := time.Now().Add(replWait)
	for !s.logged(kind, text) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// replPeer is an in-process client whose texts arrive on a channel.
type replPeer struct {
	cs    *clientSession
	texts chan string
	done  chan struct{}
}

func dialReplPeer(t *testing.T, addr, name string) *replPeer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, replWait)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := clientHandshake(conn, clientConfig{Name: name, Addr: addr, Insecure: true})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := &replPeer{cs: cs, texts: make(chan string, 256), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.texts)
		for {
			text, err := cs.Recv()
			if err != nil {
				return
			}
			p.texts <- text
		}
	}()
	t.Cleanup(func() { cs.Close(); <-p.done })
	return p
}

// expect waits for a text matching re and returns it.
func (p *replPeer) expect(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(replWait)
	var seen []string
	for {
		select {
		case text, ok := <-p.texts:
			if !ok {
				t.Fatalf("connection closed waiting for %q; got %q", re, seen)
			}
			if rx.MatchString(text) {
				return text
			}
			seen = append(seen, text)
		case <-deadline:
			t.Fatalf("no text matching %q within %v; got %q", re, replWait, seen)
		}
	}
}

// replFakeServer accepts one client, runs the classic handshake, and hands
// the session to script; it is how a malicious or crashing server is played.
func replFakeServer(t *testing.T, script func(conn net.Conn, rc recordCipher, name string)) string {
	t.Helper()
	key := testRSAKey(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(replWait))
		rc, err := classicServerHandshake(conn, &handshakeConfig{Key: key})
		if err != nil {
			return
		}
		payload, err := readFrame(conn)
		if err != nil {
			return
		}
		name, err := rc.open(payload)
		if err != nil {
			return
		}
		script(conn, rc, string(name))
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func replSend(conn net.Conn, rc recordCipher, text string) error {
	payload, err := rc.seal([]byte(text))
	if err != nil {
		return err
	}
	return writeFrame(conn, payload)
}

// replAwaitQuit reads the client's records until /quit or EOF.
func replAwaitQuit(conn net.Conn, rc recordCipher) {
	for {
		payload, err := readFrame(conn)
		if err != nil {
			return
		}
		if text, err := rc.open(payload); err == nil && string(text) == "/quit" {
			return
		}
	}
}

// replEvilText carries what a malicious server could use to drive a
// terminal: clear screen, C1 CSI, BEL, CR, DEL, and bidi overrides.
const replEvilText = "[12:00:00] mallory: evil\x1b[2J\u009b31m\a\r\x7f \u202egnp.exe\u2066x\u2069 end"

// replClean reports the first rune of s that must never reach a terminal.
func replClean(s string) (rune, bool) {
	for _, r := range s {
		if r == '\n' {
			continue
		}
		if isControl(r) || r == unicode.ReplacementChar {
			return r, false
		}
	}
	return 0, true
}

// runReplClient runs runClient in process with piped stdin and returns the
// exit code and outputs.
func runReplClient(t *testing.T, o clientOptions, stdin io.Reader) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	code := make(chan int, 1)
	go func() { code <- runClient(context.Background(), o, stdin, &out, &errb) }()
	select {
	case c := <-code:
		return c, out.String(), errb.String()
	case <-time.After(replWait):
		t.Fatalf("client still running after %v; output:\n%s\nstderr:\n%s", replWait, out.String(), errb.String())
		return 0, "", ""
	}
}

func replOptions(addr, name string) clientOptions {
	return clientOptions{connect: addr, name: name, suite: "auto", insecure: true}
}

func TestClientPipedStdin(t *testing.T) {
	srv := startReplServer(t)
	code, out, errs := runReplClient(t, replOptions(srv.addr, "bot"), strings.NewReader("hi\n\n  /list  \n/quit\nnot sent\n"))
	if code != 0 {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, errs)
	}
	for _, want := range []string{
		"ENCRYPTED CHAT CLIENT (SSL-LIKE HANDSHAKE)",
		"Connecting to server at " + srv.addr + "...",
		"✓ TCP connection established",
		"[1/5] Receiving server's RSA public key...\n      ✓ Received RSA-2048 public key (450 bytes)\n",
		"[5/5] Receiving encrypted confirmation from server...\n      ✓ Handshake confirmed: HANDSHAKE_OK\n",
		"✓ SECURE CHANNEL ESTABLISHED",
		"Welcome bot!",
		"Online Users (1): bot",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^\[\d\d:\d\d:\d\d\] bot: hi$`).MatchString(out) {
		t.Errorf("no echo of the message in:\n%s", out)
	}
	if !srv.waitLogged("ENCRYPTED BROADCAST", "bot: hi") {
		t.Error("the server did not relay bot's message")
	}
	if srv.logged("ENCRYPTED BROADCAST", "bot: not sent") {
		t.Error("a line after /quit was sent")
	}
	if !srv.waitLogged("LEAVE", "bot left the chat (/quit)") {
		t.Error("the server did not see /quit")
	}
}

func TestClientNamePrompt(t *testing.T) {
	srv := startReplServer(t)
	o := replOptions(srv.addr, "")
	code, out, errs := runReplClient(t, o, strings.NewReader("carol\nhello\n"))
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, errs)
	}
	if !strings.Contains(out, "Enter your username: ") || !srv.waitLogged("ENCRYPTED BROADCAST", "carol: hello") {
		t.Errorf("name prompt not used; output:\n%s", out)
	}
	if !srv.waitLogged("LEAVE", "carol left the chat (/quit)") {
		t.Error("EOF did not send /quit")
	}

	code, _, errs = runReplClient(t, o, strings.NewReader("no spaces allowed\n"))
	if code != 1 || !strings.Contains(errs, "invalid username") {
		t.Errorf("bad name: exit %d, stderr %q", code, errs)
	}
	code, _, errs = runReplClient(t, o, strings.NewReader(""))
	if code != 1 || !strings.Contains(errs, "no username given") {
		t.Errorf("no name: exit %d, stderr %q", code, errs)
	}
	o.name = "bad name"
	if code, _, _ = runReplClient(t, o, strings.NewReader("")); code != 2 {
		t.Errorf("bad -name: exit %d, want 2", code)
	}
}

func TestClientStripsControlCharacters(t *testing.T) {
	evilName := "mallory\x1b]0;pwned\a"
	addr := replFakeServer(t, func(conn net.Conn, rc recordCipher, name string) {
		replSend(conn, rc, welcomeText(name)+"\x1b[2J")
		replSend(conn, rc, replEvilText)
		replSend(conn, rc, "[12:00:01] [PM from "+evilName+"] \u202eboo")
		replSend(conn, rc, "\n"+separator+"\nOnline Users (2): bot, \x1b[31mred\n"+separator)
		replAwaitQuit(conn, rc)
	})
	code, out, errs := runReplClient(t, replOptions(addr, "bot"), strings.NewReader(""))
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, errs)
	}
	for _, want := range []string{"evil[2J31m", "gnp.exe", "end", "mallory]0;pwned", "boo", "Welcome bot!", "red"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if r, ok := replClean(out); !ok {
		t.Errorf("output holds %U:\n%q", r, out)
	}
	if r, ok := replClean(errs); !ok {
		t.Errorf("stderr holds %U:\n%q", r, errs)
	}
}

func TestClientServerGoesAway(t *testing.T) {
	t.Run("announced shutdown exits 0", func(t *testing.T) {
		srv := startReplServer(t)
		stdin, feed := io.Pipe()
		defer feed.Close()
		var out, errb syncBuffer
		code := make(chan int, 1)
		go func() {
			code <- runClient(context.Background(), replOptions(srv.addr, "bot"), stdin, &out, &errb)
		}()
		deadline := time.Now().Add(replWait)
		for !strings.Contains(out.String(), "Welcome bot!") {
			if time.Now().After(deadline) {
				t.Fatalf("no welcome:\n%s", out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		srv.stop()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("exit code %d, want 0; stderr:\n%s", c, errb.String())
			}
		case <-time.After(replWait):
			t.Fatal("client still running after the server stopped")
		}
		if !strings.Contains(out.String(), shutdownText) {
			t.Errorf("shutdown notice not printed:\n%s", out.String())
		}
	})
	t.Run("dropped connection exits 1", func(t *testing.T) {
		addr := replFakeServer(t, func(conn net.Conn, rc recordCipher, name string) {
			replSend(conn, rc, welcomeText(name))
		})
		stdin, feed := io.Pipe()
		defer feed.Close()
		code, _, errs := runReplClient(t, replOptions(addr, "bot"), stdin)
		if code != 1 || !strings.Contains(errs, "encchat: connection to the server closed") {
			t.Errorf("exit %d, stderr %q; want 1 and a clear message", code, errs)
		}
	})
	t.Run("no server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		code, _, errs := runReplClient(t, replOptions(addr, "bot"), strings.NewReader(""))
		if code != 1 || !strings.Contains(errs, "cannot connect to "+addr) || !strings.Contains(errs, "hint:") {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
	t.Run("name taken", func(t *testing.T) {
		srv := startReplServer(t)
		dialReplPeer(t, srv.addr, "bot")
		code, _, errs := runReplClient(t, replOptions(srv.addr, "bot"), strings.NewReader(""))
		if code != 1 || !strings.Contains(errs, "server refused: Username already taken") {
			t.Errorf("exit %d, stderr %q", code, errs)
		}
	})
}

func TestClientKeyWarning(t *testing.T) {
	srv := startReplServer(t)
	realFP := fingerprint(&testRSAKey(t).PublicKey)
	wrongFP := "SHA256:" + strings.Repeat("A", 43)

	o := replOptions(srv.addr, "bot")
	o.insecure, o.fingerprint = false, wrongFP
	code, out, errs := runReplClient(t, o, strings.NewReader("never sent\n"))
	// The walk-through shows the key arriving before the warning stops it.
	if step1 := "[1/5] Receiving server's RSA public key...\n      ✓ Received RSA-2048 public key (450 bytes)\n"; !strings.HasSuffix(out, step1) {
		t.Errorf("-fingerprint mismatch: stdout does not end with step 1:\n%s", out)
	}
	if code != 1 || !strings.Contains(errs, "WARNING: SERVER KEY DOES NOT MATCH -fingerprint") ||
		!strings.Contains(errs, "expected "+wrongFP) || !strings.Contains(errs, "got      "+realFP) {
		t.Errorf("-fingerprint mismatch: exit %d, stderr:\n%s", code, errs)
	}

	known := filepath.Join(t.TempDir(), "known_servers")
	if err := os.WriteFile(known, []byte(fmt.Sprintf("%s %s %s\n", srv.addr, suiteClassic, wrongFP)), 0o600); err != nil {
		t.Fatal(err)
	}
	o.fingerprint, o.knownServers = "", known
	code, _, errs = runReplClient(t, o, strings.NewReader("never sent\n"))
	forget := "encchat forget -known-servers " + known + " " + srv.addr
	for _, want := range []string{"\n@    WARNING: SERVER KEY HAS CHANGED!", "expected " + wrongFP, "got      " + realFP,
		"\nOffending key in " + known + ":1\n",
		"\nencchat: the key of " + srv.addr + " has changed: the connection was closed before your username was sent\n",
		"encchat: hint: if the change is expected (the seed's server makes a new key at every start), forget the old key with: " + forget + "\n"} {
		if !strings.Contains(errs, want) {
			t.Errorf("pin mismatch: stderr lacks %q:\n%s", want, errs)
		}
	}
	if code != 1 {
		t.Errorf("pin mismatch: exit %d, want 1", code)
	}
	if srv.logged("ENCRYPTED BROADCAST", "bot: never sent") {
		t.Error("a client that refused the key still chatted")
	}
	// The server can tell only that the client hung up after its key.
	if !srv.waitLoggedPrefix("REFUSED", "closed during handshake, after the server's public key and before the client sent a byte: the client refused the key") {
		t.Error("the server did not log why the handshake ended")
	}

	// The hint's command forgets the pin; the next client pins the key anew.
	var fout, ferr bytes.Buffer
	args := strings.Fields(forget)[1:]
	if code := run(context.Background(), args, nil, &fout, &ferr); code != 0 || !strings.Contains(fout.String(), "1 line removed") {
		t.Fatalf("%s: exit %d, stdout %q, stderr %q", forget, code, fout.String(), ferr.String())
	}
	code, stdout, errs := runReplClient(t, o, strings.NewReader("now sent\n"))
	if code != 0 || !strings.Contains(stdout, "first seen now: pinned in "+known) {
		t.Errorf("after forget: exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, errs)
	}
	if pin, ok, err := lookupKnownServer(known, srv.addr); !ok || err != nil || pin.fingerprint != realFP {
		t.Errorf("pin after forget: %+v %v %v, want %s", pin, ok, err, realFP)
	}
}

func TestClientColourKinds(t *testing.T) {
	c := &chatClient{pal: newPalette(true), list: &roster{self: "alice"}}
	for _, tc := range []struct {
		text string
		want string // the palette entry, "" for plain
	}{
		{"[10:00:00] [SYSTEM] bob joined (secure channel)", "system"},
		{shutdownText, "system"},
		{"[10:00:00] [PM from bob] hi", "private"},
		{"[10:00:00] [ERROR] User 'x' not found", "error"},
		{"[10:00:00] alice: hello", "own"},
		{"[10:00:00] bob: alice: [SYSTEM] fake", ""},
		{"alice: no stamp", ""},
	} {
		want := tc.text
		switch tc.want {
		case "system":
			want = c.pal.system.Sprint(tc.text)
		case "private":
			want = c.pal.private.Sprint(tc.text)
		case "error":
			want = c.pal.errorC.Sprint(tc.text)
		case "own":
			want = c.pal.own.Sprint(tc.text)
		}
		if got := c.colour(tc.text); got != want {
			t.Errorf("colour(%q) = %q, want %s", tc.text, got, tc.want)
		}
	}
}
