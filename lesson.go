// The lesson page: replay's HTML view (replay -html, demo -html).
//
// One self-contained file: inline CSS and SVG, no script, nothing loaded
// from anywhere, so it works offline on a classroom projector and prints.
// Each connection is a sequence diagram: client and server lanes, one arrow
// per frame with the time beside it, the handshake steps (classicSteps,
// modernSteps) named on their arrows, and beside every arrow what a sniffer
// sees and what the peer read. A summary says what the keys opened and what
// leaks without them. This file gathers the page's facts; the markup is
// lesson.html.tmpl, embedded in the binary. Every text from the capture goes
// through html/template, so a chat message cannot add markup or script to
// the page.

//go:build !js

package main

import (
	"bufio"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	lessonMaxFrames = 5000 // frames drawn; the rest are only counted
	lessonMaxBursts = 300  // rows of the who-talks-when table
	lessonAnswerGap = 0.5  // seconds after a row's first frame that still answer it
	lessonWireShown = 160  // bytes of a frame the sniffer column shows
	lessonLaneWidth = 240  // the diagram's width between the lanes, in px
)

// htmlOutput is the lesson page view. It keeps what it needs of every frame
// and writes the page when the replay ends.
type htmlOutput struct {
	w     io.Writer
	opts  *replayOptions
	page  lessonPage
	conns map[int]*lessonConn
	burst *lessonBurst // the sender whose answers are being gathered
	done  bool         // end was called: flush writes the page
	wrote bool
	// maxFrames is how many frames the diagrams draw (lessonMaxFrames;
	// tests lower it).
	maxFrames int
	repeats   repeatTracker // replayed and rewritten sessions (lesson_repeats.go)
}

func newHTMLOutput(w io.Writer, opts *replayOptions) *htmlOutput {
	o := &htmlOutput{w: w, opts: opts, conns: make(map[int]*lessonConn), maxFrames: lessonMaxFrames}
	o.page.ShowPeer = opts.view != "sniffer"
	o.page.LaneWidth = lessonLaneWidth
	o.page.Projector = opts.projector
	return o
}

// lessonPage is everything the template shows.
type lessonPage struct {
	Capture, Recorder, Addr, Started string
	Keys                             string
	KeysGiven, ShowPeer              bool
	Projector                        bool // -projector: the larger type scale
	LaneWidth                        int
	Conns                            []*lessonConn
	Stats                            lessonStats
	KeyRows                          []lessonKeyRow
	Bursts                           []*lessonBurst
	MoreBursts                       int
	Undrawn, MaxFrames               int      // frames past lessonMaxFrames
	Tampered                         []int    // frame numbers
	Fingerprints                     []string // server keys seen in clear
	Classic, Modern                  bool
}

type lessonStats struct {
	Conns, Frames, Decrypted, Undecrypted int
	Bytes, BytesC2S, BytesS2C             int64
}

// lessonConn is one connection's diagram.
type lessonConn struct {
	ID                 int
	Client, Server     string
	Opened, Closed     string
	Duration           string
	MidStream, Ended   bool
	StillOpen          bool
	Suite              string // classic, modern or ""
	Rows               []lessonRow
	FramesC2S          int
	FramesS2C          int
	BytesC2S, BytesS2C int64
	Decrypted, Sealed  int
	SessionID          string
	Fingerprint        string
	Notes              []string
	Repeat             string   // a replayed or rewritten session (lesson_repeats.go)
	RepeatedIn         []string // what the later connections that carry its session are
	repeatedIDs        []int    // their ids, in RepeatedIn's order

	frames  int             // frames seen, drawn or not
	next    int             // where in the suite's steps the next frame's step is looked for; -1: past the handshake
	Openers []string        // key sources that opened it, first seen first
	openers map[string]bool // the same, as a set
}

// lessonRow is one row of a diagram: a frame, a step that happens on one
// side only, the "secure channel" band, or a note. One field is set.
type lessonRow struct {
	Frame  *lessonFrame
	Action *lessonAction
	Band   string
	Note   string
}

