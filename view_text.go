// The text view of replay: the sniffer's and the peer's side of each frame,
// one above the other or side by side, coloured on a terminal.

//go:build !js

package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chzyer/readline"
	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
)

// Text styles.
type textStyle uint8

const (
	stPlain textStyle = iota
	stDim
	stHead
	stC2S
	stS2C
	stKind
	stText
	stNote
	stErr
)

// styledLine is one line of a view before it is laid out.
type styledLine struct {
	s  string
	st textStyle
}

// textOutput renders the sniffer, peer and both views.
type textOutput struct {
	w     *bufio.Writer
	opts  *replayOptions
	both  bool
	side  bool // both views side by side
	colW  int
	paint [stErr + 1]*color.Color

	// The chart's step of each open connection's handshake frames.
	steps map[int]*stepFinder

	// Scratch reused for every frame.
	scratch      []byte
	sniff, peer  []styledLine
	lwrap, rwrap []styledLine
}

// sideBySideMin is the narrowest terminal that shows both views side by side.
const sideBySideMin = 100

func newTextOutput(w io.Writer, opts *replayOptions) *textOutput {
	o := &textOutput{w: bufio.NewWriterSize(w, 64<<10), opts: opts, both: opts.view == "both"}
	if o.both && opts.width >= sideBySideMin {
		o.side = true
		o.colW = (opts.width - 5) / 2
	}
	attrs := [...][]color.Attribute{
		stPlain: nil,
		stDim:   {color.Faint},
		stHead:  {color.Bold},
		stC2S:   {color.FgCyan, color.Bold},
		stS2C:   {color.FgMagenta, color.Bold},
		stKind:  {color.Bold},
		stText:  {color.FgGreen},
		stNote:  {color.FgYellow},
		stErr:   {color.FgRed, color.Bold},
	}
	for i, a := range attrs {
		c := color.New(a...)
		if opts.color && len(a) > 0 {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
		o.paint[i] = c
	}
	return o
}

// put writes one line in one style; text from the capture is escaped first.
func (o *textOutput) put(st textStyle, s string) {
	o.paintString(st, printable(s))
	o.w.WriteByte('\n')
}

// paintString writes s in a style, plainly when colour is off.
func (o *textOutput) paintString(st textStyle, s string) {
	if o.opts.color && st != stPlain {
		o.w.WriteString(o.paint[st].Sprint(s))
		return
	}
	o.w.WriteString(s)
}

func (o *textOutput) begin(h captureHeader, started time.Time) {
	when := h.Started
	if !started.IsZero() {
		when = started.UTC().Format("2006-01-02 15:04:05 MST")
	}
	o.put(stHead, fmt.Sprintf("capture %s: recorded by %s at %s, started %s", o.opts.name, orUnknown(h.Recorder), orUnknown(h.Addr), orUnknown(when)))
	o.put(stPlain, "keys: "+keyDescription(o.opts.keys, true))
	if o.side {
		o.columns([]styledLine{{"SNIFFER: what anyone on the path sees", stHead}}, []styledLine{{"PEER: what the endpoint decrypts", stHead}})
	}
	o.w.WriteByte('\n')
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// describeKeys says which keys replay has, naming key files by their base
// names (the lesson page: a handout shows no local paths).
func describeKeys(k *replayKeys) string { return keyDescription(k, false) }

// keyDescription says which keys replay has; with paths, it names the key
// files by the paths the user gave (the header of the text view).
func keyDescription(k *replayKeys, paths bool) string {
	if !k.given() {
		return "none: this is what a sniffer sees"
	}
	var parts []string
	if k.keylogName != "" {
		parts = append(parts, fmt.Sprintf("keylog %s (%d %s)", keyFileName(paths, k.keylogPath, k.keylogName), len(k.keylog), plural(len(k.keylog), "session", "sessions")))
	}
	if k.rsa != nil {
		parts = append(parts, fmt.Sprintf("server private key %s (%s)", keyFileName(paths, k.rsaPath, k.rsaName), k.rsaFP))
	}
	if k.key != nil {
		parts = append(parts, "-key")
	}
	return strings.Join(parts, ", ")
}

// keyFileName is a key file's path as the user gave it, when wanted and
// known (the demo gives none), else its base name.
func keyFileName(paths bool, path, name string) string {
	if paths && path != "" {
		return path
	}
	return name
}

func (o *textOutput) open(c *replayConn) {
	if c.midStream {
		o.put(stHead, fmt.Sprintf("── conn %d at %.3fs: no open record, the capture began during this connection", c.id, c.opened))
	} else {
		o.put(stHead, fmt.Sprintf("── conn %d open at %.3fs: client %s → server %s", c.id, c.opened, orUnknown(c.client), orUnknown(c.server)))
	}
	o.w.WriteByte('\n')
}

// stepLabel is the seed chart's step a classic handshake frame is ("Step 4
// · encrypted AES key"), as the lesson page labels its arrow; "" for any
// other frame. The modern suite's steps are named by the frame itself.
func (o *textOutput) stepLabel(f *replayFrame) string {
	if f.Suite != suiteClassic {
		return ""
	}
	if o.steps == nil {
		o.steps = map[int]*stepFinder{}
	}
	sf := o.steps[f.Conn]
	if sf == nil {
		sf = &stepFinder{}
		o.steps[f.Conn] = sf
	}
	st := sf.find(f.Suite, f.Dir, f.Kind)
	if st == nil || !strings.HasPrefix(st.Label, "Step ") {
		return ""
	}
	return st.Label
}

func (o *textOutput) close(c *replayConn, t float64, closed bool) {
	delete(o.steps, c.id)
	how := fmt.Sprintf("closed at %.3fs after %.3fs", t, t-c.opened)
	if !closed {
		how = "still open when the capture ends"
	}
	o.put(stHead, fmt.Sprintf("── conn %d %s: client → server %d %s, %d B · server → client %d %s, %d B",
		c.id, how, c.frames[wireC2S], plural(c.frames[wireC2S], "frame", "frames"), c.bytes[wireC2S],
		c.frames[wireS2C], plural(c.frames[wireS2C], "frame", "frames"), c.bytes[wireS2C]))
	o.w.WriteByte('\n')
}

func (o *textOutput) note(c *replayConn, text string) {
	o.put(stNote, "   note: "+text)
}

func (o *textOutput) end(s replayStats) {
	line := fmt.Sprintf("── %d %s, %d %s, %d B on the wire", s.conns, plural(s.conns, "connection", "connections"), s.frames, plural(s.frames, "frame", "frames"), s.bytes)
	if o.opts.keys.given() {
		line += fmt.Sprintf(": %d %s decrypted, %d shown as ciphertext", s.decrypted, plural(s.decrypted, "record", "records"), s.undecrypted)
	}
	o.put(stHead, line)
}

func (o *textOutput) flush() error { return o.w.Flush() }

func (o *textOutput) frame(f *replayFrame) {
	dirSt := stC2S
	if f.Dir == wireS2C {
		dirSt = stS2C
	}
	// "#N  time  conn C  ", built without fmt: this runs for every frame.
	h := append(o.scratch[:0], '#')
	h = strconv.AppendInt(h, int64(f.Num), 10)
	for len(h) < 5 {
		h = append(h, ' ')
	}
	h = append(h, ' ')
	var num [32]byte
	t := strconv.AppendFloat(num[:0], f.T, 'f', 3, 64)
	h = append(h, spaces[:max(0, 9-len(t))]...)
	h = append(h, t...)
	h = append(h, "s  conn "...)
	h = strconv.AppendInt(h, int64(f.Conn), 10)
	h = append(h, "  "...)
	o.scratch = h
	o.paintString(stHead, string(h))
	o.paintString(dirSt, f.Dir.arrow())
	h = append(h[:0], "  "...)
	h = strconv.AppendInt(h, int64(len(f.Payload)), 10)
	h = append(h, " B"...)
	o.paintString(stDim, string(h))
	if label := o.stepLabel(f); label != "" {
		o.paintString(stKind, "  "+label)
	}
	o.w.WriteByte('\n')

	sniff := o.snifferLines(f)
	peer := o.peerLines(f)
	switch {
	case o.opts.view == "sniffer":
		sniff = appendStyled(sniff, f.Tampered, stNote)
		o.indent("      ", sniff)
	case o.opts.view == "peer":
		o.indent("      ", peer)
	case o.side:
		o.columns(sniff, peer)
	default:
		o.labelled("  sniffer │ ", "          │ ", sniff)
		o.labelled("  peer    │ ", "          │ ", peer)
	}
	for _, n := range f.Notes {
		o.put(stNote, "   note: "+n)
	}
	o.w.WriteByte('\n')
}

// spaces pads columns.
var spaces = []byte(strings.Repeat(" ", 256))

func appendStyled(dst []styledLine, lines []string, st textStyle) []styledLine {
	for _, s := range lines {
		dst = append(dst, styledLine{s, st})
	}
	return dst
}

func (o *textOutput) snifferLines(f *replayFrame) []styledLine {
	lines := append(o.sniff[:0], styledLine{f.What, stKind})
	lines = appendStyled(lines, f.Details, stPlain)
	if f.Preview != "" {
		lines = append(lines, styledLine{f.Preview, stDim})
	}
	o.sniff = lines
	return lines
}

func (o *textOutput) peerLines(f *replayFrame) []styledLine {
	lines := o.peer[:0]
	switch {
	case f.HasText && len(f.Text) == 0:
		lines = append(lines, styledLine{"(empty text)", stText})
	case f.HasText:
		text := string(f.Text)
		for {
			line, rest, more := strings.Cut(text, "\n")
			lines = append(lines, styledLine{line, stText})
			if !more {
				break
			}
			text = rest
		}
	case f.Problem != "":
		lines = append(lines, styledLine{f.Problem, stErr})
	case f.Kind == kindSealed:
		lines = append(lines, styledLine{"(no key: ciphertext only)", stDim})
	default:
		lines = appendStyled(lines, f.Peer, stPlain)
	}
	if f.HasText {
		lines = append(lines, styledLine{"key: " + f.Key, stDim})
	}
	lines = appendStyled(lines, f.Tampered, stNote)
	o.peer = lines
	return lines
}

func (o *textOutput) indent(prefix string, lines []styledLine) {
	for _, l := range lines {
		o.w.WriteString(prefix)
		o.put(l.st, l.s)
	}
}

func (o *textOutput) labelled(first, rest string, lines []styledLine) {
	for i, l := range lines {
		if i == 0 {
			o.w.WriteString(first)
		} else {
			o.w.WriteString(rest)
		}
		o.put(l.st, l.s)
	}
}

// columns lays out the two views side by side, each wrapped to the column
// width on its own.
func (o *textOutput) columns(left, right []styledLine) {
	o.lwrap = o.wrapLines(o.lwrap[:0], left)
	o.rwrap = o.wrapLines(o.rwrap[:0], right)
	l, r := o.lwrap, o.rwrap
	for i := 0; i < len(l) || i < len(r); i++ {
		var a, c styledLine
		if i < len(l) {
			a = l[i]
		}
		if i < len(r) {
			c = r[i]
		}
		o.w.WriteString("  ")
		o.paintString(a.st, a.s)
		if pad := o.colW - runeWidth(a.s); pad > 0 {
			for pad > len(spaces) {
				o.w.Write(spaces)
				pad -= len(spaces)
			}
			o.w.Write(spaces[:pad])
		}
		if c.s == "" {
			o.w.WriteString(" │\n")
			continue
		}
		o.w.WriteString(" │ ")
		o.paintString(c.st, c.s)
		o.w.WriteByte('\n')
	}
}

// runeWidth counts runes, with a fast path for ASCII.
func runeWidth(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return utf8.RuneCountInString(s)
		}
	}
	return len(s)
}

