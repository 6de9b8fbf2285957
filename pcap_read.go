// Reading captures made by Wireshark, dumpcap or tcpdump (pcap and pcapng):
// each packet is decoded down to TCP, the reassembly (pcap_tcp.go) puts each
// TCP connection's two byte streams back in order (retransmissions, segments
// out of order, connections whose SYN was not captured), the encchat connections
// are picked out (port 5174, or a first frame that is an encchat server's),
// and their bytes come out as the same open, data and close events an
// encchat capture holds, so replay, -html, -pcap and -send read both alike.
// What was skipped (other packets, other connections, bytes missing from
// the capture) comes out as notes.

//go:build !js

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// capGap is an event only a pcap produces: Gap bytes of one direction are
// missing from the capture (segments the capture did not see).
const capGap = "gap"

// capNote is an event only a pcap produces: something replay should say,
// about one connection (Conn) or, with Conn 0, about the whole capture.
const capNote = "note"

// encchatPort is the port a stream is taken as encchat's by (defaultPort).
const encchatPort = 5174

// What is held of a stream not yet known to be encchat's. TCP connections,
// encchat's or not, are followed captureMaxOpen at once: a connection that
// begins while that many are open is not followed, and a note says how
// many packets that skipped.
const (
	pcapSniffLen     = headerLen + len("-----BEGIN PUBLIC KEY-----") // enough to tell a first frame
	pcapMaxUndecided = 64 << 10                                      // bytes held before a stream is known
)

// isPcapMagic reports whether b starts like a pcap (either byte order,
// microsecond or nanosecond times) or a pcapng file.
func isPcapMagic(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch string(b[:4]) {
	case "\xd4\xc3\xb2\xa1", "\xa1\xb2\xc3\xd4", "\x4d\x3c\xb2\xa1", "\xa1\xb2\x3c\x4d", // pcap
		"\x0a\x0d\x0d\x0a": // pcapng's section header block
		return true
	}
	return false
}

// pcapSource reads a pcap or pcapng file as capture events.
type pcapSource struct {
	read      func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
	ng        *pcapgo.NgReader // nil for a pcap
	hdr       captureHeader
	started   time.Time
	last      time.Time   // the latest packet time seen
	streams   int         // streams created, to order those open at the end
	queue     []pcapEvent // events the last packet produced
	events    []pcapEvent // the queue being handed out by next
	conns     int         // encchat connections numbered so far
	packets   int
	byKey     map[pcapKey]*pcapStream // the streams open
	waits     []tcpWait               // waits for missing bytes, in the order they were queued (a wait may be dated before the one ahead of it, so it can end a little after pcapWaitGap)
	liveWaits int                     // waits on at the last sweep of waits
	pages     int                     // pages of segments waiting, in all
	done      bool

	// What was skipped, for the notes at the end.
	notTCP     map[string]int
	fragments  int
	cutShort   string // the capture ends inside a packet
	others     int    // TCP connections that are not encchat
	otherNames []string
	overlap    [2]int // retransmitted segments and their bytes
	reordered  int    // segments that arrived ahead of their turn
	unfollowed int    // packets of connections begun while captureMaxOpen were open
}

// pcapEvent is one queued capture event and the stream it belongs to.
type pcapEvent struct {
	ev     captureEvent
	stream *pcapStream // nil for a note on the whole capture
	fromA  bool        // sent by the stream's endpoint a
}