// lessonAction is a step's work on one side, off the wire.
type lessonAction struct {
	By    party
	Label string // the step numbers, or a word
	Text  string
}

// Side names the side for the page: client or server.
func (a *lessonAction) Side() string { return a.By.String() }

// OnClient reports whether the work is the client's.
func (a *lessonAction) OnClient() bool { return a.By == partyClient }

// lessonFrame is one arrow and its two views.
type lessonFrame struct {
	Num              int
	T                string
	Dir, Arrow       string // c2s or s2c; "client → server"
	Len              int
	Header           string // the 10-digit length header as on the wire
	Step             string // the handshake step the frame is, if any
	Label, SizeLabel string // above and below the arrow
	Sealed           bool   // the decoder's kind is kindSealed
	Icon             string // clear, sealed, key, unknown, partial
	What             string
	Details          []string
	Wire, WireNote   string
	PEM              string
	HasText          bool
	Text, Key        string
	Peer             []string
	Problem          string
	IsTampered       bool
	Tampered         []string
	Notes            []string
	Rewritten        string // how it differs from the session's first connection
	RewrittenHead    string // the title over Rewritten
	Aria             string
	ShaftX1, ShaftX2 int
	Head, Zigzag     string
	IconPos, BoltPos string
}

// lessonKeyRow says which sessions one key source opened.
type lessonKeyRow struct {
	Source string
	Opens  []string
	Cannot []string
}

// lessonBurst is one sender and what the server sent before the next one:
// the traffic pattern a sniffer sees without any key.
type lessonBurst struct {
	T     string
	From  int // connection; 0: the server speaking first
	Size  int
	Sends []lessonSend

	start  float64 // the first frame's time
	conn   int     // the first frame's connection
	sealed bool    // the first frame is a record, not a handshake message
}

type lessonSend struct{ Conn, Size int }

func (o *htmlOutput) begin(h captureHeader, started time.Time) {
	p := &o.page
	p.Capture = printable(o.opts.name)
	p.Recorder = printable(orUnknown(h.Recorder))
	p.Addr = printable(orUnknown(h.Addr))
	p.Started = printable(orUnknown(h.Started))
	if !started.IsZero() {
		p.Started = started.UTC().Format("2006-01-02 15:04:05 MST")
	}
	p.Keys = printable(describeKeys(o.opts.keys))
	o.repeats.tap = h.Recorder == "tap"
	o.repeats.stillOpen = func(id int) bool {
		lc := o.conns[id]
		return lc != nil && lc.Closed == ""
	}
	p.KeysGiven = o.opts.keys.given()
}

func (o *htmlOutput) open(c *replayConn) {
	lc := &lessonConn{
		ID:        c.id,
		Client:    printable(orUnknown(c.client)),
		Server:    printable(orUnknown(c.server)),
		Opened:    seconds(c.opened),
		MidStream: c.midStream,
		openers:   make(map[string]bool),
	}
	o.conns[c.id] = lc
	o.page.Conns = append(o.page.Conns, lc)
}

func (o *htmlOutput) note(c *replayConn, text string) {
	if lc := o.conns[c.id]; lc != nil {
		lc.Rows = append(lc.Rows, lessonRow{Note: printable(text)})
	}
}

func (o *htmlOutput) close(c *replayConn, t float64, closed bool) {
	lc := o.conns[c.id]
	if lc == nil {
		return
	}
	lc.Ended = closed
	lc.StillOpen = !closed
	lc.Closed = seconds(t)
	lc.Duration = seconds(t - c.opened)
	lc.FramesC2S, lc.FramesS2C = c.frames[wireC2S], c.frames[wireS2C]
	lc.BytesC2S, lc.BytesS2C = c.bytes[wireC2S], c.bytes[wireS2C]
	o.page.Stats.BytesC2S += lc.BytesC2S
	o.page.Stats.BytesS2C += lc.BytesS2C
}

