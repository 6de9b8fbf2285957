// The capture reader: a capture's header and its open, data and close
// records, one line at a time, in memory bounded by the connections open at
// once; errors name the line. readCapture also opens pcap and pcapng files
// (pcap_read.go), told apart by their first bytes.

package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

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
	Transport      string // open: "websocket", or "" for TCP
	Data           []byte // valid until the next call to next
	Gap            int    // capGap: the bytes missing (pcap only)
	Note           string // capNote: what to say (pcap only)
}

// captureMaxOpen is the most connections a capture is followed in at once
// (a full server has 1000 users): one that begins while so many are open
// is skipped, with a note when that first happens and one at the end.
const captureMaxOpen = 4096

// captureFullNote is the note on the first connection skipped.
var captureFullNote = fmt.Sprintf("%d connections are open, the most encchat follows at once: a connection that begins while so many are open is skipped", captureMaxOpen)

// captureSource is a capture being read, event by event.
type captureSource interface {
	header() (captureHeader, time.Time)
	// next reads the next event into ev; io.EOF at the end.
	next(ev *captureEvent) error
}

// readCapture starts reading a capture: encchat's JSON Lines, or a pcap
// or pcapng file (Wireshark, dumpcap, tcpdump), by its magic number.
func readCapture(r io.Reader) (captureSource, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(4); isPcapMagic(magic) {
		return newPcapSource(br)
	}
	return newCaptureReader(br)
}

// captureReader streams a capture line by line in constant memory.
type captureReader struct {
	br      *bufio.Reader
	line    int
	long    []byte // a line longer than br's buffer
	data    []byte // decoded bytes of the current record, reused
	Header  captureHeader
	Started time.Time // zero when the header's time does not parse

	// The connections open (true), or skipped (false): past
	// captureMaxOpen, and the records of those skipped.
	open         map[int]bool
	nOpen        int
	skippedConns int
	skipped      int
	ended        bool
}

// newCaptureReader reads and checks the header line.
func newCaptureReader(r io.Reader) (*captureReader, error) {
	cr := &captureReader{br: bufio.NewReaderSize(r, 64<<10), open: map[int]bool{}}
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

func (cr *captureReader) header() (captureHeader, time.Time) { return cr.Header, cr.Started }

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
		if err == io.EOF && cr.skippedConns > 0 && !cr.ended {
			cr.ended = true
			*ev = captureEvent{Line: cr.line, T: ev.T, Kind: capNote, Note: fmt.Sprintf(
				"%d %s skipped (%d %s): %s while %d were open, the most encchat follows at once; the connections followed were read to their end",
				cr.skippedConns, plural(cr.skippedConns, "connection", "connections"), cr.skipped, plural(cr.skipped, "record", "records"),
				plural(cr.skippedConns, "it began", "they began"), captureMaxOpen)}
			return nil
		}
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
		if cr.follows(ev) {
			return nil
		}
		if cr.skippedConns == 1 && cr.skipped == 1 {
			*ev = captureEvent{Line: cr.line, T: ev.T, Kind: capNote, Note: captureFullNote}
			return nil
		}
	}
}

// follows keeps count of the connections open and reports whether ev is
// of one followed: not of one that began while captureMaxOpen were open.
func (cr *captureReader) follows(ev *captureEvent) bool {
	open, known := cr.open[ev.Conn]
	switch {
	case known && !open:
		cr.skipped++
		if ev.Kind == capClose {
			delete(cr.open, ev.Conn) // skipped to its end: forgotten
		}
		return false
	case known && ev.Kind == capClose:
		delete(cr.open, ev.Conn)
		cr.nOpen--
	case known, ev.Kind == capClose: // a close of none open: the engine says so
	case cr.nOpen >= captureMaxOpen:
		cr.open[ev.Conn] = false
		cr.skippedConns++
		cr.skipped++
		return false
	default: // its open, or data of one open before the capture began
		cr.open[ev.Conn] = true
		cr.nOpen++
	}
	return true
}

// captureRecord is one line after the header as encoding/json reads it.
// A pointer is nil when its key is missing or null; key names match
// without regard to case, as encoding/json does.
type captureRecord struct {
	T         *float64 `json:"t"`
	Conn      *int64   `json:"conn"`
	Ev        *string  `json:"ev"`
	Dir       *string  `json:"dir"`
	Data      *string  `json:"data"` // base64 of the bytes on the wire
	Client    *string  `json:"client"`
	Server    *string  `json:"server"`
	Transport *string  `json:"transport"` // absent for TCP
}

// parse fills ev from one line; it returns what is wrong, or "".
func (cr *captureReader) parse(line []byte, ev *captureEvent) string {
	var r captureRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return "bad JSON"
	}
	if r.Conn == nil || *r.Conn < 1 || *r.Conn > math.MaxInt32 {
		return "missing or bad connection number"
	}
	if r.T == nil || *r.T < 0 || math.IsInf(*r.T, 0) || math.IsNaN(*r.T) {
		return "missing or bad time"
	}
	*ev = captureEvent{T: *r.T, Conn: int(*r.Conn), Data: ev.Data[:0]}
	if r.Ev != nil {
		switch *r.Ev {
		case capOpen:
			ev.Kind = capOpen
			if r.Client != nil {
				ev.Client = *r.Client
			}
			if r.Server != nil {
				ev.Server = *r.Server
			}
			if r.Transport != nil {
				ev.Transport = *r.Transport
			}
		case capClose:
			ev.Kind = capClose
		default:
			return fmt.Sprintf("unknown event %q", truncateRunes(*r.Ev, 20))
		}
		return ""
	}
	ev.Kind = capData
	switch {
	case r.Dir == nil:
		return "record has neither an event nor a direction"
	case *r.Dir == "c2s":
		ev.Dir = wireC2S
	case *r.Dir == "s2c":
		ev.Dir = wireS2C
	default:
		return fmt.Sprintf("unknown direction %q", truncateRunes(*r.Dir, 20))
	}
	if r.Data == nil {
		return "data record without data"
	}
	// Decode into a buffer kept from record to record.
	need := base64.StdEncoding.DecodedLen(len(*r.Data))
	if cap(cr.data) < need {
		cr.data = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(cr.data[:need], []byte(*r.Data))
	if err != nil {
		return "bad base64"
	}
	ev.Data = cr.data[:n]
	if cap(cr.data) > 4*captureMaxLine {
		cr.data = nil
	}
	return ""
}
