// The client's terminal UI: the seed's banner and handshake walk-through,
// then the chat loop — a readline REPL when stdin and stdout are terminals,
// plain lines otherwise (scripts, lessons, tests).
//
// chzyer/readline v1.5.1 has two open bugs this file works around:
//   - Close hangs while another goroutine sits in Readline (chzyer/readline#217):
//     Close waits for readline's reader goroutine, which is blocked reading
//     stdin. readline reads from a ttyInput here, whose Close ends a pending
//     Read at once.
//   - Instance.Write redraws the prompt only when readline's reader is
//     active, a flag that lags the prompt (chzyer/readline#220): a message
//     written in that window lands after the prompt and the prompt is lost.
//     The receiving goroutine never writes to the terminal while readline
//     runs: texts are queued, a private "wake" rune is fed to readline
//     through ttyInput, and readline's own goroutine prints them from
//     FuncFilterInputRune, where its reader is known to be active, so Write
//     erases the edit line, prints, and redraws the prompt and the
//     half-typed line under readline's lock. Drawing and key handling then
//     happen on one goroutine and cannot race.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/chzyer/readline"
	"github.com/mattn/go-isatty"
)

const (
	dialTimeout = 5 * time.Second
	// quitGrace is how long a leaving client waits for replies in flight
	// (the server closes the connection after /quit).
	quitGrace = 500 * time.Millisecond
	// wakeRune asks readline's goroutine to print queued texts; it is in
	// the private use area, which no key produces.
	wakeRune = '\uE000'
	// seqGrace is how long a wake is held back after the terminal sent half
	// of a key sequence, so that it never lands inside one.
	seqGrace = 100 * time.Millisecond
)

var bar70 = strings.Repeat("=", 70)

func runClient(ctx context.Context, o clientOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	inTTY, outTTY := terminalFile(stdin), terminalFile(stdout)
	interactive := inTTY != nil && outTTY != nil
	c := &chatClient{
		o:     o,
		stdin: stdin,
		out:   stdout,
		errw:  stderr,
		pal:   newPalette(interactive && colorEnabled(o.noColor, stdout)),
		scr:   &screen{out: stdout},
		list:  &roster{},
	}
	c.banner()

	var lines *bufio.Reader // plain mode: stdin lines
	if interactive {
		if err := c.openREPL(inTTY, outTTY); err != nil {
			errorf(stderr, "terminal: %v", err)
			return 1
		}
		defer c.closeREPL()
	} else {
		lines = bufio.NewReader(stdin)
	}

	name := o.name
	if name != "" {
		if err := validateName(name); err != nil {
			errorf(stderr, "client: invalid -name %q: %v", sanitizeText(name), err)
			return 2
		}
	} else {
		var code int
		if name, code = c.askName(ctx, lines); code >= 0 {
			return code
		}
	}
	c.list.self = name

	rec, kl, closeFiles, err := openRecordFiles(o.record, o.keylog, "client", o.connect)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	defer closeFiles()

	cs, code := c.connect(ctx, name, rec, kl)
	if cs == nil {
		return code
	}
	defer cs.Close()
	c.cs = cs
	c.secured()

	if interactive {
		return c.repl(ctx)
	}
	return c.plain(ctx, lines)
}

// terminalFile returns x as a file when it is a terminal.
func terminalFile(x any) *os.File {
	f, ok := x.(*os.File)
	if ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return f
	}
	return nil
}

// chatClient is one run of the client command.
type chatClient struct {
	o         clientOptions
	stdin     io.Reader
	out, errw io.Writer
	pal       *palette
	scr       *screen
	list      *roster
	cs        *clientSession

	rl    *readline.Instance // nil in plain mode
	input *ttyInput
	raw   *rawMode

	swallowList atomic.Bool // the next /list answer is the silent one
	sawShutdown atomic.Bool // the server announced its shutdown
}

// ---- banner, name, handshake ------------------------------------------------

func (c *chatClient) banner() {
	security := "RSA-2048 + AES-256 encryption"
	if c.o.suite == suiteModern {
		security = suiteDescription(suiteModern)
	}
	fmt.Fprintln(c.out, bar70)
	fmt.Fprintln(c.out, "        ENCRYPTED CHAT CLIENT (SSL-LIKE HANDSHAKE)")
	fmt.Fprintln(c.out, bar70)
	fmt.Fprintf(c.out, "Server: %s\n", c.o.connect)
	fmt.Fprintf(c.out, "Security: %s\n", security)
	fmt.Fprintln(c.out, bar70)
	fmt.Fprintln(c.out)
}