func (o *htmlOutput) frame(f *replayFrame) {
	lc := o.conns[f.Conn]
	if lc == nil { // cannot happen: open comes first
		return
	}
	lc.frames++
	if lc.frames == 1 {
		lc.Suite = f.Suite
		o.page.Classic = o.page.Classic || lc.Suite == suiteClassic
		o.page.Modern = o.page.Modern || lc.Suite == suiteModern
	}
	o.keys(lc, f)
	o.traffic(f)
	if f.Tamper >= 0 {
		o.page.Tampered = append(o.page.Tampered, f.Num)
	}
	if f.Meta.Fingerprint != "" && !containsString(o.page.Fingerprints, f.Meta.Fingerprint) {
		o.page.Fingerprints = append(o.page.Fingerprints, f.Meta.Fingerprint)
	}
	if f.Meta.Fingerprint != "" && lc.Fingerprint == "" {
		lc.Fingerprint = f.Meta.Fingerprint
	}
	if f.Meta.SessionID != "" && lc.SessionID == "" {
		lc.SessionID = f.Meta.SessionID
	}

	lf := o.lessonFrame(f)
	if m := o.repeats.frame(f); m.conn != "" {
		lc.Repeat, lf.Rewritten, lf.RewrittenHead = m.conn, m.frame, m.head
		if orig := o.conns[m.of]; orig != nil {
			orig.repeatedIn(lc.ID, m.original)
		}
	}
	before, after := lc.step(f, lf)
	if o.page.Stats.Frames >= o.maxFrames {
		o.page.Undrawn++
		return
	}
	o.page.Stats.Frames++
	lf.finish()
	lc.Rows = append(lc.Rows, before...)
	lc.Rows = append(lc.Rows, lessonRow{Frame: lf})
	lc.Rows = append(lc.Rows, after...)
}

// keys counts decrypted records and which key sources open the session.
func (o *htmlOutput) keys(lc *lessonConn, f *replayFrame) {
	switch {
	case f.HasText:
		lc.Decrypted++
		lc.opener(printable(f.Key))
	case f.Kind == kindSealed:
		lc.Sealed++
	}
	// The view decrypts with the first key that fits; the server's private
	// key may open the session too, and that is the lesson of -rsa-key.
	k := o.opts.keys
	if f.Kind == kindKeyTransport && k != nil && k.rsa != nil {
		if _, err := classicUnwrapKey(k.rsa, f.Payload); err == nil {
			lc.opener("recovered with " + printable(k.rsaName))
		}
	}
}

// repeatedIn records what later connection id, which carries this
// connection's session again, is; the latest word on each wins.
func (lc *lessonConn) repeatedIn(id int, text string) {
	for i, n := range lc.repeatedIDs {
		if n == id {
			lc.RepeatedIn[i] = text
			return
		}
	}
	if len(lc.repeatedIDs) < 10 {
		lc.repeatedIDs = append(lc.repeatedIDs, id)
		lc.RepeatedIn = append(lc.RepeatedIn, text)
	}
}

func (lc *lessonConn) opener(source string) {
	if !lc.openers[source] {
		lc.openers[source] = true
		lc.Openers = append(lc.Openers, source)
	}
}

// traffic gathers who sends when and what the server sends in answer. A
// server frame answers the row before it when it comes within
// lessonAnswerGap of the row's first frame, and either on the same
// connection or as a record relayed after a record (a broadcast, a private
// message); anything else, such as the key greeting of a connection that
// just opened, starts a row of its own.
func (o *htmlOutput) traffic(f *replayFrame) {
	b := o.burst
	answers := b != nil && f.Dir == wireS2C && f.T-b.start <= lessonAnswerGap &&
		(f.Conn == b.conn || (f.Kind == kindSealed && b.sealed))
	if !answers {
		if len(o.page.Bursts) >= lessonMaxBursts {
			o.page.MoreBursts++
			o.burst = nil
			return
		}
		o.burst = &lessonBurst{T: seconds(f.T), start: f.T, conn: f.Conn, sealed: f.Kind == kindSealed}
		if f.Dir == wireC2S {
			o.burst.From, o.burst.Size = f.Conn, len(f.Payload)
		}
		o.page.Bursts = append(o.page.Bursts, o.burst)
		if f.Dir == wireC2S {
			return
		}
	}
	o.burst.Sends = append(o.burst.Sends, lessonSend{f.Conn, len(f.Payload)})
}

