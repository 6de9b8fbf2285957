// Tests of the rewriting tap (tap -rewrite, rewrite.go): its flags, the
// forgery a classic server relays (encchat's and the Python one), the
// refusal of a modern server, and the capture of both legs.

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseRewrite(t *testing.T) {
	good, err := parseRewrite("pay bob 10=pay bob 90")
	if err != nil || good.old != "pay bob 10" || good.new != "pay bob 90" || !bytes.Equal(good.mask, []byte{0, 0, 0, 0, 0, 0, 0, 0, '1' ^ '9', 0}) {
		t.Fatalf("parseRewrite: %+v, %v", good, err)
	}
	if got := good.changedBytes(); got != "byte 8" {
		t.Errorf("changedBytes = %q", got)
	}
	for _, bad := range []string{"", "abc", "=x", "ab=abc", "same=same", "0123456789abcdefg=0123456789abcdefh"} {
		if _, err := parseRewrite(bad); err == nil {
			t.Errorf("parseRewrite(%q) accepted", bad)
		}
	}
}

func TestRunTapRewriteFlags(t *testing.T) {
	cases := []struct {
		args   []string
		stderr string
	}{
		{[]string{"-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:1", "-rewrite", "ab=abc"}, "encchat: tap: -rewrite OLD and NEW must be the same length in bytes (\"ab\" is 2, \"abc\" is 3)\n"},
		{[]string{"-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:1", "-rewrite", "a=b", "-mitm"}, "encchat: tap: -mitm and -rewrite cannot be used together\n"},
		{[]string{"-listen", "127.0.0.1:0", "-rewrite", "a=b"}, "encchat: tap needs -upstream\nencchat: hint: encchat tap -listen 127.0.0.1:6000 -upstream 127.0.0.1:5174 -record chat.jsonl\n"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		if code := runTap(c.args, &out, &errb); code != 2 || errb.String() != c.stderr {
			t.Errorf("tap %q: exit %d, stderr %q; want 2, %q", c.args, code, errb.String(), c.stderr)
		}
	}
}

// startRewriteTap runs rewriteTap in front of upstream, recording into a
// capture when rec is true.
func startRewriteTap(t *testing.T, upstream, spec string, rec bool) (addr, capturePath string, reports func() []string, stop func()) {
	t.Helper()
	rs, err := parseRewrite(spec)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var c *capture
	if rec {
		capturePath = filepath.Join(t.TempDir(), "rewrite.jsonl")
		if c, err = openCapture(capturePath, "tap", upstream); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var lines []string
	done := make(chan error, 1)
	go func() {
		done <- rewriteTap(ctx, ln, upstream, rs, c, func(s string) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, s)
		})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("rewriteTap: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("rewriteTap did not stop within 10s")
			}
			if err := c.Close(); err != nil {
				t.Errorf("capture: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	reports = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
	return ln.Addr().String(), capturePath, reports, stop
}

// waitReport waits until a report line contains sub.
func waitReport(t *testing.T, reports func() []string, sub string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range reports() {
			if strings.Contains(l, sub) {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no report containing %q; got %q", sub, reports())
	return ""
}

func TestRewriteClassicForgeryRelayed(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	addr, capturePath, reports, stop := startRewriteTap(t, ts.addr, "pay bob 10=pay bob 90", true)
	keylogPath := filepath.Join(t.TempDir(), "keys.log")
	kl, err := openKeylog(keylogPath)
	if err != nil {
		t.Fatal(err)
	}
	bob := join(t, ts.addr, "bob")
	alice, err := dialTest(t, addr, clientConfig{Name: "alice", Keylog: kl})
	if err != nil {
		t.Fatalf("alice through the rewriting tap: %v", err)
	}
	expect(t, bob, "[SYSTEM] alice joined (secure channel)")

	alice.Send("pay bob 10 coins")
	expect(t, bob, "alice: pay bob 90 coins")
	ts.logged(t, evBroadcast, "alice: pay bob 90 coins")
	// Blind: a text that does not begin with OLD changes at the same byte.
	alice.Send("hello there, bob")
	expect(t, bob, "alice: hello th"+string(rune('e'^'1'^'9'))+"re, bob")
	line := waitReport(t, reports, "frame 3 (chat record 1): IV byte 8 flipped")
	if !strings.Contains(line, `blind: it reads "pay bob 90" only if it began with "pay bob 10"`) {
		t.Errorf("report %q", line)
	}
	waitReport(t, reports, "frame 4 (chat record 2)")
	if !strings.Contains(reports()[0], "The attack is blind") {
		t.Errorf("first report %q does not say the attack is blind", reports()[0])
	}
	alice.Close()
	kl.Close()
	waitReport(t, reports, "closed after 2 rewritten record(s)")
	stop()

	// The capture holds both legs: as alice sent it, as the server got it.
	frames := replayJSON(t, "-keylog", keylogPath, capturePath)
	var texts [3][]string
	for _, f := range frames {
		if f.Dir == "c2s" && f.Plaintext != nil && f.Conn < 3 {
			texts[f.Conn] = append(texts[f.Conn], *f.Plaintext)
		}
	}
	if strings.Join(texts[1], "|") != "alice|pay bob 10 coins|hello there, bob" {
		t.Errorf("client leg: %q", texts[1])
	}
	if !strings.Contains(strings.Join(texts[2], "|"), "pay bob 90 coins") {
		t.Errorf("server leg: %q", texts[2])
	}
}

func TestRewriteModernRefused(t *testing.T) {
	ts := startTestServer(t, serverConfig{Suite: suiteModern})
	addr, _, reports, _ := startRewriteTap(t, ts.addr, "pay bob 10=pay bob 90", false)
	bob := join(t, ts.addr, "bob")
	alice, err := dialTest(t, addr, clientConfig{Name: "alice"})
	if err != nil {
		t.Fatalf("alice through the rewriting tap: %v", err)
	}
	expect(t, bob, "[SYSTEM] alice joined (secure channel)")
	alice.Send("pay bob 10 coins")
	ts.logged(t, evLeave, "bad record MAC")
	// The attacker's connection is closed: alice reads EOF, not a relay.
	alice.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		text, err := alice.Recv()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the connection through the tap was not closed")
			}
			break
		}
		if strings.Contains(text, "pay bob") {
			t.Fatalf("alice got %q back", text)
		}
	}
	// Bob sees alice leave and nothing forged.
	skipped := expect(t, bob, "[SYSTEM] alice left the chat")
	for _, s := range skipped {
		if strings.Contains(s, "pay bob") {
			t.Errorf("bob got %q", s)
		}
	}
	waitReport(t, reports, "ciphertext byte 8 flipped")
	waitReport(t, reports, "the forgery was refused")
	for _, ev := range ts.log {
		if ev.Kind == evBroadcast {
			t.Errorf("the server relayed %q", ev.Text)
		}
	}
}

func TestRewritePythonServer(t *testing.T) {
	py := startPyPeer(t, "python server", "server", "--listen", "127.0.0.1:0")
	upstream, ok := strings.CutPrefix(py.next(t, interopStartup), "LISTENING ")
	if !ok {
		t.Fatal("the Python server did not print LISTENING first")
	}
	fp, ok := strings.CutPrefix(py.next(t, interopWait), "FINGERPRINT ")
	if !ok {
		t.Fatal("the Python server did not print its FINGERPRINT")
	}
	addr, _, reports, _ := startRewriteTap(t, upstream, "10 coins=90 coins", false)
	dial := func(at, name string) *clientSession {
		t.Helper()
		nc, err := net.DialTimeout("tcp", at, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		cs, err := clientHandshake(nc, clientConfig{Name: name, Addr: at, Fingerprint: fp})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	bob := dial(upstream, "bob")
	alice := dial(addr, "alice")
	expectRecv(t, bob, "alice joined")
	alice.Send("10 coins to bob")
	expectRecv(t, bob, "alice: 90 coins to bob")
	waitReport(t, reports, "IV byte 0 flipped")
}

func TestFlipRecord(t *testing.T) {
	spec, _ := parseRewrite("pay bob 10=pay bob 90")
	key := bytes.Repeat([]byte{7}, aesKeySize)
	cc, err := newClassicCipher(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := cc.seal([]byte("pay bob 10 coins"))
	n := len(sealed)
	if where, ok := flipRecord(suiteClassic, sealed, spec); !ok || !strings.HasPrefix(where, "IV byte 8 flipped") || len(sealed) != n {
		t.Fatalf("classic flip: %q %v, %d bytes (was %d)", where, ok, len(sealed), n)
	}
	if text, err := cc.open(sealed); err != nil || string(text) != "pay bob 90 coins" {
		t.Errorf("the flipped record opens to %q, %v", text, err)
	}
	if _, ok := flipRecord(suiteClassic, []byte("not base64!"), spec); ok {
		t.Error("flipped a classic frame that is not a record")
	}
	short := make([]byte, gcmTagLen+5) // "/quit": the changed byte 8 is past its text
	if _, ok := flipRecord(suiteModern, short, spec); ok {
		t.Error("counted a modern record too short to reach the changed byte")
	}
	long := make([]byte, gcmTagLen+16)
	if where, ok := flipRecord(suiteModern, long, spec); !ok || where != "ciphertext byte 8 flipped" || long[8] != '1'^'9' {
		t.Errorf("modern flip: %q %v %x", where, ok, long)
	}
}
