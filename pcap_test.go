// Tests of pcap export (replay -pcap, pcap.go), read back by tshark; of
// replay over real sessions captured by dumpcap on loopback; and of the
// Wireshark dissector (wireshark/encchat.lua) run by tshark.

package main

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// streams returns each connection's bytes per direction, from a capture.
func streams(t *testing.T, data string) map[int]*[2][]byte {
	t.Helper()
	_, evs := readEvents(t, data)
	out := map[int]*[2][]byte{}
	for _, ev := range evs {
		if out[ev.Conn] == nil {
			out[ev.Conn] = &[2][]byte{}
		}
		if ev.Kind == capData {
			out[ev.Conn][ev.Dir] = append(out[ev.Conn][ev.Dir], ev.Data...)
		}
	}
	return out
}

// tsharkFollow returns the two directions of TCP stream n as tshark's
// "Follow TCP Stream" rebuilds them (raw mode: hex, the server's side
// indented by a tab).
func tsharkFollow(t *testing.T, tshark, pcapPath string, n int) (c2s, s2c []byte, ascii string) {
	t.Helper()
	run := func(mode string) string {
		cmd := exec.Command(tshark, "-r", pcapPath, "-q", "-z", fmt.Sprintf("follow,tcp,%s,%d", mode, n))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark follow %s: %v\n%s", mode, err, stderr.String())
		}
		return string(out)
	}
	raw := run("raw")
	body := false
	for _, line := range strings.Split(raw, "\n") {
		switch {
		case strings.HasPrefix(line, "Node 1:"):
			body = true
			continue
		case !body || strings.HasPrefix(line, "====") || line == "":
			continue
		}
		b, err := hex.DecodeString(strings.TrimPrefix(line, "\t"))
		if err != nil {
			t.Fatalf("tshark raw line %q: %v", line, err)
		}
		if strings.HasPrefix(line, "\t") {
			s2c = append(s2c, b...)
		} else {
			c2s = append(c2s, b...)
		}
	}
	return c2s, s2c, run("ascii")
}

func TestReplayPcapTshark(t *testing.T) {
	tshark := needTool(t, "tshark")
	dir := t.TempDir()

	// The golden chat, plus a capture with a chunk larger than one segment.
	big := &memFile{}
	rec := newCapture(big, "tap", "127.0.0.1:5174", nil)
	cc := rec.open("127.0.0.1:40001", "127.0.0.1:5174")
	large := bytes.Repeat([]byte("0123456789abcdef"), 400) // 6400 bytes: five segments
	cc.data(wireC2S, large)
	cc.data(wireS2C, []byte("short answer"))
	cc.close()
	rec.Close()
	golden := strings.Join(goldenLines(t), "")

	for _, c := range []struct{ name, capture string }{{"golden", golden}, {"large", big.String()}} {
		t.Run(c.name, func(t *testing.T) {
			in := writeCapture(t, "capture.jsonl", c.capture)
			out := filepath.Join(dir, c.name+".pcap")
			var stdout, stderr bytes.Buffer
			if code := runReplay([]string{"-pcap", out, in}, &stdout, &stderr); code != 0 {
				t.Fatalf("replay -pcap: exit %d: %s", code, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), "wrote "+out+": ") {
				t.Errorf("stdout %q", stdout.String())
			}
			want := streams(t, c.capture)
			for conn := 1; conn <= len(want); conn++ {
				c2s, s2c, ascii := tsharkFollow(t, tshark, out, conn-1)
				if !bytes.Equal(c2s, want[conn][wireC2S]) || !bytes.Equal(s2c, want[conn][wireS2C]) {
					t.Errorf("tcp stream %d: tshark follows %d+%d bytes, the capture has %d+%d", conn-1, len(c2s), len(s2c), len(want[conn][wireC2S]), len(want[conn][wireS2C]))
				}
				if conn == 1 && c.name == "golden" && (!strings.Contains(ascii, "-----BEGIN PUBLIC KEY-----") || !strings.Contains(ascii, "127.0.0.1:51001")) {
					t.Errorf("follow,tcp,ascii,0 does not show the stream:\n%s", ascii)
				}
			}
			// No segment is larger than an Ethernet MSS, and tshark sees no
			// broken sequence numbers.
			cmd := exec.Command(tshark, "-r", out, "-T", "fields", "-e", "tcp.len", "-e", "tcp.analysis.flags")
			fields, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(fields)), "\n") {
				f := strings.Split(line, "\t")
				if n, _ := strconv.Atoi(f[0]); n > pcapMSS {
					t.Errorf("segment of %d bytes", n)
				}
				if len(f) > 1 && f[1] != "" {
					t.Errorf("tshark flags a segment: %q", line)
				}
			}
		})
	}
}

