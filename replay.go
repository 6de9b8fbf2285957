// Capture and keylog files, the tap relay, replay views, key recovery and
// pcap export.
//
// A capture is JSON Lines: a header, then open, data and close records per
// connection, holding only what a sniffer on the wire sees. Replay streams it
// line by line in constant memory: each direction's bytes go through a frame
// reassembler, each connection's frames through a suite decoder (replaySuite)
// that names them and, with a key, decrypts them, and the views render the
// sniffer's and the peer's side of every frame.

package main

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/chzyer/readline"
	"github.com/fatih/color"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/mattn/go-isatty"
)

// Capture file constants.
const (
	captureVersion    = 1
	captureFlushEvery = 200 * time.Millisecond
	captureKickAt     = 1 << 20   // pending bytes that wake the writer before its tick
	captureMaxPending = 64 << 20  // past this, recording stops rather than slow the chat
	captureMaxLine    = 16 << 20  // longest capture line replay accepts
	keylogClassic     = "CLASSIC" // keylog label of a classic session
	classicKeylogID   = 8         // bytes of the RSA-OAEP blob that name a classic session
)

// wireDir is a direction on the wire.
type wireDir uint8

const (
	wireC2S wireDir = iota // client to server
	wireS2C                // server to client
)

func (d wireDir) String() string {
	if d == wireS2C {
		return "s2c"
	}
	return "c2s"
}

func (d wireDir) arrow() string {
	if d == wireS2C {
		return "server → client"
	}
	return "client → server"
}

// errCaptureBehind stops a recording whose disk cannot keep up.
var errCaptureBehind = errors.New("capture fell too far behind the traffic; recording stopped")

// ---------------------------------------------------------------------------
// Capture writer

// capture records the bytes of connections as a sniffer on the wire sees
// them. Recording never blocks the chat: records go into a pending buffer
// under a short lock, and the capture's own goroutine writes them out every
// captureFlushEvery and on Close. A nil *capture records nothing.
type capture struct {
	w     io.WriteCloser
	now   func() time.Time
	start time.Time

	mu      sync.Mutex
	pending []byte
	nextID  int
	stopped bool  // Close was called: records are dropped
	err     error // the first write error; nothing more is written after it
	// maxPending bounds the pending buffer (captureMaxPending; tests lower it).
	maxPending int

	kick      chan struct{}
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// newCapture starts a capture writing to w. recorder is "server", "client"
// or "tap"; addr is the address it serves or connects to. now is the clock
// (nil for time.Now).
func newCapture(w io.WriteCloser, recorder, addr string, now func() time.Time) *capture {
	if now == nil {
		now = time.Now
	}
	c := &capture{
		w:          w,
		now:        now,
		maxPending: captureMaxPending,
		kick:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	c.start = now()
	hdr, _ := json.Marshal(captureHeader{
		Version:  captureVersion,
		Started:  c.start.UTC().Format(time.RFC3339Nano),
		Recorder: recorder,
		Addr:     addr,
	})
	c.pending = append(hdr, '\n')
	go c.run()
	return c
}

// openCapture creates (or truncates) the capture file at path.
func openCapture(path, recorder, addr string) (*capture, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return newCapture(f, recorder, addr, time.Now), nil
}

// run is the capture's writer goroutine; Close ends it.
func (c *capture) run() {
	defer close(c.done)
	tick := time.NewTicker(captureFlushEvery)
	defer tick.Stop()
	var spare []byte
	for {
		select {
		case <-tick.C:
		case <-c.kick:
		case <-c.quit:
			c.flush(&spare)
			return
		}
		c.flush(&spare)
	}
}

// flush swaps the pending buffer out under the lock and writes it without it.
func (c *capture) flush(spare *[]byte) {
	c.mu.Lock()
	buf := c.pending
	c.pending = (*spare)[:0]
	failed := c.err != nil
	c.mu.Unlock()
	if len(buf) > 0 && !failed {
		if _, err := c.w.Write(buf); err != nil {
			c.fail(err)
		}
	}
	if cap(buf) > 4*captureKickAt {
		buf = nil // do not keep a burst's buffer for ever
	}
	*spare = buf[:0]
}

func (c *capture) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.pending = nil
	c.mu.Unlock()
}

// Err returns the first error that stopped the recording (a full disk, a
// writer that fell behind), or nil. The chat goes on either way.
func (c *capture) Err() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close flushes what is pending, stops the writer and closes the file. It
// returns the first error of the whole recording. Connections still open
// keep working but are no longer recorded.
func (c *capture) Close() error {
	if c == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		close(c.quit)
		<-c.done
		c.mu.Lock()
		c.stopped = true
		err := c.err
		c.mu.Unlock()
		if cerr := c.w.Close(); err == nil {
			err = cerr
		}
		c.closeErr = err
	})
	return c.closeErr
}

// record appends one line built by add, unless recording has stopped or
// cc (when not nil) was closed: a read or write racing with Close must not
// appear after the connection's close record.
func (c *capture) record(cc *capConn, add func(b []byte, t float64) []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.err != nil || (cc != nil && cc.closed) {
		return
	}
	if len(c.pending) > c.maxPending {
		c.err = errCaptureBehind
		c.pending = nil
		return
	}
	t := c.now().Sub(c.start).Seconds()
	c.pending = add(c.pending, t)
	if len(c.pending) >= captureKickAt {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// capConn records one connection. A nil *capConn records nothing.
type capConn struct {
	c      *capture
	id     int
	closed bool // guarded by c.mu
}

// open records a new connection and returns its recorder. Ids are given in
// open order, from 1.
func (c *capture) open(client, server string) *capConn {
	if c == nil {
		return nil
	}
	cc := &capConn{c: c}
	c.record(nil, func(b []byte, t float64) []byte {
		c.nextID++
		cc.id = c.nextID
		b = appendRecordStart(b, t, cc.id)
		b = append(b, `,"ev":"open","client":`...)
		b = appendJSONString(b, client)
		b = append(b, `,"server":`...)
		b = appendJSONString(b, server)
		return append(b, "}\n"...)
	})
	return cc
}

// data records bytes seen in one direction.
func (cc *capConn) data(dir wireDir, p []byte) {
	if cc == nil || len(p) == 0 {
		return
	}
	cc.c.record(cc, func(b []byte, t float64) []byte {
		b = appendRecordStart(b, t, cc.id)
		b = append(b, `,"dir":"`...)
		b = append(b, dir.String()...)
		b = append(b, `","data":"`...)
		b = base64.StdEncoding.AppendEncode(b, p)
		return append(b, "\"}\n"...)
	})
}

// close records the end of the connection.
func (cc *capConn) close() {
	if cc == nil {
		return
	}
	cc.c.record(cc, func(b []byte, t float64) []byte {
		cc.closed = true
		b = appendRecordStart(b, t, cc.id)
		return append(b, `,"ev":"close"}`+"\n"...)
	})
}

func appendRecordStart(b []byte, t float64, id int) []byte {
	if t < 0 || math.IsNaN(t) {
		t = 0
	}
	b = append(b, `{"t":`...)
	b = strconv.AppendFloat(b, math.Round(t*1e6)/1e6, 'f', -1, 64)
	b = append(b, `,"conn":`...)
	return strconv.AppendInt(b, int64(id), 10)
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// wrapConn returns nc recording into c. side is the recorder's role,
// "server" or "client": it decides which direction reads and writes are.
// A nil c returns nc unchanged.
func (c *capture) wrapConn(nc net.Conn, side string) net.Conn {
	if c == nil {
		return nc
	}
	rc := &recConn{Conn: nc, readDir: wireC2S, writeDir: wireS2C}
	client, server := nc.RemoteAddr(), nc.LocalAddr()
	if side == "client" {
		rc.readDir, rc.writeDir = wireS2C, wireC2S
		client, server = server, client
	}
	rc.rec = c.open(addrString(client), addrString(server))
	return rc
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// recConn is a net.Conn whose bytes are recorded. A write is recorded
// before it is made, so a reply never appears in the capture before the
// bytes that caused it.
type recConn struct {
	net.Conn
	rec               *capConn
	readDir, writeDir wireDir
	closeOnce         sync.Once
}

func (r *recConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if n > 0 {
		r.rec.data(r.readDir, p[:n])
	}
	return n, err
}

func (r *recConn) Write(p []byte) (int, error) {
	r.rec.data(r.writeDir, p)
	return r.Conn.Write(p)
}

func (r *recConn) Close() error {
	err := r.Conn.Close()
	r.closeOnce.Do(r.rec.close)
	return err
}

// ---------------------------------------------------------------------------
// Keylog

// keylog writes session secrets in the NSS key log spirit. A nil *keylog
// writes nothing.
type keylog struct {
	mu     sync.Mutex
	w      io.WriteCloser
	closed bool
	err    error
}

// openKeylog opens path for appending (mode 0600: it holds keys).
func openKeylog(path string) (*keylog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	k := &keylog{w: f}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		k.writeLine("# encchat key log: LABEL <session id hex> <secret hex>. It decrypts every session it names: keep it secret.\n")
	}
	return k, nil
}

// logKey writes one line: LABEL <id hex> <secret hex>.
func (k *keylog) logKey(label string, id, secret []byte) {
	if k == nil {
		return
	}
	line := make([]byte, 0, len(label)+2*len(id)+2*len(secret)+3)
	line = append(line, label...)
	line = append(line, ' ')
	line = hex.AppendEncode(line, id)
	line = append(line, ' ')
	line = hex.AppendEncode(line, secret)
	line = append(line, '\n')
	k.writeLine(string(line))
}

func (k *keylog) writeLine(s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil && !k.closed {
		_, k.err = io.WriteString(k.w, s)
	}
}

// Err returns the first write error, if any.
func (k *keylog) Err() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// Close closes the file and returns the first error of the whole log.
func (k *keylog) Close() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return k.err
	}
	k.closed = true
	if err := k.w.Close(); k.err == nil {
		k.err = err
	}
	return k.err
}

// keylogEntry is one line of a keylog.
type keylogEntry struct {
	Label  string
	ID     []byte
	Secret []byte
	Line   int
}

// keylogEntries is a parsed keylog, in file order.
type keylogEntries []keylogEntry

// lookup returns the secret logged for a session. A later line wins.
func (e keylogEntries) lookup(label string, id []byte) ([]byte, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if e[i].Label == label && bytes.Equal(e[i].ID, id) {
			return e[i].Secret, true
		}
	}
	return nil, false
}

