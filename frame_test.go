// Tests of framing (frame.go): frame headers at the length limit, the one
// header encoder, and the deadline on a frame once begun.

package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

func TestParseFrameHeaderBoundaries(t *testing.T) {
	for h, want := range map[string]int{"0000000000": 0, "0000065535": 65535, "0000065536": 65536, "0000065537": -1} {
		n, err := parseFrameHeader([]byte(h))
		if want < 0 && err == nil || want >= 0 && (err != nil || n != want) {
			t.Errorf("%s: %d, %v", h, n, err)
		}
	}
}

// TestAppendFrameHeader checks the header encoder against %010d, appending
// after what dst holds, and that appended into an array it allocates
// nothing (the modern suite's additional data).
func TestAppendFrameHeader(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 255, 256, 65535, 65536, 1234567890} {
		if got, want := string(appendFrameHeader([]byte("x"), n)), fmt.Sprintf("x%010d", n); got != want {
			t.Errorf("appendFrameHeader(%d) = %q, want %q", n, got, want)
		}
	}
	var ad [headerLen]byte
	if allocs := testing.AllocsPerRun(100, func() { appendFrameHeader(ad[:0], 4096) }); allocs != 0 {
		t.Errorf("into an array: %v allocations", allocs)
	}
	if got := appendFrame(nil, []byte("abc")); string(got) != "0000000003abc" {
		t.Errorf("appendFrame = %q", got)
	}
}

// TestReadFrameTimed: a frame is read whole, and a frame begun and not
// finished ends in os.ErrDeadlineExceeded, within frameTimeout (on
// net.Pipe; TestStalledFramesTimeOut waits the 10 s out on real sockets).
func TestReadFrameTimed(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	br := bufio.NewReader(server)
	go client.Write(appendFrame(nil, []byte("hello")))
	p, err := readFrameTimed(server, br, maxFrameLen, nil)
	if err != nil || string(p) != "hello" {
		t.Fatalf("whole frame: %q, %v", p, err)
	}
	// Begun: a header and part of the payload, then nothing. The deadline
	// readFrameTimed sets is replaced by an earlier one once it is waiting.
	go client.Write([]byte("0000000010abc"))
	done := make(chan error, 1)
	go func() {
		_, err := readFrameTimed(server, br, maxFrameLen, nil)
		done <- err
	}()
	// An earlier deadline ends the wait at once if it is set after
	// readFrameTimed set its own; if before, readFrameTimed's own 10 s
	// deadline ends it. Either way the result is the same.
	time.Sleep(50 * time.Millisecond)
	server.SetReadDeadline(time.Now())
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("stalled frame: %v, want a deadline error", err)
		}
	case <-time.After(frameTimeout + 5*time.Second):
		t.Fatal("a stalled frame was waited on past the deadline")
	}
}
