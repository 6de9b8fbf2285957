// The live wire's view: a replay view (replayOutput) that turns each frame
// into the events of /wire's stream, in the lesson page's words (its
// lessonFrame and step naming): the sniffer's event for everyone, and the
// teacher's, which adds what the peer read.

//go:build !js

package main

import (
	"time"
	"unicode/utf8"
)

// wireOutput is the live wire's replay view; only the pump calls it.
type wireOutput struct {
	lw    *liveWire
	conns map[int]*lessonConn // where each open connection is in its handshake
}

// wireFrame is a frame as the stream carries it. Everything but Peer is
// what a sniffer sees, in the lesson page's words.
type wireFrame struct {
	N        int        `json:"n"` // in capture order over all connections
	Conn     int        `json:"conn"`
	T        float64    `json:"t"`
	Dir      string     `json:"dir"` // c2s or s2c
	Arrow    string     `json:"arrow"`
	Len      int        `json:"len"`
	Header   string     `json:"header"` // the 10-digit length header as on the wire
	Suite    string     `json:"suite,omitempty"`
	Kind     string     `json:"kind"`
	Icon     string     `json:"icon"` // clear, key, sealed, partial, unknown
	Size     string     `json:"size"` // beside the length: in clear, RSA-OAEP, sealed…
	Step     string     `json:"step,omitempty"`
	Label    string     `json:"label,omitempty"`
	What     string     `json:"what"`
	Details  []string   `json:"details,omitempty"`
	Wire     string     `json:"wire,omitempty"`
	WireNote string     `json:"wireNote,omitempty"`
	PEM      string     `json:"pem,omitempty"`
	Work     []wireWork `json:"work,omitempty"` // the steps done off the wire before this frame
	Band     string     `json:"band,omitempty"` // after it: the channel is now secure
	Peer     *wirePeer  `json:"peer,omitempty"` // the teacher's stream only
}

// wireWork is a step one side does without sending anything.
type wireWork struct {
	By    string `json:"by"`
	Label string `json:"label"`
	Text  string `json:"text"`
}

// wirePeer is what the endpoint read: the teacher's view.
type wirePeer struct {
	Text    string   `json:"text,omitempty"`
	HasText bool     `json:"hasText,omitempty"`
	Cut     int      `json:"cut,omitempty"` // runes of the text not shown
	Key     string   `json:"key,omitempty"` // which key opened it
	Lines   []string `json:"lines,omitempty"`
	Problem string   `json:"problem,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// wireNote is something replay says about a connection (bytes skipped or
// missing), or about the wire itself.
type wireNote struct {
	Conn int     `json:"conn,omitempty"`
	T    float64 `json:"t"`
	Text string  `json:"text"`
}

// wireClose is a connection's end, with what crossed it.
type wireClose struct {
	Conn   int      `json:"conn"`
	T      float64  `json:"t"`
	Closed bool     `json:"closed"` // false: the server stopped first
	Frames [2]int   `json:"frames"` // c2s, s2c
	Bytes  [2]int64 `json:"bytes"`
}

func (o *wireOutput) begin(captureHeader, time.Time) {}
func (o *wireOutput) end(replayStats)                {}
func (o *wireOutput) flush() error                   { return nil }

func (o *wireOutput) open(c *replayConn) {
	info := &wireConnInfo{Conn: c.id, T: roundMicro(c.opened), Client: printable(c.client), Server: printable(c.server),
		Transport: printable(c.transport)}
	o.conns[c.id] = &lessonConn{ID: c.id}
	o.lw.hmu.Lock()
	o.lw.conns[c.id] = info
	o.lw.hmu.Unlock()
	o.lw.publish("open", mustJSON(info), nil)
}

func (o *wireOutput) close(c *replayConn, t float64, closed bool) {
	delete(o.conns, c.id)
	o.lw.hmu.Lock()
	delete(o.lw.conns, c.id)
	o.lw.hmu.Unlock()
	o.lw.publish("close", mustJSON(wireClose{Conn: c.id, T: roundMicro(t), Closed: closed,
		Frames: c.frames, Bytes: c.bytes}), nil)
}

func (o *wireOutput) note(c *replayConn, text string) {
	o.lw.publish("note", mustJSON(wireNote{Conn: c.id, T: roundMicro(c.now), Text: printable(text)}), nil)
}

// frame publishes f. The sniffer's event takes only the sniffer's fields,
// and its step is named from a copy of f without its text, so that not even
// the step's name depends on what a key opened.
func (o *wireOutput) frame(f *replayFrame) {
	lc := o.conns[f.Conn]
	if lc == nil { // cannot happen: open comes first
		lc = &lessonConn{ID: f.Conn}
		o.conns[f.Conn] = lc
	}
	if lc.Suite == "" && f.Suite != "" {
		lc.Suite = f.Suite
		o.lw.hmu.Lock()
		if info := o.lw.conns[f.Conn]; info != nil {
			info.Suite = f.Suite
		}
		o.lw.hmu.Unlock()
	}
	sniffed := *f
	sniffed.Text, sniffed.HasText, sniffed.Key, sniffed.Peer, sniffed.Problem, sniffed.Notes = nil, false, "", nil, "", nil
	lf := (&htmlOutput{}).lessonFrame(f) // the peer's fields go only into the teacher's event
	before, after := lc.step(&sniffed, lf)
	wf := wireFrame{
		N: f.Num, Conn: f.Conn, T: roundMicro(f.T), Dir: lf.Dir, Arrow: lf.Arrow, Len: lf.Len, Header: lf.Header,
		Suite: f.Suite, Kind: f.Kind.String(), Icon: lf.Icon, Size: lf.SizeLabel, Step: lf.Step, Label: lf.Label,
		What: lf.What, Details: lf.Details, Wire: lf.Wire, WireNote: lf.WireNote, PEM: lf.PEM,
	}
	for _, row := range before {
		if a := row.Action; a != nil {
			wf.Work = append(wf.Work, wireWork{By: a.Side(), Label: a.Label, Text: a.Text})
		}
	}
	for _, row := range after {
		if row.Band != "" {
			wf.Band = row.Band
		}
	}
	pub := mustJSON(wf)
	var teach []byte
	if o.lw.teacher {
		wf.Peer = peerView(lf)
		teach = mustJSON(wf)
	}
	o.lw.publish("frame", pub, teach)
}

// peerView is what the endpoint read, as the lesson page's peer column
// shows it; a long text is cut to wireTextShown runes.
func peerView(lf *lessonFrame) *wirePeer {
	p := &wirePeer{HasText: lf.HasText, Key: lf.Key, Problem: lf.Problem, Notes: lf.Notes}
	switch {
	case lf.HasText:
		p.Text = lf.Text
		if n := utf8.RuneCountInString(p.Text); n > wireTextShown {
			p.Text = truncateRunes(p.Text, wireTextShown)
			p.Cut = n - wireTextShown + 1 // truncateRunes keeps n-1 and a mark
		}
	case lf.Problem != "":
	case lf.Sealed:
		p.Lines = []string{"no key: ciphertext only"}
	default:
		p.Lines = lf.Peer
	}
	return p
}
