// The replay engine and the replay command.
//
// Replay streams a capture in constant memory: each direction's bytes go
// through a frame reassembler, each connection's frames through a suite
// decoder (replaySuite) that names them and, with a key, decrypts them, and a
// view renders the sniffer's and the peer's side of every frame.

package main

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"
)

// replayKeys are the keys the user gave replay.
type replayKeys struct {
	keylog     keylogEntries
	keylogName string            // the base name, in each frame's "key:" line
	keylogPath string            // the path as given, in the header
	index      map[string][]byte // label + " " + id → secret
	rsa        *rsa.PrivateKey
	rsaName    string
	rsaPath    string
	rsaFP      string
	key        []byte // -key: one classic session key
	// live: keys come in while the capture runs (the live wire), often
	// just after the frame that names their session: the decoders look a
	// session's key up again at its first record.
	live bool
}

// given reports whether the user gave any key source.
func (k *replayKeys) given() bool {
	return k != nil && (k.keylogName != "" || k.rsa != nil || k.key != nil)
}

// lookup returns the keylog's secret for a session. The live wire
// (web_wire.go) fills index itself, as keys are logged.
func (k *replayKeys) lookup(label string, id []byte) ([]byte, bool) {
	if k == nil || (k.keylog == nil && k.index == nil) {
		return nil, false
	}
	if k.index == nil {
		k.index = make(map[string][]byte, len(k.keylog))
		for _, e := range k.keylog {
			k.index[e.Label+" "+string(e.ID)] = e.Secret
		}
	}
	s, ok := k.index[label+" "+string(id)]
	return s, ok
}

// replayFrame is one frame of a connection: what the suite decoder makes of
// it, for the views to show.
type replayFrame struct {
	Num     int // in capture order over all connections; -tamper names it
	Conn    int
	T       float64
	Dir     wireDir
	Payload []byte // as on the wire, without the header; valid during decode
	Tamper  int    // the bit to flip before decrypting, or -1
	Suite   string // the suite whose decoder claimed the connection, or ""

	// Filled by the decoder.
	Kind     frameKind // which frame it is (the kinds are in steps.go)
	What     string    // the sniffer's name for the frame
	Details  []string  // what else the sniffer learns from it
	Preview  string    // the bytes as the sniffer sees them, shortened
	Text     []byte    // the plaintext, when a key decrypted it
	HasText  bool
	Key      string   // which key decrypted it
	Peer     []string // the peer's side when it is not a text (key material)
	Problem  string   // why a frame a key should open did not
	Tampered []string // what the flipped bit did
	Notes    []string // said once per session: a key recovered, no key fits
	Meta     frameMeta
}

// frameMeta are the facts -json adds for some kinds of frame.
type frameMeta struct {
	IV          string
	CipherLen   int
	TextMin     int
	TextMax     int
	HasRange    bool
	Fingerprint string
	SessionID   string
}

// replaySuite recognises one suite's connections in a capture. A suite
// joins replay by implementing it and being listed in replaySuites.
type replaySuite interface {
	// name is the suite's name: suiteClassic or suiteModern.
	name() string
	// claims reports whether a connection whose first frame (in direction
	// dir) is first speaks this suite.
	claims(dir wireDir, first []byte) bool
	// newSession starts decoding one connection with the user's keys.
	newSession(keys *replayKeys, conn int) replaySession
}

// replaySession decodes one connection's frames in capture order, filling
// each frame's fields. It also applies f.Tamper when it is not -1.
type replaySession interface {
	decode(f *replayFrame)
}

// replaySuites are asked in order; the first that claims a connection
// decodes it. Connections no suite claims are shown as opaque frames.
func replaySuites() []replaySuite {
	return []replaySuite{modernReplaySuite{}, classicReplaySuite{}}
}

// opaqueSession shows frames no suite understands.
type opaqueSession struct{}

func (opaqueSession) decode(f *replayFrame) { opaqueFrame(f) }

