// The client's terminal UI: the seed's banner and handshake walk-through,
// then the chat loop — a readline REPL when stdin and stdout are terminals,
// plain lines otherwise (scripts, lessons, tests). readline itself, and the
// workarounds for its bugs, are in repl_terminal.go; who is online and Tab
// completion in repl_roster.go.

//go:build !js

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chzyer/readline"
	"github.com/mattn/go-isatty"
)

const (
	dialTimeout = 5 * time.Second
	// quitGrace is how long a leaving client waits for replies in flight
	// (the server closes the connection after /quit).
	quitGrace = 500 * time.Millisecond
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
		outputHint(stderr, err)
		return 1
	}
	defer closeFiles()

	cs, code := c.connect(ctx, name, rec, kl)
	// A name typed at the prompt that someone online holds is asked again.
	for cs == nil && o.name == "" && c.input != nil && nameTaken(c.connectErr) {
		if name, code = c.askName(ctx, lines); code >= 0 {
			return code
		}
		c.list.self = name
		cs, code = c.connect(ctx, name, rec, kl)
	}
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

	connectErr  error       // why the last connect failed
	sawShutdown atomic.Bool // the server announced its shutdown
	outbox      *outbox     // the REPL's lines on their way out
}

func (c *chatClient) banner() {
	security := "RSA-2048 + AES-256 encryption"
	if c.o.suite == suiteModern {
		security = suiteDescription(suiteModern)
	}
	fmt.Fprintln(c.out, bar70)
	fmt.Fprintln(c.out, center70(clientTitle))
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

// nameTaken reports whether the server refused the username as taken.
func nameTaken(err error) bool {
	var refused *refusedError
	return errors.As(err, &refused) && refused.Text == nameTakenText
}

// connect dials and runs the handshake, printing the walk-through. On
// failure it prints why, keeps the error in connectErr, and returns nil and
// the exit code.
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
		dialHint(c.errw, err)
		return nil, 1
	}
	fmt.Fprintln(c.out, c.pal.join.Sprint("✓ TCP connection established"))
	fmt.Fprintln(c.out)
	fmt.Fprintln(c.out, bar70)
	fmt.Fprintln(c.out, center70(handshakeTitle))
	fmt.Fprintln(c.out, bar70)

	suite := c.o.suite
	if suite == "auto" {
		suite = ""
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	cs, err := clientHandshake(conn, clientConfig{
		Name: name, Suite: suite, Addr: c.o.connect,
		KnownServers: c.o.knownServers, Fingerprint: c.o.fingerprint, Insecure: c.o.insecure,
		Record: rec, Keylog: kl, Step: c.step, HelloTimeout: helloTimeout,
	})
	stop()
	c.connectErr = err
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
	var notChat *notChatServerError
	switch {
	case errors.As(err, &mismatch):
		c.keyWarning(mismatch)
	case errors.As(err, &downgrade):
		errorf(c.errw, "%s", sanitizeText(downgrade.Error()))
		if c.o.suite != suiteModern && c.o.knownServers != "" {
			hintf(c.errw, "if %s really went back to the classic suite, forget its pin with: %s", sanitizeText(downgrade.Addr), c.forgetCommand(downgrade.Addr))
		}
	case errors.As(err, &refused):
		errorf(c.errw, "%s", sanitizeText(refused.Error()))
		switch {
		case refused.Text != nameTakenText:
		case c.o.name == "" && c.input != nil:
			hintf(c.errw, "someone with that name is online; pick another")
		default:
			hintf(c.errw, "someone with that name is online; pick another with -name NAME")
		}
	case errors.As(err, &notChat):
		errorf(c.errw, "%s", sanitizeText(notChat.Error()))
		hintf(c.errw, "is this an encchat server? check the address given to -connect (an encchat server's default port is %s)", defaultPort)
	default:
		errorf(c.errw, "handshake with %s failed: %s", c.o.connect, sanitizeText(err.Error()))
	}
}

// keyWarning is OpenSSH's "REMOTE HOST IDENTIFICATION HAS CHANGED" block:
// printed as a block, as OpenSSH prints it, then one "encchat:" line that
// says what happened and a hint that says what to do.
func (c *chatClient) keyWarning(e *keyMismatchError) {
	at := strings.Repeat("@", 59)
	title := "WARNING: SERVER KEY HAS CHANGED!"
	if e.Source == "-fingerprint" {
		title = "WARNING: SERVER KEY DOES NOT MATCH -fingerprint!"
	}
	w := c.errw
	addr := sanitizeText(e.Addr)
	fmt.Fprintln(w, c.pal.warn.Sprint(at))
	fmt.Fprintln(w, c.pal.warn.Sprintf("@    %-53s@", title))
	fmt.Fprintln(w, c.pal.warn.Sprint(at))
	fmt.Fprintln(w, "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!")
	fmt.Fprintln(w, "Someone could be reading your chat right now (man-in-the-middle),")
	fmt.Fprintln(w, "or the server's key has just been changed.")
	fmt.Fprintf(w, "The key of %s does not match %s:\n", addr, sanitizeText(e.Source))
	fmt.Fprintf(w, "  expected %s\n", sanitizeText(e.Want))
	fmt.Fprintf(w, "  got      %s\n", sanitizeText(e.Got))
	file := c.o.knownServers
	if e.Source != "-fingerprint" && file != "" {
		for _, n := range knownServerLines(file, e.Addr) {
			fmt.Fprintf(w, "Offending key in %s:%d\n", file, n)
		}
	}
	what := "has changed"
	if e.Source == "-fingerprint" {
		what = "does not match -fingerprint"
	}
	errorf(w, "the key of %s %s: the connection was closed before your username was sent", addr, what)
	if e.Source == "-fingerprint" {
		hintf(w, "%s", fingerprintSourceHint)
		return
	}
	hintf(w, "if the change is expected (the seed's server makes a new key at every start), forget the old key with: %s", c.forgetCommand(e.Addr))
}

