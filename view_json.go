// The JSON view of replay (-json): one object per line: the capture's
// header, each connection's open and close, each frame, notes, and the
// totals at the end. "kind" says which.

//go:build !js

package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"time"
)

// jsonOutput prints one JSON object per frame.
type jsonOutput struct {
	w    *bufio.Writer
	enc  *json.Encoder
	name string // the capture's name
	keys *replayKeys
}

func newJSONOutput(w io.Writer, opts *replayOptions) *jsonOutput {
	o := &jsonOutput{w: bufio.NewWriterSize(w, 64<<10), name: opts.name, keys: opts.keys}
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
	Payload     string   `json:"payload,omitempty"` // base64 of the frame's payload exactly as on the wire (a key, a blob or a record)
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

// jsonHeader is the first line: which capture, recorded where and when,
// and which keys replay has.
type jsonHeader struct {
	Kind     string `json:"kind"` // "capture"
	Capture  string `json:"capture"`
	Recorder string `json:"recorder,omitempty"`
	Addr     string `json:"addr,omitempty"`
	Started  string `json:"started,omitempty"`
	Keys     string `json:"keys"`
}

// jsonConn is a connection's open or close line.
type jsonConn struct {
	Kind      string   `json:"kind"` // "open" or "close"
	Conn      int      `json:"conn"`
	T         float64  `json:"t"`
	Client    string   `json:"client,omitempty"`
	Server    string   `json:"server,omitempty"`
	MidStream bool     `json:"mid_stream,omitempty"` // no open record: the capture began during it
	Closed    *bool    `json:"closed,omitempty"`     // false: still open when the capture ends
	Duration  *float64 `json:"duration,omitempty"`
	FramesC2S *int     `json:"frames_c2s,omitempty"`
	BytesC2S  *int64   `json:"bytes_c2s,omitempty"`
	FramesS2C *int     `json:"frames_s2c,omitempty"`
	BytesS2C  *int64   `json:"bytes_s2c,omitempty"`
}

// jsonEnd is the last line: the totals.
type jsonEnd struct {
	Kind        string `json:"kind"` // "end"
	Conns       int    `json:"conns"`
	Frames      int    `json:"frames"`
	Bytes       int64  `json:"bytes"`
	Decrypted   int    `json:"decrypted"`
	Undecrypted int    `json:"undecrypted"`
}

func (o *jsonOutput) begin(h captureHeader, started time.Time) {
	when := h.Started
	if !started.IsZero() {
		when = started.UTC().Format(time.RFC3339Nano)
	}
	o.enc.Encode(jsonHeader{Kind: "capture", Capture: o.name, Recorder: h.Recorder, Addr: h.Addr, Started: when, Keys: keyDescription(o.keys, true)})
}

func (o *jsonOutput) open(c *replayConn) {
	o.enc.Encode(jsonConn{Kind: "open", Conn: c.id, T: roundMicro(c.opened), Client: c.client, Server: c.server, MidStream: c.midStream})
}

func (o *jsonOutput) close(c *replayConn, t float64, closed bool) {
	j := jsonConn{Kind: "close", Conn: c.id, T: roundMicro(t), Client: c.client, Server: c.server, Closed: &closed,
		FramesC2S: &c.frames[wireC2S], BytesC2S: &c.bytes[wireC2S], FramesS2C: &c.frames[wireS2C], BytesS2C: &c.bytes[wireS2C]}
	if closed {
		d := roundMicro(t - c.opened)
		j.Duration = &d
	}
	o.enc.Encode(j)
}

func (o *jsonOutput) end(s replayStats) {
	o.enc.Encode(jsonEnd{Kind: "end", Conns: s.conns, Frames: s.frames, Bytes: s.bytes, Decrypted: s.decrypted, Undecrypted: s.undecrypted})
}

func (o *jsonOutput) flush() error { return o.w.Flush() }

func (o *jsonOutput) note(c *replayConn, text string) {
	o.enc.Encode(jsonFrame{Conn: c.id, T: roundMicro(c.now), Kind: "note", Notes: []string{text}})
}

func (o *jsonOutput) frame(f *replayFrame) {
	j := jsonFrame{
		Conn:        f.Conn,
		Index:       f.Num,
		T:           roundMicro(f.T),
		Dir:         f.Dir.String(),
		Kind:        f.Kind.String(),
		Length:      len(f.Payload),
		Payload:     base64.StdEncoding.EncodeToString(f.Payload),
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