func opaqueFrame(f *replayFrame) {
	f.Kind = kindOpaque
	f.What = "opaque frame: no suite recognises it"
	f.Preview = hexPreview(f.Payload, 24)
	f.Peer = []string{"(not decrypted: unknown format)"}
	if f.Tamper >= 0 {
		f.Tampered = []string{"-tamper: nothing decrypts this frame, so flipping a bit shows nothing"}
	}
}

// tamperSpec is -tamper FRAME:BIT.
type tamperSpec struct {
	frame, bit int
	set        bool
}

// replayOptions are replay's settings after the flags.
type replayOptions struct {
	name   string // the capture's name in messages
	view   string // sniffer, peer or both
	json   bool
	conn   int // 0: every connection
	speed  float64
	tamper tamperSpec
	width  int
	color  bool
	keys   *replayKeys
	sleep  func(time.Duration)
	// projector: the lesson page (-html) on the larger type scale.
	projector bool
	// live: the capture is a running server's (the live wire): closed
	// connections are forgotten, so memory stays bounded however long it runs.
	live bool
}

// replayStats count what was shown.
type replayStats struct {
	conns, frames, decrypted, undecrypted int
	bytes                                 int64
	byKey                                 int // records -key decrypted
}

// replayer turns capture events into frames and hands them to a view.
type replayer struct {
	opts       *replayOptions
	out        replayOutput
	suites     []replaySuite
	conns      map[int]*replayConn
	closed     map[int]bool
	frames     int
	lastShown  float64
	timed      bool // an event has been shown with -speed
	stats      replayStats
	tamperConn int // the connection of the tampered frame, once seen
}

// replayConn is one connection being replayed.
type replayConn struct {
	rp             *replayer
	id             int
	client, server string
	transport      string // "websocket", from the open record; "" for TCP
	opened         float64
	midStream      bool // no open record: the capture began during it
	dirs           [2]replayDir
	sess           replaySession
	suite          string // the name of the suite that claimed it
	frames         [2]int
	bytes          [2]int64
	shown          bool
	now            float64 // time of the event being replayed
}

// replayDir is one direction of a connection; it is its reassembler's sink.
type replayDir struct {
	c      *replayConn
	d      wireDir
	r      frameReassembler
	gapped bool // a gap in the capture is cutting the frame in progress
}

func (d *replayDir) frame(p []byte) {
	d.c.bytes[d.d] += int64(headerLen + len(p))
	d.c.rp.frame(d.c, d.d, p, "")
}

func (d *replayDir) skipped(n int, why string) {
	d.c.bytes[d.d] += int64(n)
	if d.c.shown {
		d.c.rp.out.note(d.c, fmt.Sprintf("conn %d %s: %d bytes skipped: %s", d.c.id, d.d.arrow(), n, why))
	}
}

func (d *replayDir) partial(got []byte, want int) {
	d.c.bytes[d.d] += int64(len(got))
	ends := "the stream ends"
	if d.gapped {
		ends = "bytes missing from the capture cut it"
	}
	why := fmt.Sprintf("%s mid-header (%d of %d header bytes)", ends, len(got), headerLen)
	if want >= 0 {
		d.c.bytes[d.d] += headerLen
		why = fmt.Sprintf("%s mid-frame: the header says %d B, %d B arrived", ends, want, len(got))
	}
	d.c.rp.frame(d.c, d.d, got, why)
}

// gap is n bytes of the direction missing from a pcap: the frame they cut
// is shown as partial, and the next frame header is searched for.
func (d *replayDir) gap(n int) {
	if d.c.shown {
		d.c.rp.out.note(d.c, fmt.Sprintf("conn %d %s: %d %s missing from the capture (segments it did not see)", d.c.id, d.d.arrow(), n, plural(n, "byte", "bytes")))
	}
	d.gapped = true
	d.r.gap(n)
	d.gapped = false
}

// replayOutput is a view.
type replayOutput interface {
	begin(h captureHeader, started time.Time)
	open(c *replayConn)
	frame(f *replayFrame)
	note(c *replayConn, text string)
	close(c *replayConn, t float64, ended bool)
	end(s replayStats)
	flush() error
}

