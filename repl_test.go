package main

// Tests of the client's UI: the REPL in a real pseudo-terminal (the built
// binary under github.com/creack/pty), piped stdin, what a malicious server
// can print, and exit codes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/chzyer/readline"
	"github.com/creack/pty"
)

const replWait = 10 * time.Second // every wait in these tests is bounded

// ---- helpers ----------------------------------------------------------------

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

// ---- the binary in a pseudo-terminal ----------------------------------------

// replBinary builds encchat into dir, with the race detector when the tests
// have it, so races in the REPL fail the tests too.
func replBinary(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go tool is not on PATH: %v", err)
	}
	bin := filepath.Join(dir, "encchat")
	args := []string{"build", "-o", bin}
	if replRaceEnabled() {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func replRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// replTerm is the client binary running in a pseudo-terminal.
type replTerm struct {
	t      *testing.T
	pty    *os.File
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // from Wait, after exited

	readDone chan struct{} // the terminal's output is all read
	home     string        // HOME and XDG_CONFIG_HOME of the client

	mu  sync.Mutex
	buf bytes.Buffer
}

func startReplTerm(t *testing.T, bin string, args ...string) *replTerm {
	t.Helper()
	return startReplTermCmd(t, exec.Command(bin, append([]string{"client"}, args...)...))
}

// startReplTermStty runs the client, then "stty -a" on the same terminal, so
// that the test can see the terminal modes the client left behind.
func startReplTermStty(t *testing.T, bin string, args ...string) *replTerm {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh to run stty after the client: %v", err)
	}
	if _, err := exec.LookPath("stty"); err != nil {
		t.Skipf("no stty to check the terminal modes: %v", err)
	}
	script := `"$0" client "$@"; rc=$?; echo "STTY:"; stty -a; exit $rc`
	return startReplTermCmd(t, exec.Command(sh, append([]string{"-c", script, bin}, args...)...))
}

func startReplTermCmd(t *testing.T, cmd *exec.Cmd) *replTerm {
	t.Helper()
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "TERM=xterm", "HOME="+home, "XDG_CONFIG_HOME="+home,
		"GORACE=halt_on_error=1 exitcode=66 atexit_sleep_ms=50")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if errors.Is(err, pty.ErrUnsupported) {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err != nil {
		t.Fatalf("starting the client in a pty: %v", err)
	}
	r := &replTerm{t: t, pty: ptmx, cmd: cmd, home: home, exited: make(chan struct{}), readDone: make(chan struct{})}
	go func() {
		defer close(r.readDone)
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { r.err = cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			cmd.Process.Kill()
			<-r.exited
		}
		ptmx.Close()
		<-r.readDone
		if t.Failed() {
			t.Logf("terminal output:\n%q", r.output())
		}
	})
	return r
}

