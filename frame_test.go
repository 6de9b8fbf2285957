// Tests of framing (frame.go): frame headers at the length limit.

package main

import (
	"testing"
)

func TestParseFrameHeaderBoundaries(t *testing.T) {
	for h, want := range map[string]int{"0000000000": 0, "0000065535": 65535, "0000065536": 65536, "0000065537": -1} {
		n, err := parseFrameHeader([]byte(h))
		if want < 0 && err == nil || want >= 0 && (err != nil || n != want) {
			t.Errorf("%s: %d, %v", h, n, err)
		}
	}
}
