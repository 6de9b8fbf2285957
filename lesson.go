// The lesson page: replay's HTML view (replay -html, demo -html).
//
// One self-contained file: inline CSS and SVG, no script, nothing loaded
// from anywhere, so it works offline on a classroom projector and prints.
// Each connection is a sequence diagram: client and server lanes, one arrow
// per frame with the time beside it, the seed's handshake steps named on
// their arrows, and beside every arrow what a sniffer sees and what the
// peer read. A summary says what the keys opened and what leaks without
// them. Every text from the capture goes through html/template, so a chat
// message cannot add markup or script to the page.

package main

import (
	"bufio"
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
}

func newHTMLOutput(w io.Writer, opts *replayOptions) *htmlOutput {
	o := &htmlOutput{w: w, opts: opts, conns: make(map[int]*lessonConn), maxFrames: lessonMaxFrames}
	o.page.ShowPeer = opts.view != "sniffer"
	o.page.LaneWidth = lessonLaneWidth
	return o
}

// lessonPage is everything the template shows.
type lessonPage struct {
	Capture, Recorder, Addr, Started string
	Keys                             string
	KeysGiven, ShowPeer              bool
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

	frames  int             // frames seen, drawn or not
	stage   int             // how far the handshake labelling got
	Openers []string        // key sources that opened it, first seen first
	openers map[string]bool // the same, as a set
}

// lessonRow is one row of a diagram: a frame, a step that happens on one
// side only, the "secure channel" band, or a note.
type lessonRow struct {
	Frame *lessonFrame
	Kind  string // frame, action, band, note
	Side  string // action: client or server
	Label string // action: the step numbers
	Text  string
}

// lessonFrame is one arrow and its two views.
type lessonFrame struct {
	Num              int
	T                string
	Dir, Arrow       string // c2s or s2c; "client → server"
	Len              int
	Header           string // the 10-digit length header as on the wire
	Step             string // the handshake step the frame is, if any
	Label, SizeLabel string // above and below the arrow
	Kind             string // the decoder's kind: public-key, sealed, ...
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
		lc.Rows = append(lc.Rows, lessonRow{Kind: "note", Text: printable(text)})
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
		switch {
		case f.Dir == wireS2C && isModernHello(f.Payload):
			lc.Suite = suiteModern
		case f.Dir == wireS2C && f.Kind == "public-key":
			lc.Suite = suiteClassic
		case f.Kind == "key-transport" || f.Kind == "sealed":
			// The capture began after the server's key: nothing to label.
			lc.Suite, lc.stage = suiteClassic, classicDone
		}
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
	var before, after []lessonRow
	switch lc.Suite {
	case suiteClassic:
		before, after = lc.classicStep(f, lf)
	case suiteModern:
		before, after = lc.modernStep(f, lf)
	}
	if o.page.Stats.Frames >= o.maxFrames {
		o.page.Undrawn++
		return
	}
	o.page.Stats.Frames++
	lf.finish()
	lc.Rows = append(lc.Rows, before...)
	lc.Rows = append(lc.Rows, lessonRow{Kind: "frame", Frame: lf})
	lc.Rows = append(lc.Rows, after...)
}

// keys counts decrypted records and which key sources open the session.
func (o *htmlOutput) keys(lc *lessonConn, f *replayFrame) {
	switch {
	case f.HasText:
		lc.Decrypted++
		lc.opener(printable(f.Key))
	case f.Kind == "sealed":
		lc.Sealed++
	}
	// The view decrypts with the first key that fits; the server's private
	// key may open the session too, and that is the lesson of -rsa-key.
	k := o.opts.keys
	if f.Kind == "key-transport" && k != nil && k.rsa != nil {
		if _, err := classicUnwrapKey(k.rsa, f.Payload); err == nil {
			lc.opener("recovered with " + printable(k.rsaName))
		}
	}
}

func (lc *lessonConn) opener(source string) {
	if !lc.openers[source] {
		lc.openers[source] = true
		lc.Openers = append(lc.Openers, source)
	}
}