// startDumpcap captures TCP port port on the loopback interface into a
// pcapng file until stop is called. It skips when dumpcap is missing (a
// failure with ENCCHAT_REQUIRE_TOOLS=1) or may not capture here.
func startDumpcap(t *testing.T, port string) (path string, stop func()) {
	t.Helper()
	dumpcap := needTool(t, "dumpcap")
	path = filepath.Join(t.TempDir(), "dump.pcapng")
	cmd := exec.Command(dumpcap, "-i", "lo", "-f", "tcp port "+port, "-w", path, "-q")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("dumpcap: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// dumpcap writes the file's header once it captures.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			break
		}
		select {
		case err := <-exited:
			t.Skipf("dumpcap cannot capture on lo here (%v): %s", err, strings.TrimSpace(stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("dumpcap wrote nothing in 15 s: %s", stderr.String())
		}
	}
	time.Sleep(200 * time.Millisecond) // the filter is in place before the header is out
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		time.Sleep(300 * time.Millisecond) // let the last packets reach dumpcap
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("dumpcap did not stop on SIGINT: %s", stderr.String())
		}
	}
	t.Cleanup(stop)
	return path, stop
}

// dumpcapSession captures a chat of the given suite with dumpcap: alice
// and bob chat, and (classic) carol sends a record in two writes 50 ms
// apart, so that it spans two TCP segments. It returns the capture, the
// key log, the server's key file and the texts sent.
func dumpcapSession(t *testing.T, suite string) (capture, keys, serverKey string, texts []string) {
	t.Helper()
	dir := t.TempDir()
	keys = filepath.Join(dir, "keys.log")
	kl, err := openKeylog(keys)
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, serverConfig{Suite: suite, Keylog: kl})
	_, port, _ := net.SplitHostPort(ts.addr)
	capture, stop := startDumpcap(t, port)

	alice := join(t, ts.addr, "alice")
	bob := join(t, ts.addr, "bob")
	texts = []string{"Hello Bob! This message is encrypted!", "/pm alice psst: the exam key is in the capture"}
	alice.Send(texts[0])
	expect(t, bob, "alice: "+texts[0])
	bob.Send(texts[1])
	expect(t, alice, "[PM from bob] psst: the exam key is in the capture")
	if suite == suiteClassic {
		conn, rc := rawClassic(t, ts.addr, "carol")
		split := "this record crosses two TCP segments"
		texts = append(texts, split)
		p, _ := rc.seal([]byte(split))
		frame := fmt.Appendf(nil, "%010d%s", len(p), p)
		conn.Write(frame[:25])
		time.Sleep(50 * time.Millisecond)
		conn.Write(frame[25:])
		expect(t, alice, "carol: "+split)
		conn.Close()
		ts.logged(t, evLeave, "carol")
	}
	alice.Send("/quit")
	ts.logged(t, evLeave, "alice")
	bob.Close()
	ts.logged(t, evLeave, "bob")
	stop()
	if err := kl.Close(); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(testRSAKey(t))
	if err != nil {
		t.Fatal(err)
	}
	serverKey = filepath.Join(dir, "server.pem")
	if err := os.WriteFile(serverKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return capture, keys, serverKey, texts
}

// replayJSONFrames runs replay -json with args and returns its frame lines.
func replayJSONFrames(t *testing.T, args ...string) (frames []jsonFrame, notes []string) {
	t.Helper()
	stdout, stderr, code := runReplayTest(t, 120, append([]string{"-json"}, args...)...)
	if code != 0 {
		t.Fatalf("replay %q: exit %d: %s", args, code, stderr)
	}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var j jsonFrame
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		switch j.Kind {
		case "capture", "open", "close", "end":
		case "note":
			notes = append(notes, j.Notes...)
		default:
			frames = append(frames, j)
		}
	}
	return frames, notes
}