// askName asks for the username as the seed does. It returns the name, or
// an exit code >= 0. On a terminal a bad name is asked again.
func (c *chatClient) askName(ctx context.Context, lines *bufio.Reader) (string, int) {
	const prompt = "Enter your username: "
	for {
		fmt.Fprint(c.out, prompt)
		var name string
		var err error
		if c.input != nil {
			// Read in the terminal's line mode, before readline ever reads:
			// the name stays out of the chat history.
			name, err = c.input.readLine(ctx)
		} else {
			name, err = lines.ReadString('\n')
			if err == io.EOF && name != "" {
				err = nil
			}
		}
		if c.input == nil || err != nil {
			fmt.Fprintln(c.out)
		}
		switch {
		case ctx.Err() != nil:
			return "", 1
		case err != nil:
			errorf(c.errw, "no username given")
			hintf(c.errw, "pass one with -name NAME")
			return "", 1
		}
		name = strings.TrimSpace(name)
		verr := validateName(name)
		if verr == nil {
			fmt.Fprintln(c.out)
			return name, -1
		}
		errorf(c.errw, "invalid username %q: %v", sanitizeText(name), verr)
		if c.input == nil {
			return "", 1
		}
		hintf(c.errw, "1-%d letters, digits, _ - . (not system or server)", maxNameLen)
	}
}

