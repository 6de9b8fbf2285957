// Framing, handshakes, the server hub and the client session.
//
// Nothing here prints: the server reports events through a callback and the
// client returns data and errors; main.go and repl.go render them.

package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Framing: every frame is a 10-digit zero-padded ASCII length, then the payload.
const (
	headerLen   = 10
	maxFrameLen = 65536 // larger is a protocol violation
)

// errFrameHeader and errFrameTooLong are protocol violations: the peer is dropped.
var (
	errFrameHeader  = errors.New("frame header is not ten ASCII digits")
	errFrameTooLong = fmt.Errorf("frame longer than %d bytes", maxFrameLen)
)

// parseFrameHeader returns the payload length a header announces.
func parseFrameHeader(h []byte) (int, error) {
	if len(h) != headerLen {
		return 0, errFrameHeader
	}
	n := 0
	for _, c := range h {
		if c < '0' || c > '9' {
			return 0, errFrameHeader
		}
		n = n*10 + int(c-'0')
		if n > maxFrameLen {
			return 0, errFrameTooLong
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
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n, err := parseFrameHeader(h[:])
	if err != nil {
		return nil, err
	}
	payload := make([]byte, n)
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

var _ = strconv.Itoa
