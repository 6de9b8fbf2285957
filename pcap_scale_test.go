// Tests and benchmarks of the pcap reader's cost on crafted captures: many
// idle connections, then packets far apart in time or acknowledgements past
// a gap. Reading must cost in proportion to the capture's size, and the
// connections followed at once are bounded.

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// craftedPcap writes a raw-IPv4 pcap: an encchat connection opens, then
// idle SYNs to port 5174 come from distinct clients, then the connection's
// m packets come 11 s apart (each one past the reader's wait for missing
// bytes). Modes: "late", frames in order; "acks", every second packet
// arrives ahead of its turn and the next, from the server, acknowledges
// the byte it skipped; "still", all at one time, every second packet ahead
// of its turn and the next the one it waited for.
func craftedPcap(tb testing.TB, idle, m int, mode string) []byte {
	tb.Helper()
	var out bytes.Buffer
	w := pcapgo.NewWriter(&out)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		tb.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true}
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	write := func(t time.Time, src, dst netip.AddrPort, tcp layers.TCP, payload []byte) {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		tcp.SrcPort, tcp.DstPort, tcp.Window = layers.TCPPort(src.Port()), layers.TCPPort(dst.Port()), 65535
		if err := gopacket.SerializeLayers(buf, opts, ip, &tcp, gopacket.Payload(payload)); err != nil {
			tb.Fatal(err)
		}
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: t, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			tb.Fatal(err)
		}
	}
	server := netip.MustParseAddrPort("10.0.0.1:5174")
	client := netip.MustParseAddrPort("10.0.0.2:50000")
	cseq, sseq := uint32(5000), uint32(9000)
	write(t0, client, server, layers.TCP{SYN: true, Seq: cseq - 1}, nil)
	write(t0, server, client, layers.TCP{SYN: true, ACK: true, Seq: sseq - 1, Ack: cseq}, nil)
	for i := 0; i < idle; i++ {
		idler := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1 + byte(i>>16), byte(i >> 8), byte(i)}), 40000)
		write(t0.Add(time.Duration(i)*time.Microsecond), idler, server, layers.TCP{SYN: true, Seq: 1000}, nil)
	}
	t := t0.Add(time.Second)
	frame := []byte("0000000004abcd")
	for i := 0; i < m; i++ {
		if mode != "still" {
			t = t.Add(11 * time.Second)
		}
		switch {
		case mode == "acks" && i%2 == 0: // ahead of its turn: one byte is never captured
			write(t, client, server, layers.TCP{ACK: true, PSH: true, Seq: cseq + 1, Ack: sseq}, frame[1:])
			cseq += uint32(len(frame))
		case mode == "acks": // the server has every byte
			write(t, server, client, layers.TCP{ACK: true, Seq: sseq, Ack: cseq}, nil)
		case mode == "still" && i%2 == 0: // ahead of its turn
			write(t, client, server, layers.TCP{ACK: true, PSH: true, Seq: cseq + 1, Ack: sseq}, frame[1:])
		case mode == "still": // the byte it waited for
			write(t, client, server, layers.TCP{ACK: true, PSH: true, Seq: cseq, Ack: sseq}, frame[:1])
			cseq += uint32(len(frame))
		default:
			write(t, client, server, layers.TCP{ACK: true, PSH: true, Seq: cseq, Ack: sseq}, frame)
			cseq += uint32(len(frame))
		}
	}
	return out.Bytes()
}

