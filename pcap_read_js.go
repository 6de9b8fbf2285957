// The browser build's stand-in for pcap_read.go: a page has no capture
// files, so it reads no pcap or pcapng (and carries no packet decoder).

package main

import (
	"bufio"
	"errors"
)

// The events only a pcap produces, as pcap_read.go names them; replay's
// engine knows them, so the browser build names them too.
const (
	capGap  = "gap"
	capNote = "note"
)

// isPcapMagic reports no pcap in the browser: every capture is read as
// encchat's JSON Lines.
func isPcapMagic([]byte) bool { return false }

// newPcapSource is never reached in the browser (isPcapMagic says no).
func newPcapSource(*bufio.Reader) (captureSource, error) {
	return nil, errors.New("pcap and pcapng captures are not read in the browser")
}
