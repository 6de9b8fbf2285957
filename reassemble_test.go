// Tests of frame reassembly (reassemble.go): a direction's byte stream, in
// any chunks, cut back into frames, with skipped bytes and partial frames
// reported.

package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// reasmLog records what a frameReassembler reports, as text.
type reasmLog struct {
	events   []string
	frames   [][]byte
	consumed int // bytes accounted for
}

func (l *reasmLog) frame(p []byte) {
	l.frames = append(l.frames, bytes.Clone(p))
	l.events = append(l.events, fmt.Sprintf("frame %q", p))
	l.consumed += headerLen + len(p)
}

func (l *reasmLog) skipped(n int, why string) {
	l.events = append(l.events, fmt.Sprintf("skip %d: %s", n, why))
	l.consumed += n
}

func (l *reasmLog) partial(got []byte, want int) {
	l.events = append(l.events, fmt.Sprintf("partial %q want %d", got, want))
	l.consumed += len(got)
	if want >= 0 {
		l.consumed += headerLen
	}
}

// reassemble feeds stream in chunks cut at the given offsets.
func reassemble(stream []byte, cuts []int) *reasmLog {
	l := &reasmLog{}
	r := &frameReassembler{sink: l}
	prev := 0
	for _, c := range cuts {
		if c > prev && c < len(stream) {
			r.feed(stream[prev:c])
			prev = c
		}
	}
	r.feed(stream[prev:])
	r.end()
	return l
}

func frames(payloads ...string) []byte {
	var b []byte
	for _, p := range payloads {
		b = appendFrame(b, []byte(p))
	}
	return b
}

func TestFrameReassembler(t *testing.T) {
	three := frames("hello", "", "a longer payload with 0123456789 digits")
	cases := []struct {
		name   string
		stream []byte
		want   []string
	}{
		{"whole frames", three, []string{`frame "hello"`, `frame ""`, `frame "a longer payload with 0123456789 digits"`}},
		{"starts mid-frame", append([]byte("lo world"), three...), []string{
			"skip 8: the stream does not start at a frame boundary (capture begun mid-frame?)",
			`frame "hello"`, `frame ""`, `frame "a longer payload with 0123456789 digits"`}},
		{"ends mid-frame", three[:len(three)-5], []string{`frame "hello"`, `frame ""`, `partial "a longer payload with 0123456789 d" want 39`}},
		{"ends mid-header", append(frames("x"), "00000"...), []string{`frame "x"`, `partial "00000" want -1`}},
		{"bad header mid-stream", append(append(frames("one"), "??"...), frames("two")...), []string{
			`frame "one"`, "skip 2: bad frame header: frame header is not ten ASCII digits", `frame "two"`}},
		{"too long", append([]byte("0000099999xx"), frames("ok")...), []string{
			"skip 12: the stream does not start at a frame boundary (capture begun mid-frame?)", `frame "ok"`}},
		{"only garbage", []byte("not a frame at all"), []string{"skip 18: the stream does not start at a frame boundary (capture begun mid-frame?)"}},
		{"a long digit run is no header", append([]byte("x12345678901234 "), frames("ok")...), []string{
			"skip 16: the stream does not start at a frame boundary (capture begun mid-frame?)", `frame "ok"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One chunk, every byte its own chunk, and chunks of 7.
			var every, sevens []int
			for i := 1; i < len(c.stream); i++ {
				every = append(every, i)
				if i%7 == 0 {
					sevens = append(sevens, i)
				}
			}
			for _, cuts := range [][]int{nil, every, sevens} {
				l := reassemble(c.stream, cuts)
				if got := strings.Join(l.events, "\n"); got != strings.Join(c.want, "\n") {
					t.Errorf("cuts %v:\n%s\nwant:\n%s", cuts, got, strings.Join(c.want, "\n"))
				}
				if l.consumed != len(c.stream) {
					t.Errorf("accounted for %d of %d bytes", l.consumed, len(c.stream))
				}
			}
		})
	}
}