func (r *replTerm) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// waitFor waits until want appears at or after from and returns the offset
// just past it.
func (r *replTerm) waitFor(want string, from int) int {
	r.t.Helper()
	deadline := time.Now().Add(replWait)
	for {
		out := r.output()
		if from <= len(out) {
			if i := strings.Index(out[from:], want); i >= 0 {
				return from + i + len(want)
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%q did not appear within %v", want, replWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *replTerm) send(keys string) {
	r.t.Helper()
	if _, err := r.pty.Write([]byte(keys)); err != nil {
		r.t.Fatalf("typing %q: %v", keys, err)
	}
}

// exitCode waits for the client to exit.
func (r *replTerm) exitCode() int {
	r.t.Helper()
	select {
	case <-r.exited:
	case <-time.After(replWait):
		r.t.Fatalf("client did not exit within %v", replWait)
	}
	if r.err == nil {
		return 0
	}
	if ee, ok := r.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	r.t.Fatalf("waiting for the client: %v", r.err)
	return -1
}

// checkRestored fails unless the terminal was back in its usual line mode
// (canonical input, echo) after the client exited; it needs
// startReplTermStty.
func (r *replTerm) checkRestored() {
	r.t.Helper()
	select {
	case <-r.readDone: // the terminal closed: everything was written
	case <-time.After(replWait):
		r.t.Fatal("the terminal did not close")
	}
	out := r.output()
	i := strings.LastIndex(out, "STTY:")
	if i < 0 {
		r.t.Fatal("stty did not run after the client")
	}
	modes := strings.Fields(out[i:])
	for _, want := range []string{"icanon", "echo", "isig"} {
		if !slices.Contains(modes, want) {
			r.t.Errorf("terminal left without %s (raw mode not undone): %q", want, out[i:])
		}
	}
}

// replCSI matches the escape sequences readline draws with.
var replCSI = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// replScreenLines renders terminal output crudely: escapes dropped, and a
// carriage return inside a line starts it over (readline erases the line
// before it redraws it). Good enough to tell a clobbered line from a clean one.
func replScreenLines(out string) []string {
	out = replCSI.ReplaceAllString(out, "")
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, "\r")
		if i := strings.LastIndex(l, "\r"); i >= 0 {
			l = l[i+1:]
		}
		lines = append(lines, l)
	}
	return lines
}

func TestClientBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := replBinary(t, t.TempDir())

	t.Run("completion and redraw in a pty", func(t *testing.T) {
		srv := startReplServer(t)
		bob := dialReplPeer(t, srv.addr, "bob")
		alice := startReplTermStty(t, bin, "-connect", srv.addr, "-name", "alice", "-insecure", "-no-color")
		pos := alice.waitFor("alice> ", 0)
		bob.expect(t, `\[SYSTEM\] alice joined`)

		// /l<Tab> becomes /list; its answer is shown, the silent one is not.
		alice.send("/l\t")
		pos = alice.waitFor("alice> /list", pos)
		alice.send("\r")
		pos = alice.waitFor("Online Users (2): bob, alice", pos)
		if n := strings.Count(alice.output(), "Online Users"); n != 1 {
			t.Errorf("%d /list answers printed, want 1 (the silent one swallowed)", n)
		}

		// /pm bo<Tab> becomes /pm bob while bob is online.
		alice.send("/pm bo\t")
		pos = alice.waitFor("alice> /pm bob ", pos)
		alice.send("psst\r")
		bob.expect(t, `^\[\d\d:\d\d:\d\d\] \[PM from alice\] psst$`)

		// A message arriving while "half typed" sits on the line.
		alice.send("half typed")
		pos = alice.waitFor("alice> half typed", pos)
		mark := pos
		if err := bob.cs.Send("ping from bob"); err != nil {
			t.Fatal(err)
		}
		pos = alice.waitFor("bob: ping from bob", pos)
		alice.waitFor("alice> half typed", pos)
		lines := replScreenLines(alice.output()[mark:])
		stamped := regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] bob: ping from bob$`)
		found := false
		for _, l := range lines {
			if stamped.MatchString(l) {
				found = true
			}
		}
		if !found {
			t.Errorf("the message is not on a line of its own: %q", lines)
		}
		if last := lines[len(lines)-1]; last != "alice> half typed" {
			t.Errorf("the line after the message reads %q, want %q", last, "alice> half typed")
		}
		alice.send("\r")
		bob.expect(t, `^\[\d\d:\d\d:\d\d\] alice: half typed$`)

		// Ctrl-C clears a typed line; the next line goes out alone. The
		// keys come in one burst, so some arrive while "one" is being
		// sent: they must wait for the next prompt, not act on the
		// terminal (a Ctrl-C there would be a SIGINT).
		alice.send("one\rjunk\x03after\r")
		bob.expect(t, `^\[\d\d:\d\d:\d\d\] alice: one$`)
		bob.expect(t, `^\[\d\d:\d\d:\d\d\] alice: after$`)
		alice.waitFor("^C", pos)

		// Ctrl-D leaves cleanly.
		alice.send("\x04")
		if code := alice.exitCode(); code != 0 {
			t.Errorf("exit code after Ctrl-D %d, want 0", code)
		}
		alice.checkRestored()
		bob.expect(t, `\[SYSTEM\] alice left the chat$`)
		// History stays in memory: nothing was written under HOME.
		if files, err := os.ReadDir(alice.home); err != nil || len(files) > 0 {
			t.Errorf("the client wrote to its home directory: %v %v", files, err)
		}
		if srv.logged("ENCRYPTED BROADCAST", "alice: junkafter") {
			t.Error("Ctrl-C did not clear the line")
		}
		// No server text was ever glued to a prompt (chzyer/readline#220).
		glued := regexp.MustCompile(`alice> .*\[\d\d:\d\d:\d\d\] `)
		for _, l := range replScreenLines(alice.output()) {
			if glued.MatchString(l) {
				t.Errorf("a server text landed on the prompt line: %q", l)
			}
		}
	})

	t.Run("ctrl-c on an empty line leaves", func(t *testing.T) {
		srv := startReplServer(t)
		bob := dialReplPeer(t, srv.addr, "bob")
		alice := startReplTerm(t, bin, "-connect", srv.addr, "-name", "alice", "-insecure", "-no-color")
		alice.waitFor("alice> ", 0)
		bob.expect(t, `alice joined`)
		alice.send("\x03")
		if code := alice.exitCode(); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		bob.expect(t, `\[SYSTEM\] alice left the chat$`)
	})

	t.Run("name prompt", func(t *testing.T) {
		srv := startReplServer(t)
		bob := dialReplPeer(t, srv.addr, "bob")
		alice := startReplTerm(t, bin, "-connect", srv.addr, "-insecure", "-no-color")
		pos := alice.waitFor("Enter your username: ", 0)
		alice.send("bad name\r")
		pos = alice.waitFor("invalid username", pos)
		pos = alice.waitFor("Enter your username: ", pos)
		alice.send("dave\r")
		alice.waitFor("dave> ", pos)
		bob.expect(t, `\[SYSTEM\] dave joined`)
		alice.send("/quit\r")
		if code := alice.exitCode(); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	})

	t.Run("SIGTERM while reading leaves", func(t *testing.T) {
		srv := startReplServer(t)
		bob := dialReplPeer(t, srv.addr, "bob")
		alice := startReplTerm(t, bin, "-connect", srv.addr, "-name", "alice", "-insecure", "-no-color")
		alice.waitFor("alice> ", 0)
		bob.expect(t, `alice joined`)
		if err := alice.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := alice.exitCode(); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		bob.expect(t, `\[SYSTEM\] alice left the chat$`)
	})

	t.Run("/quit leaves", func(t *testing.T) {
		srv := startReplServer(t)
		alice := startReplTerm(t, bin, "-connect", srv.addr, "-name", "alice", "-insecure", "-no-color")
		alice.waitFor("alice> ", 0)
		alice.send("/quit\r")
		if code := alice.exitCode(); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	})

	t.Run("server shutdown while typing", func(t *testing.T) {
		// The REPL must end while Readline is blocked reading the terminal
		// (readline's Close hang, chzyer/readline#217).
		srv := startReplServer(t)
		alice := startReplTermStty(t, bin, "-connect", srv.addr, "-name", "alice", "-insecure", "-no-color")
		pos := alice.waitFor("alice> ", 0)
		alice.send("half")
		pos = alice.waitFor("alice> half", pos)
		srv.stop()
		alice.waitFor(shutdownText, pos)
		if code := alice.exitCode(); code != 0 {
			t.Errorf("exit code after the server's shutdown notice %d, want 0", code)
		}
		alice.checkRestored()
	})

	t.Run("server drop and a malicious text", func(t *testing.T) {
		addr := replFakeServer(t, func(conn net.Conn, rc recordCipher, name string) {
			replSend(conn, rc, welcomeText(name))
			replSend(conn, rc, replEvilText)
			time.Sleep(200 * time.Millisecond)
			// then the connection closes without a notice
		})
		alice := startReplTermStty(t, bin, "-connect", addr, "-name", "alice", "-insecure", "-no-color")
		alice.waitFor("gnp.exe", 0)
		alice.waitFor("connection to the server closed", 0)
		if code := alice.exitCode(); code != 1 {
			t.Errorf("exit code after the server vanished %d, want 1", code)
		}
		alice.checkRestored()
		out := alice.output()
		for _, bad := range []string{"\x1b[2J", "\u009b", "\a", "\u202e", "\u2066", "\x7f"} {
			if strings.Contains(out, bad) {
				t.Errorf("the terminal received %q", bad)
			}
		}
	})

	t.Run("piped stdin", func(t *testing.T) {
		srv := startReplServer(t)
		home := t.TempDir()
		cmd := exec.Command(bin, "client", "-connect", srv.addr, "-name", "bot", "-insecure")
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home,
			"GORACE=halt_on_error=1 exitcode=66 atexit_sleep_ms=50")
		cmd.Stdin = strings.NewReader("hi\n/quit\n")
		var out, errb syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case err := <-waited:
			if err != nil {
				t.Fatalf("client: %v\nstderr:\n%s", err, errb.String())
			}
		case <-time.After(replWait):
			cmd.Process.Kill()
			<-waited
			t.Fatalf("client still running after %v", replWait)
		}
		if !regexp.MustCompile(`(?m)^\[\d\d:\d\d:\d\d\] bot: hi$`).MatchString(out.String()) {
			t.Errorf("no echo of the message in:\n%s", out.String())
		}
		if strings.Contains(out.String(), "\x1b") {
			t.Errorf("escape sequences in piped output:\n%q", out.String())
		}
		if !srv.waitLogged("ENCRYPTED BROADCAST", "bot: hi") {
			t.Error("the server did not relay bot's message")
		}
	})
}

// ---- piped stdin, in process ------------------------------------------------

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
	code, _, errs := runReplClient(t, o, strings.NewReader("never sent\n"))
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
	for _, want := range []string{"WARNING: SERVER KEY HAS CHANGED!", "expected " + wrongFP, "got      " + realFP,
		"hint: if the change is expected, remove the line for " + srv.addr + " from " + known} {
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
}

// ---- pure parts -------------------------------------------------------------

func TestClientCompletions(t *testing.T) {
	names := []string{"bob", "bea", "carol"}
	str := func(c [][]rune) []string {
		var s []string
		for _, r := range c {
			s = append(s, string(r))
		}
		return s
	}
	for _, tc := range []struct {
		head string
		want []string
		n    int
	}{
		{"/l", []string{"ist"}, 2},
		{"/", []string{"pm ", "list", "help", "quit"}, 1},
		{"/p", []string{"m "}, 2},
		{"/pm ", []string{"bob ", "bea ", "carol "}, 0},
		{"/pm b", []string{"ob ", "ea "}, 1},
		{"/pm bo", []string{"b "}, 2},
		{"/pm bob hi", nil, 0},
		{"/x", nil, 2},
		{"hello /l", nil, 0},
		{"/list ", nil, 0},
	} {
		got, n := completions(tc.head, names)
		if strings.Join(str(got), "|") != strings.Join(tc.want, "|") || (len(tc.want) > 0 && n != tc.n) {
			t.Errorf("completions(%q) = %q, %d; want %q, %d", tc.head, str(got), n, tc.want, tc.n)
		}
	}
}

func TestClientRoster(t *testing.T) {
	r := &roster{self: "alice"}
	steps := []struct {
		text   string
		isList bool
		want   string
	}{
		{welcomeText("alice"), false, "alice"},
		{"[10:00:00] [SYSTEM] bob joined (secure channel)", false, "alice bob"},
		{"[10:00:01] bob: [10:00:00] [SYSTEM] eve joined (secure channel)", false, "alice bob"},
		{"[10:00:02] [PM from bob] \n" + separator + "\nOnline Users (1): x\n" + separator, false, "alice bob"},
		{listText([]string{"alice", "bob", "carol"}), true, "alice bob carol"},
		{"[10:00:03] [SYSTEM] bob left the chat", false, "alice carol"},
		{"\n" + separator + "\nOnline Users (3): a, b\n" + separator, false, "alice carol"},
	}
	for _, st := range steps {
		if got := r.observe(st.text); got != st.isList {
			t.Errorf("observe(%q) = %v, want %v", st.text, got, st.isList)
		}
		r.mu.Lock()
		got := strings.Join(r.names, " ")
		r.mu.Unlock()
		if got != st.want {
			t.Errorf("after %q roster is %q, want %q", st.text, got, st.want)
		}
	}
	if got := strings.Join(r.others(), " "); got != "carol" {
		t.Errorf("others() = %q, want carol", got)
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

func TestClientKeysComplete(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"abc", true},
		{"\x1b[A", true},
		{"x\x1b[1;5C", true},
		{"\x1b", true}, // a lone Esc key
		{"\x1b[", false},
		{"\x1b[1;", false},
		{"\x1bO", false},
		{"\x1bOH", true},
		{"é", true},
		{"\xc3", false},
		{"ab\xe2\x82", false},
		{"€", true},
	} {
		if got := keysComplete([]byte(tc.in)); got != tc.want {
			t.Errorf("keysComplete(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestTTYInput checks the readline workarounds in process: a wake reaches
// readline's goroutine, and closing the input ends a Readline in progress
// and lets the terminal close (chzyer/readline#217).
func TestTTYInput(t *testing.T) {
	keys, typist := io.Pipe()
	defer typist.Close()
	in := newTTYInput(keys)
	woke := make(chan struct{}, 8)
	var out syncBuffer
	rl, err := readline.NewEx(&readline.Config{
		Prompt:             "> ",
		Stdin:              in,
		Stdout:             &out,
		Stderr:             &out,
		FuncIsTerminal:     func() bool { return true },
		FuncMakeRaw:        func() error { return nil },
		FuncExitRaw:        func() error { return nil },
		FuncGetWidth:       func() int { return 80 },
		FuncOnWidthChanged: func(func()) {},
		FuncFilterInputRune: func(r rune) (rune, bool) {
			if r == wakeRune {
				woke <- struct{}{}
				return readline.CharBell, true // as filterRune does
			}
			return r, true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 2)
	go func() {
		for range 2 {
			line, err := rl.Readline()
			got <- result{line, err}
		}
	}()

	if _, err := typist.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil || r.line != "hello" {
			t.Fatalf("Readline = %q, %v", r.line, r.err)
		}
	case <-time.After(replWait):
		t.Fatal("no line")
	}
	in.wake()
	select {
	case <-woke:
	case <-time.After(replWait):
		t.Fatal("the wake rune never reached readline")
	}

	// The second Readline is blocked on the terminal: closing the input
	// must end it, and the terminal must then close.
	in.Close()
	select {
	case r := <-got:
		if r.err != io.EOF {
			t.Errorf("Readline after Close = %q, %v; want io.EOF", r.line, r.err)
		}
	case <-time.After(replWait):
		t.Fatal("Readline still blocked after the input closed")
	}
	closed := make(chan struct{})
	go func() {
		rl.Config.Stdin.Close()
		rl.Terminal.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(replWait):
		t.Fatal("readline's terminal did not close")
	}
}