// newPcapSource reads the file header of a pcap or pcapng file.
func newPcapSource(br *bufio.Reader) (*pcapSource, error) {
	magic, _ := br.Peek(4)
	s := &pcapSource{notTCP: map[string]int{}, byKey: map[pcapKey]*pcapStream{}}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, fmt.Errorf("not a pcapng file encchat can read: %v", err)
		}
		s.read = func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := ng.ReadPacketData()
			lt := layers.LinkType(0)
			if len(ci.AncillaryData) > 0 {
				lt, _ = ci.AncillaryData[0].(layers.LinkType)
			}
			return data, ci, lt, err
		}
		s.ng = ng
		s.hdr.Recorder = "pcapng"
		if app, _, _ := strings.Cut(ng.SectionInfo().Application, " (Git"); app != "" {
			s.hdr.Recorder = app + ", pcapng"
		}
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("not a pcap file encchat can read: %v", err)
		}
		lt := r.LinkType()
		s.read = func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := r.ReadPacketData()
			return data, ci, lt, err
		}
		s.hdr.Recorder = "pcap (link type " + lt.String() + ")"
	}
	if err := s.fill(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *pcapSource) format() string {
	if s.ng != nil {
		return "pcapng"
	}
	return "pcap"
}

// header describes the file; a pcapng's interfaces are known once its
// first packet has been read.
func (s *pcapSource) header() (captureHeader, time.Time) {
	if s.ng != nil && s.ng.NInterfaces() > 0 {
		if i, err := s.ng.Interface(0); err == nil && i.Name != "" {
			s.hdr.Addr = "interface " + i.Name
		}
	}
	return s.hdr, s.started
}

// next returns the next event, reading packets until one produces some.
func (s *pcapSource) next(ev *captureEvent) error {
	for len(s.events) == 0 {
		if s.done {
			return io.EOF
		}
		if err := s.fill(); err != nil {
			return err
		}
	}
	pe := s.events[0]
	s.events = s.events[1:]
	*ev = pe.ev
	if st := pe.stream; st != nil {
		// Connections are numbered as their first event comes out, so a
		// flush of many streams numbers them in the order they began.
		if st.conn == 0 {
			s.conns++
			st.conn = s.conns
		}
		ev.Conn = st.conn
	}
	return nil
}

// fill reads packets until some produce events, or the file ends.
func (s *pcapSource) fill() error {
	s.events = s.events[:0]
	for len(s.queue) == 0 && !s.done {
		data, ci, lt, err := s.read()
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			if err != io.EOF {
				s.cutShort = fmt.Sprintf("the capture ends inside packet %d (cut short): the rest of the file is lost", s.packets+1)
			}
			s.end()
			break
		}
		if err != nil {
			return fmt.Errorf("%s: packet %d: %v", s.format(), s.packets+1, err)
		}
		s.packets++
		if s.started.IsZero() {
			s.started = ci.Timestamp
			s.hdr.Started = s.started.UTC().Format(time.RFC3339Nano)
		}
		if ci.Timestamp.After(s.last) {
			s.last = ci.Timestamp
		}
		s.packet(data, ci, lt)
		s.expire() // bytes waited for longer than pcapWaitGap were not captured
	}
	s.events = append(s.events, s.queue...)
	s.queue = s.queue[:0]
	return nil
}

// end ends the streams still open and adds the notes on what was skipped.
func (s *pcapSource) end() {
	s.done = true
	s.endAll()
	for _, text := range s.skippedNotes() {
		s.queue = append(s.queue, pcapEvent{ev: captureEvent{Kind: capNote, T: s.since(s.last), Note: text}})
	}
}