func TestDumpcapReplay(t *testing.T) {
	tshark := needTool(t, "tshark")
	for _, suite := range []string{suiteClassic, suiteModern} {
		t.Run(suite, func(t *testing.T) {
			capture, keys, serverKey, texts := dumpcapSession(t, suite)

			// The key log decrypts every record, and the texts are there.
			frames, notes := replayJSONFrames(t, "-keylog", keys, capture)
			var plain []string
			for _, f := range frames {
				if f.Kind == "sealed" && f.Plaintext == nil {
					t.Errorf("frame %d not decrypted: %+v", f.Index, f)
				}
				if f.Plaintext != nil {
					plain = append(plain, *f.Plaintext)
				}
			}
			for _, n := range notes {
				if strings.Contains(n, "missing") || strings.Contains(n, "skipped") || strings.Contains(n, "no SYN") {
					t.Errorf("note on a whole loopback capture: %s", n)
				}
			}
			for _, text := range texts {
				if !slicesContains(plain, text) {
					t.Errorf("%q is not among the decrypted texts %q", text, plain)
				}
			}
			conns := map[int]bool{}
			for _, f := range frames {
				conns[f.Conn] = true
			}
			if want := map[string]int{suiteClassic: 3, suiteModern: 2}[suite]; len(conns) != want {
				t.Errorf("%d connections, want %d", len(conns), want)
			}

			// The server's key: every classic text, no modern one.
			stdout, stderr, code := runReplayTest(t, 120, "-rsa-key", serverKey, "-view", "peer", capture)
			if code != 0 {
				t.Fatalf("replay -rsa-key: exit %d: %s", code, stderr)
			}
			for _, text := range texts {
				if got := strings.Contains(stdout, text); got != (suite == suiteClassic) {
					t.Errorf("-rsa-key shows %q: %v", text, got)
				}
			}
			if suite == suiteModern && !strings.Contains(stdout, "cannot decrypt it (forward secrecy)") {
				t.Errorf("-rsa-key on a modern capture does not say why it decrypts nothing:\n%s", stdout)
			}

			// Exported to pcapng, each record's text is its packet's comment.
			out := filepath.Join(t.TempDir(), "peer.pcapng")
			if _, stderr, code := runReplayTest(t, 120, "-keylog", keys, "-pcap", out, capture); code != 0 {
				t.Fatalf("replay -pcap: exit %d: %s", code, stderr)
			}
			if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, mode %v, want 0600", out, err, st.Mode().Perm())
			}
			var comments []string
			for _, c := range tsharkFields(t, tshark, out, false, "frame.comment") {
				if c[0] != "" {
					comments = append(comments, strings.Split(c[0], ",")...)
				}
			}
			var wantComments []string
			for _, p := range plain {
				if !strings.ContainsAny(p, ",\n") { // tshark joins comments with "," and shows "\n"
					wantComments = append(wantComments, p)
				}
			}
			var simple []string
			for _, c := range comments {
				if slicesContains(wantComments, c) {
					simple = append(simple, c)
				}
			}
			if strings.Join(simple, "|") != strings.Join(wantComments, "|") || len(comments) < len(plain) {
				t.Errorf("comments %q, want the texts %q", comments, plain)
			}

			// The dissector names every frame as replay does, carol's frame
			// that crosses two segments included (the modern suite's split
			// frames: TestDissectorSplitFrames).
			checkDissector(t, tshark, capture, frames, suite == suiteClassic)
		})
	}
}