// lessonFrame copies what the page shows of f (f.Payload is only valid
// during the call).
func (o *htmlOutput) lessonFrame(f *replayFrame) *lessonFrame {
	lf := &lessonFrame{
		Num:        f.Num,
		T:          seconds(f.T),
		Dir:        f.Dir.String(),
		Arrow:      f.Dir.arrow(),
		Len:        len(f.Payload),
		Sealed:     f.Kind == kindSealed,
		Header:     string(appendFrameHeader(nil, len(f.Payload))),
		What:       printable(f.What),
		Details:    printables(f.Details),
		HasText:    f.HasText,
		Key:        printable(f.Key),
		Peer:       printables(f.Peer),
		Problem:    printable(f.Problem),
		IsTampered: f.Tamper >= 0,
		Tampered:   printables(f.Tampered),
		Notes:      printables(f.Notes),
	}
	if f.Kind == kindPartial {
		lf.Header = "(cut short)"
	}
	if f.HasText {
		lines := strings.Split(string(f.Text), "\n")
		for i, l := range lines {
			lines[i] = printable(l)
		}
		lf.Text = strings.Join(lines, "\n")
	}
	switch f.Kind {
	case kindPublicKey:
		lf.Icon, lf.SizeLabel = "clear", "in clear"
		lines := strings.Split(strings.ToValidUTF8(string(f.Payload), "\uFFFD"), "\n")
		for i, l := range lines {
			lines[i] = printable(l)
		}
		lf.PEM = strings.Join(lines, "\n")
	case kindKeyTransport:
		lf.Icon, lf.SizeLabel = "key", "RSA-OAEP"
	case kindServerHello, kindClientHello:
		lf.Icon, lf.SizeLabel = "clear", "in clear"
	case kindServerVerify:
		lf.Icon, lf.SizeLabel = "clear", "signature"
	case kindServerFinished, kindClientFinished:
		lf.Icon, lf.SizeLabel = "clear", "HMAC"
	case kindSealed:
		lf.Icon, lf.SizeLabel = "sealed", "sealed"
	case kindPartial:
		lf.Icon, lf.SizeLabel = "partial", "cut short"
	default:
		lf.Icon, lf.SizeLabel = "unknown", f.Kind.String()
	}
	if lf.PEM == "" {
		lf.Wire, lf.WireNote = wireView(f.Payload)
	}
	return lf
}

// step names the handshake step f is, from the suite's table in
// protocolSteps (see its next method for how a frame finds its step), and
// adds the rows of the work each side does before it and the band after the
// last one. The first frame that is no step ends the naming.
func (lc *lessonConn) step(f *replayFrame, lf *lessonFrame) (before, after []lessonRow) {
	steps := stepsOf(lc.Suite)
	if steps == nil || lc.next < 0 {
		return nil, nil
	}
	i := steps.next(lc.next, f.Dir, f.Kind)
	if i < 0 {
		lc.next = -1
		return nil, nil
	}
	for _, w := range steps.workBefore(lc.next, i) {
		if w.Work != "" {
			before = append(before, lessonRow{Action: &lessonAction{By: w.By, Label: w.Label, Text: w.Work}})
		}
	}
	st := steps[i]
	lf.Step, lf.Label = st.Name, st.Label
	// The seed's server answers a name it refuses with an "ERROR:" text
	// where the welcome goes.
	if lc.Suite == suiteClassic && i == len(steps)-1 && f.HasText && strings.HasPrefix(string(f.Text), "ERROR:") {
		lf.Step, lf.Label = "Refusal", "refusal"
	}
	if st.Band != "" {
		after = []lessonRow{{Band: st.Band}}
	}
	lc.next = i + 1
	return before, after
}