// readAllEvents reads every event of a capture and returns how many
// connections opened, the data bytes of connection 1 and the notes on the
// whole capture.
func readAllEvents(tb testing.TB, data []byte) (opens, first int, notes []string) {
	tb.Helper()
	src, err := readCapture(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	var ev captureEvent
	for {
		err := src.next(&ev)
		if err == io.EOF {
			return opens, first, notes
		}
		if err != nil {
			tb.Fatal(err)
		}
		switch {
		case ev.Kind == capOpen:
			opens++
		case ev.Kind == capNote && ev.Conn == 0:
			notes = append(notes, ev.Note)
		case ev.Kind == capData && ev.Conn == 1:
			first += len(ev.Data)
		}
	}
}

// allocated is the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestPcapReadLinear: doubling a crafted capture (idle connections, then
// packets 11 s apart, acknowledgements past a gap, or segments ahead of
// their turn at a clock that stands still) at most doubles the memory
// reading it allocates, plus a margin: the work per packet does not grow
// with the connections open.
func TestPcapReadLinear(t *testing.T) {
	for _, mode := range []string{"late", "acks", "still"} {
		t.Run(mode, func(t *testing.T) {
			small, large := craftedPcap(t, 2000, 2000, mode), craftedPcap(t, 4000, 4000, mode)
			var got [2]int
			a := allocated(func() { _, got[0], _ = readAllEvents(t, small) })
			b := allocated(func() { _, got[1], _ = readAllEvents(t, large) })
			if got[0] == 0 || got[1] < 2*got[0]-14 {
				t.Fatalf("connection 1 carried %d and %d B: its packets were not read", got[0], got[1])
			}
			t.Logf("%d B of pcap: %d B allocated; %d B: %d B", len(small), a, len(large), b)
			if ratio := float64(b) / float64(a); ratio > 2.5 {
				t.Errorf("twice the capture allocates %.1f times as much: reading is not linear", ratio)
			}
		})
	}
}

// BenchmarkReplayPcapCrafted replays crafted captures of n idle SYNs and n
// packets 11 s apart (and the same with acknowledgements past a gap), and
// one of idle SYNs alone; it reports the peak heap.
func BenchmarkReplayPcapCrafted(b *testing.B) {
	type crafted struct {
		name    string
		idle, m int
		mode    string
	}
	var cases []crafted
	for _, n := range []int{10000, 20000} {
		cases = append(cases, crafted{fmt.Sprintf("idle=%d/late=%d", n, n), n, n, "late"})
		cases = append(cases, crafted{fmt.Sprintf("idle=%d/acks=%d", n, n), n, n, "acks"})
	}
	cases = append(cases, crafted{"syns=400000", 400000, 0, "late"})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			data := craftedPcap(b, c.idle, c.m, c.mode)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			peak := sampleHeapPeak()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				opts := &replayOptions{name: "crafted", view: "both", width: 120, keys: &replayKeys{}}
				if err := replayCapture(bytes.NewReader(data), opts, newTextOutput(io.Discard, opts)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
		})
	}
}

// TestPcapReadOpenBound: past captureMaxOpen connections open at once, new
// ones are not followed: a note says so when it first happens and, at the
// end, how many packets that skipped; the connections followed are read to
// their end.
func TestPcapReadOpenBound(t *testing.T) {
	opens, first, notes := readAllEvents(t, craftedPcap(t, captureMaxOpen+500, 20, "late"))
	if opens != captureMaxOpen {
		t.Errorf("%d connections opened, want %d", opens, captureMaxOpen)
	}
	if first != 20*14 {
		t.Errorf("connection 1 carried %d B, want all %d", first, 20*14)
	}
	want := []string{
		fmt.Sprintf("%d connections are open, the most encchat follows at once: a connection that begins while so many are open is skipped", captureMaxOpen),
		"501 packets skipped: their connections began while",
	}
	if len(notes) != 2 || !strings.HasPrefix(notes[0], want[0]) || !strings.HasPrefix(notes[1], want[1]) {
		t.Errorf("notes %q, want %q", notes, want)
	}
}

// TestCaptureReadOpenBound: an encchat capture is bounded the same way.
// Past captureMaxOpen connections open at once, the records of a new one
// are skipped; once one closes, a new one is followed again.
func TestCaptureReadOpenBound(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, `{"encchat_capture":%d,"started":"2026-12-04T09:00:00Z","recorder":"test","addr":"127.0.0.1:5174"}`+"\n", captureVersion)
	open := func(conn int) {
		fmt.Fprintf(&b, `{"t":1,"conn":%d,"ev":"open","client":"127.0.0.1:%d","server":"127.0.0.1:5174"}`+"\n", conn, 1024+conn%60000)
	}
	for conn := 1; conn <= captureMaxOpen+10; conn++ {
		open(conn)
	}
	fmt.Fprintf(&b, `{"t":2,"conn":1,"dir":"s2c","data":"MDAwMDAwMDAwMA=="}`+"\n")
	fmt.Fprintf(&b, `{"t":2,"conn":%d,"dir":"s2c","data":"MDAwMDAwMDAwMA=="}`+"\n", captureMaxOpen+1)
	fmt.Fprintf(&b, `{"t":3,"conn":1,"ev":"close"}`+"\n")
	open(captureMaxOpen + 11)
	opens, first, notes := readAllEvents(t, []byte(b.String()))
	if opens != captureMaxOpen+1 || first != 10 {
		t.Errorf("%d connections opened, connection 1 carried %d B; want %d and 10", opens, first, captureMaxOpen+1)
	}
	want := []string{captureFullNote, "10 connections skipped (11 records): they began while 4096 were open"}
	if len(notes) != 2 || notes[0] != want[0] || !strings.HasPrefix(notes[1], want[1]) {
		t.Errorf("notes %q, want %q", notes, want)
	}
}
