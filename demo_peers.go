// The demo's scripted clients, alice and bob, and the one terminal they
// share with the server: each speaker's lines go out whole, with the
// speaker's name in front, so the lesson reads in order; on a terminal, a
// screen at a time, with a pause for Enter between screens and parts.

//go:build !js

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chzyer/readline"
	"github.com/fatih/color"
)

// demoPeer is one scripted client: the client UI's own walk-through and
// colours, driven by the script instead of a keyboard. Texts it receives
// are printed when the script takes them, so the output reads in order.
type demoPeer struct {
	d     *demo
	from  int      // the log line the search for a notice's event starts at
	early []string // texts shown by showArrived that no expect has taken yet
	c     *chatClient
	texts chan demoText
	stop  chan struct{}
	done  chan struct{} // the receiver ended
	once  sync.Once
}

// demoText is a text a client received, with the place in the server's
// log at that moment: the log lines before it are printed before it.
type demoText struct {
	text string
	mark int
}

// newDemoPeer starts the receiver of a scripted client.
func (d *demo) newDemoPeer(cc *chatClient) *demoPeer {
	p := &demoPeer{d: d, from: d.logMark(), c: cc, texts: make(chan demoText, 64), stop: make(chan struct{}), done: make(chan struct{})}
	go p.receive()
	return p
}

// connect runs one client's handshake, printing its walk-through.
func (d *demo) connect(ctx context.Context, name string, c *color.Color) (*demoPeer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := &demoGate{d: d, ctx: ctx, from: d.logMark(), name: name, w: d.term.speaker(name, c)}
	cc := &chatClient{
		o:    clientOptions{connect: d.addr, name: name, suite: d.suite, fingerprint: d.fp},
		out:  w,
		errw: d.term.speakerTo(d.stderr, name, nil),
		pal:  d.pal,
		scr:  &screen{out: w},
		list: &roster{self: name},
	}
	cc.banner()
	cs, _ := cc.connect(ctx, name, nil, nil)
	if cs == nil {
		return nil, fmt.Errorf("%s could not connect", name)
	}
	cc.cs = cs
	// The server logs the join as the welcome goes out.
	d.showLogThrough(ctx, w.from, evJoin, name+" joined")
	cc.secured()
	return d.newDemoPeer(cc), nil
}

// demoGate is a walk-through's writer that prints, before a line that
// reports a frame from the server, the server's log through the event of
// sending it: the server logs some sends after the frame has gone, and the
// client can be quicker to print.
type demoGate struct {
	d    *demo
	ctx  context.Context
	from int // the log's length when the client started
	name string
	w    io.Writer
	buf  []byte
}