// lineError names the line of a capture or keylog that stopped the reading.
type lineError struct {
	Line int
	Msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// in formats the error for a named file: "name:LINE: what".
func (e *lineError) in(name string) string { return fmt.Sprintf("%s:%d: %s", name, e.Line, e.Msg) }

// parseKeylog reads a keylog: LABEL <id hex> <secret hex> a line, # comments
// and blank lines ignored. A bad line is a *lineError naming it.
func parseKeylog(r io.Reader) (keylogEntries, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out keylogEntries
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return out, &lineError{n, `want "LABEL <session id hex> <secret hex>"`}
		}
		if !validKeylogLabel(f[0]) {
			return out, &lineError{n, fmt.Sprintf("label %q is not upper-case letters, digits and _", truncateRunes(f[0], 20))}
		}
		id, err := hex.DecodeString(f[1])
		if err != nil || len(id) == 0 {
			return out, &lineError{n, "session id is not hex"}
		}
		secret, err := hex.DecodeString(f[2])
		if err != nil || len(secret) == 0 {
			return out, &lineError{n, "secret is not hex"}
		}
		if f[0] == keylogClassic {
			if len(id) != classicKeylogID {
				return out, &lineError{n, fmt.Sprintf("CLASSIC session id is %d bytes, want %d", len(id), classicKeylogID)}
			}
			if len(secret) != aesKeySize {
				return out, &lineError{n, fmt.Sprintf("CLASSIC key is %d bytes, want %d", len(secret), aesKeySize)}
			}
		}
		out = append(out, keylogEntry{Label: f[0], ID: id, Secret: secret, Line: n})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return out, &lineError{n + 1, "line too long"}
		}
		return out, err
	}
	return out, nil
}