// forgetCommand is the command that forgets addr's pin.
func (c *chatClient) forgetCommand(addr string) string {
	if c.o.knownServers != "" && !c.o.defaultKnownServers {
		return "encchat forget -known-servers " + c.o.knownServers + " " + sanitizeText(addr)
	}
	return "encchat forget " + sanitizeText(addr)
}

// secured prints the end of the walk-through and the server's welcome.
func (c *chatClient) secured() {
	cipher := "All communication will be encrypted with AES-256"
	if c.cs.Suite == suiteModern {
		cipher = "All communication will be encrypted with AES-256-GCM (forward secret)"
	}
	fmt.Fprintln(c.out)
	fmt.Fprintln(c.out, bar70)
	fmt.Fprintln(c.out, c.pal.join.Sprint(center70(securedTitle)))
	fmt.Fprintln(c.out, center70(cipher))
	fmt.Fprintln(c.out, bar70)
	welcome := sanitizeForTerminal(c.cs.Welcome())
	c.list.observe(welcome)
	fmt.Fprintln(c.out, c.pal.system.Sprint(welcome))
}

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
		c.list.observe(text)
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
			if text == "" || c.answerLocally(text) {
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

	// Nothing is sent that the user did not type: a capture and its lesson
	// page show only what people wrote. Names online before the user
	// joined complete after their first /list.
	recvDone := make(chan error, 1)
	go c.receive(recvDone)
	c.outbox = newOutbox(c.cs.Send, outboxNotice, func(n int) {
		c.scr.println(c.pal.system.Sprint("[" + time.Now().Format("15:04:05") + "] " + waitingText(n)))
	})

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
				return c.finish(ctx, how, recvDone)
			}
			want <- struct{}{}
		case <-c.outbox.failed:
			stopReader()
			return c.finish(ctx, lineBroken, recvDone)
		case err := <-recvDone:
			stopReader()
			c.dropOutbox()
			return c.serverGone(err)
		case <-ctx.Done():
			stopReader()
			grace, cancel := context.WithTimeout(context.Background(), quitGrace)
			defer cancel()
			c.outbox.push("/quit")
			c.flush(grace)
			c.leave(false, recvDone)
			return 0
		}
	}
}

// Outcomes of one REPL line.
type lineOutcome int

const (
	lineGoOn     lineOutcome = iota // queued to be sent, or nothing to send
	lineQuitSent                    // /quit is queued
	lineLeave                       // Ctrl-C on an empty line, or Ctrl-D: /quit must go out
	lineBroken                      // a send failed: the connection is gone
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
	if c.answerLocally(text) {
		return lineGoOn, false
	}
	c.outbox.push(text)
	if text == "/quit" {
		return lineQuitSent, true
	}
	return lineGoOn, false
}

// answerLocally answers /help in the client, and reports whether it did.
// The seed's server relays "/help" to everyone as chat, and in the classic
// suite nothing tells it from encchat's server (the welcome and every
// answer are the seed's, byte for byte), so /help never goes out: the
// client lists the commands both servers understand, and /help itself.
func (c *chatClient) answerLocally(text string) bool {
	if cmd, _, _ := strings.Cut(text, " "); cmd != "/help" {
		return false
	}
	c.scr.println(c.pal.system.Sprint(helpText()))
	return true
}

// finish ends the session after the REPL's last line, once the lines
// typed before it are sent.
func (c *chatClient) finish(ctx context.Context, how lineOutcome, recvDone chan error) int {
	switch how {
	case lineBroken:
		c.dropOutbox()
		return c.serverGone(<-recvDone)
	case lineLeave:
		c.outbox.push("/quit")
	}
	c.flush(ctx)
	c.leave(false, recvDone)
	return 0
}

// flush waits until the outbox has sent every line, or a send failed, or
// ctx ended: then the connection is closed under the send.
func (c *chatClient) flush(ctx context.Context) {
	c.outbox.close()
	select {
	case <-c.outbox.done:
	case <-ctx.Done():
		c.dropOutbox()
	}
}

// dropOutbox closes the connection, which ends a send in progress, and
// waits for the outbox to stop; lines not yet sent are lost with the
// connection.
func (c *chatClient) dropOutbox() {
	c.outbox.close()
	c.cs.Close()
	<-c.outbox.done
}
