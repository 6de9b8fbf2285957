//go:build !js

// The demo's scripted clients, alice and bob, and the one terminal they
// share with the server: each speaker's lines go out whole, with the
// speaker's name in front, so the lesson reads in order.

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fatih/color"
)

// demoPeer is one scripted client: the client UI's own walk-through and
// colours, driven by the script instead of a keyboard. Texts it receives
// are printed when the script takes them, so the output reads in order.
type demoPeer struct {
	c     *chatClient
	texts chan string
	stop  chan struct{}
	done  chan struct{} // the receiver ended
	once  sync.Once
}

// connect runs one client's handshake, printing its walk-through.
func (d *demo) connect(ctx context.Context, name string, c *color.Color) (*demoPeer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w := d.term.speaker(name, c)
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
	cc.secured()
	p := &demoPeer{c: cc, texts: make(chan string, 64), stop: make(chan struct{}), done: make(chan struct{})}
	go p.receive()
	return p, nil
}

func (p *demoPeer) receive() {
	defer close(p.done)
	for {
		text, err := p.c.cs.Recv()
		if err != nil {
			return
		}
		select {
		case p.texts <- text:
		case <-p.stop:
			return
		}
	}
}

// say sends a line as if typed at the prompt.
func (p *demoPeer) say(text string) error {
	p.c.scr.println(p.c.list.self + "> " + text)
	if err := p.c.cs.Send(text); err != nil {
		return fmt.Errorf("%s: %v", p.c.list.self, err)
	}
	return nil
}

// show prints a received text as the client does.
func (p *demoPeer) show(text string) {
	p.c.list.observe(text)
	p.c.scr.println(p.c.colour(text))
}

// expect prints received texts until one contains want.
func (p *demoPeer) expect(ctx context.Context, want string) error {
	t := time.NewTimer(demoWait)
	defer t.Stop()
	for {
		select {
		case text := <-p.texts:
			p.show(text)
			if strings.Contains(text, want) {
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
// under one lock, with the speaker's name in front.
type demoTerm struct {
	mu sync.Mutex
	w  io.Writer
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
		if _, err := s.w.Write(line); err != nil {
			return 0, err
		}
		s.buf = s.buf[i+1:]
	}
}

// demoPacer holds the demo between its parts until the user presses Enter,
// so that a part does not scroll away before anyone reads it. It paces only
// when stdin and stdout are both terminals; piped, the demo runs through.
// It reads its own handle on the controlling terminal, whose read, unlike
// stdin's, a deadline can interrupt (Ctrl-C ends a pause at once).
type demoPacer struct {
	tty *os.File
	buf [256]byte
}

// newDemoPacer returns a pacer, or nil when the demo should not pause.
func newDemoPacer(stdout io.Writer) *demoPacer {
	if terminalFile(stdout) == nil || terminalFile(os.Stdin) == nil {
		return nil
	}
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return nil
	}
	return &demoPacer{tty: tty}
}

// wait prints prompt and waits for Enter or the end of ctx. A terminal that
// fails to read ends the pauses; the demo goes on.
func (p *demoPacer) wait(ctx context.Context, w io.Writer, prompt string) error {
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

func (p *demoPacer) close() {
	if p != nil && p.tty != nil {
		p.tty.Close()
		p.tty = nil
	}
}