// checkDissector runs tshark with the dissector over capture and checks the
// kind and length of every frame against replay's frames of it; wantSplit:
// some frame must span TCP segments.
func checkDissector(t *testing.T, tshark, capture string, frames []jsonFrame, wantSplit bool) {
	t.Helper()
	var got, ivs, seqs []string
	split := 0
	for _, row := range tsharkFields(t, tshark, capture, true, "encchat.kind", "encchat.length", "tcp.len", "_ws.col.Info", "encchat.iv", "encchat.seq") {
		if row[0] == "" {
			continue
		}
		if row[4] != "" {
			ivs = append(ivs, strings.Split(row[4], ",")...)
		}
		if row[5] != "" {
			seqs = append(seqs, strings.Split(row[5], ",")...)
		}
		kinds, lengths := strings.Split(row[0], ","), strings.Split(row[1], ",")
		if len(kinds) != len(lengths) {
			t.Fatalf("row %q: %d kinds, %d lengths", row, len(kinds), len(lengths))
		}
		for i := range kinds {
			got = append(got, kinds[i]+" "+lengths[i])
		}
		if n, _ := strconv.Atoi(lengths[len(lengths)-1]); len(lengths) == 1 && strconv.Itoa(n+headerLen) != row[2] {
			split++ // the frame came in more than this segment
		}
		if strings.Contains(row[3], "Lua Error") || row[3] == "" {
			t.Errorf("Info column %q", row[3])
		}
	}
	// Replay's IVs (classic records), and each modern record's number in
	// its direction, which the dissector shows too.
	var want, wantIVs, wantSeqs []string
	count := map[string]int{}
	for _, f := range frames {
		want = append(want, fmt.Sprintf("%s %d", f.Kind, f.Length))
		if f.IV != "" {
			wantIVs = append(wantIVs, f.IV)
		}
		if f.Kind == "sealed" && f.IV == "" {
			k := fmt.Sprintf("%d %s", f.Conn, f.Dir)
			wantSeqs = append(wantSeqs, strconv.Itoa(count[k]))
			count[k]++
		}
	}
	if strings.Join(ivs, " ") != strings.Join(wantIVs, " ") {
		t.Errorf("the dissector's IVs:\n%q\nreplay's:\n%q", ivs, wantIVs)
	}
	if strings.Join(seqs, " ") != strings.Join(wantSeqs, " ") {
		t.Errorf("the dissector's record numbers %q, want %q", seqs, wantSeqs)
	}
	for i := 0; i < max(len(got), len(want)); i++ {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("frame %d of %d: tshark's dissector says %q, replay %q", i+1, len(want), g, w)
			break
		}
	}
	if wantSplit && split == 0 {
		t.Errorf("no frame spans TCP segments in %s", capture)
	}
}

// tsharkFields runs tshark -T fields over capture (with the dissector when
// lua is set) and returns each packet's fields.
func tsharkFields(t *testing.T, tshark, capture string, lua bool, fields ...string) [][]string {
	t.Helper()
	var args []string
	if lua {
		args = []string{"-X", "lua_script:wireshark/encchat.lua"}
	}
	out := runTshark(t, tshark, append(args, "-r", capture, "-T", "fields"), fields)
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows
}

// runTshark runs tshark with args and an -e for each field, and returns what
// it printed; a failed run or a Lua error fails the test.
func runTshark(t *testing.T, tshark string, args, fields []string) string {
	t.Helper()
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %q: %v\n%s", args, err, stderr.String())
	}
	luaErr := regexp.MustCompile(`(?m)^.*((Lua|lua).*(rror|ailed)|attempt to ).*$`)
	if e := luaErr.FindString(stderr.String() + string(out)); e != "" {
		t.Fatalf("tshark %q: %s", args, e)
	}
	return string(out)
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDissectorSplitFrames runs the dissector over the golden sessions cut
// into 100-byte segments, on port 5174 and (found by the heuristic) on
// another port.
func TestDissectorSplitFrames(t *testing.T) {
	tshark := needTool(t, "tshark")
	for _, name := range []string{"session.jsonl", "modern.jsonl"} {
		for _, port := range []uint16{5174, 6200} {
			t.Run(fmt.Sprintf("%s/%d", name, port), func(t *testing.T) {
				jsonl := goldenCapture(t, name)
				segs := synthSegments(t, jsonl, 100)
				for i := range segs {
					for _, ap := range []*netip.AddrPort{&segs[i].src, &segs[i].dst} {
						if ap.Port() == 5174 {
							*ap = netip.AddrPortFrom(ap.Addr(), port)
						}
					}
				}
				path := filepath.Join(t.TempDir(), "split.pcap")
				if err := os.WriteFile(path, synthPcap(t, segs, layers.LinkTypeEthernet, false, false), 0o644); err != nil {
					t.Fatal(err)
				}
				frames, _ := replayJSONFrames(t, path)
				checkDissector(t, tshark, path, frames, true)
			})
		}
	}
}

