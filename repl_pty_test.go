// Tests of the client's UI in a real pseudo-terminal (the built binary
// under github.com/creack/pty): completion and redraw, the ways of leaving,
// a server that shuts down or drops, what a malicious server can print,
// exit codes, and the terminal left as it was found.

package main

import (
	"bytes"
	"errors"
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

	"github.com/creack/pty"
)

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

	t.Run("sends only what the user types", func(t *testing.T) {
		// Nothing the user did not type reaches the server: a capture of
		// the session shows what people wrote, and nothing else.
		texts := make(chan string, 16)
		addr := replFakeServer(t, func(conn net.Conn, rc recordCipher, name string) {
			replSend(conn, rc, welcomeText(name))
			for {
				payload, err := readFrame(conn)
				if err != nil {
					close(texts)
					return
				}
				text, err := rc.open(payload)
				if err != nil {
					close(texts)
					return
				}
				texts <- string(text)
				if string(text) == "/quit" {
					close(texts)
					return
				}
			}
		})
		alice := startReplTerm(t, bin, "-connect", addr, "-name", "alice", "-insecure", "-no-color")
		alice.waitFor("alice> ", 0)
		alice.send("hello\r")
		alice.send("/quit\r")
		var got []string
		for text := range texts {
			got = append(got, text)
		}
		if want := []string{"hello", "/quit"}; !slices.Equal(got, want) {
			t.Errorf("the server received %q, want %q", got, want)
		}
		alice.exitCode()
	})

	t.Run("completion and redraw in a pty", func(t *testing.T) {
		srv := startReplServer(t)
		bob := dialReplPeer(t, srv.addr, "bob")
		alice := startReplTermStty(t, bin, "-connect", srv.addr, "-name", "alice", "-insecure", "-no-color")
		pos := alice.waitFor("alice> ", 0)
		bob.expect(t, `\[SYSTEM\] alice joined`)

		// /l<Tab> becomes /list; its answer is shown, once: the client
		// sends no /list of its own.
		alice.send("/l\t")
		pos = alice.waitFor("alice> /list", pos)
		alice.send("\r")
		pos = alice.waitFor("Online Users (2): bob, alice", pos)
		if n := strings.Count(alice.output(), "Online Users"); n != 1 {
			t.Errorf("%d /list answers printed, want 1", n)
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

	t.Run("a taken name at the prompt is asked again", func(t *testing.T) {
		srv := startReplServer(t)
		bob := dialReplPeer(t, srv.addr, "bob")
		// No -insecure: the first attempt pins the key, the second matches it.
		alice := startReplTerm(t, bin, "-connect", srv.addr, "-no-color")
		pos := alice.waitFor("Enter your username: ", 0)
		alice.send("bob\r")
		pos = alice.waitFor("server refused: Username already taken", pos)
		pos = alice.waitFor("someone with that name is online; pick another", pos)
		pos = alice.waitFor("Enter your username: ", pos)
		alice.send("carol\r")
		pos = alice.waitFor("matches the pin in", pos)
		alice.waitFor("carol> ", pos)
		bob.expect(t, `\[SYSTEM\] carol joined`)
		alice.send("/quit\r")
		if code := alice.exitCode(); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		if strings.Contains(alice.output(), "-name NAME") {
			t.Error("the hint points at -name, though the name is asked again")
		}
	})

	t.Run("help is answered by the client, Tab included", func(t *testing.T) {
		got := make(chan []string, 1)
		addr := replFakeServer(t, func(conn net.Conn, rc recordCipher, name string) {
			replSend(conn, rc, welcomeText(name))
			var texts []string
			for {
				payload, err := readFrame(conn)
				if err != nil {
					break
				}
				text, err := rc.open(payload)
				if err != nil {
					break
				}
				texts = append(texts, string(text))
				if string(text) == "/quit" {
					break
				}
			}
			got <- texts
		})
		alice := startReplTerm(t, bin, "-connect", addr, "-name", "alice", "-insecure", "-no-color")
		pos := alice.waitFor("alice> ", 0)
		alice.send("/he\t")
		pos = alice.waitFor("alice> /help", pos)
		alice.send("\r")
		pos = alice.waitFor("[HELP] Commands:", pos)
		alice.waitFor("/pm <username> <message> - send a private message", pos)
		alice.send("/quit\r")
		if code := alice.exitCode(); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
		select {
		case texts := <-got:
			if slices.Contains(texts, "/help") || !slices.Contains(texts, "/quit") {
				t.Errorf("the server received %q: want /quit and no /help", texts)
			}
		case <-time.After(replWait):
			t.Fatal("the fake server did not finish")
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
