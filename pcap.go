// pcap export (replay -pcap): a capture's connections as TCP packets that
// Wireshark and tshark open, with the TCP streams rebuilt. A name ending
// .pcapng writes pcapng, and with a key each record's plaintext goes into
// the comment of the packet that completes it.

//go:build !js

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapMSS is the largest TCP payload per synthesized segment (Ethernet MTU).
const pcapMSS = 1460

// pcapMaxComment bounds one packet comment (a pcapng option is at most
// 65535 bytes).
const pcapMaxComment = 60000

// pcapExporter writes a capture's connections as IPv4 (or IPv6) TCP
// packets with a synthesized handshake, consistent sequence numbers and a
// FIN exchange, so Wireshark's "Follow TCP Stream" shows the recorded bytes.
type pcapExporter struct {
	w        packetWriter
	start    time.Time
	addr     string // the capture's address, for connections without one
	only     int
	conns    map[int]*pcapConn
	buf      gopacket.SerializeBuffer
	ipID     uint16
	Conns    int
	Packets  int
	Segments int
	Comments int
}

// packetWriter is the file being written: pcap, or pcapng with comments.
type packetWriter interface {
	writePacket(ci gopacket.CaptureInfo, data []byte, comments []string) error
	flush() error
}

type pcapWriter struct{ w *pcapgo.Writer }

func (p pcapWriter) writePacket(ci gopacket.CaptureInfo, data []byte, _ []string) error {
	return p.w.WritePacket(ci, data)
}
func (p pcapWriter) flush() error { return nil }

type pcapngWriter struct{ w *pcapgo.NgWriter }

func (p pcapngWriter) writePacket(ci gopacket.CaptureInfo, data []byte, comments []string) error {
	return p.w.WritePacketWithOptions(ci, data, pcapgo.NgPacketOptions{Comments: comments})
}
func (p pcapngWriter) flush() error { return p.w.Flush() }

// exportPcap converts the capture in r into a pcap (pcapng when ng is set)
// written to w. only, if not 0, keeps one connection. With keys (pcapng
// only), the capture is replayed as it is written and each decrypted
// record's text becomes a packet comment. A bad capture line stops it with
// a *lineError; what came before is written.
func exportPcap(r io.Reader, w io.Writer, only int, ng bool, keys *replayKeys) (*pcapExporter, error) {
	src, err := readCapture(r)
	if err != nil {
		return nil, err
	}
	hdr, started := src.header()
	p := &pcapExporter{
		start: started,
		addr:  hdr.Addr,
		only:  only,
		conns: make(map[int]*pcapConn),
		buf:   gopacket.NewSerializeBuffer(),
	}
	if p.start.IsZero() {
		p.start = time.Unix(0, 0)
	}
	if ng {
		nw, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{Name: "encchat", LinkType: layers.LinkTypeRaw, SnapLength: 65535},
			pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "encchat replay -pcap"}})
		if err != nil {
			return p, err
		}
		p.w = pcapngWriter{nw}
	} else {
		pw := pcapgo.NewWriter(w)
		if err := pw.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
			return p, err
		}
		p.w = pcapWriter{pw}
	}
	if keys.given() {
		tee := &pcapTee{src: src, p: p}
		err = replaySource(tee, &replayOptions{view: "peer", conn: only, keys: keys}, tee)
	} else {
		err = p.copyEvents(src)
	}
	if ferr := p.w.flush(); err == nil {
		err = ferr
	}
	return p, err
}

// copyEvents writes every event of src.
func (p *pcapExporter) copyEvents(src captureSource) error {
	var ev captureEvent
	for {
		err := src.next(&ev)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := p.event(&ev, nil); err != nil {
			return err
		}
	}
}

// pcapTee sits between a capture and the replay engine: it hands each
// event to the replayer, and writes it once the replayer has decoded the
// frames it completes, with their texts as comments.
type pcapTee struct {
	discardOutput
	src      captureSource
	p        *pcapExporter
	prev     captureEvent
	has      bool
	comments []string
}