// TestDissectorStepNames: the dissector's step names are steps.go's, and
// its kinds are replay's.
func TestDissectorStepNames(t *testing.T) {
	lua, err := os.ReadFile("wireshark/encchat.lua")
	if err != nil {
		t.Fatal(err)
	}
	table := func(name string) []string {
		m := regexp.MustCompile(`(?s)local ` + name + ` = \{(.*?)\n\}`).FindSubmatch(lua)
		if m == nil {
			t.Fatalf("no table %s in encchat.lua", name)
		}
		var out []string
		for _, v := range regexp.MustCompile(`= "([^"]*)"`).FindAllSubmatch(m[1], -1) {
			out = append(out, string(v[1]))
		}
		return out
	}
	for _, c := range []struct {
		table string
		steps protocolSteps
	}{{"CLASSIC_STEPS", classicSteps}, {"MODERN_STEPS", modernSteps}} {
		var want []string
		for _, st := range c.steps {
			if st.Kind != kindNone {
				want = append(want, st.Name)
			}
		}
		if got := table(c.table); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant steps.go's:\n%s", c.table, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	for _, k := range table("KIND") {
		if !slicesContains(frameKindNames[:], k) {
			t.Errorf("dissector kind %q is not one of replay's %q", k, frameKindNames)
		}
	}
}

