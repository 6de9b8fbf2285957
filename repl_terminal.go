// readline on the client's terminal: its setup and teardown, raw mode kept
// for the whole chat, the one writer of the screen, and readline's input.
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
//
// github.com/ergochat/readline v0.1.3 fixes both bugs but is no drop-in: it
// asks the terminal for the cursor position (ESC [6n) before every prompt
// and waits for the answer with no timeout, holding the lock that incoming
// texts need, and Ctrl-C drops the typed line, so the REPL could not tell
// "clear this line" from "leave".

//go:build !js

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chzyer/readline"
)

const (
	// wakeRune asks readline's goroutine to print queued texts; it is in
	// the private use area, which no key produces.
	wakeRune = '\uE000'
	// seqGrace is how long a wake is held back after the terminal sent half
	// of a key sequence, so that it never lands inside one.
	seqGrace = 100 * time.Millisecond
)

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
