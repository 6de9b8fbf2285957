// A synthetic capture builder for the tests of the pcap reader and the
// dissector: an encchat capture cut into TCP segments, written as a pcap or
// pcapng of any link type encchat reads.

package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// synthSeg is one packet of a synthetic capture.
type synthSeg struct {
	t                 float64
	conn              int
	src, dst          netip.AddrPort
	fromClient        bool
	seq, ack          uint32
	syn, fin, rst     bool
	payload           []byte
	udp, arp          bool // not TCP at all
	noACK             bool // a segment without the ACK flag
	handshake, closer bool // part of the three-way handshake or the FIN exchange
}

// synthISN are the initial sequence numbers; the client's wraps around
// 2^32 within the first frames.
func synthISN(conn int) (client, server uint32) {
	return 0xffffff00 - uint32(conn)*0x100, 0x50000000 + uint32(conn)*0x1000
}

// synthSegments turns an encchat capture into TCP segments of at most mss
// payload bytes, with a three-way handshake and a FIN exchange.
func synthSegments(t testing.TB, capture string, mss int) []synthSeg {
	t.Helper()
	cr, err := newCaptureReader(strings.NewReader(capture))
	if err != nil {
		t.Fatal(err)
	}
	var evs []captureEvent
	for {
		var ev captureEvent
		if err := cr.next(&ev); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		ev.Data = bytes.Clone(ev.Data)
		evs = append(evs, ev)
	}
	type conn struct {
		client, server netip.AddrPort
		cSeq, sSeq     uint32
	}
	conns := map[int]*conn{}
	var segs []synthSeg
	add := func(ev captureEvent, c *conn, fromClient bool, s synthSeg) {
		s.t, s.conn, s.fromClient = ev.T, ev.Conn, fromClient
		s.src, s.dst, s.seq, s.ack = c.client, c.server, c.cSeq, c.sSeq
		if !fromClient {
			s.src, s.dst, s.seq, s.ack = c.server, c.client, c.sSeq, c.cSeq
		}
		segs = append(segs, s)
	}
	for _, ev := range evs {
		c := conns[ev.Conn]
		switch ev.Kind {
		case capOpen:
			c = &conn{client: netip.MustParseAddrPort(ev.Client), server: netip.MustParseAddrPort(ev.Server)}
			c.cSeq, c.sSeq = synthISN(ev.Conn)
			conns[ev.Conn] = c
			add(ev, c, true, synthSeg{syn: true, handshake: true})
			c.cSeq++
			add(ev, c, false, synthSeg{syn: true, handshake: true})
			c.sSeq++
			add(ev, c, true, synthSeg{handshake: true})
		case capData:
			for data := ev.Data; len(data) > 0; {
				n := min(len(data), mss)
				add(ev, c, ev.Dir == wireC2S, synthSeg{payload: bytes.Clone(data[:n])})
				if ev.Dir == wireC2S {
					c.cSeq += uint32(n)
				} else {
					c.sSeq += uint32(n)
				}
				data = data[n:]
			}
		case capClose:
			add(ev, c, true, synthSeg{fin: true, closer: true})
			c.cSeq++
			add(ev, c, false, synthSeg{fin: true, closer: true})
			c.sSeq++
			add(ev, c, true, synthSeg{closer: true})
		}
	}
	return segs
}