// tsharkLua runs tshark with the dissector and extra options over capture
// and returns each encchat packet's fields; a Lua error fails the test.
func tsharkLua(t *testing.T, tshark, capture string, opts []string, fields ...string) [][]string {
	t.Helper()
	args := append([]string{"-X", "lua_script:wireshark/encchat.lua"}, opts...)
	out := runTshark(t, tshark, append(args, "-r", capture, "-Y", "encchat", "-T", "fields"), fields)
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

// TestDissectorSecondPass: a stream the capture joined mid-connection, a
// classic record and then a modern ServerHello, dissected in two passes
// (tshark -2, as Wireshark's window redissects): each frame keeps the
// suite it was classified under, and no Lua error.
func TestDissectorSecondPass(t *testing.T) {
	tshark := needTool(t, "tshark")
	var segs []synthSeg
	for _, s := range synthSegments(t, goldenCapture(t, "modern.jsonl"), 4000) {
		if s.conn == 1 && !s.handshake && !s.closer {
			segs = append(segs, s)
		}
	}
	if len(segs) < 3 || segs[0].fromClient || !bytes.Contains(segs[0].payload, []byte(modernMagic)) {
		t.Fatalf("the modern session does not start with the ServerHello in one segment")
	}
	record := fmt.Appendf(nil, "%010d%s", 64, bytes.Repeat([]byte("QUJD"), 16)) // a classic record's base64
	first := segs[0]
	first.payload, first.seq = record, first.seq-uint32(len(record))
	segs = append([]synthSeg{first}, segs...)
	path := filepath.Join(t.TempDir(), "midstream.pcap")
	if err := os.WriteFile(path, synthPcap(t, segs, layers.LinkTypeEthernet, false, false), 0o644); err != nil {
		t.Fatal(err)
	}
	// The packet details of the second pass, as the issue ran it.
	cmd := exec.Command(tshark, "-2", "-V", "-X", "lua_script:wireshark/encchat.lua", "-r", path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tshark -2 -V: %v\n%s", err, out)
	}
	if e := regexp.MustCompile(`(?m)^.*(Lua Error|attempt to ).*$`).Find(out); e != nil {
		t.Errorf("tshark -2 -V: %s", e)
	}
	if n := strings.Count(string(out), "Record sequence number"); n == 0 {
		t.Errorf("tshark -2 -V shows no modern record's number")
	}
	var infos []string
	for _, opts := range [][]string{nil, {"-2"}} {
		rows := tsharkLua(t, tshark, path, opts, "_ws.col.Info")
		if len(rows) < 3 {
			t.Fatalf("tshark %q: %d encchat packets", opts, len(rows))
		}
		var got []string
		for _, r := range rows {
			got = append(got, r[0])
		}
		infos = append(infos, strings.Join(got, "\n"))
	}
	if !strings.HasPrefix(infos[0], "Sealed record · AES-256-CBC (64 B)\nServerHello") {
		t.Errorf("first pass:\n%s", infos[0])
	}
	if infos[1] != infos[0] {
		t.Errorf("the second pass names the frames otherwise:\n%s\nfirst pass:\n%s", infos[1], infos[0])
	}
}

// TestDissectorSeedServer: the seed's server writes each frame's 10-digit
// header with a send call of its own, so the header comes in a TCP segment
// of its own (classic_peer.py --split does the same), here on a port other
// than 5174. The heuristic finds the connection opened in the capture and
// dissects every frame of it as replay reads it; with the port preference,
// or Decode As, a connection open before the capture began is dissected
// too, each frame in its true direction.
func TestDissectorSeedServer(t *testing.T) {
	tshark := needTool(t, "tshark")
	srv := startPyPeer(t, "server", "server", "--split", "--listen", "127.0.0.1:0")
	addr, ok := strings.CutPrefix(srv.next(t, interopWait), "LISTENING ")
	if !ok {
		t.Fatalf("server did not say where it listens")
	}
	srv.next(t, interopWait) // FINGERPRINT
	_, port, _ := net.SplitHostPort(addr)
	if port == "5174" {
		t.Skip("the server was given port 5174")
	}

	// alice joins before the capture begins, bob within it.
	alice := startPyPeer(t, "alice", "client", "--connect", addr, "--name", "alice")
	alice.next(t, interopWait) // FINGERPRINT
	alice.expectText(t, seedWelcome("alice"))
	capture, stop := startDumpcap(t, port)
	bob := startPyPeer(t, "bob", "client", "--connect", addr, "--name", "bob")
	bob.next(t, interopWait)
	bob.expectText(t, seedWelcome("bob"))
	alice.expectText(t, "{TS} [SYSTEM] bob joined (secure channel)")
	alice.send(t, "the header comes in a segment of its own")
	alice.expectText(t, "{TS} alice: the header comes in a segment of its own")
	bob.expectText(t, "{TS} alice: the header comes in a segment of its own")
	bob.send(t, "/quit")
	bob.expectExit(t)
	alice.expectText(t, "{TS} [SYSTEM] bob left the chat")
	stop()

	// By the heuristic: bob's connection, every frame as replay has it;
	// the PEM's header came alone.
	frames, _ := replayJSONFrames(t, capture)
	if len(frames) < 6 {
		t.Fatalf("replay read %d frames of bob's connection", len(frames))
	}
	checkDissector(t, tshark, capture, frames, true)
	headerAlone := false
	for _, row := range tsharkFields(t, tshark, capture, false, "tcp.srcport", "tcp.payload") {
		if row[0] == port && regexp.MustCompile(`^(3[0-9]){10}$`).MatchString(row[1]) {
			headerAlone = true
		}
	}
	if !headerAlone {
		t.Errorf("the server sent no header in a segment of its own")
	}

	// With the port preference, or Decode As, alice's connection too.
	for _, opts := range [][]string{{"-o", "encchat.port:" + port}, {"-d", "tcp.port==" + port + ",encchat"}} {
		rows := tsharkLua(t, tshark, capture, opts, "tcp.srcport", "encchat.direction", "encchat.kind", "tcp.stream")
		conns := map[string]int{}
		for _, r := range rows {
			want := "client → server"
			if r[0] == port {
				want = "server → client"
			}
			for _, d := range strings.Split(r[1], ",") {
				if d != want {
					t.Errorf("tshark %q: a frame from port %s is labelled %q", opts, r[0], d)
				}
			}
			conns[r[3]] += len(strings.Split(r[2], ","))
		}
		if len(conns) != 2 || len(rows) < len(frames)+4 {
			t.Errorf("tshark %q: frames by TCP stream %v, want both connections (bob's %d frames and alice's)", opts, conns, len(frames))
		}
	}
}
