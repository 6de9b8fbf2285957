// Tests of the replay attack (replay -send, replay_send.go): a recorded
// classic session accepted again by a server with the same key (encchat's
// and the Python one), refused after a key change, refused in the modern
// suite; its flags and exit status.

package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// recordAliceSession records, from the client's side, alice joining addr,
// sending text and leaving with /quit; it returns the capture's path.
func recordAliceSession(t *testing.T, addr, text string, cfg clientConfig) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alice.jsonl")
	rec, err := openCapture(path, "client", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	cfg.Name, cfg.Addr, cfg.Record = "alice", addr, rec
	if cfg.Fingerprint == "" {
		cfg.Insecure = true
	}
	alice, err := clientHandshake(nc, cfg)
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	alice.Send(text)
	expectRecv(t, alice, "alice: "+text)
	alice.Send("/quit")
	for {
		if _, err := alice.Recv(); err != nil {
			break
		}
	}
	alice.Close()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func runSend(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runReplay(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestReplaySendClassicSameKeyAccepted(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	bob := join(t, ts.addr, "bob")
	capPath := recordAliceSession(t, ts.addr, "pay bob 10 coins", clientConfig{})
	expect(t, bob, "[SYSTEM] alice left the chat")

	code, out, errs := runSend(t, "-send", ts.addr, capPath)
	if code != 0 {
		t.Fatalf("replay -send: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"the same key as in the recording", "HANDSHAKE_OK", "ACCEPTED: the server took connection 1 again"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Bob sees alice join again and her old message, under her name.
	expect(t, bob, "[SYSTEM] alice joined (secure channel)")
	expect(t, bob, "alice: pay bob 10 coins")
	expect(t, bob, "[SYSTEM] alice left the chat")
}

func TestReplaySendClassicKeyChangedRefused(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	capPath := recordAliceSession(t, ts.addr, "hello", clientConfig{})
	other, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		t.Fatal(err)
	}
	ts2 := startTestServer(t, serverConfig{Key: other})
	bob := join(t, ts2.addr, "bob")
	code, out, _ := runSend(t, "-send", ts2.addr, "-conn", "1", capPath)
	if code != 1 {
		t.Fatalf("replay -send after a key change: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"the server's key changed", "REFUSED: the server closed the connection after the recorded key blob", fingerprint(&other.PublicKey), fingerprint(&testRSAKey(t).PublicKey)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ts2.logged(t, evRefused, "")
	bob.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if text, err := bob.Recv(); err == nil {
		t.Errorf("bob got %q from a refused replay", text)
	}
}

func TestReplaySendModernRefused(t *testing.T) {
	ts := startTestServer(t, serverConfig{Suite: suiteModern})
	bob := join(t, ts.addr, "bob")
	capPath := recordAliceSession(t, ts.addr, "pay bob 10 coins", clientConfig{})
	expect(t, bob, "[SYSTEM] alice left the chat")
	code, out, _ := runSend(t, "-send", ts.addr, capPath)
	if code != 1 {
		t.Fatalf("modern replay -send: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"modern ServerHello with a fresh random", "ServerVerify", "REFUSED: the server closed the connection: the modern handshake refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ts.logged(t, evRefused, "finished message invalid")
	bob.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if text, err := bob.Recv(); err == nil {
		t.Errorf("bob got %q from a refused replay", text)
	}
}

func TestReplaySendPythonServer(t *testing.T) {
	start := func() (addr, fp string) {
		py := startPyPeer(t, "python server", "server", "--listen", "127.0.0.1:0")
		addr, ok := strings.CutPrefix(py.next(t, interopStartup), "LISTENING ")
		if !ok {
			t.Fatal("the Python server did not print LISTENING first")
		}
		fp, ok = strings.CutPrefix(py.next(t, interopWait), "FINGERPRINT ")
		if !ok {
			t.Fatal("the Python server did not print its FINGERPRINT")
		}
		return addr, fp
	}
	addr, fp := start()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	bob, err := clientHandshake(nc, clientConfig{Name: "bob", Addr: addr, Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	capPath := recordAliceSession(t, addr, "pay bob 10 coins", clientConfig{Fingerprint: fp})
	expectRecv(t, bob, "alice left the chat")

	code, out, errs := runSend(t, "-send", addr, capPath)
	if code != 0 {
		t.Fatalf("replay -send to the Python server: exit %d\n%s%s", code, out, errs)
	}
	expectRecv(t, bob, "alice joined")
	expectRecv(t, bob, "alice: pay bob 10 coins")

	// The seed's server made a new key at every start: a restart refuses it.
	addr2, _ := start()
	code, out, _ = runSend(t, "-send", addr2, capPath)
	if code != 1 || !strings.Contains(out, "the server's key changed") {
		t.Fatalf("replay -send to a restarted Python server: exit %d, want 1 and a changed key\n%s", code, out)
	}
}

func TestReplaySendFlags(t *testing.T) {
	dir := t.TempDir()
	capPath := filepath.Join(dir, "c.jsonl")
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-send", "192.0.2.1:5174", capPath}, 2, "encchat: replay -send: 192.0.2.1 is not a loopback address\nencchat: hint: replay -send sends recorded traffic to servers on this machine only\n"},
		{[]string{"-send", "127.0.0.1:1", "-json", capPath}, 2, "encchat: replay: -send sends the recorded bytes with no key; it cannot be used with -json\n"},
		{[]string{"-send", "127.0.0.1:1", filepath.Join(dir, "missing.jsonl")}, 2, "encchat: open " + filepath.Join(dir, "missing.jsonl") + ": no such file or directory\n"},
	}
	for _, c := range cases {
		code, _, errs := runSend(t, c.args...)
		if code != c.code || errs != c.stderr {
			t.Errorf("replay %q: exit %d, stderr %q; want %d, %q", c.args, code, errs, c.code, c.stderr)
		}
	}
}

// goldenServerKey is the key testdata/replay's captures were recorded with.
func goldenServerKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(replayTestdata, "server.pem"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := parsePrivateKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestReplaySendSummary sends a whole capture of two sessions (alice's and
// bob's) to a server with the recording's key while bob is online: alice's
// is accepted, bob's refused, and the last line counts both; the exit
// status is 1 because one was refused.
func TestReplaySendSummary(t *testing.T) {
	ts := startTestServer(t, serverConfig{Key: goldenServerKey(t)})
	bob := join(t, ts.addr, "bob")
	defer bob.Close()
	code, out, errs := runSend(t, "-send", ts.addr, filepath.Join(replayTestdata, "session.jsonl"))
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"── conn 1: 5 client frames\n", "  ACCEPTED: the server took connection 1 again",
		"── conn 2: 4 client frames\n", "  REFUSED: the server answered the username and closed the connection: the server refused the recorded username (Step 8",
		"\nsummary: 1 accepted, 1 refused, of 2 connections: the server took some replayed sessions and refused others",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "conn 0") || errs != "" {
		t.Errorf("stderr %q, output:\n%s", errs, out)
	}
	if c := (sendTally{accepted: 2}).exitCode(); c != 0 {
		t.Errorf("all accepted: exit %d, want 0", c)
	}
	if c := (sendTally{accepted: 1, skipped: 1}).exitCode(); c != 0 {
		t.Errorf("one accepted, one skipped: exit %d, want 0", c)
	}
	if c := (sendTally{skipped: 2}).exitCode(); c != 2 {
		t.Errorf("all skipped: exit %d, want 2", c)
	}
	if c := (sendTally{accepted: 1, failed: 1}).exitCode(); c != 2 {
		t.Errorf("one not tried to the end: exit %d, want 2", c)
	}
}

// TestReplaySendPcapSkipped sends a pcap that holds a UDP packet and a
// connection whose start the capture missed: they are a note and a skipped
// connection, never a connection 0, and the one whole connection is
// accepted with exit 0.
func TestReplaySendPcapSkipped(t *testing.T) {
	segs := synthSegments(t, goldenCapture(t, "session.jsonl"), 100)
	var kept []synthSeg
	conn2Data := 0
	for _, s := range segs {
		if s.conn == 2 && s.handshake {
			continue // the capture began after conn 2's SYN…
		}
		if s.conn == 2 && len(s.payload) > 0 && !s.fromClient {
			if conn2Data++; conn2Data <= 2 {
				continue // …and after its first server bytes
			}
		}
		kept = append(kept, s)
	}
	kept = append(kept, synthSeg{t: kept[len(kept)-1].t, src: netip.MustParseAddrPort("127.0.0.1:40000"), dst: netip.MustParseAddrPort("127.0.0.1:53"), udp: true, payload: []byte("dns?")})
	path := filepath.Join(t.TempDir(), "s.pcap")
	if err := os.WriteFile(path, synthPcap(t, kept, layers.LinkTypeEthernet, false, false), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, serverConfig{Key: goldenServerKey(t)})
	code, out, errs := runSend(t, "-send", ts.addr, path)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"  note: 1 packet skipped: not TCP (1 UDP)",
		"  ACCEPTED: the server took connection 1 again",
		"  SKIPPED: the capture began during this connection",
		"\nsummary: 1 accepted, 0 refused, 1 skipped, of 2 connections",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "conn 0") {
		t.Errorf("skipped traffic became a connection:\n%s", out)
	}
}

// TestReplaySendOtherSuite sends a classic recording to a modern server:
// refused because the suites differ, with no modern handshake's reasons.
func TestReplaySendOtherSuite(t *testing.T) {
	ts := startTestServer(t, serverConfig{Suite: suiteModern})
	code, out, _ := runSend(t, "-send", ts.addr, filepath.Join(replayTestdata, "session.jsonl"), "-conn", "1")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"→ frame 1, classic session's Step 4 key-transport blob, 256 B, as recorded",
		"REFUSED: the server closed the connection: the recording is a classic session and the server speaks the modern suite: it wants a ClientHello first",
		"summary: 0 accepted, 1 refused, of 1 connection",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, no := range []string{"frame 1, ClientHello", "fresh X25519"} {
		if strings.Contains(out, no) {
			t.Errorf("output has %q:\n%s", no, out)
		}
	}
}

// TestReplaySendHints: a closed port and a key log given as the capture
// each get a hint.
func TestReplaySendHints(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	code, out, errs := runSend(t, "-send", closed, filepath.Join(replayTestdata, "session.jsonl"))
	if code != 2 || !strings.Contains(errs, "encchat: replay -send: cannot connect to "+closed) ||
		!strings.Contains(errs, "encchat: hint: is the server running? start one with \"encchat server -listen "+closed+"\"") {
		t.Errorf("closed port: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "summary: 0 accepted, 0 refused, 2 not tried to the end, of 2 connections") {
		t.Errorf("closed port: output:\n%s", out)
	}
	keys := filepath.Join(replayTestdata, "session.keys")
	for _, args := range [][]string{{keys}, {"-send", closed, keys}, {"-html", filepath.Join(t.TempDir(), "l.html"), keys}} {
		code, _, errs = runSend(t, args...)
		want := "encchat: replay: " + keys + " is a key log, not a capture\nencchat: hint: give it with -keylog, and the capture it decrypts as the argument: encchat replay -keylog " + keys + " CAPTURE\n"
		if code != 2 || errs != want {
			t.Errorf("replay %q: exit %d, stderr %q; want 2, %q", args, code, errs, want)
		}
	}
}