// replayCapture replays the capture in r (encchat's, pcap or pcapng) to
// out. It replays as far as the capture goes; a bad line stops it with a
// *lineError naming the line.
func replayCapture(r io.Reader, opts *replayOptions, out replayOutput) error {
	cr, err := readCapture(r)
	if err != nil {
		return err
	}
	return replaySource(cr, opts, out)
}

// replaySource replays the capture cr to out.
func replaySource(cr captureSource, opts *replayOptions, out replayOutput) error {
	var err error
	rp := &replayer{
		opts:   opts,
		out:    out,
		suites: replaySuites(),
		conns:  make(map[int]*replayConn),
		closed: make(map[int]bool),
	}
	if rp.opts.sleep == nil {
		rp.opts.sleep = time.Sleep
	}
	out.begin(cr.header())
	var ev captureEvent
	for {
		err = cr.next(&ev)
		if err != nil {
			break
		}
		if msg := rp.event(&ev); msg != "" {
			err = &lineError{ev.Line, msg}
			break
		}
	}
	rp.finish()
	if err == io.EOF {
		err = nil
	}
	if err == nil && opts.tamper.set {
		switch {
		case rp.tamperConn == 0:
			err = fmt.Errorf("replay: -tamper: there is no frame %d (the capture has %d)", opts.tamper.frame, rp.frames)
		case opts.conn != 0 && rp.tamperConn != opts.conn:
			err = fmt.Errorf("replay: -tamper: frame %d is on connection %d, not on -conn %d", opts.tamper.frame, rp.tamperConn, opts.conn)
		}
	}
	if err == nil && opts.conn != 0 && rp.stats.conns == 0 {
		err = fmt.Errorf("replay: -conn: the capture has no connection %d (it has %d)", opts.conn, len(rp.closed))
	}
	if err == nil && opts.keys != nil && opts.keys.key != nil && rp.stats.byKey == 0 {
		err = errWrongKey
	}
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	return err
}

// errWrongKey is replay's error when -key opened nothing it showed.
var errWrongKey = errors.New("replay: -key decrypted no record: it is not the session key of any classic session shown")

// checkSelection runs through the capture at path without showing
// anything, so that a -conn or -tamper naming what the capture lacks is an
// error before any output. A capture it cannot read is left to the replay,
// which reports it where it stops.
func checkSelection(path string, opts *replayOptions) error {
	if opts.conn == 0 && !opts.tamper.set {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	dry := &replayOptions{name: opts.name, view: "sniffer", conn: opts.conn, tamper: opts.tamper, keys: &replayKeys{}}
	err = replayCapture(f, dry, discardOutput{})
	var le *lineError
	if errors.As(err, &le) {
		return nil
	}
	return err
}

// discardOutput is a view that shows nothing.
type discardOutput struct{}

func (discardOutput) begin(captureHeader, time.Time)   {}
func (discardOutput) open(*replayConn)                 {}
func (discardOutput) frame(*replayFrame)               {}
func (discardOutput) note(*replayConn, string)         {}
func (discardOutput) close(*replayConn, float64, bool) {}
func (discardOutput) end(replayStats)                  {}
func (discardOutput) flush() error                     { return nil }

// event replays one record; it returns what is wrong with it, or "".
func (rp *replayer) event(ev *captureEvent) string {
	c := rp.conns[ev.Conn]
	switch ev.Kind {
	case capOpen:
		if c != nil || rp.closed[ev.Conn] {
			return fmt.Sprintf("connection %d opened twice", ev.Conn)
		}
		c = rp.newConn(ev.Conn, ev.T)
		c.client, c.server, c.transport = ev.Client, ev.Server, ev.Transport
		if c.shown {
			rp.keepTime(ev.T)
			rp.out.open(c)
		}
	case capData:
		if rp.closed[ev.Conn] {
			return fmt.Sprintf("data on connection %d after its close", ev.Conn)
		}
		if c == nil {
			c = rp.newConn(ev.Conn, ev.T)
			c.midStream = true
			if c.shown {
				rp.out.open(c)
			}
		}
		c.now = ev.T
		c.dirs[ev.Dir].r.feed(ev.Data)
	case capClose:
		if c == nil {
			if rp.closed[ev.Conn] {
				return fmt.Sprintf("connection %d closed twice", ev.Conn)
			}
			return fmt.Sprintf("close of connection %d, which never opened", ev.Conn)
		}
		c.now = ev.T
		rp.endConn(c, true)
	case capGap:
		if c != nil {
			c.now = ev.T
			c.dirs[ev.Dir].gap(ev.Gap)
		}
	case capNote:
		if c == nil {
			// About the whole capture, or a connection not shown.
			c = &replayConn{rp: rp, id: ev.Conn, now: ev.T, shown: ev.Conn == 0}
		}
		if c.shown {
			rp.out.note(c, ev.Note)
		}
	}
	return ""
}

func (rp *replayer) newConn(id int, t float64) *replayConn {
	c := &replayConn{rp: rp, id: id, opened: t, now: t}
	c.shown = rp.opts.conn == 0 || rp.opts.conn == id
	for d := range c.dirs {
		c.dirs[d] = replayDir{c: c, d: wireDir(d)}
		c.dirs[d].r.sink = &c.dirs[d]
	}
	rp.conns[id] = c
	if c.shown {
		rp.stats.conns++
	}
	return c
}

// endConn ends a connection at a close record, or at the end of the capture.
func (rp *replayer) endConn(c *replayConn, closed bool) {
	c.dirs[wireC2S].r.end()
	c.dirs[wireS2C].r.end()
	if c.shown {
		rp.keepTime(c.now)
		rp.out.close(c, c.now, closed)
		rp.stats.bytes += c.bytes[0] + c.bytes[1]
	}
	delete(rp.conns, c.id)
	if !rp.opts.live {
		rp.closed[c.id] = true
	}
}

// finish ends the connections still open when the capture ends.
func (rp *replayer) finish() {
	ids := make([]int, 0, len(rp.conns))
	for id := range rp.conns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		rp.endConn(rp.conns[id], false)
	}
	rp.out.end(rp.stats)
}