// synthPcap writes segments as a capture of link type lt: pcapng when ng
// is set, else pcap (with nanosecond times when nano is set).
func synthPcap(t testing.TB, segs []synthSeg, lt layers.LinkType, ng, nano bool) []byte {
	t.Helper()
	var out bytes.Buffer
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	var write func(ci gopacket.CaptureInfo, b []byte) error
	var flush func() error
	switch {
	case ng:
		w, err := pcapgo.NewNgWriterInterface(&out, pcapgo.NgInterface{Name: "synth0", LinkType: lt, SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
		if err != nil {
			t.Fatal(err)
		}
		write, flush = w.WritePacket, w.Flush
	default:
		w := pcapgo.NewWriter(&out)
		if nano {
			w = pcapgo.NewWriterNanos(&out)
		}
		if err := w.WriteFileHeader(65535, lt); err != nil {
			t.Fatal(err)
		}
		write, flush = w.WritePacket, func() error { return nil }
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	for _, s := range segs {
		b := synthPacket(t, buf, opts, s, lt)
		ts := start.Add(time.Duration(s.t * float64(time.Second)))
		if err := write(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// synthPacket builds one packet, link-layer header included.
func synthPacket(t testing.TB, buf gopacket.SerializeBuffer, opts gopacket.SerializeOptions, s synthSeg, lt layers.LinkType) []byte {
	t.Helper()
	v6 := s.src.Addr().Is6()
	var ls []gopacket.SerializableLayer
	if s.arp {
		ls = append(ls, &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{255, 255, 255, 255, 255, 255}, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
				SourceHwAddress: []byte{2, 0, 0, 0, 0, 1}, SourceProtAddress: []byte{127, 0, 0, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{127, 0, 0, 2}})
		if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(buf.Bytes())
	}
	var ip gopacket.NetworkLayer
	if v6 {
		ip = &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64, SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
	} else {
		ip = &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: s.src.Addr().AsSlice(), DstIP: s.dst.Addr().AsSlice()}
	}
	var l4 gopacket.SerializableLayer
	if s.udp {
		udp := &layers.UDP{SrcPort: layers.UDPPort(s.src.Port()), DstPort: layers.UDPPort(s.dst.Port())}
		udp.SetNetworkLayerForChecksum(ip)
		if v6 {
			ip.(*layers.IPv6).NextHeader = layers.IPProtocolUDP
		} else {
			ip.(*layers.IPv4).Protocol = layers.IPProtocolUDP
		}
		l4 = udp
	} else {
		tcp := &layers.TCP{SrcPort: layers.TCPPort(s.src.Port()), DstPort: layers.TCPPort(s.dst.Port()),
			Seq: s.seq, Ack: s.ack, Window: 65535, SYN: s.syn, FIN: s.fin, RST: s.rst, ACK: !(s.syn && s.fromClient) && !s.noACK, PSH: len(s.payload) > 0}
		if !tcp.ACK {
			tcp.Ack = 0
		}
		tcp.SetNetworkLayerForChecksum(ip)
		l4 = tcp
	}
	ls = append(ls, ip.(gopacket.SerializableLayer), l4, gopacket.Payload(s.payload))
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	pkt := buf.Bytes()
	family := uint32(2) // AF_INET
	etherType := uint16(layers.EthernetTypeIPv4)
	if v6 {
		family, etherType = 24, uint16(layers.EthernetTypeIPv6) // AF_INET6 as BSD numbers it
	}
	var link []byte
	switch lt {
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
	case layers.LinkTypeEthernet:
		link = append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, byte(etherType>>8), byte(etherType))
	case layers.LinkTypeNull: // host byte order, as written on a little-endian machine
		link = binary.LittleEndian.AppendUint32(nil, family)
	case layers.LinkTypeLoop: // network byte order
		link = binary.BigEndian.AppendUint32(nil, family)
	case layers.LinkTypeLinuxSLL: // packet type, ARPHRD_LOOPBACK, address length, address, protocol
		link = []byte{0, 0, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, byte(etherType >> 8), byte(etherType)}
	case layers.LinkTypeLinuxSLL2: // protocol, reserved, interface index, ARPHRD_LOOPBACK, packet type, address length, address
		link = []byte{byte(etherType >> 8), byte(etherType), 0, 0, 0, 0, 0, 1, 3, 4, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0}
	default:
		t.Fatalf("no synthetic link header for %v", lt)
	}
	return append(link, pkt...)
}

// toV6 moves every address to IPv6, ::1 for 127.0.0.1, keeping the ports.
func toV6(segs []synthSeg) []synthSeg {
	m := func(ap netip.AddrPort) netip.AddrPort {
		a := ap.Addr().As4()
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte{15: a[3]}), ap.Port())
	}
	out := slices.Clone(segs)
	for i := range out {
		out[i].src, out[i].dst = m(out[i].src), m(out[i].dst)
	}
	return out
}
