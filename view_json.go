// The JSON view of replay (-json): one object per frame.

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
		Kind:        f.Kind.String(),
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