// connect dials and runs the handshake, printing the walk-through. On
// failure it prints why and returns nil and the exit code.
func (c *chatClient) connect(ctx context.Context, name string, rec *capture, kl *keylog) (*clientSession, int) {
	fmt.Fprintf(c.out, "Connecting to server at %s...\n", c.o.connect)
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", c.o.connect)
	if err != nil {
		if ctx.Err() != nil {
			errorf(c.errw, "interrupted")
			return nil, 1
		}
		errorf(c.errw, "cannot connect to %s: %v", c.o.connect, err)
		hintf(c.errw, "is the server running? start one with \"encchat server\", or pick the address with -connect HOST:PORT")
		return nil, 1
	}
	fmt.Fprintln(c.out, c.pal.join.Sprint("✓ TCP connection established"))
	fmt.Fprintln(c.out)
	fmt.Fprintln(c.out, bar70)
	fmt.Fprintln(c.out, "                    INITIATING SECURE HANDSHAKE")
	fmt.Fprintln(c.out, bar70)

	suite := c.o.suite
	if suite == "auto" {
		suite = ""
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	cs, err := clientHandshake(conn, clientConfig{
		Name: name, Suite: suite, Addr: c.o.connect,
		KnownServers: c.o.knownServers, Fingerprint: c.o.fingerprint, Insecure: c.o.insecure,
		Record: rec, Keylog: kl, Step: c.step,
	})
	stop()
	if err != nil {
		if ctx.Err() != nil {
			errorf(c.errw, "interrupted")
			return nil, 1
		}
		c.handshakeFailed(err)
		return nil, 1
	}
	return cs, -1
}

// step prints one step of the handshake walk-through.
func (c *chatClient) step(st handshakeStep) {
	const indent = "      "
	// A step without a number adds its results to the one before.
	if st.N > 0 {
		fmt.Fprintln(c.out, c.pal.handshake.Sprintf("[%d/%d] %s", st.N, st.Total, sanitizeText(st.Title)))
	}
	for _, r := range st.Results {
		r = sanitizeText(r)
		if strings.Contains(r, "NOT CHECKED") {
			fmt.Fprintln(c.out, indent+c.pal.warn.Sprint("! "+r))
			continue
		}
		fmt.Fprintln(c.out, indent+c.pal.join.Sprint("✓ "+r))
	}
}

// handshakeFailed explains a failed handshake on stderr.
func (c *chatClient) handshakeFailed(err error) {
	var mismatch *keyMismatchError
	var downgrade *downgradeError
	var refused *refusedError
	switch {
	case errors.As(err, &mismatch):
		c.keyWarning(mismatch)
	case errors.As(err, &downgrade):
		errorf(c.errw, "%s", sanitizeText(downgrade.Error()))
		if c.o.suite != suiteModern && c.o.knownServers != "" {
			hintf(c.errw, "if %s really went back to the classic suite, remove its line from %s", downgrade.Addr, c.o.knownServers)
		}
	case errors.As(err, &refused):
		errorf(c.errw, "%s", sanitizeText(refused.Error()))
		if strings.Contains(refused.Text, "taken") {
			hintf(c.errw, "someone with that name is online; pick another with -name NAME")
		}
	default:
		errorf(c.errw, "handshake with %s failed: %s", c.o.connect, sanitizeText(err.Error()))
	}
}

// keyWarning is OpenSSH's "REMOTE HOST IDENTIFICATION HAS CHANGED" block.
func (c *chatClient) keyWarning(e *keyMismatchError) {
	at := strings.Repeat("@", 59)
	title := "WARNING: SERVER KEY HAS CHANGED!"
	if e.Source == "-fingerprint" {
		title = "WARNING: SERVER KEY DOES NOT MATCH -fingerprint!"
	}
	w := c.errw
	errorf(w, "%s", c.pal.warn.Sprint(at))
	errorf(w, "%s", c.pal.warn.Sprintf("@    %-53s@", title))
	errorf(w, "%s", c.pal.warn.Sprint(at))
	errorf(w, "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!")
	errorf(w, "someone could be reading your chat right now (man-in-the-middle),")
	errorf(w, "or the server's key has just been changed.")
	errorf(w, "the key of %s does not match %s:", sanitizeText(e.Addr), sanitizeText(e.Source))
	errorf(w, "  expected %s", sanitizeText(e.Want))
	errorf(w, "  got      %s", sanitizeText(e.Got))
	errorf(w, "the connection was closed before your username was sent")
	if e.Source == "-fingerprint" {
		hintf(w, "compare with the fingerprint the server's banner prints (\"Key: RSA-2048 SHA256:...\")")
		return
	}
	file := c.o.knownServers
	if file == "" {
		file = "the known-servers file"
	}
	hintf(w, "if the change is expected, remove the line for %s from %s and connect again", sanitizeText(e.Addr), file)
}

// secured prints the end of the walk-through and the server's welcome.
func (c *chatClient) secured() {
	cipher := "All communication will be encrypted with AES-256"
	if c.cs.Suite == suiteModern {
		cipher = "All communication will be encrypted with AES-256-GCM (forward secret)"
	}
	fmt.Fprintln(c.out)
	fmt.Fprintln(c.out, bar70)
	fmt.Fprintln(c.out, c.pal.join.Sprint("                  ✓ SECURE CHANNEL ESTABLISHED"))
	fmt.Fprintln(c.out, "         "+cipher)
	fmt.Fprintln(c.out, bar70)
	welcome := sanitizeForTerminal(c.cs.Welcome())
	c.list.observe(welcome)
	fmt.Fprintln(c.out, c.pal.system.Sprint(welcome))
}

// ---- receiving --------------------------------------------------------------

// receive prints the server's texts until the connection ends, then sends
// the error on done. The caller ends it by closing the session.
func (c *chatClient) receive(done chan<- error) {
	for {
		text, err := c.cs.Recv()
		if err != nil {
			done <- err
			return
		}
		text = sanitizeForTerminal(text)
		if text == shutdownText {
			c.sawShutdown.Store(true)
		}
		if c.list.observe(text) && c.swallowList.CompareAndSwap(true, false) {
			continue // the answer to our own silent /list
		}
		c.scr.println(c.colour(text))
	}
}

// timeStampRE matches the server's "[HH:MM:SS] " prefix.
var timeStampRE = regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] `)

// colour picks a text's colour from its kind: system, private, error or
// the user's own message. Only the server's own prefixes count: a chat
// line always starts with "[time] NAME: ", and names hold no brackets.
func (c *chatClient) colour(text string) string {
	body := timeStampRE.ReplaceAllLiteralString(text, "")
	switch {
	case strings.HasPrefix(body, "[SYSTEM]"):
		return c.pal.system.Sprint(text)
	case strings.HasPrefix(body, "[PM "):
		return c.pal.private.Sprint(text)
	case strings.HasPrefix(body, "[ERROR]"), strings.HasPrefix(body, "ERROR:"):
		return c.pal.errorC.Sprint(text)
	case body != text && strings.HasPrefix(body, c.list.self+": "):
		return c.pal.own.Sprint(text)
	}
	return text
}

// serverGone prints why the session ended without the user asking, and
// returns the exit code: 0 after the server announced its shutdown.
func (c *chatClient) serverGone(err error) int {
	if c.sawShutdown.Load() {
		c.scr.println(c.pal.system.Sprint("the server shut down; disconnected"))
		return 0
	}
	why := "connection to the server closed"
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		why += ": " + sanitizeText(err.Error())
	}
	errorf(c.errw, "%s", why)
	return 1
}

// leave sends /quit unless it was sent, waits a moment for replies in
// flight and the server's close, then closes the session and waits for the
// receiver.
func (c *chatClient) leave(sendQuit bool, recvDone chan error) {
	if sendQuit {
		c.cs.Send("/quit")
	}
	t := time.NewTimer(quitGrace)
	defer t.Stop()
	select {
	case <-recvDone:
	case <-t.C:
		c.cs.Close()
		<-recvDone
	}
}

// ---- plain mode -------------------------------------------------------------

// plain sends stdin's lines and prints the server's texts plainly; at EOF
// it sends /quit and leaves after the grace period.
func (c *chatClient) plain(ctx context.Context, lines *bufio.Reader) int {
	recvDone := make(chan error, 1)
	go c.receive(recvDone)

	in := make(chan string)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(in)
		for {
			s, err := lines.ReadString('\n')
			if s != "" {
				select {
				case in <- s:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		// A read blocked on stdin ends at its next line, at EOF, or at a
		// deadline where stdin supports one; the process does not wait.
		if f, ok := c.stdinFile(); ok {
			f.SetReadDeadline(time.Now())
		}
		t := time.NewTimer(100 * time.Millisecond)
		defer t.Stop()
		select {
		case <-readerDone:
		case <-t.C:
		}
	}()

	for {
		select {
		case s, ok := <-in:
			if !ok {
				c.leave(true, recvDone)
				return 0
			}
			text := strings.TrimSpace(s)
			if text == "" {
				continue
			}
			if err := c.cs.Send(text); err != nil {
				c.cs.Close()
				return c.serverGone(<-recvDone)
			}
			if text == "/quit" {
				c.leave(false, recvDone)
				return 0
			}
		case err := <-recvDone:
			return c.serverGone(err)
		case <-ctx.Done():
			c.leave(true, recvDone)
			return 0
		}
	}
}

// stdinFile is stdin as a file, for a read deadline.
func (c *chatClient) stdinFile() (*os.File, bool) {
	f, ok := c.stdin.(*os.File)
	return f, ok
}

// ---- the REPL ---------------------------------------------------------------

// openREPL sets up readline on the terminal: in-memory history only (typed
// messages are private), completion from chatCommands and the roster.
func (c *chatClient) openREPL(in, out *os.File) error {
	c.input = newTTYInput(in)
	c.raw = &rawMode{fd: int(in.Fd())}
	outFd := int(out.Fd())
	rl, err := readline.NewEx(&readline.Config{
		HistoryFile:         "", // never on disk
		AutoComplete:        completer{c.list},
		Stdin:               c.input,
		Stdout:              c.out,
		Stderr:              c.errw,
		FuncIsTerminal:      func() bool { return true },
		FuncMakeRaw:         c.raw.enter,
		FuncExitRaw:         func() error { return nil },
		FuncFilterInputRune: c.filterRune,
		FuncGetWidth: func() int {
			w, _, err := readline.GetSize(outFd)
			if err != nil {
				return 80
			}
			return w
		},
	})
	if err != nil {
		c.input.Close()
		return err
	}
	c.rl = rl
	c.scr.rl = rl
	c.scr.input = c.input
	return nil
}

// closeREPL ends readline and restores the terminal. A Readline in progress
// returns once ttyInput is closed. Only the terminal is closed after that,
// not the Instance: Instance.Close also pushes an EOF into readline's
// one-slot error channel, which leaves its operation goroutine blocked for
// good when no Readline is running; closing the terminal alone lets that
// goroutine read EOF and end.
func (c *chatClient) closeREPL() {
	if c.rl == nil {
		return
	}
	c.input.Close()
	c.scr.detach()
	c.rl.Config.Stdin.Close()
	c.rl.Terminal.Close()
	c.raw.restore()
	c.rl = nil
}

// filterRune runs on readline's goroutine before each key is handled.
// Keys it takes over become CharBell, which readline's editor ignores:
// returning false instead makes readline call KickRead while its reader is
// still reading, and that stale kick lets readline read and edit keys
// between Readline calls, racing the next call inside readline itself.
func (c *chatClient) filterRune(r rune) (rune, bool) {
	switch r {
	case wakeRune:
		c.scr.drawPending()
		return readline.CharBell, true
	case readline.CharCtrlZ:
		// readline's suspend signals the parent process too; ignore it.
		return readline.CharBell, true
	}
	return r, true
}

type lineResult struct {
	line string
	err  error
}

// repl runs the chat on a terminal. A goroutine owned here calls Readline
// each time the loop asks, so the loop can also watch the connection and
// the signal context.
func (c *chatClient) repl(ctx context.Context) int {
	c.rl.SetPrompt(c.list.self + "> ")
	fmt.Fprintln(c.out, c.pal.dim.Sprint("Type a message and Enter. Commands: /pm NAME TEXT, /list, /help, /quit (Tab completes)."))

	recvDone := make(chan error, 1)
	c.swallowList.Store(true)
	go c.receive(recvDone)
	if err := c.cs.Send("/list"); err != nil { // silent: fills the roster
		c.cs.Close()
		return c.serverGone(<-recvDone)
	}

	want := make(chan struct{}, 1)
	got := make(chan lineResult, 1)
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for range want {
			line, err := c.rl.Readline()
			got <- lineResult{line, err}
		}
	}()
	stopReader := sync.OnceFunc(func() {
		close(want)
		c.input.Close() // ends a Readline in progress
		readers.Wait()
		c.closeREPL()
	})
	defer stopReader()

	want <- struct{}{}
	for {
		select {
		case r := <-got:
			if how, end := c.handleLine(r); end {
				stopReader()
				return c.finish(how, recvDone)
			}
			want <- struct{}{}
		case err := <-recvDone:
			stopReader()
			return c.serverGone(err)
		case <-ctx.Done():
			stopReader()
			c.leave(true, recvDone)
			return 0
		}
	}
}

// Outcomes of one REPL line.
type lineOutcome int

const (
	lineGoOn     lineOutcome = iota // sent, or nothing to send
	lineQuitSent                    // /quit went out
	lineLeave                       // Ctrl-C on an empty line, or Ctrl-D: /quit must go out
	lineBroken                      // the send failed: the connection is gone
)

// handleLine acts on one Readline result and says whether the REPL ends.
func (c *chatClient) handleLine(r lineResult) (lineOutcome, bool) {
	switch {
	case errors.Is(r.err, readline.ErrInterrupt):
		if strings.TrimSpace(r.line) != "" {
			return lineGoOn, false // Ctrl-C cleared the line
		}
		return lineLeave, true
	case r.err != nil: // Ctrl-D on an empty line
		return lineLeave, true
	}
	text := strings.TrimSpace(r.line)
	if text == "" {
		return lineGoOn, false
	}
	if err := c.cs.Send(text); err != nil {
		return lineBroken, true
	}
	if text == "/quit" {
		return lineQuitSent, true
	}
	return lineGoOn, false
}

// finish ends the session after the REPL's last line.
func (c *chatClient) finish(how lineOutcome, recvDone chan error) int {
	switch how {
	case lineBroken:
		c.cs.Close()
		return c.serverGone(<-recvDone)
	case lineQuitSent:
		c.leave(false, recvDone)
	default:
		c.leave(true, recvDone)
	}
	return 0
}

// rawMode keeps the terminal raw from the first Readline until the REPL
// closes. readline would leave raw mode after every line; keys typed while
// a line is being sent would then be echoed twice by the terminal, and a
// Ctrl-C there would be a SIGINT that ends the chat instead of clearing a
// line. enter is readline's FuncMakeRaw; readline's FuncExitRaw does
// nothing, and restore is called when the REPL closes.
type rawMode struct {
	fd    int
	mu    sync.Mutex
	saved *readline.State
}

func (m *rawMode) enter() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saved != nil {
		return nil
	}
	st, err := readline.MakeRaw(m.fd)
	if err == nil {
		m.saved = st
	}
	return err
}

func (m *rawMode) restore() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saved == nil {
		return nil
	}
	err := readline.Restore(m.fd, m.saved)
	m.saved = nil
	return err
}

// ---- screen: one writer for the terminal -----------------------------------

// screen prints the server's texts. While readline runs, only readline's
// goroutine draws: texts are queued and a wake rune makes that goroutine
// print them above the prompt (drawPending). Waiting for a Readline call is
// not enough: readline may go on reading and drawing keys between calls
// (a KickRead left over in its one-slot channel lets it), so nothing else
// writes to the terminal until readline is closed.
type screen struct {
	mu      sync.Mutex
	out     io.Writer
	rl      *readline.Instance // nil: write at once
	input   *ttyInput
	pending []string
}

func (s *screen) println(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rl != nil {
		s.pending = append(s.pending, text)
		s.input.wake()
		return
	}
	io.WriteString(s.out, text+"\n")
}

// detach stops using readline; what is still queued is written now, on a
// line of its own (readline may have left a prompt on the last line).
func (s *screen) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rl = nil
	io.WriteString(s.out, "\r\x1b[K")
	for _, t := range s.pending {
		io.WriteString(s.out, t+"\n")
	}
	s.pending = nil
}

// drawPending runs on readline's goroutine (FuncFilterInputRune). Under
// readline's line lock, Instance.Write erases the edit line, prints, and
// redraws the prompt and the line as the user left it; the Clean before it
// keeps the line clean even if readline takes Write's unlocked path.
func (s *screen) drawPending() {
	s.mu.Lock()
	texts, rl := s.pending, s.rl
	s.pending = nil
	s.mu.Unlock()
	if len(texts) == 0 || rl == nil {
		return
	}
	rl.Clean()
	rl.Write([]byte(strings.Join(texts, "\n") + "\n"))
}

// ---- ttyInput: readline's stdin ---------------------------------------------

// wakeBytes is wakeRune in UTF-8.
var wakeBytes = []byte(string(wakeRune))

// ttyInput feeds readline the terminal's bytes, plus a wake rune on demand,
// and its Close ends a pending Read at once (readline's own stdin wrapper is
// not closed by Instance.Close, chzyer/readline#217).
//
// Its pump goroutine reads the terminal. A blocking terminal read cannot be
// cancelled portably: after Close the pump ends at the next key press or
// when the process exits, holding nothing but that read.
type ttyInput struct {
	chunks    chan []byte
	wakeCh    chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// Only readline's reader goroutine touches these, inside Read.
	rest      []byte
	midSeq    bool      // the last chunk ended inside a key sequence
	lastChunk time.Time // when it came
}

func newTTYInput(r io.Reader) *ttyInput {
	in := &ttyInput{
		chunks: make(chan []byte),
		wakeCh: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go in.pump(r)
	return in
}

func (in *ttyInput) pump(r io.Reader) {
	defer close(in.chunks)
	buf := make([]byte, 256)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := append([]byte(nil), buf[:n]...)
			select {
			case in.chunks <- chunk:
			case <-in.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line in the terminal's line mode, before readline
// reads anything; what follows the line is kept for readline.
func (in *ttyInput) readLine(ctx context.Context) (string, error) {
	var line []byte
	for {
		if i := bytes.IndexByte(in.rest, '\n'); i >= 0 {
			line = append(line, in.rest[:i]...)
			in.rest = in.rest[i+1:]
			return string(line), nil
		}
		line = append(line, in.rest...)
		in.rest = nil
		select {
		case chunk, ok := <-in.chunks:
			if !ok {
				return string(line), io.EOF
			}
			in.rest = chunk
		case <-ctx.Done():
			return "", ctx.Err()
		case <-in.done:
			return "", io.EOF
		}
	}
}

// wake asks for one wake rune; wakes asked before it is read merge.
func (in *ttyInput) wake() {
	select {
	case in.wakeCh <- struct{}{}:
	default:
	}
}

func (in *ttyInput) Read(p []byte) (int, error) {
	for len(in.rest) == 0 {
		wake := (<-chan struct{})(in.wakeCh)
		var hold *time.Timer
		var holdC <-chan time.Time
		if in.midSeq {
			if wait := seqGrace - time.Since(in.lastChunk); wait > 0 {
				hold = time.NewTimer(wait)
				wake, holdC = nil, hold.C
			} else {
				in.midSeq = false
			}
		}
		select {
		case chunk, ok := <-in.chunks:
			if !ok {
				return 0, io.EOF
			}
			in.rest = chunk
			in.midSeq = !keysComplete(chunk)
			in.lastChunk = time.Now()
		case <-wake:
			in.rest = wakeBytes
		case <-holdC:
			in.midSeq = false
		case <-in.done:
			return 0, io.EOF
		}
		if hold != nil {
			hold.Stop()
		}
	}
	n := copy(p, in.rest)
	in.rest = in.rest[n:]
	return n, nil
}

// Close makes pending and later Reads return io.EOF.
func (in *ttyInput) Close() error {
	in.closeOnce.Do(func() { close(in.done) })
	return nil
}

// keysComplete reports whether b ends on a key boundary: not inside a UTF-8
// sequence, nor inside an escape sequence (ESC [ params, ESC O) that
// readline would go on reading.
func keysComplete(b []byte) bool {
	start := len(b) - 1
	for start > 0 && len(b)-start < utf8.UTFMax && b[start]&0xC0 == 0x80 {
		start--
	}
	if start >= 0 && !utf8.FullRune(b[start:]) {
		return false
	}
	esc := -1
	for i := len(b) - 1; i >= 0 && i >= len(b)-32; i-- {
		if b[i] == 0x1b {
			esc = i
			break
		}
	}
	if esc < 0 {
		return true
	}
	seq := b[esc+1:]
	switch {
	case len(seq) == 0:
		return true // a lone Esc key: readline takes the next rune as is
	case seq[0] == 'O':
		return len(seq) >= 2
	case seq[0] == '[':
		for _, ch := range seq[1:] {
			if (ch < '0' || ch > '9') && ch != ';' {
				return true // the final byte came
			}
		}
		return false
	}
	return true
}

// ---- roster and completion --------------------------------------------------

// roster is who is online, kept from the server's own texts (the classic
// protocol has no roster message), in join order.
type roster struct {
	mu    sync.Mutex
	self  string
	names []string
}

var (
	welcomeRE = regexp.MustCompile(`(?m)^Welcome (\S+)!$`)
	joinRE    = regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] \[SYSTEM\] (\S+) joined \(secure channel\)$`)
	leftRE    = regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] \[SYSTEM\] (\S+) left the chat$`)
	listRE    = regexp.MustCompile(`^=+\nOnline Users \((\d+)\): (.*)\n=+$`)
)

// observe updates the roster from one server text and reports whether the
// text was a /list answer.
func (r *roster) observe(text string) (isList bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := listRE.FindStringSubmatch(strings.Trim(text, "\n")); m != nil {
		var names []string
		if m[2] != "" {
			names = strings.Split(m[2], ", ")
		}
		if n, err := strconv.Atoi(m[1]); err != nil || n != len(names) {
			return false
		}
		r.names = names
		return true
	}
	if m := joinRE.FindStringSubmatch(text); m != nil && validateName(m[1]) == nil {
		r.addLocked(m[1])
	} else if m := leftRE.FindStringSubmatch(text); m != nil {
		r.names = removeName(r.names, m[1])
	} else if m := welcomeRE.FindStringSubmatch(text); m != nil && validateName(m[1]) == nil &&
		strings.HasPrefix(strings.TrimLeft(text, "\n"), separator) {
		r.addLocked(m[1])
	}
	return false
}

func (r *roster) addLocked(name string) {
	for _, n := range r.names {
		if n == name {
			return
		}
	}
	r.names = append(r.names, name)
}

func removeName(names []string, name string) []string {
	out := names[:0]
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// others is everyone online but the user, for /pm completion.
func (r *roster) others() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.names {
		if n != r.self {
			out = append(out, n)
		}
	}
	return out
}

// completer is readline's AutoCompleter over chatCommands and the roster.
type completer struct{ list *roster }

func (c completer) Do(line []rune, pos int) ([][]rune, int) {
	return completions(string(line[:pos]), c.list.others())
}

// completions returns what Tab may add after head (the line up to the
// cursor) and how many runes of head it completes: a command after "/",
// a name after "/pm ".
func completions(head string, names []string) ([][]rune, int) {
	var out [][]rune
	if strings.HasPrefix(head, "/") && !strings.Contains(head, " ") {
		for _, cmd := range chatCommands {
			if strings.HasPrefix(cmd.name, head) {
				s := cmd.name[len(head):]
				if cmd.args != "" {
					s += " "
				}
				out = append(out, []rune(s))
			}
		}
		return out, utf8.RuneCountInString(head)
	}
	rest, ok := strings.CutPrefix(head, "/pm ")
	if !ok {
		return nil, 0
	}
	word := strings.TrimLeft(rest, " ")
	if strings.Contains(word, " ") {
		return nil, 0
	}
	for _, n := range names {
		if strings.HasPrefix(n, word) {
			out = append(out, []rune(n[len(word):]+" "))
		}
	}
	return out, utf8.RuneCountInString(word)
}