func (g *demoGate) Write(p []byte) (int, error) {
	g.buf = append(g.buf, p...)
	for {
		i := bytes.IndexByte(g.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := g.buf[:i+1]
		g.before(string(line))
		if _, err := g.w.Write(line); err != nil {
			return 0, err
		}
		g.buf = g.buf[i+1:]
	}
}

// before shows the log a walk-through line comes after.
func (g *demoGate) before(line string) {
	kind, text := eventKind(""), ""
	switch {
	case strings.Contains(line, "[1/5]") && g.d.suite == suiteClassic:
		kind, text = evHandshake, "Sent RSA public key"
	case strings.Contains(line, "[1/5]"):
		kind, text = evHandshake, "Starting with"
	case strings.Contains(line, "[5/5]") && g.d.suite == suiteClassic:
		kind, text = evHandshake, "Sent encrypted confirmation"
	default:
		return
	}
	g.d.showLogThrough(g.ctx, g.from, kind, text) // on a timeout it shows the log as it is
}

func (p *demoPeer) receive() {
	defer close(p.done)
	for {
		text, err := p.c.cs.Recv()
		if err != nil {
			return
		}
		select {
		case p.texts <- demoText{text, p.d.logMark()}:
		case <-p.stop:
			return
		}
	}
}

// say sends a line as if typed at the prompt, after the log so far.
func (p *demoPeer) say(text string) error {
	p.d.showLog()
	p.c.scr.println(p.c.list.self + "> " + text)
	if err := p.c.cs.Send(text); err != nil {
		return fmt.Errorf("%s: %v", p.c.list.self, err)
	}
	return nil
}

// show prints a received text as the client does, after the log lines
// from before it arrived. A join or a leave notice waits for the server's
// log of it, which the server writes after telling the others.
func (p *demoPeer) show(t demoText) {
	p.d.showLogTo(t.mark)
	if m := joinRE.FindStringSubmatch(t.text); m != nil {
		p.d.showLogThrough(p.d.ctx, p.from, evJoin, m[1]+" joined")
	} else if m := leftRE.FindStringSubmatch(t.text); m != nil {
		p.d.showLogThrough(p.d.ctx, p.from, evLeave, m[1]+" left")
	}
	p.from = t.mark
	p.c.list.observe(t.text)
	p.c.scr.println(p.c.colour(t.text))
}

// showArrived prints the texts that have arrived, without waiting: a
// client that only watches shows what it got among the script's lines.
func (p *demoPeer) showArrived() {
	for {
		select {
		case text := <-p.texts:
			p.show(text)
			p.early = append(p.early, text.text)
		default:
			return
		}
	}
}

// expect prints received texts until one contains want (or finds it among
// those showArrived printed).
func (p *demoPeer) expect(ctx context.Context, want string) error {
	for i, text := range p.early {
		if strings.Contains(text, want) {
			p.early = p.early[i+1:]
			return nil
		}
	}
	p.early = nil
	t := time.NewTimer(demoWait)
	defer t.Stop()
	for {
		select {
		case text := <-p.texts:
			p.show(text)
			if strings.Contains(text.text, want) {
				return nil
			}
		case <-p.done:
			return fmt.Errorf("%s: the connection closed while waiting for %q", p.c.list.self, want)
		case <-t.C:
			return fmt.Errorf("%s: no %q after %v", p.c.list.self, want, demoWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitClosed waits for the server to close the connection after /quit,
// printing what arrives before.
func (p *demoPeer) waitClosed(ctx context.Context) error {
	t := time.NewTimer(demoWait)
	defer t.Stop()
	for {
		select {
		case text := <-p.texts:
			p.show(text)
		case <-p.done:
			for len(p.texts) > 0 {
				p.show(<-p.texts)
			}
			return nil // the client prints nothing more after /quit
		case <-t.C:
			return fmt.Errorf("%s: the server did not close the connection after /quit", p.c.list.self)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close ends the session and waits for its receiver.
func (p *demoPeer) close() {
	p.once.Do(func() {
		close(p.stop)
		p.c.cs.Close()
		<-p.done
	})
}

// demoTerm is the demo's terminal: every speaker's lines go out whole,
// under one lock, with the speaker's name in front. On a terminal that the
// demo pauses, the lines are held and go out a screen at a time (page).
type demoTerm struct {
	mu   sync.Mutex
	w    io.Writer
	hold bool     // lines to w wait in held for page
	held [][]byte // whole lines, prefixes and colours included
}

// speaker is a writer whose lines start with "name │ " (nothing for "").
func (t *demoTerm) speaker(name string, c *color.Color) *demoSpeaker {
	return t.speakerTo(t.w, name, c)
}

func (t *demoTerm) speakerTo(w io.Writer, name string, c *color.Color) *demoSpeaker {
	s := &demoSpeaker{t: t, w: w}
	if name != "" {
		prefix := fmt.Sprintf("%-6s │ ", name)
		if c != nil {
			prefix = c.Sprint(fmt.Sprintf("%-6s", name)) + " │ "
		}
		s.prefix = []byte(prefix)
	}
	return s
}

type demoSpeaker struct {
	t      *demoTerm
	w      io.Writer
	prefix []byte
	buf    []byte
}

func (s *demoSpeaker) Write(p []byte) (int, error) {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := append(append([]byte(nil), s.prefix...), s.buf[:i+1]...)
		if s.t.hold && s.w == s.t.w {
			s.t.held = append(s.t.held, line)
		} else if _, err := s.w.Write(line); err != nil {
			return 0, err
		}
		s.buf = s.buf[i+1:]
	}
}

// demoPager holds the demo between its parts until the user presses Enter,
// so that a part does not scroll away before anyone reads it. It pauses only
// when stdin and stdout are both terminals; piped, the demo runs through.
// It reads its own handle on the controlling terminal, whose read, unlike
// stdin's, a deadline can interrupt (Ctrl-C ends a pause at once).
type demoPager struct {
	tty *os.File
	out *os.File // stdout, whose size a page fits
	buf [256]byte
}

// newDemoPager returns a pager, or nil when the demo should not pause.
func newDemoPager(stdout io.Writer) *demoPager {
	if terminalFile(stdout) == nil || terminalFile(os.Stdin) == nil {
		return nil
	}
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return nil
	}
	return &demoPager{tty: tty, out: terminalFile(stdout)}
}

// size is the terminal's rows and columns: LINES and COLUMNS when set,
// else the terminal's own, else 24 by 80.
func (p *demoPager) size() (rows, cols int) {
	rows, cols = 24, 80
	if p.out != nil {
		if w, h, err := readline.GetSize(int(p.out.Fd())); err == nil && w > 0 && h > 0 {
			rows, cols = h, w
		}
	}
	if n, err := strconv.Atoi(os.Getenv("LINES")); err == nil && n > 0 {
		rows = n
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		cols = n
	}
	return max(rows, 4), max(cols, 20)
}

// demoMorePrompt ends a screen that is not the end of its part.
const demoMorePrompt = "  press Enter for more of this part (Ctrl-C stops the demo) "

// page writes the held lines a screen at a time, so that nothing scrolls
// away unread: when they do not fit above prompt (the one that ends the
// part; "" at the end of the demo, where the shell's prompt follows), it
// pauses after each screenful. ctx ends it.
func (d *demo) page(prompt string) {
	t := d.term
	t.mu.Lock()
	lines := t.held
	t.held = nil
	t.mu.Unlock()
	for len(lines) > 0 && !d.stopped() {
		rows, cols := d.pager.size()
		last := 1 // the shell's prompt
		if prompt != "" {
			last = displayRows(d.pal.dim.Sprint(prompt), cols)
		}
		n := linesFitting(lines, rows-last, cols)
		if n < len(lines) {
			n = max(1, linesFitting(lines, rows-displayRows(demoMorePrompt, cols), cols))
		}
		t.mu.Lock()
		for _, l := range lines[:n] {
			t.w.Write(l)
		}
		t.mu.Unlock()
		lines = lines[n:]
		if len(lines) > 0 {
			d.pager.wait(d.ctx, t.w, d.pal.dim.Sprint(demoMorePrompt))
		}
	}
}

// unhold writes what is held at once and holds nothing more.
func (t *demoTerm) unhold() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range t.held {
		t.w.Write(l)
	}
	t.held, t.hold = nil, false
}

// linesFitting is how many of lines, from the first, fill at most rows
// rows of a terminal cols wide.
func linesFitting(lines [][]byte, rows, cols int) int {
	used := 0
	for i, l := range lines {
		if used += displayRows(string(l), cols); used > rows {
			return i
		}
	}
	return len(lines)
}

// ansiEscape matches the colour sequences the demo writes.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// displayRows is how many rows a line takes on a terminal cols wide.
func displayRows(line string, cols int) int {
	line = strings.TrimRight(ansiEscape.ReplaceAllString(line, ""), "\r\n")
	return max(1, (utf8.RuneCountInString(line)+cols-1)/cols)
}

// wait prints prompt and waits for Enter or the end of ctx. A terminal that
// fails to read ends the pauses; the demo goes on.
func (p *demoPager) wait(ctx context.Context, w io.Writer, prompt string) error {
	if p == nil || p.tty == nil {
		return ctx.Err()
	}
	fmt.Fprint(w, prompt)
	p.tty.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { p.tty.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		n, err := p.tty.Read(p.buf[:])
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			p.close()
			return nil
		}
		if bytes.IndexByte(p.buf[:n], '\n') >= 0 {
			return nil
		}
	}
}

func (p *demoPager) close() {
	if p != nil && p.tty != nil {
		p.tty.Close()
		p.tty = nil
	}
}
