// Tests of pcap export (replay -pcap, pcap.go), read back by tshark.

package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
