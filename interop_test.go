// Interop with testdata/classic_peer.py, an independent Python implementation
// of the classic suite written from SPEC.md and the seed, with pycryptodome:
// a Python client against encchat's server, and encchat's client against a
// Python server.

package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	interopWait    = 10 * time.Second // one expected line or record
	interopStartup = 30 * time.Second // Python server generates RSA-2048
)

var (
	interopRule    = strings.Repeat("=", 50)
	interopStampRE = `\[\d\d:\d\d:\d\d\]`
)

// findPython returns an interpreter that has pycryptodome, preferring
// Debian's /usr/bin/python3 (module Cryptodome).
func findPython(t *testing.T) string {
	t.Helper()
	var tried []string
	try := func(py, module string) bool {
		// Util.Padding exists only in pycryptodome, not the old PyCrypto.
		cmd := exec.Command(py, "-c", "import "+module+".Cipher.PKCS1_OAEP, "+module+".Util.Padding")
		err := cmd.Run()
		tried = append(tried, py+" ("+module+")")
		return err == nil
	}
	if try("/usr/bin/python3", "Cryptodome") {
		return "/usr/bin/python3"
	}
	if py, err := exec.LookPath("python3"); err == nil {
		if try(py, "Cryptodome") || try(py, "Crypto") {
			return py
		}
	}
	msg := "python3 with pycryptodome not found (tried " + strings.Join(tried, ", ") + "); install python3-pycryptodome"
	if os.Getenv("ENCCHAT_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// pyPeer is one running classic_peer.py. Its goroutine reads stdout into
// lines, then reaps the process and closes exited; t.Cleanup ends it.
type pyPeer struct {
	name   string
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{}
	stderr *syncBuffer
	cmd    *exec.Cmd
}

func startPyPeer(t *testing.T, name string, args ...string) *pyPeer {
	t.Helper()
	py := findPython(t)
	cmd := exec.Command(py, append([]string{"-u", filepath.Join("testdata", "classic_peer.py")}, args...)...)
	p := &pyPeer{name: name, lines: make(chan string, 4096), exited: make(chan struct{}), stderr: &syncBuffer{}, cmd: cmd}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		p.stdin.Close() // both modes exit at stdin EOF
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	return p
}

// send writes one line to the peer's stdin.
func (p *pyPeer) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("%s: writing %q: %v", p.name, line, err)
	}
}

// next returns the next stdout line, failing after d.
func (p *pyPeer) next(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			select { // let the stderr copy finish
			case <-p.exited:
			case <-time.After(interopWait):
			}
			t.Fatalf("%s: exited early; stderr:\n%s", p.name, p.stderr.String())
		}
		return line
	case <-time.After(d):
		t.Fatalf("%s: no output within %v; stderr:\n%s", p.name, d, p.stderr.String())
	}
	return ""
}

// expectLine requires the next stdout line to be exactly want.
func (p *pyPeer) expectLine(t *testing.T, want string) {
	t.Helper()
	if got := p.next(t, interopWait); got != want {
		t.Fatalf("%s: got line %q, want %q", p.name, got, want)
	}
}

// expectText requires the next line to be RECV of a text matching want,
// where want is literal except that {TS} is an [HH:MM:SS] stamp.
func (p *pyPeer) expectText(t *testing.T, want string) {
	t.Helper()
	line := p.next(t, interopWait)
	text, ok := strings.CutPrefix(line, "RECV ")
	if !ok {
		t.Fatalf("%s: got line %q, want RECV %q", p.name, line, want)
	}
	if text = unescapePeer(text); !textMatches(want, text) {
		t.Fatalf("%s: got text %q, want %q", p.name, text, want)
	}
}

// expectExit requires "CLOSED" (the server closed) and the process to end.
func (p *pyPeer) expectExit(t *testing.T) {
	t.Helper()
	p.expectLine(t, "CLOSED")
	select {
	case <-p.exited:
	case <-time.After(interopWait):
		t.Fatalf("%s: still running after the server closed", p.name)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s: exit code %d; stderr:\n%s", p.name, code, p.stderr.String())
	}
}

