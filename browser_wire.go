// The browser client's wire tap: the WebSocket's byte stream as a sniffer
// sees it, cut into frames (reassemble.go) and named and decrypted by
// replay's own suite decoders (replay_classic.go, replay_modern.go) with
// the session's keys, which the handshake logs into memory here, never to
// a file. Each frame becomes a row of the page's wire panel.

//go:build js

package main

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// wireRow is one frame of the wire panel.
type wireRow struct {
	N       int
	Dir     wireDir
	Payload []byte // as on the wire, after the 10-digit header
	IV      string // the classic record's IV in hex; how a modern record gets its nonce
	What    string // the sniffer's name for the frame
	Details []string
	Text    string // the text the frame carries, when it carries one
	HasText bool
	Problem string // not a frame, or a frame that does not decrypt
}

// wireTap is a net.Conn that shows every frame that crosses it.
type wireTap struct {
	net.Conn

	mu      sync.Mutex
	dirs    [2]frameReassembler
	pending []tappedFrame
	keys    *replayKeys
	sess    replaySession
	suite   string
	seq     [2]uint64 // modern records per direction: the nonce's sequence number
	n       int
	live    bool // the handshake is over: frames are shown as they cross
	show    func(wireRow)
}

// tappedFrame is a frame (or bytes that are none) waiting to be decoded.
type tappedFrame struct {
	dir     wireDir
	payload []byte
	problem string
}

type tapSink struct {
	t   *wireTap
	dir wireDir
}

func (s tapSink) frame(p []byte) {
	s.t.pending = append(s.t.pending, tappedFrame{dir: s.dir, payload: append([]byte(nil), p...)})
}

func (s tapSink) skipped(n int, why string) {
	s.t.pending = append(s.t.pending, tappedFrame{dir: s.dir, problem: fmt.Sprint(n, " ", plural(n, "byte", "bytes")) + " that are not a frame: " + why})
}

func (s tapSink) partial(got []byte, want int) {
	s.t.pending = append(s.t.pending, tappedFrame{dir: s.dir, payload: append([]byte(nil), got...), problem: "the connection ended inside this frame"})
}

// newWireTap wraps conn; show is called with each frame, in order.
func newWireTap(conn net.Conn, show func(wireRow)) *wireTap {
	t := &wireTap{Conn: conn, show: show, keys: &replayKeys{keylogName: "(this page's memory)"}}
	for d := range t.dirs {
		t.dirs[d].sink = tapSink{t, wireDir(d)}
	}
	return t
}

// keylog is where the handshake logs the session's keys: into the tap's
// memory, for its decoders.
func (t *wireTap) keylog() *keylog {
	return watchedKeylog(func(label string, id, secret []byte) {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.keys.keylog = append(t.keys.keylog, keylogEntry{Label: label, ID: bytes.Clone(id), Secret: bytes.Clone(secret), Line: len(t.keys.keylog) + 1})
		t.keys.index = nil
	})
}

func (t *wireTap) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.feed(wireS2C, p[:n])
	return n, err
}

func (t *wireTap) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	t.feed(wireC2S, p[:n])
	return n, err
}

func (t *wireTap) feed(d wireDir, b []byte) {
	if len(b) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dirs[d].feed(b)
	if t.live {
		t.flushLocked()
	}
}

// flush shows the frames seen so far. During the handshake it is called
// at each step, once the keys of the frames so far are logged.
func (t *wireTap) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flushLocked()
}

// goLive shows what is waiting, and from now on each frame as it crosses.
func (t *wireTap) goLive() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.live = true
	t.flushLocked()
}

// end shows a frame the connection's end cut short.
func (t *wireTap) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for d := range t.dirs {
		t.dirs[d].end()
	}
	t.flushLocked()
}

func (t *wireTap) flushLocked() {
	for _, tf := range t.pending {
		t.n++
		row := wireRow{N: t.n, Dir: tf.dir, Payload: tf.payload, Problem: tf.problem}
		if tf.problem == "" {
			t.decode(&row)
		}
		t.show(row)
	}
	t.pending = t.pending[:0]
}

// decode names the frame and opens it with replay's decoder for its suite.
func (t *wireTap) decode(row *wireRow) {
	if t.sess == nil {
		t.sess = opaqueSession{}
		for _, s := range replaySuites() {
			if s.claims(row.Dir, row.Payload) {
				t.sess, t.suite = s.newSession(t.keys, 1), s.name()
				break
			}
		}
	}
	f := replayFrame{Num: row.N, Conn: 1, Dir: row.Dir, Payload: row.Payload, Tamper: -1, Suite: t.suite}
	t.sess.decode(&f)
	row.What, row.Details, row.Problem = f.What, f.Details, f.Problem
	if f.HasText {
		row.Text, row.HasText = sanitizeForTerminal(string(f.Text)), true
	}
	switch {
	case f.Kind == kindSealed && t.suite == suiteClassic:
		row.IV = f.Meta.IV
	case f.Kind == kindSealed && t.suite == suiteModern:
		row.IV = "none sent: the nonce is the session's IV XOR record " + strconv.FormatUint(t.seq[row.Dir], 10)
		t.seq[row.Dir]++
	}
}