// traffic gathers who sends when and what the server sends next.
func (o *htmlOutput) traffic(f *replayFrame) {
	if f.Dir == wireC2S || o.burst == nil {
		if len(o.page.Bursts) >= lessonMaxBursts {
			o.page.MoreBursts++
			o.burst = nil
			return
		}
		o.burst = &lessonBurst{T: seconds(f.T)}
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
		Kind:       f.Kind,
		Header:     string(frameHeader(len(f.Payload))),
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
	if f.Kind == "partial" {
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
	case "public-key":
		lf.Icon, lf.SizeLabel = "clear", "in clear"
		lines := strings.Split(strings.ToValidUTF8(string(f.Payload), "\uFFFD"), "\n")
		for i, l := range lines {
			lines[i] = printable(l)
		}
		lf.PEM = strings.Join(lines, "\n")
	case "key-transport":
		lf.Icon, lf.SizeLabel = "key", "RSA-OAEP"
	case "sealed":
		lf.Icon, lf.SizeLabel = "sealed", "sealed"
	case "partial":
		lf.Icon, lf.SizeLabel = "partial", "cut short"
	default:
		lf.Icon, lf.SizeLabel = "unknown", printable(f.Kind)
	}
	if lf.PEM == "" {
		lf.Wire, lf.WireNote = wireView(f.Payload)
	}
	return lf
}

// classicDone is the stage after the classic handshake and welcome.
const classicDone = 5

// classicStep names the seed's handshake steps (its README's chart) on
// their frames, and adds the steps that happen on one side only.
func (lc *lessonConn) classicStep(f *replayFrame, lf *lessonFrame) (before, after []lessonRow) {
	c2s := f.Dir == wireC2S
	switch {
	case lc.stage == 0 && !c2s && f.Kind == "public-key":
		lf.Step, lf.Label = "Step 1 · Server RSA Public Key", "Step 1 · RSA public key"
	case lc.stage == 1 && c2s && f.Kind == "key-transport":
		before = []lessonRow{{Kind: "action", Side: "client", Label: "2–3",
			Text: "Steps 2–3, client: generates a random AES-256 key and encrypts it with the server's RSA public key (RSA-OAEP). Nothing goes on the wire."}}
		lf.Step, lf.Label = "Step 4 · Encrypted AES Key", "Step 4 · encrypted AES key"
	case lc.stage == 2 && !c2s:
		before = []lessonRow{{Kind: "action", Side: "server", Label: "5",
			Text: "Step 5, server: decrypts the AES key with its RSA private key. Only the holder of that key can."}}
		lf.Step, lf.Label = "Step 6 · Encrypted Confirmation", "Step 6 · confirmation"
	case lc.stage == 3 && c2s:
		before = []lessonRow{{Kind: "action", Side: "client", Label: "7",
			Text: "Step 7, client: the confirmation decrypts to HANDSHAKE_OK, so the server holds the key the client encrypted to."}}
		lf.Step, lf.Label = "Step 8 · Encrypted Username", "Step 8 · username"
		after = []lessonRow{{Kind: "band", Text: "SECURE CHANNEL ESTABLISHED: every frame from here on is a sealed record (AES-256-CBC)"}}
	case lc.stage == 4 && !c2s:
		lf.Step, lf.Label = "Welcome", "welcome"
		if f.HasText && strings.HasPrefix(string(f.Text), "ERROR:") {
			lf.Step, lf.Label = "Refusal", "refusal"
		}
	default:
		lc.stage = classicDone
		return nil, nil
	}
	lc.stage++
	return before, after
}

// modernStep names the modern handshake's messages on their frames.
func (lc *lessonConn) modernStep(f *replayFrame, lf *lessonFrame) (before, after []lessonRow) {
	name := ""
	if lc.frames <= 5 {
		name = modernMessageName(f.Payload)
	}
	c2s := f.Dir == wireC2S
	switch {
	case name == "ServerHello":
		lf.Step, lf.Label = "ServerHello · X25519 share, ML-KEM-768 key, RSA public key", "ServerHello"
		lf.Icon, lf.SizeLabel = "clear", "in clear"
	case name == "ClientHello":
		before = []lessonRow{{Kind: "action", Side: "client", Label: "shares",
			Text: "Client: checks the server key against its pin, makes a fresh X25519 share and encapsulates a secret to the ML-KEM-768 key. Nothing goes on the wire."}}
		lf.Step, lf.Label = "ClientHello · X25519 share, ML-KEM-768 ciphertext", "ClientHello"
		lf.Icon, lf.SizeLabel = "clear", "in clear"
	case name == "ServerVerify":
		before = []lessonRow{{Kind: "action", Side: "server", Label: "keys",
			Text: "Server: combines the X25519 and ML-KEM-768 secrets, derives the session keys (HKDF over the transcript) and signs the transcript with its RSA key."}}
		lf.Step, lf.Label = "ServerVerify · RSA-PSS signature over the transcript", "ServerVerify"
		lf.Icon, lf.SizeLabel = "clear", "signature"
	case name == "ServerFinished":
		lf.Step, lf.Label = "ServerFinished · proves the server derived the same keys", "ServerFinished"
		lf.Icon, lf.SizeLabel = "clear", "HMAC"
	case name == "ClientFinished":
		before = []lessonRow{{Kind: "action", Side: "client", Label: "check",
			Text: "Client: checks the signature against the pinned key and the server's Finished, so nobody in the middle changed a byte."}}
		lf.Step, lf.Label = "ClientFinished · proves the client derived the same keys", "ClientFinished"
		lf.Icon, lf.SizeLabel = "clear", "HMAC"
		after = []lessonRow{{Kind: "band", Text: "SECURE CHANNEL ESTABLISHED: every frame from here on is an AES-256-GCM record"}}
		lc.stage = 1
	case lc.stage == 1 && c2s:
		lf.Step, lf.Label = "Username", "username"
		lc.stage = 2
	case lc.stage == 2 && !c2s:
		lf.Step, lf.Label = "Welcome", "welcome"
		lc.stage = 3
	}
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
// while pacing; there is nothing to write then).
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
	f, err := os.Create(out)
	if err != nil {
		errorf(stderr, "%v", err)
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

// plural picks the word for n things.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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
// differ in colour (blue and vermillion, safe for the common colour
// blindnesses), in line (solid, dashed), in arrowhead (filled, open) and in
// words. On a narrow screen the two views go under their arrow.
const lessonHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="encchat replay -html">
<title>encchat lesson: {{.Capture}}</title>
<style>
:root{--c2s:#0072b2;--s2c:#d55e00;--ink:#1b1b1b;--muted:#555;--rule:#c8c8c8;--lane:#333;--ok:#006e4f}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{overflow-wrap:break-word;margin:0 auto;max-width:1280px;padding:1rem 1.25rem 3rem;font:15px/1.45 "DejaVu Sans",system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#fff}
h1{font-size:1.55rem;margin:.1em 0 .3em}
h2{font-size:1.25rem;margin:2em 0 .5em;padding-bottom:.15em;border-bottom:2px solid var(--ink)}
h3{font-size:1.05rem;margin:1.4em 0 .4em}
a{color:var(--c2s)}
code,pre,.mono,.wire,.text,.hdr{font-family:"DejaVu Sans Mono",ui-monospace,Menlo,Consolas,monospace}
code{font-size:.9em;overflow-wrap:anywhere}
.kicker{margin:0;text-transform:uppercase;letter-spacing:.08em;font-size:.8rem;color:var(--muted)}
.meta{color:var(--muted);margin:.2em 0}
nav ul{list-style:none;padding:0;margin:.8em 0;display:flex;flex-wrap:wrap;gap:.3em 1.2em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.92em}
th,td{border:1px solid var(--rule);padding:.25em .55em;text-align:left;vertical-align:top}
th{font-weight:bold;border-bottom:2px solid var(--ink)}
.scroll{overflow-x:auto;max-width:100%}
.facts{padding-left:1.2em}
.facts li{margin:.2em 0}
.lesson{border-left:4px solid var(--ink);padding:.2em .8em;margin:.8em 0}
.legend{display:flex;flex-wrap:wrap;gap:.6em 1.6em;align-items:center;margin:.6em 0}
.legend div{display:flex;align-items:center;gap:.5em}
svg .label,svg .size,svg .alabel,svg .btext{font:11px "DejaVu Sans",system-ui,sans-serif;fill:var(--ink)}
svg .label{font-weight:bold}
svg .size{fill:var(--muted)}
svg.c2s,.tag.c2s{color:var(--c2s)}
svg.s2c,.tag.s2c{color:var(--s2c)}
svg .shaft{stroke:currentColor;stroke-width:2.5;fill:none}
svg.s2c .shaft{stroke-dasharray:8 5}
svg.c2s .head{fill:currentColor;stroke:currentColor;stroke-width:1}
svg.s2c .head{fill:#fff;stroke:currentColor;stroke-width:2.5;stroke-linejoin:round}
svg.tampered{color:#000}
svg.tampered .shaft{stroke-width:3;stroke-dasharray:none}
.diagram{margin:.6em 0 1.4em}
.row{display:grid;grid-template-columns:4.8em {{.LaneWidth}}px minmax(0,1.1fr) minmax(0,1fr);column-gap:1em}
.nopeer .row{grid-template-columns:4.8em {{.LaneWidth}}px minmax(0,1fr)}
.row>.time,.row>.lanes{grid-row:span 2}
.lanes{width:{{.LaneWidth}}px;border-left:3px solid var(--lane);border-right:3px solid var(--lane);box-sizing:content-box;min-height:1em}
.lanes svg{display:block;overflow:visible}
.time{text-align:right;font-size:.82em;color:var(--muted);padding-top:.7em;font-variant-numeric:tabular-nums;white-space:nowrap}
.time a{color:var(--ink);font-weight:bold;text-decoration:none}
.cell{min-width:0;overflow-wrap:anywhere;padding:.45em 0 .6em;border-top:1px solid var(--rule)}
.row>.span{grid-column:3/-1}
.heads .lanes{border-color:transparent;display:flex;justify-content:space-between;align-items:flex-end;min-height:0}
.lane-head{display:block;border:2px solid var(--lane);background:#fff;padding:.15em .4em;font-weight:bold;font-size:.85em;text-align:center;line-height:1.2}
.lane-head small{display:block;font-weight:normal;color:var(--muted);font-size:.85em}
.heads .lanes+*,.heads .colhead{align-self:end;font-weight:bold;font-size:.85em;letter-spacing:.04em;padding-bottom:.3em}
.heads .spacer{grid-column:2;height:.7em;border-left:3px solid var(--lane);border-right:3px solid var(--lane);width:{{.LaneWidth}}px;box-sizing:content-box}
.step{font-weight:bold;margin-bottom:.1em}
.tag{display:inline-block;border:1.5px solid currentColor;border-radius:3px;padding:0 .35em;font-size:.76em;font-weight:bold;white-space:nowrap}
.tag.s2c{border-style:dashed}
.detail{font-size:.9em}
.wire{font-size:.8em;margin-top:.25em;color:#333;overflow-wrap:anywhere}
.hdr{border:1px solid var(--muted);padding:0 .25em;margin-right:.35em;white-space:nowrap}
.wnote{font-family:"DejaVu Sans",system-ui,sans-serif;color:var(--muted)}
pre.pem{margin:.3em 0 0;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85em}
.text{white-space:pre-wrap;overflow-wrap:anywhere;border-left:4px solid var(--ok);padding:.1em .5em;font-size:.8em}
.key{font-size:.82em;color:var(--muted);margin-top:.15em}
.nokey{color:var(--muted);font-style:italic}
.problem{font-weight:bold}
.tamper{border:3px double #000;padding:.3em .6em;margin-top:.45em}
.tamper ul{margin:.2em 0 0;padding-left:1.2em}
.row.tampered .sniffer,.row.tampered .peer{border-top:3px double #000}
.note{font-size:.88em;border-left:3px dotted var(--ink);padding-left:.5em;margin:.15em 0}
.action .cell{font-style:italic;font-size:.9em;border-top:1px dotted var(--rule)}
svg .abox{fill:#fff;stroke:var(--lane);stroke-width:1.5;stroke-dasharray:3 2}
svg .alabel{font-weight:bold;text-anchor:middle}
svg .bline{stroke:var(--ink);stroke-width:2}
svg .bbox{fill:#fff}
svg .btext{font-weight:bold;text-anchor:middle;letter-spacing:.05em}
.band .cell{font-weight:bold;border-top:3px double var(--ink)}
.end .lanes{min-height:.6em;border-bottom:0}
.end .cell{color:var(--muted);font-size:.9em}
.callout{border:3px double #000;padding:.2em .6em;list-style:none;margin-left:-1.2em}
footer{margin-top:3em;color:var(--muted);font-size:.85em;border-top:1px solid var(--rule);padding-top:.5em}
@media (max-width:760px){
body{padding:.6rem .6rem 2rem;font-size:14px}
.row,.nopeer .row{grid-template-columns:3.6em {{.LaneWidth}}px;column-gap:.5em}
.row>.time,.row>.lanes{grid-row:auto}
.row>.cell,.row>.span{grid-column:1/-1}
.heads .colhead{display:none}
.cell.sniffer::before,.cell.peer::before{display:block;font-size:.72em;font-weight:bold;letter-spacing:.08em;color:var(--muted)}
.cell.sniffer::before{content:"SNIFFER"}
.cell.peer::before{content:"PEER"}
}
@media print{
@page{size:landscape;margin:12mm}
body{max-width:none;padding:0;font-size:9pt}
nav{display:none}
a{color:inherit;text-decoration:none}
h2{break-after:avoid}
section.conn{break-before:page}
.row{break-inside:avoid}
}
</style>
</head>
<body>
<svg width="0" height="0" style="position:absolute" aria-hidden="true" focusable="false">
<symbol id="i-sealed" viewBox="0 0 24 20"><rect width="24" height="20" fill="#fff"/><path d="M8 9V6a4 4 0 0 1 8 0v3" fill="none" stroke="currentColor" stroke-width="2"/><rect x="5" y="9" width="14" height="10" rx="2" fill="currentColor"/></symbol>
<symbol id="i-clear" viewBox="0 0 24 20"><rect width="24" height="20" fill="#fff"/><path d="M8 10V5a4 4 0 0 1 8 0" fill="none" stroke="currentColor" stroke-width="2"/><rect x="5" y="10" width="14" height="9" rx="2" fill="#fff" stroke="currentColor" stroke-width="2"/></symbol>
<symbol id="i-key" viewBox="0 0 24 20"><rect width="24" height="20" fill="#fff"/><circle cx="7" cy="10" r="4.5" fill="none" stroke="currentColor" stroke-width="2.2"/><path d="M11.5 10H22M18.5 10v4M21.5 10v3" fill="none" stroke="currentColor" stroke-width="2.2"/></symbol>
<symbol id="i-unknown" viewBox="0 0 24 20"><rect width="24" height="20" fill="#fff"/><circle cx="12" cy="10" r="8" fill="none" stroke="currentColor" stroke-width="2"/><path d="M9.5 8a2.5 2.5 0 1 1 3.5 2.3c-.7.3-1 .8-1 1.5V13M12 15v1.5" fill="none" stroke="currentColor" stroke-width="2"/></symbol>
<symbol id="i-partial" viewBox="0 0 24 20"><rect width="24" height="20" fill="#fff"/><path d="M3 4h18v12H3z" fill="none" stroke="currentColor" stroke-width="2" stroke-dasharray="3 2"/></symbol>
<symbol id="i-bolt" viewBox="0 0 24 20"><path d="M14 0.5L5 11h6l-2 8.5 10-12h-6l2-7z" fill="#fff" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round"/></symbol>
</svg>
<header>
<p class="kicker">encchat lesson</p>
<h1>What the wire carried: <code>{{.Capture}}</code></h1>
<p class="meta">Recorded by the {{.Recorder}} at {{.Addr}}, started {{.Started}}.</p>
<p class="meta">Keys: {{.Keys}}.</p>
</header>
<nav aria-label="Contents"><ul>
<li><a href="#read">How to read it</a></li>
<li><a href="#summary">Summary</a></li>
{{- range .Conns}}
<li><a href="#conn-{{.ID}}">Connection {{.ID}}</a></li>
{{- end}}
<li><a href="#leaks">What leaks without a key</a></li>
</ul></nav>

<section id="read">
<h2>How to read it</h2>
<p>Each connection is a sequence diagram: the client's lane on the left, the server's on the right, time running down (seconds since the recording started). Every arrow is one frame on the wire. Beside it, <b>SNIFFER</b> is what anyone on the path sees: the 10-digit length header, the bytes, and what they give away.{{if .ShowPeer}} <b>PEER</b> is what the endpoint read after decrypting, and which key opened it.{{end}}</p>
<div class="legend">
<div><svg class="sample c2s" width="90" height="20" viewBox="0 0 90 20" aria-hidden="true"><line class="shaft" x1="2" y1="10" x2="76" y2="10"/><polygon class="head" points="89,10 75,3 75,17"/></svg> client → server: solid line, filled head</div>
<div><svg class="sample s2c" width="90" height="20" viewBox="0 0 90 20" aria-hidden="true"><line class="shaft" x1="88" y1="10" x2="12" y2="10"/><polygon class="head" points="15,3 1,10 15,17"/></svg> server → client: dashed line, open head</div>
<div><svg width="24" height="20" aria-hidden="true"><use href="#i-clear" width="24" height="20"/></svg> in clear: anyone can read it</div>
<div><svg width="24" height="20" aria-hidden="true"><use href="#i-key" width="24" height="20"/></svg> a key, encrypted with RSA</div>
<div><svg width="24" height="20" aria-hidden="true"><use href="#i-sealed" width="24" height="20"/></svg> sealed record: encrypted</div>
<div><svg class="sample tampered" width="90" height="20" viewBox="0 0 90 20" aria-hidden="true"><polyline class="shaft" points="2,10 10,5 18,15 26,5 34,15 42,5 50,15 58,5 66,15 76,10"/><polygon class="head" points="89,10 75,3 75,17"/></svg> <svg width="24" height="20" aria-hidden="true"><use href="#i-bolt" width="24" height="20"/></svg> tampered: one bit flipped</div>
</div>
</section>

<section id="summary">
<h2>Summary</h2>
<ul class="facts">
<li><b>{{.Stats.Conns}}</b> {{plural .Stats.Conns "connection" "connections"}}, <b>{{.Stats.Frames}}</b> {{plural .Stats.Frames "frame" "frames"}}, <b>{{.Stats.Bytes}} B</b> on the wire: client → server {{.Stats.BytesC2S}} B, server → client {{.Stats.BytesS2C}} B.</li>
{{- if .KeysGiven}}
<li><b>{{.Stats.Decrypted}}</b> {{plural .Stats.Decrypted "record" "records"}} decrypted, <b>{{.Stats.Undecrypted}}</b> shown as ciphertext only.</li>
{{- else}}
<li>No key was given: the page shows only what a sniffer sees. (replay -keylog, -rsa-key or -key adds what the peers read.)</li>
{{- end}}
{{- if .Tampered}}
<li class="callout"><svg width="24" height="20" aria-hidden="true"><use href="#i-bolt" width="24" height="20"/></svg> <b>TAMPERED:</b> {{range $i, $n := .Tampered}}{{if $i}}, {{end}}<a href="#frame-{{$n}}">frame #{{$n}}</a>{{end}} had one bit flipped before decrypting: its rows say what the cipher made of it.</li>
{{- end}}
{{- if .Undrawn}}
<li>The diagrams draw the first {{.MaxFrames}} frames; the other {{.Undrawn}} are only counted here.</li>
{{- end}}
</ul>
<h3>Sessions</h3>
<div class="scroll"><table>
<thead><tr><th>conn</th><th>client → server</th><th>suite</th><th>time</th><th>frames<br>c→s / s→c</th><th>bytes<br>c→s / s→c</th><th>decrypted</th></tr></thead>
<tbody>
{{- range .Conns}}
<tr><td><a href="#conn-{{.ID}}">{{.ID}}</a></td><td>{{.Client}} → {{.Server}}</td><td>{{or .Suite "?"}}</td><td>{{.Opened}} – {{if .Ended}}{{.Closed}}{{else}}(open){{end}}</td><td>{{.FramesC2S}} / {{.FramesS2C}}</td><td>{{.BytesC2S}} / {{.BytesS2C}}</td><td>{{if .Decrypted}}{{.Decrypted}} {{plural .Decrypted "record" "records"}}{{else if .Sealed}}none of {{.Sealed}}{{else}}—{{end}}</td></tr>
{{- end}}
</tbody></table></div>
<h3>Which keys opened which session</h3>
{{- if .KeyRows}}
<div class="scroll"><table>
<thead><tr><th>key</th><th>opened</th><th>could not open</th></tr></thead>
<tbody>
{{- range .KeyRows}}
<tr><td>{{.Source}}</td><td>{{range $i, $c := .Opens}}{{if $i}}, {{end}}{{$c}}{{else}}none{{end}}</td><td>{{range .Cannot}}<div>{{.}}</div>{{else}}—{{end}}</td></tr>
{{- end}}
</tbody></table></div>
{{- else}}
<p>No key was given, so nothing was opened: that is the sniffer's position.</p>
{{- end}}
{{- if .Classic}}
<p class="lesson">Classic sessions carry their key in the RSA-OAEP blob of step 4. Whoever records the traffic today and obtains the server's private key later recovers every session key from the recording (replay -rsa-key): RSA key transport has no forward secrecy.</p>
{{- end}}
{{- if .Modern}}
<p class="lesson">Modern sessions agree their keys with an ephemeral X25519 + ML-KEM-768 exchange; the server's RSA key only signs. Its private key cannot decrypt a recording: only the session's own secret (its key log line) does. That is forward secrecy.</p>
{{- end}}
</section>
{{range .Conns}}
<section class="conn" id="conn-{{.ID}}">
<h2>Connection {{.ID}}{{if .Suite}} · {{.Suite}} suite{{end}}</h2>
<p class="meta">{{if .MidStream}}No open record: the capture began during this connection.{{else}}Client {{.Client}} → server {{.Server}}, opened at {{.Opened}}.{{end}}{{if .Fingerprint}} Server key {{.Fingerprint}}.{{end}}{{if .SessionID}} Session id {{.SessionID}}.{{end}}</p>
{{- range .Notes}}
<p class="note">note: {{.}}</p>
{{- end}}
<div class="diagram{{if not $.ShowPeer}} nopeer{{end}}">
<div class="row heads">
<div class="time">time</div>
<div class="lanes"><span class="lane-head client">CLIENT<small>{{.Client}}</small></span><span class="lane-head server">SERVER<small>{{.Server}}</small></span></div>
<div class="colhead">SNIFFER: what anyone on the path sees</div>
{{- if $.ShowPeer}}
<div class="colhead">PEER: what the endpoint read</div>
{{- end}}
<div class="spacer"></div>
</div>
{{- range .Rows}}
{{- if .Frame}}{{with .Frame}}
<div class="row frame {{.Dir}}{{if .IsTampered}} tampered{{end}}" id="frame-{{.Num}}">
<div class="time"><a href="#frame-{{.Num}}">#{{.Num}}</a><br>{{.T}}</div>
<div class="lanes"><svg class="arrow {{.Dir}}{{if .IsTampered}} tampered{{end}}" width="{{$.LaneWidth}}" height="60" viewBox="0 0 {{$.LaneWidth}} 60" role="img" aria-label="{{.Aria}}">
{{- if .Label}}
<text class="label" x="{{$.LaneWidth | half}}" y="13" text-anchor="middle">{{.Label}}</text>
{{- end}}
{{- if .IsTampered}}
<polyline class="shaft" points="{{.Zigzag}}"/>
{{- else}}
<line class="shaft" x1="{{.ShaftX1}}" y1="30" x2="{{.ShaftX2}}" y2="30"/>
{{- end}}
<polygon class="head" points="{{.Head}}"/>
<use href="#i-{{.Icon}}" x="{{.IconPos}}" y="20" width="24" height="20"/>
{{- if .IsTampered}}
<use href="#i-bolt" x="{{.BoltPos}}" y="20" width="24" height="20"/>
{{- end}}
<text class="size" x="{{$.LaneWidth | half}}" y="54" text-anchor="middle">{{.Len}} B · {{.SizeLabel}}</text>
</svg></div>
<div class="cell sniffer">
{{- if .Step}}
<div class="step">{{.Step}}</div>
{{- end}}
<div class="what"><span class="tag {{.Dir}}">{{.Arrow}}</span> {{.What}}</div>
{{- range .Details}}
<div class="detail">{{.}}</div>
{{- end}}
<div class="wire"><span class="hdr" title="the frame's length header, as on the wire">{{.Header}}</span>
{{- if .PEM}}<pre class="pem">{{.PEM}}</pre>{{else}}<span class="bytes">{{.Wire}}</span> <span class="wnote">({{.WireNote}})</span>{{end}}</div>
{{- if and .IsTampered (not $.ShowPeer)}}
<div class="tamper"><b>TAMPERED</b><ul>{{range .Tampered}}<li>{{.}}</li>{{end}}</ul></div>
{{- end}}
</div>
{{- if $.ShowPeer}}
<div class="cell peer">
{{- if .HasText}}
<div class="text">{{.Text}}</div>
<div class="key">decrypted with {{.Key}}{{if .IsTampered}}: the text as sent, before the bit flip{{end}}</div>
{{- else if .Problem}}
<div class="problem">✗ {{.Problem}}</div>
{{- else if eq .Kind "sealed"}}
<div class="nokey">no key: ciphertext only</div>
{{- else}}
{{- range .Peer}}
<div>{{.}}</div>
{{- end}}
{{- end}}
{{- if .IsTampered}}
<div class="tamper"><b>TAMPERED</b><ul>{{range .Tampered}}<li>{{.}}</li>{{end}}</ul></div>
{{- end}}
</div>
{{- end}}
{{- if .Notes}}
<div class="cell span">
{{- range .Notes}}
<div class="note">note: {{.}}</div>
{{- end}}
</div>
{{- end}}
</div>
{{- end}}
{{- else if eq .Kind "action"}}
<div class="row action {{.Side}}">
<div class="time"></div>
<div class="lanes"><svg width="{{$.LaneWidth}}" height="32" viewBox="0 0 {{$.LaneWidth}} 32" aria-hidden="true">
{{- if eq .Side "client"}}
<rect class="abox" x="6" y="4" width="44" height="24"/><text class="alabel" x="28" y="20">{{.Label}}</text>
{{- else}}
<rect class="abox" x="{{$.LaneWidth | minus 50}}" y="4" width="44" height="24"/><text class="alabel" x="{{$.LaneWidth | minus 28}}" y="20">{{.Label}}</text>
{{- end}}
</svg></div>
<div class="cell span">{{.Text}}</div>
</div>
{{- else if eq .Kind "band"}}
<div class="row band">
<div class="time"></div>
<div class="lanes"><svg width="{{$.LaneWidth}}" height="34" viewBox="0 0 {{$.LaneWidth}} 34" aria-hidden="true">
<line class="bline" x1="0" y1="13" x2="{{$.LaneWidth}}" y2="13"/><line class="bline" x1="0" y1="21" x2="{{$.LaneWidth}}" y2="21"/>
<rect class="bbox" x="{{$.LaneWidth | minus 170 | half}}" y="9" width="170" height="16"/><text class="btext" x="{{$.LaneWidth | half}}" y="21">SECURE CHANNEL</text>
</svg></div>
<div class="cell span">{{.Text}}</div>
</div>
{{- else}}
<div class="row note">
<div class="time"></div>
<div class="lanes"></div>
<div class="cell span"><div class="note">note: {{.Text}}</div></div>
</div>
{{- end}}
{{- end}}
<div class="row end">
<div class="time">{{if .Ended}}{{.Closed}}{{end}}</div>
<div class="lanes"></div>
<div class="cell span">{{if .Ended}}Closed at {{.Closed}}, after {{.Duration}}{{else}}Still open when the capture ends{{end}}: client → server {{.FramesC2S}} {{plural .FramesC2S "frame" "frames"}}, {{.BytesC2S}} B · server → client {{.FramesS2C}} {{plural .FramesS2C "frame" "frames"}}, {{.BytesS2C}} B.</div>
</div>
</div>
</section>
{{- end}}

<section id="leaks">
<h2>What leaks without any key</h2>
<p>Encryption hides the words, not the conversation. Everything in this section comes from the capture alone.</p>
<h3>Who talks to whom, and when</h3>
<ul class="facts">
{{- range .Conns}}
<li>conn {{.ID}}: {{.Client}} ↔ {{.Server}}, {{if .Ended}}from {{.Opened}} to {{.Closed}} ({{.Duration}}){{else}}from {{.Opened}} until the capture ends{{end}}; {{.FramesC2S}} {{plural .FramesC2S "frame" "frames"}} ({{.BytesC2S}} B) up, {{.FramesS2C}} {{plural .FramesS2C "frame" "frames"}} ({{.BytesS2C}} B) down.</li>
{{- end}}
</ul>
<p>After each frame a client sends, the server's next frames show who gets something and how big it is: a message relayed to everyone, a private message to one other client, an answer to the sender alone.</p>
<div class="scroll"><table class="bursts">
<thead><tr><th>time</th><th>sender</th><th>the server then sends</th></tr></thead>
<tbody>
{{- range .Bursts}}
<tr><td>{{.T}}</td><td>{{if .From}}conn {{.From}}: {{.Size}} B{{else}}the server{{end}}</td><td>{{range $i, $s := .Sends}}{{if $i}}, {{end}}conn {{$s.Conn}}: {{$s.Size}} B{{else}}nothing yet{{end}}</td></tr>
{{- end}}
</tbody></table></div>
{{- if .MoreBursts}}
<p>… and {{.MoreBursts}} more frames, not listed.</p>
{{- end}}
<h3>How long each message is</h3>
<p>The length header is in clear, and the ciphertext follows the text's length.
{{- if .Classic}} AES-CBC pads a text to whole 16-byte blocks, so a classic record gives its text's length to within 16 bytes (each record's range is in its sniffer column).{{end}}
{{- if .Modern}} AES-GCM does not pad: a modern record is its text plus a 16-byte tag, so its length gives the text's exact length.{{end}}</p>
<h3>Which server</h3>
{{- if .Fingerprints}}
<p>The server's public key crosses the wire in clear ({{range $i, $f := .Fingerprints}}{{if $i}}, {{end}}<code>{{$f}}</code>{{end}}): a sniffer learns which server this is and links every session to it. The key is public by design; what protects the client is checking it (a pinned key, or -fingerprint). A client that does not check can be handed an attacker's key instead (encchat tap -mitm).</p>
{{- else}}
<p>{{if .Modern}}The modern ServerHello carries the server's RSA public key in clear: a sniffer learns which server this is. The client checks the key and its signature over the handshake, so an attacker cannot substitute its own.{{else}}No server key was seen in this capture.{{end}}</p>
{{- end}}
</section>

<footer>Written by <code>encchat replay -html</code> from {{.Capture}}. The page has no scripts and loads nothing: it works offline and prints.</footer>
</body>
</html>
`