// skippedNotes says what the capture held that replay did not use.
func (s *pcapSource) skippedNotes() []string {
	var notes []string
	if s.cutShort != "" {
		notes = append(notes, s.cutShort)
	}
	if s.unfollowed > 0 {
		notes = append(notes, fmt.Sprintf("%d %s skipped: %s began while %d connections were open, the most encchat follows at once; the connections followed were read to their end",
			s.unfollowed, plural(s.unfollowed, "packet", "packets"), plural(s.unfollowed, "its connection", "their connections"), captureMaxOpen))
	}
	if n := sumCounts(s.notTCP); n > 0 {
		notes = append(notes, fmt.Sprintf("%d %s skipped: not TCP (%s)", n, plural(n, "packet", "packets"), describeCounts(s.notTCP)))
	}
	if s.fragments > 0 {
		notes = append(notes, fmt.Sprintf("%d IP %s skipped: encchat reads unfragmented TCP", s.fragments, plural(s.fragments, "fragment", "fragments")))
	}
	if s.others > 0 {
		names := strings.Join(s.otherNames, ", ")
		if s.others > len(s.otherNames) {
			names += ", …"
		}
		notes = append(notes, fmt.Sprintf("%d TCP %s skipped: not encchat (not port %d, and no encchat server's first frame): %s",
			s.others, plural(s.others, "connection", "connections"), encchatPort, names))
	}
	if s.overlap[0] > 0 {
		notes = append(notes, fmt.Sprintf("%d retransmitted %s (%d B seen twice) used once", s.overlap[0], plural(s.overlap[0], "segment", "segments"), s.overlap[1]))
	}
	if s.reordered > 0 {
		notes = append(notes, fmt.Sprintf("%d %s arrived ahead of an earlier one and %s put in order", s.reordered, plural(s.reordered, "segment", "segments"), plural(s.reordered, "was", "were")))
	}
	if s.conns == 0 {
		notes = append(notes, fmt.Sprintf("no encchat connection in %d %s", s.packets, plural(s.packets, "packet", "packets")))
	}
	return notes
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// describeCounts lists counts by name, largest first: "3 UDP, 1 ARP".
func describeCounts(m map[string]int) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

// since is t as seconds since the first packet.
func (s *pcapSource) since(t time.Time) float64 {
	return max(0, t.Sub(s.started).Seconds())
}

// packet decodes one packet and gives its TCP segment to its stream.
func (s *pcapSource) packet(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) {
	switch lt {
	case layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2,
		layers.LinkTypeNull, layers.LinkTypeLoop, layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
	default:
		s.notTCP["link type "+lt.String()]++
		return
	}
	var first gopacket.Decoder = lt
	switch lt { // raw IP with the version in the link type
	case layers.LinkTypeIPv4:
		first = layers.LayerTypeIPv4
	case layers.LinkTypeIPv6:
		first = layers.LayerTypeIPv6
	}
	p := gopacket.NewPacket(data, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var netFlow gopacket.Flow
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			s.fragments++
			return
		}
		netFlow = ip.NetworkFlow()
	case *layers.IPv6:
		if p.Layer(layers.LayerTypeIPv6Fragment) != nil {
			s.fragments++
			return
		}
		netFlow = ip.NetworkFlow()
	default:
		s.notTCP["not IP"]++
		return
	}
	tcp, ok := p.TransportLayer().(*layers.TCP)
	if !ok {
		switch p.TransportLayer().(type) {
		case *layers.UDP:
			s.notTCP["UDP"]++
		default:
			if p.Layer(layers.LayerTypeICMPv4) != nil || p.Layer(layers.LayerTypeICMPv6) != nil {
				s.notTCP["ICMP"]++
			} else {
				s.notTCP["other IP"]++
			}
		}
		return
	}
	src, _ := netip.AddrFromSlice(netFlow.Src().Raw())
	dst, _ := netip.AddrFromSlice(netFlow.Dst().Raw())
	k := pcapKey{netip.AddrPortFrom(src, uint16(tcp.SrcPort)), netip.AddrPortFrom(dst, uint16(tcp.DstPort))}
	st, d := s.streamOf(k)
	if st == nil {
		// Only a SYN or data begins a stream: an ACK or a FIN after a
		// connection closed begins none.
		if !tcp.SYN && len(tcp.Payload) == 0 {
			return
		}
		if len(s.byKey) >= captureMaxOpen {
			if s.unfollowed == 0 {
				s.queue = append(s.queue, pcapEvent{ev: captureEvent{Kind: capNote, T: s.since(ci.Timestamp), Note: captureFullNote}})
			}
			s.unfollowed++
			return
		}
		st = s.newStream(k, tcp, ci.Timestamp)
	}
	if tcp.ACK {
		// Bytes of the other direction this acknowledges but the capture
		// lacks are given up before this packet's own data goes in.
		st.acked(1-d, tcp.Ack)
	}
	if !st.done {
		st.segment(d, tcp, ci.Timestamp)
	}
}

