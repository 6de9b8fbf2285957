//go:build !js

// Sessions sent twice in one capture, for the lesson page. A connection
// whose client opens with the same frame as an earlier connection (the
// classic key-transport blob, the modern ClientHello, byte for byte) carries
// that connection's session again: a replay (replay -send), or the server's
// leg of a rewriting tap (tap -rewrite records both legs). Its client frames
// are compared with the earlier connection's, in order; one that differs is
// marked as rewritten in flight, with the bytes that changed.

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
}

func keepRepeatFrame(f *replayFrame) repeatFrame {
	head := f.Payload[:min(len(f.Payload), repeatHead)]
	rf := repeatFrame{num: f.Num, length: len(f.Payload), head: bytes.Clone(head), tail: sha256.Sum256(f.Payload[len(head):])}
	if f.HasText {
		rf.text = truncateRunes(printable(string(f.Text)), repeatTextShown)
	}
	return rf
}

// frame looks at one frame. It returns what the connection is (when it
// repeats an earlier one) and, for a client frame that differs from the
// earlier connection's, how.
func (t *repeatTracker) frame(f *replayFrame) (connMark, frameMark string) {
	if f.Dir != wireC2S || f.Kind == kindPartial {
		if rc := t.conns[f.Conn]; rc != nil && rc.of != nil {
			return rc.mark(), ""
		}
		return "", ""
	}
	if t.bySession == nil {
		t.bySession = map[[32]byte]*repeatSession{}
		t.conns = map[int]*repeatConn{}
	}
	rc := t.conns[f.Conn]
	if rc == nil {
		rc = &repeatConn{}
		t.conns[f.Conn] = rc
		key := sha256.Sum256(f.Payload)
		if s := t.bySession[key]; s != nil {
			rc.of = s
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
		return "", ""
	}
	i := rc.next
	rc.next++
	if i >= len(rc.of.frames) {
		return rc.mark(), ""
	}
	orig := rc.of.frames[i]
	now := keepRepeatFrame(f)
	if orig.length == now.length && orig.tail == now.tail && bytes.Equal(orig.head, now.head) {
		return rc.mark(), ""
	}
	rc.changed++
	return rc.mark(), describeRewrite(rc.of, orig, now)
}

// mark says what a repeating connection is, from what it has sent so far.
func (rc *repeatConn) mark() string {
	if rc.changed > 0 {
		return fmt.Sprintf("REWRITTEN IN FLIGHT: this connection carries connection %d's session (its client's first frame, byte for byte), but %d of its client frames differ from connection %d's: someone on the path changed them, with no key (tap -rewrite). The server read what the peer column shows.", rc.of.conn, rc.changed, rc.of.conn)
	}
	return fmt.Sprintf("REPLAYED: this connection's client sends connection %d's bytes again, byte for byte (replay -send): whoever sent them needed no key.", rc.of.conn)
}

// describeRewrite says how a client frame differs from the original.
func describeRewrite(s *repeatSession, orig, now repeatFrame) string {
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
	if orig.text != "" {
		where += fmt.Sprintf(", whose client sent %q", orig.text)
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