func validKeylogLabel(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Capture reader

// captureHeader is the first line of a capture.
type captureHeader struct {
	Version  int    `json:"encchat_capture"`
	Started  string `json:"started"`
	Recorder string `json:"recorder"`
	Addr     string `json:"addr"`
}

// Capture event kinds.
const (
	capOpen  = "open"
	capData  = "data"
	capClose = "close"
)

// captureEvent is one record of a capture after the header.
type captureEvent struct {
	Line           int
	T              float64 // seconds since the capture started
	Conn           int
	Kind           string // capOpen, capData or capClose
	Dir            wireDir
	Client, Server string
	Data           []byte // valid until the next call to next
}

// captureReader streams a capture line by line in constant memory.
type captureReader struct {
	br       *bufio.Reader
	line     int
	long     []byte // a line longer than br's buffer
	data     []byte // decoded bytes of the current record, reused
	slowOnly bool   // tests: always use encoding/json
	Header   captureHeader
	Started  time.Time // zero when the header's time does not parse
}

// newCaptureReader reads and checks the header line.
func newCaptureReader(r io.Reader) (*captureReader, error) {
	cr := &captureReader{br: bufio.NewReaderSize(r, 64<<10)}
	line, _, err := cr.readLine()
	for err == nil && len(bytes.TrimSpace(line)) == 0 {
		line, _, err = cr.readLine()
	}
	if err == io.EOF {
		return nil, &lineError{cr.line + 1, "empty file: not an encchat capture"}
	}
	if err != nil {
		return nil, err
	}
	var h captureHeader
	if json.Unmarshal(line, &h) != nil || h.Version == 0 {
		return nil, &lineError{cr.line, "not an encchat capture (the first line is not a capture header)"}
	}
	if h.Version != captureVersion {
		return nil, &lineError{cr.line, fmt.Sprintf("unknown capture version %d (this encchat reads version %d)", h.Version, captureVersion)}
	}
	cr.Header = h
	cr.Started, _ = time.Parse(time.RFC3339Nano, h.Started)
	return cr, nil
}

// readLine returns the next line without its line end; cut reports a last
// line with no line end. The slice is valid until the next call.
func (cr *captureReader) readLine() (line []byte, cut bool, err error) {
	line, err = cr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		cr.long = append(cr.long[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(cr.long) > captureMaxLine {
				cr.line++
				return nil, false, &lineError{cr.line, fmt.Sprintf("line longer than %d MiB", captureMaxLine>>20)}
			}
			line, err = cr.br.ReadSlice('\n')
			cr.long = append(cr.long, line...)
		}
		line = cr.long
		if cap(cr.long) > 2*captureMaxLine {
			cr.long = nil
		}
	}
	switch {
	case err == io.EOF && len(line) == 0:
		return nil, false, io.EOF
	case err == io.EOF:
		cut = true
	case err != nil:
		return nil, false, err
	}
	cr.line++
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, cut, nil
}

// next reads the next record into ev. It returns io.EOF at the end, or a
// *lineError naming the line that stopped it.
func (cr *captureReader) next(ev *captureEvent) error {
	for {
		line, cut, err := cr.readLine()
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if msg := cr.parse(line, ev); msg != "" {
			if cut {
				msg = "the capture ends mid-line (" + msg + ")"
			}
			return &lineError{cr.line, msg}
		}
		ev.Line = cr.line
		return nil
	}
}

// recordFields are a record's fields before they are checked.
type recordFields struct {
	t                      float64
	conn                   int64
	hasT, hasConn          bool
	hasEv, hasDir, hasData bool
	ev, dir, data          []byte
	client, server         []byte
}

// parse fills ev from one line; it returns what is wrong, or "".
func (cr *captureReader) parse(line []byte, ev *captureEvent) string {
	var f recordFields
	if cr.slowOnly || !scanFlatRecord(line, &f) {
		f = recordFields{}
		var r struct {
			T      *float64 `json:"t"`
			Conn   *int64   `json:"conn"`
			Ev     *string  `json:"ev"`
			Dir    *string  `json:"dir"`
			Data   *string  `json:"data"`
			Client *string  `json:"client"`
			Server *string  `json:"server"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return "bad JSON"
		}
		if r.T != nil {
			f.t, f.hasT = *r.T, true
		}
		if r.Conn != nil {
			f.conn, f.hasConn = *r.Conn, true
		}
		if r.Ev != nil {
			f.ev, f.hasEv = []byte(*r.Ev), true
		}
		if r.Dir != nil {
			f.dir, f.hasDir = []byte(*r.Dir), true
		}
		if r.Data != nil {
			f.data, f.hasData = []byte(*r.Data), true
		}
		if r.Client != nil {
			f.client = []byte(*r.Client)
		}
		if r.Server != nil {
			f.server = []byte(*r.Server)
		}
	}
	if !f.hasConn || f.conn < 1 || f.conn > math.MaxInt32 {
		return "missing or bad connection number"
	}
	if !f.hasT || f.t < 0 || math.IsInf(f.t, 0) || math.IsNaN(f.t) {
		return "missing or bad time"
	}
	*ev = captureEvent{T: f.t, Conn: int(f.conn), Data: ev.Data[:0]}
	if f.hasEv {
		switch string(f.ev) {
		case capOpen:
			ev.Kind = capOpen
			ev.Client, ev.Server = string(f.client), string(f.server)
		case capClose:
			ev.Kind = capClose
		default:
			return fmt.Sprintf("unknown event %q", truncateRunes(string(f.ev), 20))
		}
		return ""
	}
	ev.Kind = capData
	switch string(f.dir) {
	case "c2s":
		ev.Dir = wireC2S
	case "s2c":
		ev.Dir = wireS2C
	default:
		if !f.hasDir {
			return "record has neither an event nor a direction"
		}
		return fmt.Sprintf("unknown direction %q", truncateRunes(string(f.dir), 20))
	}
	if !f.hasData {
		return "data record without data"
	}
	need := base64.StdEncoding.DecodedLen(len(f.data))
	if cap(cr.data) < need {
		cr.data = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(cr.data[:need], f.data)
	if err != nil {
		return "bad base64"
	}
	ev.Data = cr.data[:n]
	if cap(cr.data) > 4*captureMaxLine {
		cr.data = nil
	}
	return ""
}

// scanFlatRecord parses the records encchat writes — a flat object of known
// keys with plain string and number values — without allocating. It
// returns false for anything else, which then goes through encoding/json,
// so the two always agree (FuzzCaptureParse checks it).
func scanFlatRecord(b []byte, f *recordFields) bool {
	i := skipJSONSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipJSONSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipJSONSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := scanPlainString(b, i)
		if !ok {
			return false
		}
		i = skipJSONSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipJSONSpace(b, i+1)
		switch string(key) {
		case "t":
			num, j, ok := scanPlainNumber(b, i)
			if !ok {
				return false
			}
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil {
				return false
			}
			f.t, f.hasT, i = v, true, j
		case "conn":
			num, j, ok := scanPlainNumber(b, i)
			if !ok || len(num) > 18 || bytes.IndexByte(num, '.') >= 0 {
				return false
			}
			var v int64
			for _, c := range num {
				v = v*10 + int64(c-'0')
			}
			f.conn, f.hasConn, i = v, true, j
		case "ev", "dir", "data", "client", "server":
			s, j, ok := scanPlainString(b, i)
			if !ok {
				return false
			}
			switch string(key) {
			case "ev":
				f.ev, f.hasEv = s, true
			case "dir":
				f.dir, f.hasDir = s, true
			case "data":
				f.data, f.hasData = s, true
			case "client":
				f.client = s
			case "server":
				f.server = s
			}
			i = j
		default:
			return false
		}
		i = skipJSONSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
		case '}':
			return skipJSONSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// scanPlainString scans a JSON string with no escapes, control or non-ASCII
// bytes, and returns its contents.
func scanPlainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// scanPlainNumber scans a non-negative JSON number without exponent.
func scanPlainNumber(b []byte, i int) ([]byte, int, bool) {
	j := i
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && isDigit(b[j]) {
			j++
		}
	default:
		return nil, 0, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		k := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if j == k {
			return nil, 0, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		return nil, 0, false
	}
	return b[i:j], j, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// truncateRunes shortens s to at most n runes, marking the cut with "…".
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// ---------------------------------------------------------------------------
// Frame reassembly

// frameSink receives what a frameReassembler finds in one direction.
type frameSink interface {
	// frame is one whole frame's payload; valid during the call only.
	frame(payload []byte)
	// skipped reports n bytes that are not part of any frame.
	skipped(n int, why string)
	// partial reports a stream that ended inside a frame: got holds what
	// arrived after the header (or the header's first bytes, with want -1).
	partial(got []byte, want int)
}

// frameReassembler rebuilds frames from one direction's chunks, whatever
// their boundaries. A stream that does not start at a frame boundary (a
// capture begun mid-connection) or holds a bad header is scanned for the
// next plausible header: ten digits announcing at most maxFrameLen bytes,
// right after a non-digit. Memory is bounded by one frame plus one chunk.
type frameReassembler struct {
	sink      frameSink
	buf       []byte
	consumed  int64 // stream bytes before buf
	hunting   bool  // looking for a frame boundary
	prevDigit bool  // the byte before buf was a digit (while hunting)
	skip      int   // bytes skipped while hunting, not yet reported
	why       string
}

// feed adds one chunk of the stream.
func (r *frameReassembler) feed(chunk []byte) {
	data := chunk
	if len(r.buf) > 0 {
		r.buf = append(r.buf, chunk...)
		data = r.buf
	}
	i := r.scan(data)
	rest := data[i:]
	if len(r.buf) > 0 {
		r.buf = r.buf[:copy(r.buf, rest)]
	} else {
		r.buf = append(r.buf[:0], rest...)
	}
	if cap(r.buf) > 2*(headerLen+maxFrameLen) && len(r.buf) <= headerLen+maxFrameLen {
		r.buf = append([]byte(nil), r.buf...)
	}
	r.consumed += int64(i)
}

// scan emits the whole frames in data and returns how many bytes it used.
func (r *frameReassembler) scan(data []byte) int {
	i := 0
	for {
		if r.hunting {
			j, found := huntFrameHeader(data, i, r.prevDigit)
			r.skip += j - i
			if j > 0 {
				r.prevDigit = isDigit(data[j-1])
			}
			i = j
			if !found {
				return i
			}
			r.hunting = false
			r.flushSkip()
		}
		if len(data)-i < headerLen {
			return i
		}
		n, err := parseFrameHeader(data[i : i+headerLen])
		if err != nil {
			r.why = "bad frame header: " + err.Error()
			if r.consumed+int64(i) == 0 {
				r.why = "the stream does not start at a frame boundary (capture begun mid-frame?)"
			}
			r.hunting = true
			r.skip++
			r.prevDigit = isDigit(data[i])
			i++
			continue
		}
		if len(data)-i < headerLen+n {
			return i
		}
		r.sink.frame(data[i+headerLen : i+headerLen+n])
		i += headerLen + n
	}
}

func (r *frameReassembler) flushSkip() {
	if r.skip > 0 {
		r.sink.skipped(r.skip, r.why)
		r.skip = 0
	}
}

// end reports what is left when the stream ends.
func (r *frameReassembler) end() {
	if r.hunting {
		r.skip += len(r.buf)
		r.buf = r.buf[:0]
	}
	r.flushSkip()
	r.hunting = false
	switch {
	case len(r.buf) == 0:
	case len(r.buf) < headerLen:
		r.sink.partial(r.buf, -1)
	default:
		n, _ := parseFrameHeader(r.buf[:headerLen])
		r.sink.partial(r.buf[headerLen:], n)
	}
	r.consumed += int64(len(r.buf))
	r.buf = r.buf[:0]
}

// huntFrameHeader returns the index of the next plausible frame header in
// data from i, or, when there is none yet, the index of the first byte to
// keep because a header may still start there once more bytes arrive.
func huntFrameHeader(data []byte, i int, prevDigit bool) (int, bool) {
	for j := i; j < len(data); j++ {
		prev := prevDigit
		if j > 0 {
			prev = isDigit(data[j-1])
		}
		if prev || !isDigit(data[j]) {
			continue
		}
		end := j
		for end < len(data) && end-j < headerLen && isDigit(data[end]) {
			end++
		}
		if end-j < headerLen {
			if end == len(data) {
				return j, false
			}
			continue
		}
		if _, err := parseFrameHeader(data[j : j+headerLen]); err == nil {
			return j, true
		}
	}
	return len(data), false
}

// ---------------------------------------------------------------------------
// Keys and suite decoders

// replayKeys are the keys the user gave replay.
type replayKeys struct {
	keylog     keylogEntries
	keylogName string
	index      map[string][]byte // label + " " + id → secret
	rsa        *rsa.PrivateKey
	rsaName    string
	rsaFP      string
	key        []byte // -key: one classic session key
}

// given reports whether the user gave any key source.
func (k *replayKeys) given() bool {
	return k != nil && (k.keylogName != "" || k.rsa != nil || k.key != nil)
}

// lookup returns the keylog's secret for a session.
func (k *replayKeys) lookup(label string, id []byte) ([]byte, bool) {
	if k == nil || k.keylog == nil {
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

	// Filled by the decoder.
	Kind     string   // public-key, key-transport, sealed, opaque, partial
	What     string   // the sniffer's name for the frame
	Details  []string // what else the sniffer learns from it
	Preview  string   // the bytes as the sniffer sees them, shortened
	Text     []byte   // the plaintext, when a key decrypted it
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
	f.Kind = "opaque"
	f.What = "opaque frame: no suite recognises it"
	f.Preview = hexPreview(f.Payload, 24)
	f.Peer = []string{"(not decrypted: unknown format)"}
	if f.Tamper >= 0 {
		f.Tampered = []string{"-tamper: nothing decrypts this frame, so flipping a bit shows nothing"}
	}
}

type classicReplaySuite struct{}

func (classicReplaySuite) claims(dir wireDir, first []byte) bool {
	switch {
	case dir == wireS2C && isPublicKeyPEM(first):
		return true
	case dir == wireC2S && len(first) == rsaBlobSize && !isBase64Text(first):
		return true
	}
	// A capture begun mid-session: sealed records without a handshake.
	return isBase64Text(first) && classicRecordLen(len(first))
}

func (classicReplaySuite) newSession(keys *replayKeys, conn int) replaySession {
	return &classicSession{keys: keys, conn: conn}
}

// isBase64Text reports whether p is standard padded base64.
func isBase64Text(p []byte) bool {
	if len(p) == 0 || len(p)%4 != 0 {
		return false
	}
	for i, c := range p {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
		case c == '=' && i >= len(p)-2:
		default:
			return false
		}
	}
	return true
}

// classicRecordLen reports whether a base64 text of n bytes could hold an
// IV and at least one whole block.
func classicRecordLen(n int) bool {
	raw := n / 4 * 3
	for _, pad := range []int{0, 1, 2} {
		if r := raw - pad; r >= cbcIVSize+16 && (r-cbcIVSize)%16 == 0 {
			return true
		}
	}
	return false
}

// classicKeyState is how far a classic session's key search got.
type classicKeyState uint8

const (
	keyUndecided classicKeyState = iota // no sealed record seen yet
	keyFound
	keyNone  // no key was given for this session
	keyWrong // keys were given, none opens its records
)

// classicSession follows one classic connection: the PEM key, the RSA-OAEP
// blob, then sealed records.
type classicSession struct {
	keys   *replayKeys
	conn   int
	frames [2]int
	blob   bool // the key-transport blob was seen
	cands  []keyCandidate
	rc     *classicCipher
	source string // which key rc holds
	state  classicKeyState
	raw    []byte // scratch: a decoded record
}

// keyCandidate is a key that may open a session, and where it came from.
type keyCandidate struct {
	key    []byte
	source string
}

func (s *classicSession) decode(f *replayFrame) {
	first := s.frames[f.Dir] == 0
	s.frames[f.Dir]++
	switch {
	case f.Dir == wireS2C && first && isPublicKeyPEM(f.Payload):
		s.publicKey(f)
	case f.Dir == wireC2S && first && len(f.Payload) == rsaBlobSize && !isBase64Text(f.Payload):
		s.keyTransport(f)
	default:
		raw, ok := s.decodeRecord(f.Payload)
		if !ok {
			opaqueFrame(f)
			return
		}
		s.sealed(f, raw)
	}
}

// decodeRecord decodes a sealed record's base64 into s.raw, and checks it
// holds an IV and whole blocks.
func (s *classicSession) decodeRecord(p []byte) ([]byte, bool) {
	need := base64.StdEncoding.DecodedLen(len(p))
	if cap(s.raw) < need {
		s.raw = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(s.raw[:need], p)
	if err != nil || n < cbcIVSize+16 || (n-cbcIVSize)%16 != 0 {
		return nil, false
	}
	return s.raw[:n], true
}

func (s *classicSession) note(f *replayFrame, format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf("conn %d: ", s.conn)+fmt.Sprintf(format, args...))
}

func (s *classicSession) publicKey(f *replayFrame) {
	f.Kind = "public-key"
	f.What = "server public key (PEM): readable by anyone"
	f.Preview = pemPreview(f.Payload)
	pub, err := parsePublicKeyPEM(f.Payload)
	if err != nil {
		f.Details = []string{"it does not parse: " + err.Error()}
		f.Peer = []string{"the client refuses it: " + err.Error()}
	} else {
		fp := fingerprint(pub)
		f.Meta.Fingerprint = fp
		f.Details = []string{fmt.Sprintf("RSA-%d, fingerprint %s", pub.N.BitLen(), fp)}
		f.Peer = []string{"server key " + fp}
		if s.keys.rsa != nil && !pub.Equal(&s.keys.rsa.PublicKey) {
			s.note(f, "the -rsa-key %s (%s) is not this server's key (%s): it cannot recover this session", s.keys.rsaName, s.keys.rsaFP, fp)
		}
	}
	if f.Tamper < 0 {
		return
	}
	t, ok := flipBit(f, f.Payload, frameByte)
	if !ok {
		return
	}
	tpub, err := parsePublicKeyPEM(t)
	switch {
	case err != nil:
		f.Tampered = append(f.Tampered, "the client cannot parse the key any more: "+err.Error())
	case pub != nil && tpub.Equal(pub):
		f.Tampered = append(f.Tampered, "the key still parses to the same key (the bit fell outside it)")
	default:
		f.Tampered = append(f.Tampered, "it now parses as another key, "+fingerprint(tpub)+
			": a client that pinned the real key refuses it; one that did not sends its session key to a key nobody holds")
	}
}

func (s *classicSession) keyTransport(f *replayFrame) {
	s.blob = true
	id := f.Payload[:classicKeylogID]
	f.Kind = "key-transport"
	f.What = "key-transport blob: the session key under RSA-OAEP, 256 B"
	f.Meta.SessionID = hex.EncodeToString(id)
	f.Details = []string{"session id " + f.Meta.SessionID + " (its first 8 bytes: a keylog names the session by them)"}
	f.Preview = hexPreview(f.Payload, 24)
	if k, ok := s.keys.lookup(keylogClassic, id); ok {
		s.cands = append(s.cands, keyCandidate{k, "keylog " + s.keys.keylogName})
	}
	if s.keys.rsa != nil {
		if k, err := classicUnwrapKey(s.keys.rsa, f.Payload); err == nil {
			s.cands = append(s.cands, keyCandidate{k, "recovered with " + s.keys.rsaName})
			s.note(f, "session key recovered from the RSA-OAEP blob with the server's private key %s: RSA key transport has no forward secrecy, so whoever records today and steals the key later reads everything", s.keys.rsaName)
		} else {
			s.note(f, "the -rsa-key %s does not decrypt this blob: it is not this server's key", s.keys.rsaName)
		}
	}
	if s.keys.key != nil {
		s.cands = append(s.cands, keyCandidate{s.keys.key, "-key"})
	}
	switch {
	case len(s.cands) > 0 && s.cands[0].source != "-key":
		f.Peer = []string{"session key " + hex.EncodeToString(s.cands[0].key[:8]) + "… (" + s.cands[0].source + ")"}
	case len(s.cands) > 0:
		f.Peer = []string{"session key: unknown here; -key is tried on the records"}
	default:
		f.Peer = []string{"the server decrypts the session key from it (no key for it here)"}
	}
	if f.Tamper < 0 {
		return
	}
	t, ok := flipBit(f, f.Payload, frameByte)
	if !ok {
		return
	}
	if s.keys.rsa == nil {
		f.Tampered = append(f.Tampered, "only the server's private key shows what it decrypts to (give -rsa-key)")
		return
	}
	if _, err := classicUnwrapKey(s.keys.rsa, t); err != nil {
		f.Tampered = append(f.Tampered, "RSA-OAEP rejects it: the server cannot recover a key and drops the client")
	} else {
		f.Tampered = append(f.Tampered, "RSA-OAEP still accepts it")
	}
}

func (s *classicSession) sealed(f *replayFrame, raw []byte) {
	ct := len(raw) - cbcIVSize
	f.Kind = "sealed"
	f.What = "sealed record: AES-256-CBC, base64"
	f.Meta.IV = hex.EncodeToString(raw[:cbcIVSize])
	f.Meta.CipherLen, f.Meta.TextMin, f.Meta.TextMax, f.Meta.HasRange = ct, ct-16, ct-1, true
	d := append(make([]byte, 0, 96), "IV "...)
	d = append(d, f.Meta.IV...)
	d = append(d, " · ciphertext "...)
	d = strconv.AppendInt(d, int64(ct), 10)
	d = append(d, " B → text "...)
	d = strconv.AppendInt(d, int64(ct-16), 10)
	d = append(d, "–"...)
	d = strconv.AppendInt(d, int64(ct-1), 10)
	d = append(d, " B"...)
	f.Details = []string{string(d)}
	f.Preview = truncateBytes(f.Payload, 64)
	if s.state == keyUndecided {
		s.chooseKey(f)
	}
	if s.rc != nil {
		text, err := s.rc.open(f.Payload)
		if err == nil {
			f.Text, f.HasText, f.Key = text, true, s.source
		} else {
			f.Problem = "does not decrypt with " + s.source + ": " + err.Error()
		}
	}
	if f.Tamper >= 0 {
		s.tamper(f, raw)
	}
}

// chooseKey finds the key that opens the session's first record.
func (s *classicSession) chooseKey(f *replayFrame) {
	cands := s.cands
	if !s.blob {
		// The capture began after the handshake: try every key given.
		if s.keys.key != nil {
			cands = append(cands, keyCandidate{s.keys.key, "-key"})
		}
		for i, e := range s.keys.keylog {
			if e.Label == keylogClassic && i < 1024 {
				cands = append(cands, keyCandidate{e.Secret, fmt.Sprintf("keylog %s line %d (found by trial)", s.keys.keylogName, e.Line)})
			}
		}
	}
	for _, c := range cands {
		rc, err := newClassicCipher(c.key, nil)
		if err != nil {
			continue
		}
		if _, err := rc.open(f.Payload); err == nil {
			s.rc, s.source, s.state = rc, c.source, keyFound
			return
		}
	}
	if len(cands) == 0 {
		s.state = keyNone
		if s.keys.given() {
			s.note(f, "no key fits this session: its records are shown as ciphertext")
		}
		return
	}
	s.state = keyWrong
	var names []string
	for _, c := range cands {
		names = append(names, c.source)
	}
	s.note(f, "wrong key: %s does not decrypt this session: its records are shown as ciphertext", strings.Join(names, ", "))
}

// tamper shows what flipping f.Tamper does to a CBC record: the block it
// falls in decrypts to garbage and the same bit flips in the next block's
// text (or, in the IV, in the first block), or the padding breaks.
func (s *classicSession) tamper(f *replayFrame, raw []byte) {
	t, ok := flipBit(f, raw, func(i int) string {
		if i < cbcIVSize {
			return fmt.Sprintf("byte %d of the IV", i)
		}
		return fmt.Sprintf("byte %d of ciphertext block %d", (i-cbcIVSize)%16, (i-cbcIVSize)/16+1)
	})
	if !ok {
		return
	}
	if s.rc == nil {
		f.Tampered = append(f.Tampered, "no key for this session: the effect cannot be shown")
		return
	}
	orig, err1 := s.rc.decryptBlocks(f.Payload)
	mod, err2 := s.rc.decryptBlocks([]byte(base64.StdEncoding.EncodeToString(t)))
	if err1 != nil || err2 != nil {
		f.Tampered = append(f.Tampered, "the record does not decrypt")
		return
	}
	for b := 0; b+16 <= len(orig); b += 16 {
		o, m := orig[b:b+16], mod[b:b+16]
		if bytes.Equal(o, m) {
			continue
		}
		changed, bits, at, bit := 0, 0, 0, 0
		for i := range o {
			if x := o[i] ^ m[i]; x != 0 {
				changed++
				for k := 0; k < 8; k++ {
					if x&(1<<k) != 0 {
						bits++
						at, bit = i, k
					}
				}
			}
		}
		if bits == 1 {
			f.Tampered = append(f.Tampered, fmt.Sprintf("text block %d: bit %d of byte %d flipped, %s → %s: the attacker chose this change",
				b/16+1, bit, at, byteLabel(o[at]), byteLabel(m[at])))
		} else {
			f.Tampered = append(f.Tampered, fmt.Sprintf("text block %d: garbled (%d of 16 bytes changed)", b/16+1, changed))
		}
	}
	text, ok := pkcs7Unpad(mod)
	switch {
	case !ok:
		f.Tampered = append(f.Tampered, "padding error: the receiver rejects the record (and must not say why: a distinct padding error is a padding oracle)")
	case !utf8.Valid(text):
		f.Tampered = append(f.Tampered, "the padding still checks, but the text is not UTF-8: the receiver rejects it")
	default:
		f.Tampered = append(f.Tampered, "the receiver accepts it: "+strconv.Quote(string(text))+" — CBC has no integrity, nothing detects the change")
	}
}

// flipBit returns a copy of p with f.Tamper flipped (bit 0 is the least
// significant bit of byte 0) and says where in f.Tampered; where names the
// byte. It says so and returns false when the bit is past the end.
func flipBit(f *replayFrame, p []byte, where func(byteIdx int) string) ([]byte, bool) {
	if f.Tamper >= len(p)*8 {
		f.Tampered = append(f.Tampered, fmt.Sprintf("-tamper: bit %d is past the end of this frame (%d bits)", f.Tamper, len(p)*8))
		return nil, false
	}
	t := bytes.Clone(p)
	i := f.Tamper / 8
	t[i] ^= 1 << (f.Tamper % 8)
	f.Tampered = append(f.Tampered, fmt.Sprintf("-tamper: bit %d flipped: %s, mask 0x%02x", f.Tamper, where(i), 1<<(f.Tamper%8)))
	return t, true
}

// frameByte names a byte of a frame's payload for flipBit.
func frameByte(i int) string { return fmt.Sprintf("byte %d of the frame", i) }

func byteLabel(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return fmt.Sprintf("0x%02x %q", b, rune(b))
	}
	return fmt.Sprintf("0x%02x", b)
}

func hexPreview(p []byte, n int) string {
	if len(p) <= n {
		return hex.EncodeToString(p)
	}
	return hex.EncodeToString(p[:n]) + "…"
}

func truncateBytes(p []byte, n int) string {
	if len(p) <= n {
		return string(p)
	}
	return string(p[:n]) + "…"
}

// pemPreview joins the first lines of a PEM block.
func pemPreview(p []byte) string {
	lines := strings.SplitN(string(p), "\n", 3)
	if len(lines) > 2 {
		lines = lines[:2]
	}
	return truncateRunes(strings.Join(lines, " "), 64)
}

// ---------------------------------------------------------------------------
// Modern suite replay

// modernReplaySuite decodes modern connections: five handshake messages in
// clear, then AES-256-GCM records numbered per direction. Only the
// session's own traffic secret (its MODERN keylog line) opens the records;
// the server's RSA key only signed the handshake.
type modernReplaySuite struct{}

func (modernReplaySuite) claims(dir wireDir, first []byte) bool {
	if dir == wireS2C {
		return isModernHello(first)
	}
	// A capture that missed the ServerHello, or holds it cut short.
	return modernMessageName(first) == typeClientHello.String()
}

func (modernReplaySuite) newSession(keys *replayKeys, conn int) replaySession {
	return &modernSession{keys: keys, conn: conn, transcript: sha256.New()}
}

// modernHandshakeOrder is the handshake messages of one direction, in order.
func modernHandshakeOrder(d wireDir) []msgType {
	if d == wireC2S {
		return []msgType{typeClientHello, typeClientFinished}
	}
	return []msgType{typeServerHello, typeServerVerify, typeServerFinished}
}

// modernSession follows one modern connection. Each direction is in its
// handshake until its last handshake message, then carries records whose
// sequence numbers count from 0.
type modernSession struct {
	keys       *replayKeys
	conn       int
	hs         [2]int    // handshake messages seen per direction
	seq        [2]uint64 // the next record's sequence number per direction
	serverKey  *rsa.PublicKey
	random     []byte           // the client random: the keylog's session id
	transcript hash.Hash        // SHA-256 of the ServerHello and ClientHello frames
	hellos     int              // hellos hashed into transcript
	logged     [2]*modernCipher // openers from the keylog line, not yet tried
	open       [2]*modernCipher // openers that opened the first record
	source     string
	state      classicKeyState
	rsaNoted   bool
}

func (s *modernSession) decode(f *replayFrame) {
	order := modernHandshakeOrder(f.Dir)
	if s.hs[f.Dir] < len(order) {
		name := modernMessageName(f.Payload)
		for i := s.hs[f.Dir]; i < len(order); i++ {
			if name == order[i].String() {
				s.hs[f.Dir] = i + 1
				s.handshakeMessage(f, order[i])
				return
			}
		}
		s.unexpected(f, order[s.hs[f.Dir]], name)
		return
	}
	s.record(f)
}

func (s *modernSession) note(f *replayFrame, format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf("conn %d: ", s.conn)+fmt.Sprintf(format, args...))
}

// noteRSA says once per session why -rsa-key cannot open it.
func (s *modernSession) noteRSA(f *replayFrame) {
	if s.rsaNoted || s.keys.rsa == nil {
		return
	}
	s.rsaNoted = true
	if s.serverKey != nil && !s.serverKey.Equal(&s.keys.rsa.PublicKey) {
		s.note(f, "the -rsa-key %s (%s) is not this server's key (%s); and even the server's own key cannot decrypt a modern session (forward secrecy)",
			s.keys.rsaName, s.keys.rsaFP, fingerprint(s.serverKey))
		return
	}
	s.note(f, "a modern session: the server's private key %s only signs its handshake; the session keys come from an ephemeral X25519+ML-KEM-768 exchange, so %s cannot decrypt it (forward secrecy)",
		s.keys.rsaName, s.keys.rsaName)
}

// hashHello adds a hello frame, header included, to the transcript.
func (s *modernSession) hashHello(payload []byte) {
	h := recordHeader(len(payload))
	s.transcript.Write(h[:])
	s.transcript.Write(payload)
	s.hellos++
}

func (s *modernSession) handshakeMessage(f *replayFrame, t msgType) {
	p := f.Payload
	f.Preview = hexPreview(p, 24)
	var tampered string // what the receiver does with the message once a bit is flipped
	where := frameByte
	var check func(msg []byte) bool // the check a sniffer can run too: the signature
	switch t {
	case typeServerHello:
		f.Kind = "server-hello"
		f.What = "ServerHello: ephemeral key shares and the server's RSA key, in clear"
		f.Preview = modernMagic + " " + hexPreview(p[len(modernMagic):], 20)
		s.hashHello(p)
		m, err := parseServerHello(p)
		var pub *rsa.PublicKey
		if err == nil {
			pub, err = parsePublicKeyDER(m.spki)
		}
		if err != nil {
			f.Details = []string{"it does not parse: " + err.Error()}
			f.Peer = []string{"the client refuses it: " + err.Error()}
		} else {
			s.serverKey = pub
			fp := fingerprint(pub)
			f.Meta.Fingerprint = fp
			f.Details = []string{
				fmt.Sprintf("RSA-%d, fingerprint %s: readable by anyone; this key only signs, it encrypts nothing", pub.N.BitLen(), fp),
				fmt.Sprintf("server random %s… · X25519 share %d B · ML-KEM-768 encapsulation key %d B: fresh for this session", hex.EncodeToString(m.random[:8]), len(m.x25519), len(m.mlkemEK)),
			}
			f.Peer = []string{"server key " + fp + ": the client checks it against its pin, -fingerprint or -insecure"}
		}
		s.noteRSA(f)
		where = serverHelloField
		tampered = "the transcript changes, so the server's signature over it no longer verifies: the client closes before it sends anything"
	case typeClientHello:
		f.Kind = "client-hello"
		f.What = "ClientHello: the client's ephemeral key shares, in clear"
		s.hashHello(p)
		s.random, _ = modernClientRandom(p)
		f.Meta.SessionID = hex.EncodeToString(s.random)
		f.Details = []string{
			"client random " + f.Meta.SessionID + " (the session id of its MODERN keylog line)",
			fmt.Sprintf("X25519 share %d B · ML-KEM-768 ciphertext %d B: only the server's ephemeral ML-KEM key opens it", x25519ShareLen, mlkemCTLen),
		}
		f.Peer = []string{"both sides derive the session keys from the key shares (no key for it here)"}
		if secret, ok := s.keys.lookup(modernKeylogLabel, s.random); ok {
			c2s, s2c, err := newModernReplayOpeners(secret)
			if err != nil {
				s.note(f, "the keylog %s line for this session does not fit: %v", s.keys.keylogName, err)
			} else {
				s.logged[wireC2S], _ = c2s.(*modernCipher)
				s.logged[wireS2C], _ = s2c.(*modernCipher)
				f.Peer = []string{"traffic secret " + hex.EncodeToString(secret[:8]) + "… (keylog " + s.keys.keylogName + ")"}
			}
		}
		where = clientHelloField
		tampered = "the server derives other keys from it, so the client's Finished no longer verifies: the server closes before the username"
	case typeServerVerify:
		f.Kind = "server-verify"
		f.What = fmt.Sprintf("ServerVerify: RSA-PSS-SHA256 signature over the transcript, %d B", len(p)-1)
		f.Details = []string{"anyone can check it with the key in the ServerHello: it proves who the server is and hides nothing"}
		f.Peer = []string{"the client checks it with the server's key: only the holder of the private key could make it"}
		if s.serverKey != nil && s.hellos == 2 {
			content := signedContent(s.transcript.Sum(nil))
			check = func(msg []byte) bool { return modernVerify(s.serverKey, content, msg[1:]) == nil }
			if check(p) {
				f.Details = append(f.Details, "checked here: valid for the ServerHello's key and these two hellos")
			} else {
				f.Details = append(f.Details, "checked here: it does NOT verify: the client refuses the server")
			}
		}
		where = typedField("the signature", rsaSigLen)
		tampered = "the signature no longer verifies: the client closes before it sends anything"
	case typeServerFinished:
		f.Kind = "server-finished"
		f.What = fmt.Sprintf("ServerFinished: HMAC-SHA256 over the transcript, %d B", len(p)-1)
		f.Details = []string{"keyed by a secret from the key exchange: a sniffer can neither check nor forge it"}
		f.Peer = []string{"the client checks it: the server derived the same keys from the same transcript"}
		where = typedField("the MAC", finishedLen)
		tampered = "the MAC no longer matches: the client closes before its Finished"
	case typeClientFinished:
		f.Kind = "client-finished"
		f.What = fmt.Sprintf("ClientFinished: HMAC-SHA256 over the transcript, %d B", len(p)-1)
		f.Details = []string{"keyed by a secret from the key exchange: a sniffer can neither check nor forge it"}
		f.Peer = []string{"the server checks it: the client derived the same keys from the same transcript; records follow"}
		where = typedField("the MAC", finishedLen)
		tampered = "the MAC no longer matches: the server closes, and the client's username is never answered"
	}
	if f.Tamper < 0 {
		return
	}
	tp, ok := flipBit(f, p, where)
	switch {
	case !ok:
	case t == typeServerHello && f.Tamper < 8*len(modernMagic):
		f.Tampered = append(f.Tampered, "the magic no longer names the modern suite: the client does not recognise the server's first frame and closes")
	case t == typeServerHello && f.Tamper < 8*(serverHelloFixedLen-2):
		f.Tampered = append(f.Tampered, tampered)
	case t == typeServerHello && f.Tamper < 8*serverHelloFixedLen:
		f.Tampered = append(f.Tampered, "the key length no longer matches the message: the client cannot parse the hello and closes")
	case t == typeServerHello:
		f.Tampered = append(f.Tampered, "the RSA key is another one now (or none): a client that pinned the real key refuses it, and the signature no longer verifies either way; the client closes before it sends anything")
	case t != typeServerHello && f.Tamper < 8:
		receiver := "server"
		if f.Dir == wireS2C {
			receiver = "client"
		}
		f.Tampered = append(f.Tampered, fmt.Sprintf("it is no longer a %v: the %s refuses an unexpected message and closes", t, receiver))
	case check != nil && check(tp):
		f.Tampered = append(f.Tampered, "the signature still verifies")
	case check != nil:
		f.Tampered = append(f.Tampered, "the signature no longer verifies (checked here): the client closes before it sends anything")
	default:
		f.Tampered = append(f.Tampered, tampered)
	}
}

// typedField names the bytes of a message that is a type byte and one field.
func typedField(name string, n int) func(int) string {
	return func(i int) string {
		return modernField(i, []modernFieldSpan{{"the type", 1}, {name, n}})
	}
}

// serverHelloField names the field a ServerHello byte belongs to.
func serverHelloField(i int) string {
	return modernField(i, []modernFieldSpan{
		{"the magic", len(modernMagic)},
		{"the server random", modernRandomLen},
		{"the X25519 share", x25519ShareLen},
		{"the ML-KEM-768 encapsulation key", mlkemEKLen},
		{"the RSA key length", 2},
		{"the RSA public key", maxSPKILen},
	})
}

// clientHelloField names the field a ClientHello byte belongs to.
func clientHelloField(i int) string {
	return modernField(i, []modernFieldSpan{
		{"the type", 1},
		{"the client random (the keylog's session id)", modernRandomLen},
		{"the X25519 share", x25519ShareLen},
		{"the ML-KEM-768 ciphertext", mlkemCTLen},
	})
}

type modernFieldSpan struct {
	name string
	n    int
}

func modernField(i int, spans []modernFieldSpan) string {
	at := i
	for _, sp := range spans {
		if at < sp.n {
			return fmt.Sprintf("byte %d of the frame, byte %d of %s", i, at, sp.name)
		}
		at -= sp.n
	}
	return frameByte(i)
}

// unexpected shows a frame that arrives where a handshake message should.
func (s *modernSession) unexpected(f *replayFrame, want msgType, got string) {
	f.Kind = "handshake"
	f.What = "unexpected handshake frame: " + want.String() + " should come here"
	if got != "" {
		f.Details = []string{"it reads as a " + got}
	}
	f.Preview = hexPreview(f.Payload, 24)
	err := unexpectedMessageError(want, modernFrameType(f.Payload))
	if modernFrameType(f.Payload) == want {
		err = decodeError(want, fmt.Sprintf("%d bytes", len(f.Payload)))
	}
	f.Peer = []string{"the peer refuses it and closes: " + err.Error()}
	if f.Tamper >= 0 {
		if _, ok := flipBit(f, f.Payload, frameByte); ok {
			f.Tampered = append(f.Tampered, "the frame is refused either way")
		}
	}
}

// modernFrameType is the type byte of a handshake frame, for messages.
func modernFrameType(p []byte) msgType {
	switch {
	case isModernHello(p):
		return typeServerHello
	case len(p) == 0:
		return 0
	}
	return msgType(p[0])
}

func (s *modernSession) record(f *replayFrame) {
	seq := s.seq[f.Dir]
	s.seq[f.Dir]++
	n := len(f.Payload)
	f.Kind = "sealed"
	f.What = "sealed record: AES-256-GCM"
	f.Preview = hexPreview(f.Payload, 32)
	d := append(make([]byte, 0, 112), "seq "...)
	d = strconv.AppendUint(d, seq, 10)
	d = append(d, ' ')
	d = append(d, f.Dir.String()...)
	if n < gcmTagLen {
		d = append(d, " · "...)
		d = strconv.AppendInt(d, int64(n), 10)
		d = append(d, " B: shorter than the 16-byte tag, the receiver rejects it"...)
	} else {
		ct := n - gcmTagLen
		f.Meta.CipherLen, f.Meta.TextMin, f.Meta.TextMax, f.Meta.HasRange = ct, ct, ct, true
		d = append(d, " · ciphertext "...)
		d = strconv.AppendInt(d, int64(ct), 10)
		d = append(d, " B + tag 16 B → text exactly "...)
		d = strconv.AppendInt(d, int64(ct), 10)
		d = append(d, " B (GCM does not pad)"...)
	}
	f.Details = []string{string(d)}
	if s.state == keyUndecided {
		s.chooseKey(f, seq)
	}
	if oc := s.open[f.Dir]; oc != nil {
		text, err := oc.open(f.Payload)
		if err == nil {
			f.Text, f.HasText, f.Key = text, true, s.source
		} else {
			f.Problem = "does not decrypt with " + s.source + ": " + err.Error()
		}
	}
	if f.Tamper >= 0 {
		s.tamper(f, seq)
	}
}

// chooseKey decides, at the session's first record, whether its keylog
// line opens it, and says once why a session stays ciphertext.
func (s *modernSession) chooseKey(f *replayFrame, seq uint64) {
	s.noteRSA(f)
	if s.keys.key != nil {
		s.note(f, "-key is a classic session key: it does not fit a modern session, whose records open only with its MODERN keylog line")
	}
	if oc := s.logged[f.Dir]; oc != nil {
		if _, err := oc.openRecord(seq, f.Payload); err == nil {
			s.open, s.source, s.state = s.logged, "keylog "+s.keys.keylogName, keyFound
			return
		}
		s.state = keyWrong
		s.note(f, "wrong key: the MODERN line of keylog %s for this session does not decrypt it: its records are shown as ciphertext", s.keys.keylogName)
		return
	}
	s.state = keyNone
	if s.keys.keylogName == "" {
		return
	}
	if s.random == nil {
		s.note(f, "no key fits this session: its ClientHello, whose client random names it in a keylog, is not in the capture: its records are shown as ciphertext")
		return
	}
	s.note(f, "no key fits this session: keylog %s has no MODERN line for client random %s…: its records are shown as ciphertext", s.keys.keylogName, hex.EncodeToString(s.random[:8]))
}

// tamper shows GCM rejecting the record with f.Tamper flipped. It opens
// the changed copy as the frame's own sequence number without touching the
// opener, so the rest of the replay goes on with the untouched frame.
func (s *modernSession) tamper(f *replayFrame, seq uint64) {
	ct := len(f.Payload) - gcmTagLen
	t, ok := flipBit(f, f.Payload, func(i int) string {
		if i < ct {
			return fmt.Sprintf("byte %d of the ciphertext", i)
		}
		return fmt.Sprintf("byte %d of the GCM tag", i-ct)
	})
	if !ok {
		return
	}
	oc := s.open[f.Dir]
	if oc == nil || !f.HasText {
		f.Tampered = append(f.Tampered, "no key for this session: the receiver's check cannot be run here (give -keylog); GCM rejects any flipped bit")
		return
	}
	if _, err := oc.openRecord(seq, t); err != nil {
		f.Tampered = append(f.Tampered,
			"authentication failed: "+err.Error()+" — nothing from this frame reaches the user",
			"the receiver closes the connection; this replay goes on with the untouched frame")
		return
	}
	f.Tampered = append(f.Tampered, "GCM still accepts it")
}

// ---------------------------------------------------------------------------
// Replay engine

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
}

// replayStats count what was shown.
type replayStats struct {
	conns, frames, decrypted, undecrypted int
	bytes                                 int64
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
	stats      replayStats
	tamperConn int // the connection of the tampered frame, once seen
}

// replayConn is one connection being replayed.
type replayConn struct {
	rp             *replayer
	id             int
	client, server string
	opened         float64
	midStream      bool // no open record: the capture began during it
	dirs           [2]replayDir
	sess           replaySession
	frames         [2]int
	bytes          [2]int64
	shown          bool
	now            float64 // time of the event being replayed
}

// replayDir is one direction of a connection; it is its reassembler's sink.
type replayDir struct {
	c *replayConn
	d wireDir
	r frameReassembler
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
	why := fmt.Sprintf("the stream ends mid-header (%d of %d header bytes)", len(got), headerLen)
	if want >= 0 {
		d.c.bytes[d.d] += headerLen
		why = fmt.Sprintf("the stream ends mid-frame: the header says %d B, %d B arrived", want, len(got))
	}
	d.c.rp.frame(d.c, d.d, got, why)
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

// replayCapture replays the capture in r to out. It replays as far as the
// capture goes; a bad line stops it with a *lineError naming the line.
func replayCapture(r io.Reader, opts *replayOptions, out replayOutput) error {
	cr, err := newCaptureReader(r)
	if err != nil {
		return err
	}
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
	out.begin(cr.Header, cr.Started)
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
			err = fmt.Errorf("-tamper: there is no frame %d (the capture has %d)", opts.tamper.frame, rp.frames)
		case opts.conn != 0 && rp.tamperConn != opts.conn:
			err = fmt.Errorf("-tamper: frame %d is on connection %d, not on -conn %d", opts.tamper.frame, rp.tamperConn, opts.conn)
		}
	}
	if err == nil && opts.conn != 0 && rp.stats.conns == 0 {
		err = fmt.Errorf("-conn: the capture has no connection %d", opts.conn)
	}
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	return err
}

// event replays one record; it returns what is wrong with it, or "".
func (rp *replayer) event(ev *captureEvent) string {
	c := rp.conns[ev.Conn]
	switch ev.Kind {
	case capOpen:
		if c != nil || rp.closed[ev.Conn] {
			return fmt.Sprintf("connection %d opened twice", ev.Conn)
		}
		c = rp.newConn(ev.Conn, ev.T)
		c.client, c.server = ev.Client, ev.Server
		if c.shown {
			rp.pace(ev.T)
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
		rp.pace(c.now)
		rp.out.close(c, c.now, closed)
		rp.stats.bytes += c.bytes[0] + c.bytes[1]
	}
	delete(rp.conns, c.id)
	rp.closed[c.id] = true
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

// pace sleeps for the recorded gap before t, scaled by -speed.
func (rp *replayer) pace(t float64) {
	if rp.opts.speed <= 0 {
		return
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
		f.Kind = "partial"
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
					c.sess = s.newSession(rp.opts.keys, c.id)
					break
				}
			}
		}
		c.sess.decode(f)
	}
	if !c.shown {
		return
	}
	rp.stats.frames++
	switch {
	case f.HasText:
		rp.stats.decrypted++
	case f.Kind == "sealed":
		rp.stats.undecrypted++
	}
	rp.pace(f.T)
	rp.out.frame(f)
}

// ---------------------------------------------------------------------------
// Views

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
	o.put(stPlain, "keys: "+describeKeys(o.opts.keys))
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

// describeKeys says which keys replay has, for the banner.
func describeKeys(k *replayKeys) string {
	if !k.given() {
		return "none: this is what a sniffer sees"
	}
	var parts []string
	if k.keylogName != "" {
		parts = append(parts, fmt.Sprintf("keylog %s (%d sessions)", k.keylogName, len(k.keylog)))
	}
	if k.rsa != nil {
		parts = append(parts, fmt.Sprintf("server private key %s (%s)", k.rsaName, k.rsaFP))
	}
	if k.key != nil {
		parts = append(parts, "-key")
	}
	return strings.Join(parts, ", ")
}

func (o *textOutput) open(c *replayConn) {
	if c.midStream {
		o.put(stHead, fmt.Sprintf("── conn %d at %.3fs: no open record, the capture began during this connection", c.id, c.opened))
	} else {
		o.put(stHead, fmt.Sprintf("── conn %d open at %.3fs: client %s → server %s", c.id, c.opened, orUnknown(c.client), orUnknown(c.server)))
	}
	o.w.WriteByte('\n')
}

func (o *textOutput) close(c *replayConn, t float64, closed bool) {
	how := fmt.Sprintf("closed at %.3fs after %.3fs", t, t-c.opened)
	if !closed {
		how = "still open when the capture ends"
	}
	o.put(stHead, fmt.Sprintf("── conn %d %s: client → server %d frames, %d B · server → client %d frames, %d B",
		c.id, how, c.frames[wireC2S], c.bytes[wireC2S], c.frames[wireS2C], c.bytes[wireS2C]))
	o.w.WriteByte('\n')
}

func (o *textOutput) note(c *replayConn, text string) {
	o.put(stNote, "   note: "+text)
}

func (o *textOutput) end(s replayStats) {
	line := fmt.Sprintf("── %d connections, %d frames, %d B on the wire", s.conns, s.frames, s.bytes)
	if o.opts.keys.given() {
		line += fmt.Sprintf(": %d records decrypted, %d shown as ciphertext", s.decrypted, s.undecrypted)
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
	case f.Kind == "sealed":
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

// printable escapes what must not reach a terminal from a capture: control
// characters (isControl) and invalid UTF-8 become \x.. or \u.... escapes.
func printable(s string) string {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return escapeControls(s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || isControl(r) {
			return escapeControls(s)
		}
		i += size
	}
	return s
}

func escapeControls(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// jsonOutput prints one JSON object per frame.
type jsonOutput struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func newJSONOutput(w io.Writer) *jsonOutput {
	o := &jsonOutput{w: bufio.NewWriterSize(w, 64<<10)}
	o.enc = json.NewEncoder(o.w)
	o.enc.SetEscapeHTML(false)
	return o
}

// jsonFrame is one line of -json output.
type jsonFrame struct {
	Conn        int      `json:"conn"`
	Index       int      `json:"index,omitempty"`
	T           float64  `json:"t"`
	Dir         string   `json:"dir"`
	Kind        string   `json:"kind"`
	Length      int      `json:"length"`
	Ciphertext  string   `json:"ciphertext,omitempty"` // base64 of the payload exactly as on the wire
	IV          string   `json:"iv,omitempty"`
	TextMin     *int     `json:"text_min,omitempty"`
	TextMax     *int     `json:"text_max,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	SessionID   string   `json:"session_id,omitempty"`
	Plaintext   *string  `json:"plaintext,omitempty"`
	Key         string   `json:"key,omitempty"`
	Error       string   `json:"error,omitempty"`
	Tamper      []string `json:"tamper,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

func (o *jsonOutput) begin(captureHeader, time.Time)   {}
func (o *jsonOutput) open(*replayConn)                 {}
func (o *jsonOutput) close(*replayConn, float64, bool) {}
func (o *jsonOutput) end(replayStats)                  {}
func (o *jsonOutput) flush() error                     { return o.w.Flush() }

func (o *jsonOutput) note(c *replayConn, text string) {
	o.enc.Encode(jsonFrame{Conn: c.id, T: roundMicro(c.now), Kind: "note", Notes: []string{text}})
}

func (o *jsonOutput) frame(f *replayFrame) {
	j := jsonFrame{
		Conn:        f.Conn,
		Index:       f.Num,
		T:           roundMicro(f.T),
		Dir:         f.Dir.String(),
		Kind:        f.Kind,
		Length:      len(f.Payload),
		Ciphertext:  base64.StdEncoding.EncodeToString(f.Payload),
		IV:          f.Meta.IV,
		Fingerprint: f.Meta.Fingerprint,
		SessionID:   f.Meta.SessionID,
		Key:         f.Key,
		Error:       f.Problem,
		Tamper:      f.Tampered,
		Notes:       f.Notes,
	}
	if f.Meta.HasRange {
		j.TextMin, j.TextMax = &f.Meta.TextMin, &f.Meta.TextMax
	}
	if f.HasText {
		s := string(f.Text)
		j.Plaintext = &s
	}
	o.enc.Encode(j)
}

func roundMicro(t float64) float64 { return math.Round(t*1e6) / 1e6 }

// ---------------------------------------------------------------------------
// pcap export

// pcapMSS is the largest TCP payload per synthesized segment (Ethernet MTU).
const pcapMSS = 1460

// pcapExporter writes a capture's connections as IPv4 TCP packets with a
// synthesized handshake, consistent sequence numbers and a FIN exchange, so
// Wireshark's "Follow TCP Stream" shows the recorded bytes.
type pcapExporter struct {
	w        *pcapgo.Writer
	start    time.Time
	addr     string // the capture's address, for connections without one
	only     int
	conns    map[int]*pcapConn
	buf      gopacket.SerializeBuffer
	ipID     uint16
	Conns    int
	Packets  int
	Segments int
}

type pcapConn struct {
	client, server netip.AddrPort
	cSeq, sSeq     uint32
}

// exportPcap converts the capture in r into a pcap written to w. only, if
// not 0, keeps one connection. A bad capture line stops it with a
// *lineError; what came before is written.
func exportPcap(r io.Reader, w io.Writer, only int) (*pcapExporter, error) {
	cr, err := newCaptureReader(r)
	if err != nil {
		return nil, err
	}
	p := &pcapExporter{
		w:     pcapgo.NewWriter(w),
		start: cr.Started,
		addr:  cr.Header.Addr,
		only:  only,
		conns: make(map[int]*pcapConn),
		buf:   gopacket.NewSerializeBuffer(),
	}
	if p.start.IsZero() {
		p.start = time.Unix(0, 0)
	}
	if err := p.w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		return p, err
	}
	var ev captureEvent
	for {
		err := cr.next(&ev)
		if err == io.EOF {
			return p, nil
		}
		if err != nil {
			return p, err
		}
		if only != 0 && ev.Conn != only {
			continue
		}
		if err := p.event(&ev); err != nil {
			return p, err
		}
	}
}

func (p *pcapExporter) event(ev *captureEvent) error {
	c := p.conns[ev.Conn]
	if c == nil && ev.Kind != capClose {
		// A connection opens with a three-way handshake, also when the
		// capture began during it.
		c = &pcapConn{cSeq: 0x10000000 + uint32(ev.Conn)*0x1000, sSeq: 0x50000000 + uint32(ev.Conn)*0x1000}
		c.client, c.server = p.addrs(ev.Conn, ev.Client, ev.Server)
		p.conns[ev.Conn] = c
		p.Conns++
		if err := p.packet(ev.T, c, true, pcapSYN, nil); err != nil {
			return err
		}
		c.cSeq++
		if err := p.packet(ev.T, c, false, pcapSYN|pcapACK, nil); err != nil {
			return err
		}
		c.sSeq++
		if err := p.packet(ev.T, c, true, pcapACK, nil); err != nil {
			return err
		}
	}
	switch ev.Kind {
	case capData:
		fromClient := ev.Dir == wireC2S
		for data := ev.Data; len(data) > 0; {
			n := min(len(data), pcapMSS)
			if err := p.packet(ev.T, c, fromClient, pcapACK|pcapPSH, data[:n]); err != nil {
				return err
			}
			p.Segments++
			if fromClient {
				c.cSeq += uint32(n)
			} else {
				c.sSeq += uint32(n)
			}
			data = data[n:]
		}
	case capClose:
		if c == nil {
			return nil
		}
		if err := p.packet(ev.T, c, true, pcapFIN|pcapACK, nil); err != nil {
			return err
		}
		c.cSeq++
		if err := p.packet(ev.T, c, false, pcapFIN|pcapACK, nil); err != nil {
			return err
		}
		c.sSeq++
		if err := p.packet(ev.T, c, true, pcapACK, nil); err != nil {
			return err
		}
		delete(p.conns, ev.Conn)
	}
	return nil
}

// addrs picks IPv4 endpoints for a connection: the recorded ones when they
// are IPv4, else 10.0.0.2 (client) and 10.0.0.1 (server), keeping the ports.
func (p *pcapExporter) addrs(conn int, client, server string) (netip.AddrPort, netip.AddrPort) {
	pick := func(s, fallback string, ip netip.Addr, port uint16) netip.AddrPort {
		for _, cand := range []string{s, fallback} {
			if ap, err := netip.ParseAddrPort(cand); err == nil {
				if ap.Port() != 0 {
					port = ap.Port()
				}
				if a := ap.Addr().Unmap(); a.Is4() {
					ip = a
				}
				break
			}
		}
		return netip.AddrPortFrom(ip, port)
	}
	c := pick(client, "", netip.AddrFrom4([4]byte{10, 0, 0, 2}), uint16(40000+conn%20000))
	s := pick(server, p.addr, netip.AddrFrom4([4]byte{10, 0, 0, 1}), 5174)
	return c, s
}

// TCP flags for packet.
const (
	pcapSYN = 1 << iota
	pcapACK
	pcapPSH
	pcapFIN
)

func (p *pcapExporter) packet(t float64, c *pcapConn, fromClient bool, flags int, payload []byte) error {
	src, dst, seq, ack := c.client, c.server, c.cSeq, c.sSeq
	if !fromClient {
		src, dst, seq, ack = c.server, c.client, c.sSeq, c.cSeq
	}
	p.ipID++
	ip := &layers.IPv4{
		Version: 4, IHL: 5, TTL: 64, Id: p.ipID, Flags: layers.IPv4DontFragment,
		Protocol: layers.IPProtocolTCP,
		SrcIP:    src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice(),
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Window: 65535,
		SYN: flags&pcapSYN != 0, ACK: flags&pcapACK != 0, PSH: flags&pcapPSH != 0, FIN: flags&pcapFIN != 0,
	}
	if tcp.ACK {
		tcp.Ack = ack
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return err
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(p.buf, opts, ip, tcp, gopacket.Payload(payload)); err != nil {
		return err
	}
	b := p.buf.Bytes()
	ts := p.start.Add(time.Duration(t * float64(time.Second)))
	p.Packets++
	return p.w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b)
}

// ---------------------------------------------------------------------------
// Tap

// tap relays every connection accepted on ln to upstream, forwarding bytes
// unchanged both ways and recording them into rec (which may be nil). It
// returns when ctx is done, after every relay has ended. report receives a
// line per connection event; it may be called from several goroutines.
func tap(ctx context.Context, ln net.Listener, upstream string, rec *capture, report func(string)) error {
	return acceptEach(ctx, ln, func(ctx context.Context, down net.Conn) {
		tapRelay(ctx, down, upstream, rec, report)
	})
}

// tapRelay relays one client connection until both directions end.
func tapRelay(ctx context.Context, down net.Conn, upstream string, rec *capture, report func(string)) {
	dialer := net.Dialer{Timeout: 10 * time.Second}
	up, err := dialer.DialContext(ctx, "tcp", upstream)
	if err != nil {
		report(fmt.Sprintf("%s: upstream %s unreachable: %v", down.RemoteAddr(), upstream, err))
		down.Close()
		return
	}
	cc := rec.open(addrString(down.RemoteAddr()), addrString(up.RemoteAddr()))
	name := down.RemoteAddr().String()
	if cc != nil {
		name = fmt.Sprintf("conn %d (%s)", cc.id, down.RemoteAddr())
	}
	report(name + ": relaying to " + upstream)
	stop := context.AfterFunc(ctx, func() {
		down.Close()
		up.Close()
	})
	var wg sync.WaitGroup
	var sent [2]int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		sent[wireC2S] = tapPipe(up, down, cc, wireC2S)
	}()
	go func() {
		defer wg.Done()
		sent[wireS2C] = tapPipe(down, up, cc, wireS2C)
	}()
	wg.Wait()
	stop()
	down.Close()
	up.Close()
	cc.close()
	report(fmt.Sprintf("%s: closed (client → server %d B, server → client %d B)", name, sent[wireC2S], sent[wireS2C]))
}

// tapPipe copies src to dst, recording each chunk before forwarding it.
// At EOF it half-closes dst so the other side sees the end; on an error it
// closes both, which ends the other direction too.
func tapPipe(dst, src net.Conn, cc *capConn, dir wireDir) int64 {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			cc.data(dir, buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				dst.Close()
				return total
			}
			total += int64(n)
		}
		if err == io.EOF {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return total
			}
			dst.Close()
			return total
		}
		if err != nil {
			src.Close()
			dst.Close()
			return total
		}
	}
}

// ---------------------------------------------------------------------------
// Command line

// runTap is "encchat tap".
func runTap(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	listen := fs.String("listen", "", "`address` the clients connect to")
	upstream := fs.String("upstream", "", "`address` of the real server")
	record := fs.String("record", "", "capture `file` to write")
	mitm := fs.Bool("mitm", false, "be an active attacker: complete each handshake with the tap's own key")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"-listen", *listen}, {"-upstream", *upstream}, {"-record", *record}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		errorf(stderr, "tap needs %s", strings.Join(missing, ", "))
		hintf(stderr, "encchat tap -listen 127.0.0.1:6000 -upstream 127.0.0.1:5174 -record chat.jsonl")
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	var mitmKey *rsa.PrivateKey
	if *mitm {
		// The attacker's key: fresh each run, like the seed's server.
		if mitmKey, err = rsa.GenerateKey(crand.Reader, rsaBits); err != nil {
			ln.Close()
			errorf(stderr, "tap -mitm: %v", err)
			return 1
		}
	}
	rec, err := openCapture(*record, "tap", *upstream)
	if err != nil {
		ln.Close()
		errorf(stderr, "%v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex
	report := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "[%s] %s\n", time.Now().Format("15:04:05"), printable(s))
	}
	var tapErr error
	if *mitm {
		fmt.Fprintf(stdout, "encchat tap -mitm: an active attacker between clients on %s and %s, recorded to %s (Ctrl-C stops)\n", ln.Addr(), *upstream, *record)
		tapErr = runMITMTap(ctx, ln, *upstream, mitmKey, rec, report)
	} else {
		fmt.Fprintf(stdout, "encchat tap: clients connect to %s, relayed to %s, recorded to %s (Ctrl-C stops)\n", ln.Addr(), *upstream, *record)
		tapErr = tap(ctx, ln, *upstream, rec, report)
	}
	recErr := rec.Close()
	code := 0
	if tapErr != nil {
		errorf(stderr, "%v", tapErr)
		code = 1
	}
	if recErr != nil {
		errorf(stderr, "recording %s: %v", *record, recErr)
		code = 1
	} else {
		fmt.Fprintf(stdout, "encchat tap: capture written to %s; replay it with: encchat replay %s\n", *record, *record)
	}
	return code
}

// runReplay is "encchat replay".
func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	keylogPath := fs.String("keylog", "", "decrypt with the session keys in this key log `file`")
	rsaPath := fs.String("rsa-key", "", "recover classic session keys from the recorded RSA-OAEP blobs with this server private key `file`")
	keyText := fs.String("key", "", "one classic session `key`: 32 bytes, hex or base64")
	view := fs.String("view", "", "`view`: sniffer, peer or both (default: both with a key, else sniffer)")
	conn := fs.Int("conn", 0, "show only connection `N`")
	speed := fs.Float64("speed", 0, "play with the recorded timing scaled by `X` (default: instant)")
	tamperText := fs.String("tamper", "", "flip bit BIT of frame FRAME before decrypting (`FRAME:BIT`; bit 0 is the low bit of the first byte; classic records count from the IV, modern records from the first ciphertext byte)")
	pcapPath := fs.String("pcap", "", "write the TCP connections to a pcap `file` for Wireshark or tshark, instead of replaying")
	jsonOut := fs.Bool("json", false, "print one JSON object per frame")
	htmlPath := fs.String("html", "", "write a lesson page to `file`")

	// Flags may follow the capture name too.
	var names []string
	rest := args
	for {
		if code := parseFlags(fs, rest, stdout, stderr); code >= 0 {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	switch {
	case len(names) == 0:
		errorf(stderr, "replay needs a capture file")
		hintf(stderr, "encchat replay [-keylog FILE] [-view sniffer|peer|both] CAPTURE")
		return 2
	case len(names) > 1:
		errorf(stderr, "replay: unexpected argument %q", names[1])
		return 2
	}
	if *htmlPath != "" {
		var clash []string
		for _, n := range []string{"json", "pcap", "speed"} {
			if set[n] {
				clash = append(clash, "-"+n)
			}
		}
		if len(clash) > 0 {
			errorf(stderr, "replay: -html writes a page; it cannot be used with %s", strings.Join(clash, ", "))
			return 2
		}
	}
	opts := &replayOptions{name: filepath.Base(names[0]), view: *view, json: *jsonOut, conn: *conn, speed: *speed}
	if opts.view != "" && opts.view != "sniffer" && opts.view != "peer" && opts.view != "both" {
		errorf(stderr, "replay: -view must be sniffer, peer or both, not %q", opts.view)
		return 2
	}
	if *conn < 0 {
		errorf(stderr, "replay: -conn must be a connection number (1, 2, …)")
		return 2
	}
	if *speed < 0 || math.IsNaN(*speed) || math.IsInf(*speed, 0) {
		errorf(stderr, "replay: -speed must be a positive factor")
		return 2
	}
	if *tamperText != "" {
		t, err := parseTamper(*tamperText)
		if err != nil {
			errorf(stderr, "replay: -tamper %v", err)
			return 2
		}
		opts.tamper = t
	}
	if *jsonOut && set["view"] {
		errorf(stderr, "replay: -json and -view cannot be used together")
		return 2
	}
	if *pcapPath != "" {
		var clash []string
		for _, n := range []string{"json", "view", "speed", "tamper", "keylog", "rsa-key", "key"} {
			if set[n] {
				clash = append(clash, "-"+n)
			}
		}
		if len(clash) > 0 {
			errorf(stderr, "replay: -pcap exports the wire bytes only; it cannot be used with %s", strings.Join(clash, ", "))
			return 2
		}
		return replayToPcap(names[0], *pcapPath, *conn, stdout, stderr)
	}

	keys := &replayKeys{}
	if *keyText != "" {
		k, err := parseSessionKey(*keyText)
		if err != nil {
			errorf(stderr, "replay: -key %v", err)
			return 2
		}
		keys.key = k
	}
	if *keylogPath != "" {
		f, err := os.Open(*keylogPath)
		if err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
		entries, err := parseKeylog(f)
		f.Close()
		var le *lineError
		if errors.As(err, &le) {
			errorf(stderr, "%s", le.in(*keylogPath))
			return 1
		} else if err != nil {
			errorf(stderr, "%s: %v", *keylogPath, err)
			return 1
		}
		keys.keylog, keys.keylogName = entries, filepath.Base(*keylogPath)
	}
	if *rsaPath != "" {
		data, err := os.ReadFile(*rsaPath)
		if err != nil {
			errorf(stderr, "%v", err)
			return 1
		}
		priv, err := parsePrivateKeyPEM(data)
		if err != nil {
			errorf(stderr, "%s: %v", *rsaPath, err)
			return 1
		}
		keys.rsa, keys.rsaName, keys.rsaFP = priv, filepath.Base(*rsaPath), fingerprint(&priv.PublicKey)
	}
	opts.keys = keys
	if opts.view == "" {
		opts.view = "sniffer"
		if keys.given() {
			opts.view = "both"
		}
	}
	opts.width, opts.color = terminalLayout(stdout)
	if *htmlPath != "" {
		return replayToHTML(names[0], *htmlPath, opts, stdout, stderr)
	}

	f, err := os.Open(names[0])
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	defer f.Close()
	var out replayOutput
	if opts.json {
		out = newJSONOutput(stdout)
	} else {
		out = newTextOutput(stdout, opts)
	}
	if err := replayCapture(f, opts, out); err != nil {
		var le *lineError
		if errors.As(err, &le) {
			errorf(stderr, "%s", le.in(names[0]))
			if le.Line > 1 {
				hintf(stderr, "everything before that line was replayed")
			}
		} else {
			errorf(stderr, "%v", err)
		}
		return 1
	}
	return 0
}

// replayToPcap is replay -pcap.
func replayToPcap(capturePath, out string, conn int, stdout, stderr io.Writer) int {
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
	bw := bufio.NewWriterSize(f, 64<<10)
	p, err := exportPcap(in, bw, conn)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var le *lineError
	switch {
	case errors.As(err, &le):
		errorf(stderr, "%s", le.in(capturePath))
		if p != nil {
			hintf(stderr, "%s holds the %d connections before that line", out, p.Conns)
		}
		return 1
	case err != nil:
		errorf(stderr, "%v", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: %d connections, %d packets (%d data segments); open it in Wireshark, or: tshark -r %s -q -z follow,tcp,ascii,0\n",
		out, p.Conns, p.Packets, p.Segments, out)
	return 0
}

// parseTamper parses FRAME:BIT.
func parseTamper(s string) (tamperSpec, error) {
	fr, bit, ok := strings.Cut(s, ":")
	f, err1 := strconv.Atoi(fr)
	b, err2 := strconv.Atoi(bit)
	if !ok || err1 != nil || err2 != nil || f < 1 || b < 0 {
		return tamperSpec{}, fmt.Errorf("wants FRAME:BIT (a frame number from 1, a bit number from 0), not %q", s)
	}
	return tamperSpec{frame: f, bit: b, set: true}, nil
}

// parseSessionKey reads a 32-byte classic session key in hex or base64.
func parseSessionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if k, err := hex.DecodeString(s); err == nil && len(k) == aesKeySize {
		return k, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == aesKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("must be %d bytes in hex (64 digits) or base64 (44 characters)", aesKeySize)
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
