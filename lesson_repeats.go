// Sessions sent twice in one capture, for the lesson page. A connection
// whose client opens with the same frame as an earlier connection (the
// classic key-transport blob, the modern ClientHello, byte for byte) carries
// that connection's session again. Which of the two is the original depends
// on who recorded them:
//   - a rewriting tap (tap -rewrite) records both legs of each client, the
//     client's and then the server's, open at once: the later one is what
//     the server got, and a frame that differs was rewritten in flight;
//   - otherwise the later connection is a replay (replay -send). When its
//     frames differ from the earlier one's, one of the two was changed on
//     its way, and the bytes do not say which: the earlier connection may
//     itself have been rewritten while the replay sends bytes recorded
//     before the change.
// Client frames are compared in order; one that differs is marked, with
// the bytes that changed.

//go:build !js

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

const (
	repeatHead      = 64   // payload bytes kept whole to compare; the rest is hashed
	repeatMaxFrames = 5000 // client frames remembered over the whole capture
	repeatTextShown = 80   // characters of the original text kept
)

// repeatTracker finds connections that carry an earlier connection's session.
type repeatTracker struct {
	bySession map[[32]byte]*repeatSession // by the hash of the client's first frame
	conns     map[int]*repeatConn
	kept      int

	// tap: the capture was recorded by a tap, which records both legs of
	// a rewritten client. stillOpen reports whether a connection has not
	// closed yet.
	tap       bool
	stillOpen func(conn int) bool
}

// repeatMarks is what the tracker says about one frame.
type repeatMarks struct {
	conn     string // what the frame's connection is, when it repeats an earlier one
	frame    string // how a client frame differs from the earlier connection's
	head     string // the frame mark's title
	of       int    // the earlier connection, when conn is set
	original string // what the earlier connection is, seen from the repeat
}

// repeatSession is the first connection that carried a session.
type repeatSession struct {
	conn   int
	suite  string
	frames []repeatFrame
}

// repeatFrame is what is kept of one of its client frames.
type repeatFrame struct {
	num    int
	length int
	head   []byte   // the first repeatHead bytes of the payload
	tail   [32]byte // SHA-256 of the rest
	text   string   // the decrypted text, when a key opened it
}

// repeatConn is one connection's place in the tracker.
type repeatConn struct {
	own     *repeatSession // the session it opened first
	of      *repeatSession // the earlier session it repeats
	next    int            // its next client frame's index in of.frames
	changed int            // client frames that differ from of's
	leg     bool           // the server's leg of of (tap -rewrite), not a replay
	id      int
}

func keepRepeatFrame(f *replayFrame) repeatFrame {
	head := f.Payload[:min(len(f.Payload), repeatHead)]
	rf := repeatFrame{num: f.Num, length: len(f.Payload), head: bytes.Clone(head), tail: sha256.Sum256(f.Payload[len(head):])}
	if f.HasText {
		rf.text = truncateRunes(printable(string(f.Text)), repeatTextShown)
	}
	return rf
}

// frame looks at one frame. It says what the connection is, when it
// repeats an earlier one, and, for a client frame that differs from the
// earlier connection's, how.
func (t *repeatTracker) frame(f *replayFrame) repeatMarks {
	if f.Dir != wireC2S || f.Kind == kindPartial {
		if rc := t.conns[f.Conn]; rc != nil && rc.of != nil {
			return rc.marks("")
		}
		return repeatMarks{}
	}
	if t.bySession == nil {
		t.bySession = map[[32]byte]*repeatSession{}
		t.conns = map[int]*repeatConn{}
	}
	rc := t.conns[f.Conn]
	if rc == nil {
		rc = &repeatConn{id: f.Conn}
		t.conns[f.Conn] = rc
		key := sha256.Sum256(f.Payload)
		if s := t.bySession[key]; s != nil {
			rc.of = s
			rc.leg = t.tap && t.stillOpen != nil && t.stillOpen(s.conn)
		} else if t.kept < repeatMaxFrames {
			rc.own = &repeatSession{conn: f.Conn, suite: f.Suite}
			t.bySession[key] = rc.own
		}
	}
	if rc.own != nil && t.kept < repeatMaxFrames {
		rc.own.frames = append(rc.own.frames, keepRepeatFrame(f))
		t.kept++
	}
	if rc.of == nil {
		return repeatMarks{}
	}
	i := rc.next
	rc.next++
	if i >= len(rc.of.frames) {
		return rc.marks("")
	}
	orig := rc.of.frames[i]
	now := keepRepeatFrame(f)
	if orig.length == now.length && orig.tail == now.tail && bytes.Equal(orig.head, now.head) {
		return rc.marks("")
	}
	rc.changed++
	return rc.marks(describeRewrite(rc.of, orig, now, rc.leg))
}

