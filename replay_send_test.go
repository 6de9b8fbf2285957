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
	"path/filepath"
	"strings"
	"testing"
	"time"
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