// unescapePeer reverses classic_peer.py's escaping of \\, \n and \r.
func unescapePeer(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func textMatches(want, got string) bool {
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(want), regexp.QuoteMeta("{TS}"), interopStampRE) + "$"
	return regexp.MustCompile(re).MatchString(got)
}

// The seed's multi-line texts, written out here rather than taken from
// session.go, so a change there shows up as an interop failure.
func seedWelcome(name string) string {
	return "\n" + interopRule + "\n✓ Secure connection established!\nWelcome " + name +
		"!\nAll messages are encrypted with AES-256\n" + interopRule
}

func seedList(names ...string) string {
	return "\n" + interopRule + "\nOnline Users (" + strconv.Itoa(len(names)) + "): " + strings.Join(names, ", ") + "\n" + interopRule
}

// TestInteropPythonClientGoServer: two Python clients chat through
// encchat's server.
func TestInteropPythonClientGoServer(t *testing.T) {
	findPython(t)
	key := testRSAKey(t)
	var evMu sync.Mutex
	var events []serverEvent
	srv, err := newServer(serverConfig{
		Key: key, Suite: suiteClassic, HandshakeTimeout: 5 * time.Second,
		Log: func(e serverEvent) { evMu.Lock(); events = append(events, e); evMu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	shutdown := sync.OnceFunc(func() {
		srv.Shutdown()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(interopWait):
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	t.Cleanup(shutdown)
	addr := ln.Addr().String()
	fp := fingerprint(&key.PublicKey)

	client := func(name string) *pyPeer {
		p := startPyPeer(t, "python client "+name, "client", "--connect", addr, "--name", name, "--linger", "0.2")
		p.expectLine(t, "FINGERPRINT "+fp) // same SPKI fingerprint computed in Python
		return p
	}
	alice := client("alice")
	alice.expectText(t, seedWelcome("alice"))
	bob := client("bob")
	bob.expectText(t, seedWelcome("bob"))
	alice.expectText(t, "{TS} [SYSTEM] bob joined (secure channel)")

	// Chat goes to everyone, the sender included; multi-block UTF-8 too.
	alice.send(t, "hello from python")
	alice.expectText(t, "{TS} alice: hello from python")
	bob.expectText(t, "{TS} alice: hello from python")
	long := "héllo ✓ " + strings.Repeat("0123456789", 30)
	bob.send(t, "  "+long+"  ")
	bob.expectText(t, "{TS} bob: "+long)
	alice.expectText(t, "{TS} bob: "+long)

	alice.send(t, "/pm bob secret words")
	bob.expectText(t, "{TS} [PM from alice] secret words")
	alice.expectText(t, "{TS} [PM to bob] secret words")
	alice.send(t, "/pm")
	alice.expectText(t, "{TS} [ERROR] Usage: /pm <username> <message>")
	alice.send(t, "/pm zed hi")
	alice.expectText(t, "{TS} [ERROR] User 'zed' not found")
	bob.send(t, "/list")
	bob.expectText(t, seedList("alice", "bob"))

	// A taken name is refused; the holder is not disturbed.
	dup := client("alice")
	dup.expectText(t, "ERROR: Username already taken")
	dup.expectExit(t)

	bob.send(t, "/quit")
	bob.expectExit(t)
	alice.expectText(t, "{TS} [SYSTEM] bob left the chat")
	alice.send(t, "/list")
	alice.expectText(t, seedList("alice"))

	shutdown()
	alice.expectText(t, "[SYSTEM] Server shutting down")
	alice.expectExit(t)

	evMu.Lock()
	defer evMu.Unlock()
	refused := 0
	for _, e := range events {
		switch e.Kind {
		case "DROPPED":
			t.Errorf("server dropped a Python record: %s", e.Text)
		case "REFUSED":
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("server refused %d connections, want 1 (the duplicate name)", refused)
	}
}

// TestInteropGoClientPythonServer: encchat's clients chat through the
// Python server, pinning the key by the fingerprint Python computed.
func TestInteropGoClientPythonServer(t *testing.T) {
	srv := startPyPeer(t, "python server", "server", "--listen", "127.0.0.1:0")
	addr, ok := strings.CutPrefix(srv.next(t, interopStartup), "LISTENING ")
	if !ok {
		t.Fatalf("python server did not print LISTENING")
	}
	fp, ok := strings.CutPrefix(srv.next(t, interopWait), "FINGERPRINT ")
	if !ok {
		t.Fatalf("python server did not print FINGERPRINT")
	}
	known := filepath.Join(t.TempDir(), "known_servers")

	dial := func(cfg clientConfig) (*clientSession, error) {
		t.Helper()
		conn, err := net.DialTimeout("tcp", addr, interopWait)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Suite, cfg.Addr, cfg.Timeout = suiteClassic, addr, interopWait
		cs, err := clientHandshake(conn, cfg)
		if err != nil {
			conn.Close()
			return nil, err
		}
		t.Cleanup(func() { cs.Close() })
		return cs, nil
	}
	recv := func(cs *clientSession, who, want string) {
		t.Helper()
		cs.conn.SetReadDeadline(time.Now().Add(interopWait))
		got, err := cs.Recv()
		if err != nil {
			t.Fatalf("%s: Recv: %v (want %q)", who, err, want)
		}
		if !textMatches(want, got) {
			t.Fatalf("%s: got %q, want %q", who, got, want)
		}
	}
	recvEOF := func(cs *clientSession, who string) {
		t.Helper()
		cs.conn.SetReadDeadline(time.Now().Add(interopWait))
		if got, err := cs.Recv(); err == nil {
			t.Fatalf("%s: got %q, want the connection closed", who, got)
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !interopConnReset(err) {
			t.Fatalf("%s: Recv: %v, want EOF", who, err)
		}
	}

	// alice pins by the fingerprint Python printed and walks the five steps.
	var steps []handshakeStep
	alice, err := dial(clientConfig{Name: "alice", Fingerprint: fp, Step: func(s handshakeStep) { steps = append(steps, s) }})
	if err != nil {
		t.Fatalf("alice handshake: %v", err)
	}
	if alice.Welcome() != seedWelcome("alice") {
		t.Errorf("alice welcome %q", alice.Welcome())
	}
	// Five numbered steps, the key check after the first (unnumbered).
	if len(steps) != 6 || steps[0].N != 1 || !strings.Contains(strings.Join(steps[0].Results, "|"), "(450 bytes)") ||
		steps[1].N != 0 || !strings.Contains(strings.Join(steps[1].Results, "|"), "matches -fingerprint") {
		t.Errorf("handshake steps: %+v, want 5 numbered with a 450-byte key, the key check after the first", steps)
	}

	// bob pins on first use; the pin is Python's fingerprint.
	bob, err := dial(clientConfig{Name: "bob", KnownServers: known})
	if err != nil {
		t.Fatalf("bob handshake: %v", err)
	}
	if pin, ok, err := lookupKnownServer(known, addr); !ok || err != nil || pin.suite != suiteClassic || !sameFingerprint(pin.fingerprint, fp) {
		t.Errorf("pin after first use: %+v ok=%v err=%v, want %s %s", pin, ok, err, suiteClassic, fp)
	}
	recv(alice, "alice", "{TS} [SYSTEM] bob joined (secure channel)")

	if err := alice.Send("hello from go"); err != nil {
		t.Fatal(err)
	}
	recv(alice, "alice", "{TS} alice: hello from go")
	recv(bob, "bob", "{TS} alice: hello from go")
	long := "héllo ✓ " + strings.Repeat("0123456789", 30)
	bob.Send(long)
	recv(bob, "bob", "{TS} bob: "+long)
	recv(alice, "alice", "{TS} bob: "+long)

	alice.Send("/pm bob secret words")
	recv(bob, "bob", "{TS} [PM from alice] secret words")
	recv(alice, "alice", "{TS} [PM to bob] secret words")
	alice.Send("/pm bob")
	recv(alice, "alice", "{TS} [ERROR] Usage: /pm <username> <message>")
	alice.Send("/pm zed hi")
	recv(alice, "alice", "{TS} [ERROR] User 'zed' not found")
	bob.Send("/list")
	recv(bob, "bob", seedList("alice", "bob"))

	// A taken name is the server's refusal, not a handshake failure.
	_, err = dial(clientConfig{Name: "alice", Insecure: true})
	var refused *refusedError
	if !errors.As(err, &refused) || refused.Text != "ERROR: Username already taken" {
		t.Errorf("duplicate name: %v, want refusedError(ERROR: Username already taken)", err)
	}
	// A wrong pin stops the handshake before the name is sent.
	_, err = dial(clientConfig{Name: "mallory", Fingerprint: "SHA256:" + strings.Repeat("A", 43)})
	var mismatch *keyMismatchError
	if !errors.As(err, &mismatch) || !sameFingerprint(mismatch.Got, fp) {
		t.Errorf("wrong fingerprint: %v, want keyMismatchError with got=%s", err, fp)
	}
	alice.Send("/list")
	recv(alice, "alice", seedList("alice", "bob"))

	bob.Send("/quit")
	recvEOF(bob, "bob")
	recv(alice, "alice", "{TS} [SYSTEM] bob left the chat")

	// Closing the Python server's stdin shuts it down.
	srv.stdin.Close()
	recv(alice, "alice", "[SYSTEM] Server shutting down")
	recvEOF(alice, "alice")
	select {
	case <-srv.exited:
	case <-time.After(interopWait):
		t.Fatalf("python server still running after shutdown")
	}
	if alice.Dropped+bob.Dropped != 0 {
		t.Errorf("%d Python records did not decrypt", alice.Dropped+bob.Dropped)
	}
}

func interopConnReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestInteropHelpAgainstPythonServer: the seed's server relays "/help" as
// chat, so the client answers /help itself and never sends it.
func TestInteropHelpAgainstPythonServer(t *testing.T) {
	srv := startPyPeer(t, "python server", "server", "--listen", "127.0.0.1:0")
	addr, ok := strings.CutPrefix(srv.next(t, interopStartup), "LISTENING ")
	if !ok {
		t.Fatalf("python server did not print LISTENING")
	}
	srv.next(t, interopWait) // FINGERPRINT
	bob, err := dialTest(t, addr, clientConfig{Name: "bob", Timeout: interopWait})
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	code, out, errs := runReplClient(t, replOptions(addr, "alice"), strings.NewReader("/help\n/help pm\nhello\n"))
	if code != 0 {
		t.Fatalf("alice: exit %d, stderr:\n%s", code, errs)
	}
	for _, want := range []string{"[HELP] Commands:\n  /pm <username> <message> - send a private message\n  /list - show who is online\n", "/quit - leave the chat"} {
		if !strings.Contains(out, want) {
			t.Errorf("alice's output lacks %q:\n%s", want, out)
		}
	}
	skipped := expect(t, bob, "alice: hello")
	for _, text := range skipped {
		if strings.Contains(text, "/help") {
			t.Errorf("/help reached the Python server and was relayed: %q", text)
		}
	}
	if strings.Contains(out, "alice: /help") {
		t.Errorf("/help was relayed back to alice:\n%s", out)
	}
}

// TestInteropPythonClientModernServer: the seed's client cannot read a
// modern hello and hangs up; the server says which failure that can be.
func TestInteropPythonClientModernServer(t *testing.T) {
	ts := startTestServer(t, serverConfig{Suite: suiteModern})
	cli := startPyPeer(t, "python client", "client", "--connect", ts.addr, "--name", "alice")
	select {
	case <-cli.exited:
	case <-time.After(interopWait):
		t.Fatal("python client still running against a modern server")
	}
	if code := cli.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("python client: exit %d, want 1 (handshake failure)", code)
	}
	ts.logged(t, evRefused, "closed during handshake, after the server hello and before the client sent a byte: "+
		"the client refused the key (its pin or -fingerprint names another), or it cannot read a modern hello "+
		"(the seed's client speaks only the classic suite: run the server without -suite modern for it)")
}