// finish lays out the arrow.
func (lf *lessonFrame) finish() {
	const w, y = lessonLaneWidth, 30
	if lf.Dir == "c2s" {
		lf.ShaftX1, lf.ShaftX2 = 3, w-12
		lf.Head = fmt.Sprintf("%d,%d %d,%d %d,%d", w-1, y, w-15, y-7, w-15, y+7)
	} else {
		lf.ShaftX1, lf.ShaftX2 = w-3, 12
		lf.Head = fmt.Sprintf("%d,%d %d,%d %d,%d", 15, y-7, 1, y, 15, y+7)
	}
	if lf.IsTampered {
		var b strings.Builder
		lo, hi := min(lf.ShaftX1, lf.ShaftX2), max(lf.ShaftX1, lf.ShaftX2)
		for i, x := 0, lo; x <= hi; i, x = i+1, x+8 {
			dy := -5
			if i%2 == 1 {
				dy = 5
			}
			if x == lo || x+8 > hi {
				dy = 0
			}
			fmt.Fprintf(&b, "%d,%d ", x, y+dy)
		}
		lf.Zigzag = strings.TrimSpace(b.String())
	}
	lf.IconPos = strconv.Itoa(w/2 - 12)
	lf.BoltPos = strconv.Itoa(w/2 + 16)
	if lf.IsTampered {
		lf.SizeLabel += " · TAMPERED"
	}
	what := lf.What
	if lf.Step != "" {
		what = lf.Step + ", " + what
	}
	lf.Aria = fmt.Sprintf("frame %d at %s: %s, %d bytes, %s", lf.Num, lf.T, lf.Arrow, lf.Len, what)
	if lf.IsTampered {
		lf.Aria += ", tampered"
	}
}

func (o *htmlOutput) end(s replayStats) {
	p := &o.page
	p.Stats.Conns, p.Stats.Decrypted, p.Stats.Undecrypted, p.Stats.Bytes = s.conns, s.decrypted, s.undecrypted, s.bytes
	p.Stats.Frames += p.Undrawn
	p.MaxFrames = o.maxFrames
	p.KeyRows = o.keyRows()
	o.done = true
}

// keyRows lists every key source and the sessions it opened (or could not).
func (o *htmlOutput) keyRows() []lessonKeyRow {
	var rows []lessonKeyRow
	index := map[string]int{}
	add := func(source string) *lessonKeyRow {
		i, ok := index[source]
		if !ok {
			i = len(rows)
			index[source] = i
			rows = append(rows, lessonKeyRow{Source: source})
		}
		return &rows[i]
	}
	k := o.opts.keys
	// The sources given, in the banner's order, even those that opened nothing.
	if k != nil && k.keylogName != "" {
		add("keylog " + printable(k.keylogName))
	}
	if k != nil && k.rsa != nil {
		add("recovered with " + printable(k.rsaName))
	}
	if k != nil && k.key != nil {
		add("-key")
	}
	for _, c := range o.page.Conns {
		for _, src := range c.Openers {
			r := add(src)
			what := fmt.Sprintf("conn %d", c.ID)
			if c.Decrypted > 0 && (len(c.Openers) == 1 || src == printable(c.firstKey())) {
				what += fmt.Sprintf(" (%d records)", c.Decrypted)
			}
			r.Opens = append(r.Opens, what)
		}
		if k != nil && k.rsa != nil && c.Suite == suiteModern {
			r := add("recovered with " + printable(k.rsaName))
			r.Cannot = append(r.Cannot, fmt.Sprintf("conn %d: a modern session; the server key only signs, the session keys came from an ephemeral exchange (forward secrecy)", c.ID))
		}
	}
	return rows
}

// firstKey is the source that decrypted the session's records in the view.
func (lc *lessonConn) firstKey() string {
	for _, row := range lc.Rows {
		if row.Frame != nil && row.Frame.HasText {
			return row.Frame.Key
		}
	}
	return ""
}