// keepTime sleeps for the recorded gap before t, scaled by -speed.
func (rp *replayer) keepTime(t float64) {
	if rp.opts.speed <= 0 {
		return
	}
	if !rp.timed {
		// Playback starts at the first event shown: with -conn N, at
		// connection N, not at the start of the capture.
		rp.timed, rp.lastShown = true, t
	}
	if gap := (t - rp.lastShown) / rp.opts.speed; gap > 0 {
		rp.out.flush()
		rp.opts.sleep(time.Duration(gap * float64(time.Second)))
	}
	rp.lastShown = math.Max(rp.lastShown, t)
}

// frame decodes and shows one frame; partial is set for a frame the stream
// cut short.
func (rp *replayer) frame(c *replayConn, d wireDir, payload []byte, partial string) {
	rp.frames++
	c.frames[d]++
	f := &replayFrame{Num: rp.frames, Conn: c.id, T: c.now, Dir: d, Payload: payload, Tamper: -1}
	if rp.opts.tamper.set && rp.opts.tamper.frame == f.Num {
		f.Tamper = rp.opts.tamper.bit
		rp.tamperConn = c.id
	}
	if partial != "" {
		f.Kind = kindPartial
		f.What = "partial frame: " + partial
		f.Preview = hexPreview(payload, 24)
		f.Peer = []string{"never delivered: the frame is incomplete"}
		if f.Tamper >= 0 {
			f.Tampered = []string{"-tamper: a partial frame is never decrypted"}
		}
	} else {
		if c.sess == nil {
			c.sess = opaqueSession{}
			for _, s := range rp.suites {
				if s.claims(d, payload) {
					c.sess, c.suite = s.newSession(rp.opts.keys, c.id), s.name()
					break
				}
			}
		}
		c.sess.decode(f)
	}
	f.Suite = c.suite
	if !c.shown {
		return
	}
	rp.stats.frames++
	switch {
	case f.HasText:
		rp.stats.decrypted++
		if f.Key == "-key" {
			rp.stats.byKey++
		}
	case f.Kind == kindSealed:
		rp.stats.undecrypted++
	}
	rp.keepTime(f.T)
	rp.out.frame(f)
}
