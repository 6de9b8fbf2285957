// Framing, shared by both suites: every frame is a 10-digit zero-padded
// ASCII length, then that many payload bytes, written with a single Write.
// Lengths are checked against a limit before anything is allocated.

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Framing: every frame is a 10-digit zero-padded ASCII length, then the payload.
const (
	headerLen   = 10
	maxFrameLen = 65536 // larger is a protocol violation
)

// errFrameHeader and errFrameTooLong are protocol violations: the peer is dropped.
var (
	errFrameHeader  = errors.New("frame header is not ten ASCII digits")
	errFrameTooLong = errors.New("frame too long")
)

// parseFrameHeader returns the payload length a header announces.
func parseFrameHeader(h []byte) (int, error) {
	return parseFrameHeaderLimit(h, maxFrameLen)
}

// parseFrameHeaderLimit is parseFrameHeader with a lower limit of the
// caller's (the server's -max-frame).
func parseFrameHeaderLimit(h []byte, limit int) (int, error) {
	if len(h) != headerLen {
		return 0, errFrameHeader
	}
	n := 0
	for _, c := range h {
		if c < '0' || c > '9' {
			return 0, errFrameHeader
		}
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, fmt.Errorf("%w: over %d bytes", errFrameTooLong, limit)
		}
	}
	return n, nil
}

// appendFrameHeader appends the header of a payload of n bytes to dst: n
// in ten ASCII digits, zero-padded. It is the one encoder of the header:
// frames, a classic writer's header ahead of its record, and the modern
// suite's additional data (appended into an array's [:0], it allocates
// nothing).
func appendFrameHeader(dst []byte, n int) []byte {
	dst = append(dst, "0000000000"...)
	h := dst[len(dst)-headerLen:]
	for i := headerLen - 1; i >= 0 && n > 0; i-- {
		h[i] = byte('0' + n%10)
		n /= 10
	}
	return dst
}

// appendFrame appends a header and payload to dst.
func appendFrame(dst, payload []byte) []byte {
	return append(appendFrameHeader(dst, len(payload)), payload...)
}

// readFrame reads one frame. The length is checked before anything is
// allocated. A clean EOF before a header is io.EOF; EOF inside a frame is
// io.ErrUnexpectedEOF.
func readFrame(r io.Reader) ([]byte, error) {
	return readFrameLimit(r, maxFrameLen)
}

// readFrameLimit is readFrame refusing payloads over limit bytes.
func readFrameLimit(r io.Reader, limit int) ([]byte, error) {
	return readFrameInto(r, limit, nil)
}

// readFrameInto is readFrameLimit reading the payload into buf when it is
// large enough, so a loop that keeps buf reads without allocating.
func readFrameInto(r io.Reader, limit int, buf []byte) ([]byte, error) {
	if cap(buf) < headerLen {
		buf = make([]byte, headerLen)
	}
	h := buf[:headerLen] // in buf: a local array would escape to the heap
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	n, err := parseFrameHeaderLimit(h, limit)
	if err != nil {
		return nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	payload := buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return payload, nil
}

// frameTimeout is how long a frame may take to arrive once its first byte
// has: the same 10 s a write to a client has (writeTimeout). Idling
// between frames is unlimited. Without it a client that sends a header
// and stops holds its connection, and its slot in -max-per-addr, for
// ever: 256 of them locked a classroom behind one NAT address out. Ten
// seconds carries the largest frame, 64 KiB, at 52 kbit/s.
const frameTimeout = 10 * time.Second

// readFrameTimed is readFrameInto on a connection: it waits for a frame's
// first byte as long as it takes, then gives the rest frameTimeout (a
// frame already whole in br needs no deadline). Past it the error is
// os.ErrDeadlineExceeded.
func readFrameTimed(conn net.Conn, br *bufio.Reader, limit int, buf []byte) ([]byte, error) {
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	if b := br.Buffered(); b >= headerLen {
		h, _ := br.Peek(headerLen)
		if n, err := parseFrameHeaderLimit(h, limit); err == nil && b >= headerLen+n {
			return readFrameInto(br, limit, buf)
		}
	}
	conn.SetReadDeadline(time.Now().Add(frameTimeout))
	payload, err := readFrameInto(br, limit, buf)
	conn.SetReadDeadline(time.Time{})
	return payload, err
}

// writeFrame writes one frame with a single Write.
func writeFrame(w io.Writer, payload []byte) error {
	_, err := w.Write(appendFrame(make([]byte, 0, headerLen+len(payload)), payload))
	return err
}

// frameRW reads frames through a buffer and writes them straight to the conn.
type frameRW struct {
	*bufio.Reader
	net.Conn
}

func (f frameRW) Read(p []byte) (int, error)  { return f.Reader.Read(p) }
func (f frameRW) Write(p []byte) (int, error) { return f.Conn.Write(p) }

// keepBuffer returns a frame buffer to read the next frame into, or nil
// after a large frame so that a long-lived reader does not hold its memory.
func keepBuffer(b []byte) []byte {
	if cap(b) > 4<<10 {
		return nil
	}
	return b
}