// flush writes the page once the replay has ended (replay also flushes
// while keeping -speed's time; there is nothing to write then).
func (o *htmlOutput) flush() error {
	if !o.done || o.wrote {
		return nil
	}
	o.wrote = true
	bw := bufio.NewWriterSize(o.w, 64<<10)
	if err := lessonTemplate.Execute(bw, &o.page); err != nil {
		return err
	}
	return bw.Flush()
}

// replayToHTML is replay -html: it writes the lesson page of capturePath
// to out.
func replayToHTML(capturePath, out string, opts *replayOptions, stdout, stderr io.Writer) int {
	in, err := os.Open(capturePath)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	defer in.Close()
	f, err := createLessonFile(out)
	if err != nil {
		errorf(stderr, "%v", err)
		outputHint(stderr, err)
		return 1
	}
	o := newHTMLOutput(f, opts)
	err = replayCapture(in, opts, o)
	if cerr := f.Close(); cerr != nil && o.wrote {
		errorf(stderr, "%s: %v", out, cerr)
		return 1
	}
	var le *lineError
	switch {
	case errors.As(err, &le):
		errorf(stderr, "%s", le.in(capturePath))
		hintf(stderr, "%s shows everything before that line", out)
		return 1
	case err != nil && !o.wrote:
		os.Remove(out)
		errorf(stderr, "%v", err)
		return 1
	case err != nil:
		errorf(stderr, "%v", err)
		return 1
	}
	s := o.page.Stats
	fmt.Fprintf(stdout, "wrote %s: %d %s, %d %s", out, s.Conns, plural(s.Conns, "connection", "connections"), s.Frames, plural(s.Frames, "frame", "frames"))
	if opts.keys.given() {
		fmt.Fprintf(stdout, ", %d %s decrypted", s.Decrypted, plural(s.Decrypted, "record", "records"))
	}
	fmt.Fprintf(stdout, "; open it in a browser (it loads nothing and prints cleanly)\n")
	return 0
}

// createLessonFile creates or truncates the lesson page at path, mode 0600
// (the page holds what the keys decrypted), and tightens the mode of a file
// that was already there; a link is refused (createOutput).
func createLessonFile(path string) (*os.File, error) {
	return createOutput(path, outputTruncate, true)
}

// wireView is a frame's bytes as a sniffer reads them: text when they are
// printable ASCII (base64 records, a refusal in clear), else hex.
func wireView(p []byte) (view, note string) {
	text := true
	for _, c := range p {
		if (c < 0x20 && c != '\n') || c > 0x7e {
			text = false
			break
		}
	}
	switch {
	case text && len(p) <= lessonWireShown:
		return printable(string(p)), fmt.Sprintf("%d B of text", len(p))
	case text:
		return printable(string(p[:lessonWireShown])) + "…", fmt.Sprintf("text, the first %d of %d B", lessonWireShown, len(p))
	case len(p) <= lessonWireShown/2:
		return hex.EncodeToString(p), fmt.Sprintf("%d B of binary, in hex", len(p))
	}
	return hex.EncodeToString(p[:lessonWireShown/2]) + "…", fmt.Sprintf("binary, the first %d of %d B in hex", lessonWireShown/2, len(p))
}

func printables(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = printable(s)
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// seconds formats a capture time.
func seconds(t float64) string {
	return strconv.FormatFloat(t, 'f', 3, 64) + " s"
}

// lessonFuncs are the template's helpers.
var lessonFuncs = template.FuncMap{
	"plural": plural,
	"half":   func(n int) int { return n / 2 },
	"minus":  func(d, n int) int { return n - d },
}

var lessonTemplate = template.Must(template.New("lesson").Funcs(lessonFuncs).Parse(lessonHTML))

// lessonHTML is the page. The style sheet keeps to what prints: lines,
// borders and shapes rather than background colours; the two directions
// differ in colour (blue and a dark vermillion, safe for the common colour
// blindnesses, each at least 4.5:1 on white), in line (solid, dashed), in
// arrowhead (filled, open) and in words. On a narrow screen the two views go
// under their arrow and the sessions table stacks. The projector mode is one
// class on the root element: the same sheet scales the type and the diagram.
//
//go:embed lesson.html.tmpl
var lessonHTML string