// marks says what a repeating connection is, from what it has sent so far,
// and what the connection it repeats is; frame is a differing frame's mark.
func (rc *repeatConn) marks(frame string) repeatMarks {
	n := rc.of.conn
	m := repeatMarks{frame: frame, of: n}
	switch {
	case rc.leg && rc.changed > 0:
		m.conn = fmt.Sprintf("REWRITTEN IN FLIGHT: this is the server's leg of connection %d, recorded by the tap (tap -rewrite records both legs): connection %d is what its client sent, this is what the server got, and %d of its client frames were changed on the way, by someone with no key. The server read what the peer column shows.", n, n, rc.changed)
		m.original = fmt.Sprintf("THE CLIENT'S LEG: connection %d is this one's server leg, and %d of these client frames reached the server changed (tap -rewrite).", rc.id, rc.changed)
		m.head = "REWRITTEN IN FLIGHT"
	case rc.leg:
		m.conn = fmt.Sprintf("THE SERVER'S LEG of connection %d, recorded by the tap (tap -rewrite records both legs): so far every client frame reached the server as connection %d's client sent it.", n, n)
		m.original = fmt.Sprintf("THE CLIENT'S LEG: connection %d is this one's server leg, what the tap passed on.", rc.id)
	case rc.changed > 0:
		m.conn = fmt.Sprintf("REPLAYED, NOT BYTE FOR BYTE: this connection's client sends connection %d's session again (its first frame, byte for byte: replay -send, which needs no key), but %d of its client frames differ from connection %d's. One of the two connections was changed on its way by someone with no key (tap -rewrite): this one, or connection %d itself, when the bytes replayed here were recorded before the change. The bytes alone do not say which; the peer column shows what the server read each time.", n, rc.changed, n, n)
		m.original = fmt.Sprintf("SENT AGAIN: connection %d replays this connection's session, and %d of its client frames differ from these: one of the two was changed on its way.", rc.id, rc.changed)
		m.head = fmt.Sprintf("NOT AS IN CONNECTION %d", n)
	default:
		m.conn = fmt.Sprintf("REPLAYED: this connection's client sends connection %d's bytes again, byte for byte (replay -send): whoever sent them needed no key.", n)
		m.original = fmt.Sprintf("SENT AGAIN: connection %d replays this connection's session, byte for byte.", rc.id)
	}
	return m
}

// describeRewrite says how a client frame differs from the original.
func describeRewrite(s *repeatSession, orig, now repeatFrame, leg bool) string {
	where := fmt.Sprintf("differs from connection %d's frame #%d", s.conn, orig.num)
	if orig.length != now.length || orig.tail != now.tail {
		return where + " beyond its first bytes"
	}
	a, b, unit := orig.head, now.head, "bytes"
	if s.suite == suiteClassic {
		// A classic record is base64: compare the bytes under it.
		da, err1 := base64.StdEncoding.DecodeString(string(a[:len(a)/4*4]))
		db, err2 := base64.StdEncoding.DecodeString(string(b[:len(b)/4*4]))
		if err1 == nil && err2 == nil {
			a, b, unit = da, db, "IV bytes"
		}
	} else if s.suite == suiteModern {
		unit = "ciphertext bytes"
	}
	var diff []int
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			diff = append(diff, i)
		}
	}
	if unit == "IV bytes" && len(diff) > 0 && diff[len(diff)-1] >= 16 {
		unit = "bytes"
	}
	if len(diff) == 1 {
		where = fmt.Sprintf("%s %s %s", strings.TrimSuffix(unit, "s"), byteList(diff), where)
	} else if len(diff) > 1 {
		where = fmt.Sprintf("%s %s %s", unit, byteList(diff), strings.Replace(where, "differs", "differ", 1))
	}
	if unit == "IV bytes" && len(diff) > 0 {
		where += fmt.Sprintf(" (IV %x there, %x here)", a[:16], b[:16])
	}
	switch {
	case orig.text != "" && leg:
		where += fmt.Sprintf(", whose client sent %q", orig.text)
	case orig.text != "":
		where += fmt.Sprintf(", which carried %q", orig.text)
	}
	return where
}

// byteList is "8" or "0, 4–6".
func byteList(idx []int) string {
	var out []byte
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if len(out) > 0 {
			out = append(out, ", "...)
		}
		if i == j {
			out = fmt.Appendf(out, "%d", idx[i])
		} else {
			out = fmt.Appendf(out, "%d–%d", idx[i], idx[j])
		}
		i = j + 1
	}
	return string(out)
}