func (o *textOutput) wrapLines(dst, lines []styledLine) []styledLine {
	for _, l := range lines {
		s := printable(l.s)
		for o.colW > 0 && runeWidth(s) > o.colW {
			var piece string
			piece, s = cutLine(s, o.colW)
			dst = append(dst, styledLine{piece, l.st})
		}
		dst = append(dst, styledLine{s, l.st})
	}
	return dst
}

// cutLine takes the first line of at most n runes off s, cutting at a
// space when there is one (the space is dropped), else in a word.
func cutLine(s string, n int) (line, rest string) {
	cut, space, count := len(s), -1, 0
	for i, r := range s {
		if count == n {
			cut = i
			break
		}
		if r == ' ' && count > 0 {
			space = i
		}
		count++
	}
	if space > 0 {
		return s[:space], s[space+1:]
	}
	return s[:cut], s[cut:]
}

// terminalLayout decides the width and colour of replay's output: COLUMNS
// when set, the terminal's width when stdout is one, else 80; colour only on
// a terminal and without NO_COLOR.
func terminalLayout(w io.Writer) (width int, useColor bool) {
	width = 80
	f, ok := w.(*os.File)
	tty := ok && isatty.IsTerminal(f.Fd())
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		width = n
	} else if tty {
		if n := readline.GetScreenWidth(); n > 0 {
			width = n
		}
	}
	return width, tty && os.Getenv("NO_COLOR") == ""
}
