// pcap export (replay -pcap): a capture's connections as IPv4 TCP packets
// that Wireshark and tshark open, with the TCP streams rebuilt.

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapMSS is the largest TCP payload per synthesized segment (Ethernet MTU).
const pcapMSS = 1460

// pcapExporter writes a capture's connections as IPv4 TCP packets with a
// synthesized handshake, consistent sequence numbers and a FIN exchange, so
// Wireshark's "Follow TCP Stream" shows the recorded bytes.
type pcapExporter struct {
	w        *pcapgo.Writer
	start    time.Time
	addr     string // the capture's address, for connections without one
	only     int
	conns    map[int]*pcapConn
	buf      gopacket.SerializeBuffer
	ipID     uint16
	Conns    int
	Packets  int
	Segments int
}

type pcapConn struct {
	client, server netip.AddrPort
	cSeq, sSeq     uint32
}

// exportPcap converts the capture in r into a pcap written to w. only, if
// not 0, keeps one connection. A bad capture line stops it with a
// *lineError; what came before is written.
func exportPcap(r io.Reader, w io.Writer, only int) (*pcapExporter, error) {
	cr, err := newCaptureReader(r)
	if err != nil {
		return nil, err
	}
	p := &pcapExporter{
		w:     pcapgo.NewWriter(w),
		start: cr.Started,
		addr:  cr.Header.Addr,
		only:  only,
		conns: make(map[int]*pcapConn),
		buf:   gopacket.NewSerializeBuffer(),
	}
	if p.start.IsZero() {
		p.start = time.Unix(0, 0)
	}
	if err := p.w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		return p, err
	}
	var ev captureEvent
	for {
		err := cr.next(&ev)
		if err == io.EOF {
			return p, nil
		}
		if err != nil {
			return p, err
		}
		if only != 0 && ev.Conn != only {
			continue
		}
		if err := p.event(&ev); err != nil {
			return p, err
		}
	}
}

func (p *pcapExporter) event(ev *captureEvent) error {
	c := p.conns[ev.Conn]
	if c == nil && ev.Kind != capClose {
		// A connection opens with a three-way handshake, also when the
		// capture began during it.
		c = &pcapConn{cSeq: 0x10000000 + uint32(ev.Conn)*0x1000, sSeq: 0x50000000 + uint32(ev.Conn)*0x1000}
		c.client, c.server = p.addrs(ev.Conn, ev.Client, ev.Server)
		p.conns[ev.Conn] = c
		p.Conns++
		if err := p.packet(ev.T, c, true, pcapSYN, nil); err != nil {
			return err
		}
		c.cSeq++
		if err := p.packet(ev.T, c, false, pcapSYN|pcapACK, nil); err != nil {
			return err
		}
		c.sSeq++
		if err := p.packet(ev.T, c, true, pcapACK, nil); err != nil {
			return err
		}
	}
	switch ev.Kind {
	case capData:
		fromClient := ev.Dir == wireC2S
		for data := ev.Data; len(data) > 0; {
			n := min(len(data), pcapMSS)
			if err := p.packet(ev.T, c, fromClient, pcapACK|pcapPSH, data[:n]); err != nil {
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
	case capClose:
		if c == nil {
			return nil
		}
		if err := p.packet(ev.T, c, true, pcapFIN|pcapACK, nil); err != nil {
			return err
		}
		c.cSeq++
		if err := p.packet(ev.T, c, false, pcapFIN|pcapACK, nil); err != nil {
			return err
		}
		c.sSeq++
		if err := p.packet(ev.T, c, true, pcapACK, nil); err != nil {
			return err
		}
		delete(p.conns, ev.Conn)
	}
	return nil
}

// addrs picks IPv4 endpoints for a connection: the recorded ones when they
// are IPv4, else 10.0.0.2 (client) and 10.0.0.1 (server), keeping the ports.
func (p *pcapExporter) addrs(conn int, client, server string) (netip.AddrPort, netip.AddrPort) {
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

func (p *pcapExporter) packet(t float64, c *pcapConn, fromClient bool, flags int, payload []byte) error {
	src, dst, seq, ack := c.client, c.server, c.cSeq, c.sSeq
	if !fromClient {
		src, dst, seq, ack = c.server, c.client, c.sSeq, c.cSeq
	}
	p.ipID++
	ip := &layers.IPv4{
		Version: 4, IHL: 5, TTL: 64, Id: p.ipID, Flags: layers.IPv4DontFragment,
		Protocol: layers.IPProtocolTCP,
		SrcIP:    src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice(),
	}
	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Window: 65535,
		SYN: flags&pcapSYN != 0, ACK: flags&pcapACK != 0, PSH: flags&pcapPSH != 0, FIN: flags&pcapFIN != 0,
	}
	if tcp.ACK {
		tcp.Ack = ack
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return err
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(p.buf, opts, ip, tcp, gopacket.Payload(payload)); err != nil {
		return err
	}
	b := p.buf.Bytes()
	ts := p.start.Add(time.Duration(t * float64(time.Second)))
	p.Packets++
	return p.w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b)
}

// replayToPcap is replay -pcap.
func replayToPcap(capturePath, out string, conn int, stdout, stderr io.Writer) int {
	in, err := os.Open(capturePath)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	defer in.Close()
	f, err := os.Create(out)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	p, err := exportPcap(in, bw, conn)
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
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: %d connections, %d packets (%d data segments); open it in Wireshark, or: tshark -r %s -q -z follow,tcp,ascii,0\n",
		out, p.Conns, p.Packets, p.Segments, out)
	return 0
}