// pcapKey names a TCP connection: the endpoint that sent the first packet
// seen, then the other.
type pcapKey [2]netip.AddrPort

// streamOf finds the stream of a packet from k[0] to k[1] and the index of
// its direction (0: sent by the stream's endpoint a).
func (s *pcapSource) streamOf(k pcapKey) (*pcapStream, int) {
	if st := s.byKey[k]; st != nil {
		return st, 0
	}
	if st := s.byKey[pcapKey{k[1], k[0]}]; st != nil {
		return st, 1
	}
	return nil, 0
}

// pcapStream is one TCP connection: a is the endpoint that sent the first
// packet seen, b the other.
type pcapStream struct {
	key     pcapKey
	src     *pcapSource
	seq     int // creation order
	a, b    netip.AddrPort
	server  int8 // which endpoint is the server: 'a', 'b', or 0 while unknown
	state   int8 // streamUndecided, streamEncchat or streamOther
	conn    int  // the capture's connection number, once an event is out
	opened  time.Time
	syn     bool // the connection's start is in the capture
	held    []pcapEvent
	heldLen int
	sniff   [2][]byte // the first bytes of each direction, while undecided
	ending  time.Time // the last FIN or RST
	done    bool      // both directions ended, or the capture did
	hadData bool
	byPort  bool       // one end is on encchatPort
	half    [2]tcpHalf // a's direction, then b's
}

const (
	streamUndecided = iota
	streamEncchat
	streamOther
)

// newStream follows a new connection from its first packet seen.
func (s *pcapSource) newStream(k pcapKey, tcp *layers.TCP, t time.Time) *pcapStream {
	s.streams++
	st := &pcapStream{src: s, seq: s.streams, key: k, a: k[0], b: k[1], opened: t, syn: tcp.SYN}
	s.byKey[k] = st
	switch {
	case tcp.SYN && !tcp.ACK:
		st.server = 'b'
	case tcp.SYN:
		st.server = 'a'
	case tcp.DstPort == encchatPort && tcp.SrcPort != encchatPort:
		st.server = 'b'
	case tcp.SrcPort == encchatPort && tcp.DstPort != encchatPort:
		st.server = 'a'
	}
	// A stream on encchat's port is encchat's from its SYN or its first
	// byte.
	st.byPort = tcp.SrcPort == encchatPort || tcp.DstPort == encchatPort
	if st.byPort && tcp.SYN {
		st.decide(streamEncchat)
	}
	return st
}

// deliver takes the next bytes of direction d, in order, or (skip > 0)
// the number of bytes the capture lacks before them.
func (st *pcapStream) deliver(d, skip int, data []byte, t time.Time) {
	if st.state == streamOther {
		return
	}
	fromA := d == 0
	if skip > 0 {
		st.emit(pcapEvent{ev: captureEvent{Kind: capGap, T: st.src.since(t), Gap: skip}, fromA: fromA})
	}
	if len(data) > 0 {
		st.hadData = true
		data = bytes.Clone(data)
		switch {
		case st.state == streamUndecided && st.byPort:
			st.decide(streamEncchat)
		case st.state == streamUndecided:
			st.sniffFirst(fromA, data)
		}
		st.emit(pcapEvent{ev: captureEvent{Kind: capData, T: st.src.since(t), Data: data}, fromA: fromA})
	}
}

// complete ends the stream: both directions closed, or the capture ended
// (a connection with no FIN or RST is then still open).
func (st *pcapStream) complete() {
	if st.done {
		return
	}
	if st.state == streamUndecided {
		st.decide(streamOther)
	}
	if st.state == streamEncchat && !st.ending.IsZero() {
		st.emit(pcapEvent{ev: captureEvent{Kind: capClose, T: st.src.since(st.ending)}})
	}
	st.done = true
	for d := range st.half {
		for len(st.half[d].pending) > 0 {
			st.unhold(d)
		}
	}
	if st.src.byKey[st.key] == st {
		delete(st.src.byKey, st.key)
	}
}

