//go:build !js

// Reading captures made by Wireshark, dumpcap or tcpdump (pcap and pcapng):
// each packet is decoded down to TCP, gopacket's reassembly puts each TCP
// connection's two byte streams back in order (retransmissions, segments out
// of order, connections whose SYN was not captured), the encchat connections
// are picked out (port 5174, or a first frame that is an encchat server's),
// and their bytes come out as the same open, data and close events an
// encchat capture holds, so replay, -html, -pcap and -send read both alike.
// What was skipped (other packets, other connections, bytes missing from
// the capture) comes out as notes.

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/gopacket/gopacket/reassembly"
)

// capGap is an event only a pcap produces: Gap bytes of one direction are
// missing from the capture (segments the capture did not see).
const capGap = "gap"

// capNote is an event only a pcap produces: something replay should say,
// about one connection (Conn) or, with Conn 0, about the whole capture.
const capNote = "note"

// encchatPort is the port a stream is taken as encchat's by (defaultPort).
const encchatPort = 5174

// Bounds of the reassembly's memory: out-of-order data waits in pages of
// about 1.9 KB; past these limits, after pcapWaitGap of capture time, or
// once the receiver acknowledges them, the missing bytes are given up as a
// gap.
const (
	pcapPagesPerConn = 256  // about 0.5 MB per connection
	pcapPagesTotal   = 4096 // about 8 MB in all
	pcapWaitGap      = 10 * time.Second
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
	read    func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
	ng      *pcapgo.NgReader // nil for a pcap
	hdr     captureHeader
	started time.Time
	last    time.Time // the latest packet time seen
	asm     *reassembly.Assembler
	streams int         // streams created, to order events from a flush
	queue   []pcapEvent // events the last packet or flush produced
	events  []pcapEvent // the queue being handed out by next
	conns   int         // encchat connections numbered so far
	packets int
	flushed time.Time               // when data waiting for a gap was last given up
	byKey   map[pcapKey]*pcapStream // the streams the reassembly holds
	done    bool

	// What was skipped, for the notes at the end.
	notTCP     map[string]int
	fragments  int
	cutShort   string // the capture ends inside a packet
	others     int    // TCP connections that are not encchat
	otherNames []string
	overlap    [2]int // retransmitted segments and their bytes
	reordered  int    // segments that arrived ahead of their turn
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
	s.asm = reassembly.NewAssembler(reassembly.NewStreamPool(s))
	s.asm.MaxBufferedPagesPerConnection = pcapPagesPerConn
	s.asm.MaxBufferedPagesTotal = pcapPagesTotal
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
		if s.last.Sub(s.flushed) > pcapWaitGap {
			// Bytes waited for longer than this were not captured.
			s.flushed = s.last
			s.flush(func() { s.asm.FlushWithOptions(reassembly.FlushOptions{T: s.last.Add(-pcapWaitGap)}) })
		}
	}
	s.events = append(s.events, s.queue...)
	s.queue = s.queue[:0]
	return nil
}

// flush runs a flush of the reassembly; the events it produces, from many
// streams in no particular order, are put in the order the streams began.
func (s *pcapSource) flush(f func()) {
	n := len(s.queue)
	f()
	sort.SliceStable(s.queue[n:], func(i, j int) bool {
		a, b := s.queue[n+i].stream, s.queue[n+j].stream
		return a != nil && (b == nil || a.seq < b.seq)
	})
}

// end flushes what the reassembly still holds and adds the notes on what
// was skipped.
func (s *pcapSource) end() {
	s.done = true
	s.flush(func() { s.asm.FlushAll() })
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

// packet decodes one packet and gives its TCP segment to the reassembly.
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
	if st, d := s.streamOf(netFlow, tcp); st != nil {
		if since, ok := st.acksMissing(d, tcp); ok {
			// Data waiting since then or longer is given up, before this
			// packet's own data goes in.
			s.flush(func() { s.asm.FlushWithOptions(reassembly.FlushOptions{T: since.Add(time.Nanosecond)}) })
		}
	}
	ctx := pcapContext(ci)
	s.asm.AssembleWithContext(netFlow, tcp, &ctx)
}

// pcapKey names a TCP connection as the reassembly sees it.
type pcapKey [2]gopacket.Flow

// streamOf finds the stream of a packet and the index of its direction.
func (s *pcapSource) streamOf(netFlow gopacket.Flow, tcp *layers.TCP) (*pcapStream, int) {
	k := pcapKey{netFlow, tcp.TransportFlow()}
	if st := s.byKey[k]; st != nil {
		return st, 0
	}
	if st := s.byKey[pcapKey{k[0].Reverse(), k[1].Reverse()}]; st != nil {
		return st, 1
	}
	return nil, 0
}

// acksMissing reports whether a packet of direction d acknowledges bytes of
// the other direction beyond those the capture has, while the other
// direction waits for missing bytes: the peer has them, the capture missed
// them, and waiting longer is no use. (One more is a FIN.) It returns since
// when the other direction waits.
func (st *pcapStream) acksMissing(d int, tcp *layers.TCP) (time.Time, bool) {
	o := 1 - d
	if !tcp.ACK || !st.waiting[o] || st.base[o].Add(st.delivered[o]+1).Difference(reassembly.Sequence(tcp.Ack)) <= 0 {
		return time.Time{}, false
	}
	st.waiting[o] = false
	return st.since[o], true
}