func (t *pcapTee) header() (captureHeader, time.Time) { return t.src.header() }

func (t *pcapTee) next(ev *captureEvent) error {
	if t.has {
		t.has = false
		if err := t.p.event(&t.prev, t.comments); err != nil {
			return err
		}
		t.comments = t.comments[:0]
	}
	err := t.src.next(ev)
	if err == nil {
		t.prev, t.has = *ev, true
	}
	return err
}

// frame collects the text of each record the event being written completes.
func (t *pcapTee) frame(f *replayFrame) {
	if f.HasText {
		t.comments = append(t.comments, commentText(f.Text))
	}
}

// commentText is a record's text cut to fit one pcapng comment.
func commentText(text []byte) string {
	if len(text) <= pcapMaxComment {
		return string(text)
	}
	cut := pcapMaxComment
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return string(text[:cut]) + "…"
}

func (p *pcapExporter) event(ev *captureEvent, comments []string) error {
	if p.only != 0 && ev.Conn != p.only {
		return nil
	}
	if ev.Kind == capNote {
		return nil
	}
	c := p.conns[ev.Conn]
	if c == nil && ev.Kind != capClose && ev.Kind != capGap {
		// A connection opens with a three-way handshake, also when the
		// capture began during it.
		c = &pcapConn{cSeq: 0x10000000 + uint32(ev.Conn)*0x1000, sSeq: 0x50000000 + uint32(ev.Conn)*0x1000}
		c.client, c.server = p.addrs(ev.Conn, ev.Client, ev.Server)
		p.conns[ev.Conn] = c
		p.Conns++
		if err := p.packet(ev.T, c, true, pcapSYN, nil, nil); err != nil {
			return err
		}
		c.cSeq++
		if err := p.packet(ev.T, c, false, pcapSYN|pcapACK, nil, nil); err != nil {
			return err
		}
		c.sSeq++
		if err := p.packet(ev.T, c, true, pcapACK, nil, nil); err != nil {
			return err
		}
	}
	switch ev.Kind {
	case capData:
		fromClient := ev.Dir == wireC2S
		for data := ev.Data; len(data) > 0; {
			n := min(len(data), pcapMSS)
			var cm []string
			if n == len(data) {
				cm = comments // on the segment that completes the frames
				p.Comments += len(cm)
			}
			if err := p.packet(ev.T, c, fromClient, pcapACK|pcapPSH, data[:n], cm); err != nil {
				return err
			}
			p.Segments++
			if fromClient {
				c.cSeq += uint32(n)
			} else {
				c.sSeq += uint32(n)
			}
			data = data[n:]
		}
	case capGap:
		// The bytes a pcap lacked stay missing: Wireshark says "previous
		// segment not captured".
		if c != nil && ev.Dir == wireC2S {
			c.cSeq += uint32(ev.Gap)
		} else if c != nil {
			c.sSeq += uint32(ev.Gap)
		}
	case capClose:
		if c == nil {
			return nil
		}
		if err := p.packet(ev.T, c, true, pcapFIN|pcapACK, nil, nil); err != nil {
			return err
		}
		c.cSeq++
		if err := p.packet(ev.T, c, false, pcapFIN|pcapACK, nil, nil); err != nil {
			return err
		}
		c.sSeq++
		if err := p.packet(ev.T, c, true, pcapACK, nil, nil); err != nil {
			return err
		}
		delete(p.conns, ev.Conn)
	}
	return nil
}

type pcapConn struct {
	client, server netip.AddrPort
	cSeq, sSeq     uint32
}

