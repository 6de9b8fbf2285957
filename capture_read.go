// The capture reader: a capture's header and its open, data and close
// records, one line at a time, in constant memory; errors name the line.

package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
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
