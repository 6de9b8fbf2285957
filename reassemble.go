// Frame reassembly: one direction's byte stream, in whatever chunks it was
// recorded, cut back into 10-digit-framed payloads.

package main

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

// gap skips n bytes the capture lacks: the frame in progress ends as
// partial, and the bytes after the gap are searched for the next header.
func (r *frameReassembler) gap(n int) {
	r.end()
	r.consumed += int64(n)
	r.hunting, r.prevDigit = true, false
	r.why = "after bytes missing from the capture, looking for the next frame header"
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

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