// addrs picks the endpoints of a connection: the recorded ones when both
// are IPv6 or both are IPv4, else IPv4 10.0.0.2 (client) and 10.0.0.1
// (server) where one is missing, keeping the ports.
func (p *pcapExporter) addrs(conn int, client, server string) (netip.AddrPort, netip.AddrPort) {
	c6, err1 := netip.ParseAddrPort(client)
	s6, err2 := netip.ParseAddrPort(server)
	if err1 == nil && err2 == nil && c6.Addr().Is6() && !c6.Addr().Is4In6() && s6.Addr().Is6() && !s6.Addr().Is4In6() {
		return c6, s6
	}
	pick := func(s, fallback string, ip netip.Addr, port uint16) netip.AddrPort {
		for _, cand := range []string{s, fallback} {
			if ap, err := netip.ParseAddrPort(cand); err == nil {
				if ap.Port() != 0 {
					port = ap.Port()
				}
				if a := ap.Addr().Unmap(); a.Is4() {
					ip = a
				}
				break
			}
		}
		return netip.AddrPortFrom(ip, port)
	}
	c := pick(client, "", netip.AddrFrom4([4]byte{10, 0, 0, 2}), uint16(40000+conn%20000))
	s := pick(server, p.addr, netip.AddrFrom4([4]byte{10, 0, 0, 1}), 5174)
	return c, s
}

// TCP flags for packet.
const (
	pcapSYN = 1 << iota
	pcapACK
	pcapPSH
	pcapFIN
)

func (p *pcapExporter) packet(t float64, c *pcapConn, fromClient bool, flags int, payload []byte, comments []string) error {
	src, dst, seq, ack := c.client, c.server, c.cSeq, c.sSeq
	if !fromClient {
		src, dst, seq, ack = c.server, c.client, c.sSeq, c.cSeq
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Window: 65535,
		SYN: flags&pcapSYN != 0, ACK: flags&pcapACK != 0, PSH: flags&pcapPSH != 0, FIN: flags&pcapFIN != 0,
	}
	if tcp.ACK {
		tcp.Ack = ack
	}
	var ip gopacket.NetworkLayer
	if src.Addr().Is4() {
		p.ipID++
		ip = &layers.IPv4{
			Version: 4, IHL: 5, TTL: 64, Id: p.ipID, Flags: layers.IPv4DontFragment,
			Protocol: layers.IPProtocolTCP,
			SrcIP:    src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice(),
		}
	} else {
		ip = &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return err
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(p.buf, opts, ip.(gopacket.SerializableLayer), tcp, gopacket.Payload(payload)); err != nil {
		return err
	}
	b := p.buf.Bytes()
	ts := p.start.Add(time.Duration(t * float64(time.Second)))
	p.Packets++
	return p.w.writePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b, comments)
}

// replayToPcap is replay -pcap. A name ending .pcapng writes pcapng; with
// keys, its comments hold plaintext, so it is created 0600.
func replayToPcap(capturePath, out string, conn int, keys *replayKeys, stdout, stderr io.Writer) int {
	in, err := os.Open(capturePath)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	defer in.Close()
	ng := isPcapngName(out)
	f, err := createOutput(out, outputTruncate, keys.given())
	if err != nil {
		errorf(stderr, "%v", err)
		outputHint(stderr, err)
		return 1
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	p, err := exportPcap(in, bw, conn, ng, keys)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var le *lineError
	switch {
	case errors.As(err, &le):
		errorf(stderr, "%s", le.in(capturePath))
		if p != nil {
			hintf(stderr, "%s holds the %d connections before that line", out, p.Conns)
		}
		return 1
	case err != nil:
		errorf(stderr, "%v", err)
		if err == errWrongKey {
			hintf(stderr, "-key takes the 64 hex digits after the session id on a CLASSIC line of a key log; a modern session needs its key log (-keylog)")
		}
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: %d connections, %d packets (%d data segments)", out, p.Conns, p.Packets, p.Segments)
	if keys.given() {
		fmt.Fprintf(stdout, ", %d records' plaintext in packet comments (keep it private)", p.Comments)
	}
	fmt.Fprintf(stdout, "; open it in Wireshark, or: tshark -r %s -q -z follow,tcp,ascii,0\n", out)
	return 0
}

// isPcapngName reports whether an output name asks for pcapng.
func isPcapngName(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".pcapng")
}