// sniffFirst decides an undecided stream by its first bytes: an encchat
// server speaks first, with a PEM public key or a modern ServerHello.
func (st *pcapStream) sniffFirst(fromA bool, data []byte) {
	d := 0
	if !fromA {
		d = 1
	}
	other := st.sniff[1-d]
	if len(other) > 0 {
		// The other side spoke first and did not look like a server.
		st.decide(streamOther)
		return
	}
	need := pcapSniffLen - len(st.sniff[d])
	st.sniff[d] = append(st.sniff[d], data[:min(len(data), need)]...)
	switch firstFrameMatch(st.sniff[d]) {
	case matchYes:
		if fromA {
			st.server = 'a'
		} else {
			st.server = 'b'
		}
		st.decide(streamEncchat)
	case matchNo:
		st.decide(streamOther)
	}
}

const (
	matchNo = iota
	matchMaybe
	matchYes
)

// firstFrameMatch says whether b starts like an encchat server's first
// frame: ten ASCII digits, then a PEM public key or the modern magic.
// matchMaybe: b is too short to tell yet.
func firstFrameMatch(b []byte) int {
	for i := 0; i < min(len(b), headerLen); i++ {
		if !isDigit(b[i]) {
			return matchNo
		}
	}
	if len(b) < headerLen {
		return matchMaybe
	}
	if _, err := parseFrameHeader(b[:headerLen]); err != nil {
		return matchNo
	}
	rest := b[headerLen:]
	maybe := false
	for _, start := range []string{"-----BEGIN PUBLIC KEY-----", modernMagic} {
		n := min(len(rest), len(start))
		if string(rest[:n]) != start[:n] {
			continue
		}
		if n == len(start) {
			return matchYes
		}
		maybe = true
	}
	if maybe {
		return matchMaybe
	}
	return matchNo
}

// decide settles what the stream is; an encchat stream's held events go out.
func (st *pcapStream) decide(state int8) {
	st.state = state
	st.sniff = [2][]byte{}
	if state == streamOther && st.hadData {
		// Packets with no payload (a last ACK after both FINs) are no
		// connection worth naming.
		st.src.others++
		if len(st.src.otherNames) < 3 {
			st.src.otherNames = append(st.src.otherNames, st.a.String()+" ↔ "+st.b.String())
		}
	}
	if state == streamOther {
		st.held, st.heldLen = nil, 0
		for d := range st.half {
			h := &st.half[d]
			st.src.pages -= h.pages
			h.pending, h.pages = nil, 0
		}
		return
	}
	if st.server == 0 {
		st.server = 'b' // no SYN and no first frame to tell: the receiver of the first packet
	}
	client, server := st.a, st.b
	if st.server == 'a' {
		client, server = st.b, st.a
	}
	q := &st.src.queue
	*q = append(*q, pcapEvent{ev: captureEvent{Kind: capOpen, T: st.src.since(st.opened), Client: client.String(), Server: server.String()}, stream: st})
	if !st.syn {
		*q = append(*q, pcapEvent{ev: captureEvent{Kind: capNote, T: st.src.since(st.opened),
			Note: "no SYN in the capture: it began during this connection, so its first frames may be cut"}, stream: st})
	}
	for _, pe := range st.held {
		*q = append(*q, st.directed(pe))
	}
	st.held, st.heldLen = nil, 0
}

// directed sets an event's direction from who sent it.
func (st *pcapStream) directed(pe pcapEvent) pcapEvent {
	pe.ev.Dir = wireC2S
	if pe.fromA == (st.server == 'a') {
		pe.ev.Dir = wireS2C
	}
	return pe
}

// emit queues an event of the stream, or holds it while the stream is
// undecided.
func (st *pcapStream) emit(pe pcapEvent) {
	pe.stream = st
	switch st.state {
	case streamEncchat:
		st.src.queue = append(st.src.queue, st.directed(pe))
	case streamUndecided:
		st.held = append(st.held, pe)
		st.heldLen += len(pe.ev.Data)
		if st.heldLen > pcapMaxUndecided {
			st.decide(streamOther)
		}
	}
}
