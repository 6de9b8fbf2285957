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

// appendFrame appends a header and payload to dst.
func appendFrame(dst, payload []byte) []byte {
	var h [headerLen]byte
	n := len(payload)
	for i := headerLen - 1; i >= 0; i-- {
		h[i] = byte('0' + n%10)
		n /= 10
	}
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// frameHeader returns the header for a payload of n bytes.
func frameHeader(n int) []byte {
	return []byte(fmt.Sprintf("%010d", n))
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