// pcapContext gives the reassembly each packet's capture time.
type pcapContext gopacket.CaptureInfo

func (c *pcapContext) GetCaptureInfo() gopacket.CaptureInfo { return gopacket.CaptureInfo(*c) }

// pcapStream is one TCP connection as the reassembly sees it: a is the
// endpoint that sent the first packet seen, b the other.
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
	closed  bool
	hadData bool
	byPort  bool // one end is on encchatPort
	// Per direction (0: a's): its first sequence number, the bytes
	// delivered since, and since when a segment that came ahead of its
	// turn waits.
	base      [2]reassembly.Sequence
	delivered [2]int
	waiting   [2]bool
	since     [2]time.Time
}

const (
	streamUndecided = iota
	streamEncchat
	streamOther
)

// New is the reassembly's StreamFactory: a stream for each new connection.
func (s *pcapSource) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, ac reassembly.AssemblerContext) reassembly.Stream {
	s.streams++
	src, _ := netip.AddrFromSlice(netFlow.Src().Raw())
	dst, _ := netip.AddrFromSlice(netFlow.Dst().Raw())
	st := &pcapStream{
		src: s, seq: s.streams,
		a:      netip.AddrPortFrom(src, uint16(tcp.SrcPort)),
		b:      netip.AddrPortFrom(dst, uint16(tcp.DstPort)),
		opened: ac.GetCaptureInfo().Timestamp,
		syn:    tcp.SYN,
		key:    pcapKey{netFlow, tcpFlow},
	}
	s.byKey[st.key] = st
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
	// byte: a bare ACK after a connection closed starts no connection.
	st.byPort = tcp.SrcPort == encchatPort || tcp.DstPort == encchatPort
	if st.byPort && tcp.SYN {
		st.decide(streamEncchat)
	}
	return st
}

// Accept takes every segment of an encchat or undecided stream. A
// direction whose SYN was not captured starts at its first segment.
func (st *pcapStream) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, ac reassembly.AssemblerContext) bool {
	if st.state == streamOther || st.closed {
		return false
	}
	if tcp.SYN {
		st.syn = true
	}
	if nextSeq == -1 && !tcp.SYN {
		*start = true
	}
	d := st.index(dir)
	seq, n := reassembly.Sequence(tcp.Seq), len(tcp.Payload)
	switch ahead := nextSeq.Difference(seq); {
	case nextSeq == -1:
		st.base[d] = seq
		if tcp.SYN {
			st.base[d] = seq.Add(1)
		}
	case ahead > 0 && n > 0:
		st.src.reordered++
		if !st.waiting[d] {
			st.waiting[d], st.since[d] = true, ci.Timestamp
		}
	case ahead < 0 && n > 0: // starts before the next byte due: sent before
		st.src.overlap[0]++
		st.src.overlap[1] += min(n, -ahead)
	}
	if tcp.FIN || tcp.RST {
		st.ending = ci.Timestamp
	}
	return true
}

// ReassembledSG receives the next bytes of one direction, in order.
func (st *pcapStream) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	dir, _, _, skip := sg.Info()
	n, _ := sg.Lengths()
	if st.state == streamOther || st.closed || (n == 0 && skip <= 0) {
		return
	}
	t := sg.CaptureInfo(0).Timestamp
	if ac != nil {
		t = ac.GetCaptureInfo().Timestamp
	}
	fromA := dir == reassembly.TCPDirClientToServer
	st.delivered[st.index(dir)] += max(skip, 0) + n
	if skip > 0 {
		st.emit(pcapEvent{ev: captureEvent{Kind: capGap, T: st.src.since(t), Gap: skip}, fromA: fromA})
	}
	if n > 0 {
		st.hadData = true
		data := bytes.Clone(sg.Fetch(n))
		switch {
		case st.state == streamUndecided && st.byPort:
			st.decide(streamEncchat)
		case st.state == streamUndecided:
			st.sniffFirst(fromA, data)
		}
		st.emit(pcapEvent{ev: captureEvent{Kind: capData, T: st.src.since(t), Data: data}, fromA: fromA})
	}
}

// ReassemblyComplete ends the stream: both directions closed, or the
// capture ended (a connection with no FIN or RST is then still open).
func (st *pcapStream) ReassemblyComplete(ac reassembly.AssemblerContext) bool {
	if st.state == streamUndecided {
		st.decide(streamOther)
	}
	if st.state == streamEncchat && !st.closed && !st.ending.IsZero() {
		st.emit(pcapEvent{ev: captureEvent{Kind: capClose, T: st.src.since(st.ending)}})
	}
	st.closed = true
	if st.src.byKey[st.key] == st {
		delete(st.src.byKey, st.key)
	}
	return true
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

// index is 0 for the direction of endpoint a's packets, 1 for b's.
func (st *pcapStream) index(dir reassembly.TCPFlowDirection) int {
	if dir == reassembly.TCPDirClientToServer {
		return 0
	}
	return 1
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
