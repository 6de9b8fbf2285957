// Tests of reading pcap and pcapng (pcap_read.go) with synthetic captures:
// the golden sessions turned into TCP segments on every link type encchat
// reads, then reordered, retransmitted, cut, stripped of their SYNs or
// mixed with other traffic. Replay of each must show the frames replay of
// the encchat capture shows.

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// replayedFrames replays a capture with the classic and modern golden key
// logs and returns its frames (one line each: connection, direction,
// kind, length, payload, plaintext and key) and its notes.
func replayedFrames(t *testing.T, data []byte) (frames, notes []string) {
	t.Helper()
	var entries keylogEntries
	for _, name := range []string{"session.keys", "modern.keys"} {
		f, err := os.Open(filepath.Join(replayTestdata, name))
		if err != nil {
			t.Fatal(err)
		}
		e, err := parseKeylog(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e...)
	}
	opts := &replayOptions{name: "synth", view: "both", json: true, keys: &replayKeys{keylog: entries, keylogName: "keys"}}
	var out bytes.Buffer
	if err := replayCapture(bytes.NewReader(data), opts, newJSONOutput(&out, opts)); err != nil {
		t.Fatalf("replay: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var j jsonFrame
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		switch j.Kind {
		case "capture", "open", "close", "end":
		case "note":
			notes = append(notes, fmt.Sprintf("conn %d: %s", j.Conn, strings.Join(j.Notes, " ")))
		default:
			text := "-"
			if j.Plaintext != nil {
				text = *j.Plaintext
			}
			frames = append(frames, fmt.Sprintf("conn %d %s %s %d B %.40s %q %s", j.Conn, j.Dir, j.Kind, j.Length, j.Payload, text, j.Key))
		}
	}
	return frames, notes
}

func goldenCapture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(replayTestdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestPcapReadLinkTypes(t *testing.T) {
	for _, capture := range []string{"session.jsonl", "modern.jsonl"} {
		jsonl := goldenCapture(t, capture)
		want, _ := replayedFrames(t, []byte(jsonl))
		if len(want) < 10 {
			t.Fatalf("%s: only %d frames", capture, len(want))
		}
		segs := synthSegments(t, jsonl, 100) // most frames span segments
		for _, c := range []struct {
			name     string
			lt       layers.LinkType
			v6       bool
			ng, nano bool
		}{
			{"ethernet", layers.LinkTypeEthernet, false, false, false},
			{"ethernet-v6-pcapng", layers.LinkTypeEthernet, true, true, false},
			{"raw", layers.LinkTypeRaw, false, false, true},
			{"raw-v6", layers.LinkTypeRaw, true, false, false},
			{"ipv4", layers.LinkTypeIPv4, false, false, false},
			{"ipv6", layers.LinkTypeIPv6, true, true, false},
			{"null", layers.LinkTypeNull, false, false, false},
			{"null-v6", layers.LinkTypeNull, true, false, false},
			{"loop", layers.LinkTypeLoop, false, true, false},
			{"sll", layers.LinkTypeLinuxSLL, false, false, false},
			{"sll-v6", layers.LinkTypeLinuxSLL, true, true, false},
			{"sll2", layers.LinkTypeLinuxSLL2, false, true, false},
			{"sll2-v6", layers.LinkTypeLinuxSLL2, true, false, true},
		} {
			t.Run(capture+"/"+c.name, func(t *testing.T) {
				s := segs
				if c.v6 {
					s = toV6(segs)
				}
				got, notes := replayedFrames(t, synthPcap(t, s, c.lt, c.ng, c.nano))
				sameFrames(t, got, want)
				if len(notes) != 0 {
					t.Errorf("notes on a clean capture: %q", notes)
				}
			})
		}
	}
}

// sameFrames reports the first difference between two frame lists.
func sameFrames(t *testing.T, got, want []string) {
	t.Helper()
	for i := 0; i < max(len(got), len(want)); i++ {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Fatalf("frame %d of %d:\n got %s\nwant %s", i+1, len(want), g, w)
		}
	}
}

func TestPcapReadDisorder(t *testing.T) {
	jsonl := goldenCapture(t, "session.jsonl")
	want, _ := replayedFrames(t, []byte(jsonl))
	segs := synthSegments(t, jsonl, 60)

	// Out of order: every second data segment of a direction swapped with
	// the next one of the same direction.
	var reordered []synthSeg
	var held *synthSeg
	swaps := 0
	for _, s := range segs {
		switch {
		case len(s.payload) == 0:
			if held != nil {
				reordered = append(reordered, *held)
				held = nil
			}
			reordered = append(reordered, s)
		case held == nil:
			h := s
			held = &h
		case held.fromClient == s.fromClient && held.conn == s.conn:
			reordered = append(reordered, s, *held)
			held = nil
			swaps++
		default:
			reordered = append(reordered, *held, s)
			held = nil
		}
	}
	if held != nil {
		reordered = append(reordered, *held)
	}

	// Retransmissions: every third data segment sent again after the
	// next packet, and the end of one segment sent again on its own.
	var retrans []synthSeg
	var last []synthSeg
	dupBytes := 0
	for i, s := range segs {
		retrans = append(retrans, s)
		if len(last) > 0 {
			retrans = append(retrans, last[0])
			dupBytes += len(last[0].payload)
			last = last[:0]
		}
		if len(s.payload) > 20 && i%3 == 0 {
			last = append(last, s)
		}
		if i == 41 && len(s.payload) > 20 {
			o := s
			o.seq += 10
			o.payload = o.payload[10:]
			retrans = append(retrans, o)
			dupBytes += len(o.payload)
		}
	}
	dups := len(retrans) - len(segs)

	// Missing SYNs: the capture starts after each handshake.
	var noSYN []synthSeg
	for _, s := range segs {
		if !s.handshake {
			noSYN = append(noSYN, s)
		}
	}

	for _, c := range []struct {
		name  string
		segs  []synthSeg
		notes []string
	}{
		{"out-of-order", reordered, []string{fmt.Sprintf("conn 0: %d segments arrived ahead of an earlier one and were put in order", swaps)}},
		{"retransmitted", retrans, []string{fmt.Sprintf("conn 0: %d retransmitted segments (%d B seen twice) used once", dups, dupBytes)}},
		{"no-syn", noSYN, []string{"conn 1: no SYN in the capture", "conn 2: no SYN in the capture"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, notes := replayedFrames(t, synthPcap(t, c.segs, layers.LinkTypeEthernet, true, false))
			sameFrames(t, got, want)
			if len(notes) != len(c.notes) {
				t.Fatalf("notes %q, want %d", notes, len(c.notes))
			}
			for i, n := range c.notes {
				if !strings.Contains(notes[i], n) {
					t.Errorf("note %q, want %q", notes[i], n)
				}
			}
		})
	}
}

func TestPcapReadGap(t *testing.T) {
	jsonl := goldenCapture(t, "session.jsonl")
	want, _ := replayedFrames(t, []byte(jsonl))
	for _, acked := range []bool{true, false} {
		t.Run(fmt.Sprintf("acknowledged=%v", acked), func(t *testing.T) {
			segs := synthSegments(t, jsonl, 1460)
			// Cut short connection 1's third client segment, its first chat
			// record ("Hello Bob!…"): the capture holds only its start.
			var dropped synthSeg
			var cut []synthSeg
			n := 0
			for _, s := range segs {
				if s.conn == 1 && s.fromClient && len(s.payload) > 0 {
					n++
					if n == 3 {
						dropped = s
						s.payload = s.payload[:20]
					}
				}
				s.noACK = !acked
				cut = append(cut, s)
			}
			got, notes := replayedFrames(t, synthPcap(t, cut, layers.LinkTypeRaw, false, false))
			missing := len(dropped.payload) - 20
			wantNote := fmt.Sprintf("conn 1: conn 1 client → server: %d bytes missing from the capture", missing)
			if len(notes) == 0 || !strings.HasPrefix(notes[0], wantNote) {
				t.Fatalf("notes %q, want %q", notes, wantNote)
			}
			// The cut frame is partial; every other frame is as in the
			// encchat capture. With the server's acknowledgement of the
			// bytes the capture lacks, the wait for them ends there and the
			// order is kept; without, the client's frames after the gap wait
			// for them (here until the end of the capture).
			var partial, rest []string
			for _, g := range got {
				if strings.Contains(g, " partial ") {
					partial = append(partial, g)
				} else {
					rest = append(rest, g)
				}
			}
			if len(partial) != 1 || !strings.HasPrefix(partial[0], "conn 1 c2s partial 10 B ") {
				t.Fatalf("partial frames %q, want conn 1's cut record", partial)
			}
			var wantRest []string
			for _, w := range want {
				if !strings.HasPrefix(w, "conn 1 c2s sealed 88 B ") || !strings.Contains(w, `"Hello Bob! This message is encrypted!"`) {
					wantRest = append(wantRest, w)
				}
			}
			if len(wantRest) != len(want)-1 {
				t.Fatalf("the golden capture has %d frames with alice's first text", len(want)-len(wantRest))
			}
			if !acked {
				rest, wantRest = byDirection(rest), byDirection(wantRest)
			}
			sameFrames(t, rest, wantRest)
		})
	}
}

// byDirection sorts frames by connection and direction, keeping the order
// within each.
func byDirection(frames []string) []string {
	out := slices.Clone(frames)
	slices.SortStableFunc(out, func(a, b string) int {
		return strings.Compare(strings.Join(strings.Fields(a)[:3], " "), strings.Join(strings.Fields(b)[:3], " "))
	})
	return out
}

func TestPcapReadSkipped(t *testing.T) {
	jsonl := goldenCapture(t, "session.jsonl")
	want, _ := replayedFrames(t, []byte(jsonl))
	segs := synthSegments(t, jsonl, 1460)
	// On another port: found by its first frame. An HTTP connection, a
	// UDP datagram and an ARP request beside it are skipped.
	for i := range segs {
		if segs[i].src.Port() == 5174 {
			segs[i].src = netip.AddrPortFrom(segs[i].src.Addr(), 6100)
		}
		if segs[i].dst.Port() == 5174 {
			segs[i].dst = netip.AddrPortFrom(segs[i].dst.Addr(), 6100)
		}
	}
	httpC, httpS := netip.MustParseAddrPort("127.0.0.1:40000"), netip.MustParseAddrPort("127.0.0.1:8080")
	extra := []synthSeg{
		{src: httpC, dst: httpS, syn: true, fromClient: true, seq: 1},
		{src: httpS, dst: httpC, syn: true, seq: 7, ack: 2},
		{src: httpC, dst: httpS, seq: 2, ack: 8, payload: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{src: httpS, dst: httpC, seq: 8, ack: 30, payload: []byte("HTTP/1.1 200 OK\r\n\r\n")},
		{src: httpC, dst: netip.MustParseAddrPort("127.0.0.1:53"), udp: true, payload: []byte("dns?")},
		{arp: true},
	}
	all := append(extra[:4:4], segs...)
	all = append(all, extra[4:]...)
	got, notes := replayedFrames(t, synthPcap(t, all, layers.LinkTypeEthernet, false, false))
	// The port changed, so the frames name the other port nowhere, but
	// the connections and their texts are the same.
	sameFrames(t, got, want)
	wantNotes := []string{
		"conn 0: 2 packets skipped: not TCP (1 UDP, 1 not IP)",
		"conn 0: 1 TCP connection skipped: not encchat (not port 5174, and no encchat server's first frame): 127.0.0.1:40000 ↔ 127.0.0.1:8080",
	}
	if strings.Join(notes, "\n") != strings.Join(wantNotes, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(notes, "\n"), strings.Join(wantNotes, "\n"))
	}
}

func TestPcapReadCutShort(t *testing.T) {
	jsonl := goldenCapture(t, "session.jsonl")
	segs := synthSegments(t, jsonl, 1460)
	data := synthPcap(t, segs, layers.LinkTypeEthernet, false, false)
	// Cut inside the last packet, as when the disk filled up.
	got, notes := replayedFrames(t, data[:len(data)-20])
	want, _ := replayedFrames(t, []byte(jsonl))
	sameFrames(t, got, want)
	if len(notes) != 1 || !strings.Contains(notes[0], fmt.Sprintf("the capture ends inside packet %d (cut short)", len(segs))) {
		t.Errorf("notes %q", notes)
	}
	// Not a capture at all.
	for _, bad := range [][]byte{[]byte("\xd4\xc3\xb2\xa1short"), []byte("\x0a\x0d\x0d\x0a\x00\x00")} {
		if _, err := readCapture(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "not a pcap") {
			t.Errorf("%q: err %v, want one naming the format", bad, err)
		}
	}
}

// TestPcapReadSend: replay -send reads the client's frames from a pcap.
func TestPcapReadSend(t *testing.T) {
	jsonl := goldenCapture(t, "session.jsonl")
	jsonlSent, err := readSentConns(strings.NewReader(jsonl), 0)
	if err != nil {
		t.Fatal(err)
	}
	pcapSent, err := readSentConns(bytes.NewReader(synthPcap(t, synthSegments(t, jsonl, 100), layers.LinkTypeLinuxSLL2, true, false)), 0)
	if err != nil {
		t.Fatal(err)
	}
	fromJSONL, fromPcap := jsonlSent.conns, pcapSent.conns
	if len(fromPcap) != len(fromJSONL) {
		t.Fatalf("%d connections, want %d", len(fromPcap), len(fromJSONL))
	}
	for i := range fromJSONL {
		a, b := fromJSONL[i], fromPcap[i]
		if len(a.frames) != len(b.frames) || !bytes.Equal(a.serverFirst, b.serverFirst) {
			t.Fatalf("conn %d: %d frames, want %d", i+1, len(b.frames), len(a.frames))
		}
		for j := range a.frames {
			if !bytes.Equal(a.frames[j], b.frames[j]) {
				t.Errorf("conn %d frame %d differs", i+1, j+1)
			}
		}
	}
}

// pcapEventsWellFormed reads every event of a capture and checks what the
// replay engine relies on: a connection opens once, before its data, and
// nothing follows its close; a gap has a size.
func pcapEventsWellFormed(data []byte) error {
	src, err := readCapture(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	state := map[int]string{}
	var ev captureEvent
	for i := 0; ; i++ {
		err := src.next(&ev)
		if err == io.EOF {
			return nil
		}
		if err != nil || i > 1<<20 {
			return nil
		}
		switch ev.Kind {
		case capOpen:
			if state[ev.Conn] != "" || ev.Conn != len(state)+1 {
				return fmt.Errorf("conn %d opened when %q, after %d connections", ev.Conn, state[ev.Conn], len(state))
			}
			state[ev.Conn] = "open"
		case capData, capGap, capClose:
			if state[ev.Conn] != "open" {
				return fmt.Errorf("%s on conn %d when %q", ev.Kind, ev.Conn, state[ev.Conn])
			}
			if ev.Kind == capClose {
				state[ev.Conn] = "closed"
			}
			if ev.Kind == capGap && ev.Gap <= 0 || ev.Kind == capData && len(ev.Data) == 0 {
				return fmt.Errorf("%s of %d bytes", ev.Kind, max(ev.Gap, len(ev.Data)))
			}
		case capNote:
			if ev.Conn != 0 && state[ev.Conn] == "" {
				return fmt.Errorf("note on conn %d before it opened", ev.Conn)
			}
		}
	}
}

func FuzzPcapRead(f *testing.F) {
	jsonl, err := os.ReadFile(filepath.Join(replayTestdata, "session.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	segs := synthSegments(f, string(jsonl), 400)
	f.Add(synthPcap(f, segs[:12], layers.LinkTypeEthernet, false, false))
	f.Add(synthPcap(f, toV6(segs[:12]), layers.LinkTypeLinuxSLL2, true, false))
	f.Add(synthPcap(f, segs[3:9], layers.LinkTypeNull, false, true))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !isPcapMagic(data) {
			return // an encchat capture: FuzzCaptureParse
		}
		if err := pcapEventsWellFormed(data); err != nil {
			t.Fatal(err)
		}
		// The replay engine accepts whatever the reader produces: no
		// capture error names a line.
		opts := &replayOptions{name: "fuzz", view: "both", keys: &replayKeys{}}
		err := replayCapture(bytes.NewReader(data), opts, newJSONOutput(io.Discard, opts))
		var le *lineError
		if err != nil && errors.As(err, &le) {
			t.Fatalf("the engine refused the reader's events: %v", err)
		}
	})
}

// TestPcapReadEveryView: every view and key option of replay shows a pcap
// of a session as it shows the session's encchat capture (times aside:
// a pcap counts them from its first packet).
func TestPcapReadEveryView(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ jsonl, keys string }{{"session.jsonl", "session.keys"}, {"modern.jsonl", "modern.keys"}} {
		jsonlPath := filepath.Join(replayTestdata, c.jsonl)
		pcapPath := filepath.Join(dir, strings.TrimSuffix(c.jsonl, ".jsonl")+".pcapng")
		segs := synthSegments(t, goldenCapture(t, c.jsonl), 700)
		if err := os.WriteFile(pcapPath, synthPcap(t, segs, layers.LinkTypeLinuxSLL2, true, false), 0o644); err != nil {
			t.Fatal(err)
		}
		keys := filepath.Join(replayTestdata, c.keys)
		for _, args := range [][]string{
			{},
			{"-keylog", keys},
			{"-keylog", keys, "-view", "peer"},
			{"-keylog", keys, "-view", "sniffer", "-conn", "2"},
			{"-rsa-key", filepath.Join(replayTestdata, "server.pem"), "-view", "peer"},
			{"-key", "8dbbcefe09759150e19e652dafa95c07840d1d1ab7d75c79da9265a6132828e2", "-view", "peer", "-conn", "1"},
			{"-keylog", keys, "-tamper", "12:5"},
			{"-keylog", keys, "-speed", "1000000"},
			{"-keylog", keys, "-json"},
		} {
			if c.jsonl == "modern.jsonl" && len(args) > 0 && args[0] == "-key" {
				continue // -key is a classic session key
			}
			t.Run(c.jsonl+"/"+strings.Join(args, " "), func(t *testing.T) {
				want, wantErr, wantCode := runReplayTest(t, 120, append(slices.Clone(args), jsonlPath)...)
				got, gotErr, gotCode := runReplayTest(t, 120, append(slices.Clone(args), pcapPath)...)
				if gotCode != wantCode || gotErr != wantErr {
					t.Fatalf("pcap: exit %d, %q; encchat capture: exit %d, %q", gotCode, gotErr, wantCode, wantErr)
				}
				if g, w := maskReplayTimes(got), maskReplayTimes(want); g != w {
					gl, wl := strings.Split(g, "\n"), strings.Split(w, "\n")
					for i := range min(len(gl), len(wl)) {
						if gl[i] != wl[i] {
							t.Fatalf("line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
						}
					}
					t.Fatalf("%d lines, want %d", len(gl), len(wl))
				}
			})
		}
		// The lesson page too.
		for _, in := range []string{jsonlPath, pcapPath} {
			out := filepath.Join(dir, filepath.Base(in)+".html")
			if _, stderr, code := runReplayTest(t, 120, "-keylog", keys, "-html", out, in); code != 0 {
				t.Fatalf("-html %s: exit %d: %s", in, code, stderr)
			}
		}
		a, _ := os.ReadFile(filepath.Join(dir, filepath.Base(jsonlPath)+".html"))
		b, _ := os.ReadFile(filepath.Join(dir, filepath.Base(pcapPath)+".html"))
		texts := regexp.MustCompile(`Hello Bob[^<]*|psst[^<]*`)
		if ta, tb := texts.FindAllString(string(a), -1), texts.FindAllString(string(b), -1); len(ta) == 0 || strings.Join(ta, "|") != strings.Join(tb, "|") {
			t.Errorf("%s: the lesson page of the pcap shows %q, of the encchat capture %q", c.jsonl, tb, ta)
		}
	}
}

// maskReplayTimes blanks what differs between a pcap and an encchat
// capture of one session: the header line and the times.
func maskReplayTimes(s string) string {
	lines := strings.SplitN(s, "\n", 2)
	if len(lines) == 2 {
		s = lines[1]
	}
	s = regexp.MustCompile(`\d+\.\d+s`).ReplaceAllString(s, "Ts")
	return regexp.MustCompile(`"(t|duration)":[0-9.e-]+`).ReplaceAllString(s, `"$1":T`)
}
