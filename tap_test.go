// Tests of the passive tap (encchat tap, tap.go): its flags, relaying and
// recording, an upstream that is down, stopping with clients connected, and
// the tap in front of the Python server.

package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunTapFlags(t *testing.T) {
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-mitm", "-listen", "127.0.0.1:0"}, 2, "encchat: tap needs -upstream, -record\nencchat: hint: encchat tap -listen 127.0.0.1:6000 -upstream 127.0.0.1:5174 -record chat.jsonl\n"},
		{[]string{"-listen", "127.0.0.1:0"}, 2, "encchat: tap needs -upstream, -record\nencchat: hint: encchat tap -listen 127.0.0.1:6000 -upstream 127.0.0.1:5174 -record chat.jsonl\n"},
		{[]string{"-bogus"}, 2, "encchat: tap: flag provided but not defined: -bogus\nencchat: hint: run \"encchat tap -h\" for its flags\n"},
		{[]string{"-listen", "127.0.0.1:0", "-upstream", "x", "-record", "y", "extra"}, 2, "encchat: tap: unexpected argument \"extra\"\nencchat: hint: usage: encchat tap -listen ADDR -upstream ADDR (-record FILE [-mitm] | -rewrite OLD=NEW [-record FILE])\n"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := runTap(c.args, &out, &errb)
		if code != c.code || errb.String() != c.stderr {
			t.Errorf("tap %q: exit %d, stderr %q; want %d, %q", c.args, code, errb.String(), c.code, c.stderr)
		}
	}
}

// startTap runs tap in front of upstream and returns its address, the
// capture path, and a stop function that waits for tap to return.
func startTap(t *testing.T, upstream string) (addr, capturePath string, reports func() []string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	capturePath = filepath.Join(t.TempDir(), "tap.jsonl")
	rec, err := openCapture(capturePath, "tap", upstream)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var lines []string
	done := make(chan error, 1)
	go func() {
		done <- tap(ctx, ln, upstream, rec, func(s string) {
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
					t.Errorf("tap: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("tap did not stop within 10s")
			}
			if err := rec.Close(); err != nil {
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

func TestTapRelaysAndRecords(t *testing.T) {
	key := replayServerKey(t)
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(serverConfig{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sln) }()
	defer func() {
		srv.Shutdown()
		<-served
	}()

	addr, capturePath, reports, stop := startTap(t, sln.Addr().String())
	keylogPath := filepath.Join(t.TempDir(), "keys.log")
	kl, err := openKeylog(keylogPath)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(name string) *clientSession {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		cs, err := clientHandshake(nc, clientConfig{Name: name, Addr: addr, Fingerprint: fingerprint(&key.PublicKey), Keylog: kl})
		if err != nil {
			t.Fatalf("handshake through the tap: %v", err)
		}
		return cs
	}
	dave, erin := dial("dave"), dial("erin")
	expectRecv(t, dave, "erin joined")
	long := strings.Repeat("a long line through the tap ", 140) + "end" // several TCP segments
	dave.Send(long)
	expectRecv(t, erin, "dave: "+long)
	erin.Send("/quit")
	expectRecv(t, dave, "erin left")
	erin.Close()
	dave.Close()
	kl.Close()
	// Let the relays see both closes before stopping the tap.
	deadline := time.Now().Add(5 * time.Second)
	for countClosed(reports()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := countClosed(reports()); n != 2 {
		t.Errorf("%d relays ended by themselves after both clients left, want 2", n)
	}
	stop()

	rep := reports()
	if len(rep) != 4 || !strings.Contains(rep[0], "conn 1") || !strings.Contains(rep[0], "relaying to "+sln.Addr().String()) {
		t.Errorf("tap reports %q", rep)
	}
	data, _ := os.ReadFile(capturePath)
	hdr, evs := readEvents(t, string(data))
	if hdr.Recorder != "tap" || hdr.Addr != sln.Addr().String() {
		t.Errorf("header %+v", hdr)
	}
	var opens, closes int
	for _, ev := range evs {
		switch ev.Kind {
		case capOpen:
			opens++
			if ev.Server != sln.Addr().String() {
				t.Errorf("open records server %q, want the upstream %s", ev.Server, sln.Addr())
			}
		case capClose:
			closes++
		}
	}
	if opens != 2 || closes != 2 {
		t.Errorf("%d opens, %d closes", opens, closes)
	}
	var plain []string
	for _, f := range replayJSON(t, "-keylog", keylogPath, capturePath) {
		if f.Plaintext != nil {
			plain = append(plain, *f.Plaintext)
		}
	}
	joined := strings.Join(plain, "\n")
	for _, want := range []string{"dave", "erin", long, "[SYSTEM] erin left the chat", handshakeOKText} {
		if !strings.Contains(joined, want) {
			t.Errorf("the tap's capture does not replay %q", truncateRunes(want, 40))
		}
	}
}

func countClosed(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, ": closed (") {
			n++
		}
	}
	return n
}

func TestTapUpstreamDown(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	addr, capturePath, reports, stop := startTap(t, deadAddr)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Error("the tap kept a client whose upstream is down")
	}
	nc.Close()
	stop()
	if rep := reports(); len(rep) != 1 || !strings.Contains(rep[0], "unreachable") {
		t.Errorf("reports %q", rep)
	}
	data, _ := os.ReadFile(capturePath)
	if _, evs := readEvents(t, string(data)); len(evs) != 0 {
		t.Errorf("recorded %d events for a connection that never reached upstream", len(evs))
	}
}

func TestTapStopsWithClientsConnected(t *testing.T) {
	// An upstream that accepts and never speaks: the tap must still stop.
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	addr, _, reports, stop := startTap(t, up.Addr().String())
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("0000000003abc"))
	deadline := time.Now().Add(5 * time.Second)
	for len(reports()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopping took %v", d)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Error("the client's connection stayed open after the tap stopped")
	}
}

// TestTapPythonServer puts the tap in front of the independent Python
// server: a Go client chats through it, and the capture replays with the
// client's keylog.
func TestTapPythonServer(t *testing.T) {
	py := startPyPeer(t, "python server", "server", "--listen", "127.0.0.1:0")
	upstream, ok := strings.CutPrefix(py.next(t, interopStartup), "LISTENING ")
	if !ok {
		t.Fatal("the Python server did not print LISTENING first")
	}
	fp, ok := strings.CutPrefix(py.next(t, interopWait), "FINGERPRINT ")
	if !ok {
		t.Fatal("the Python server did not print its FINGERPRINT")
	}
	addr, capturePath, reports, stop := startTap(t, upstream)
	keylogPath := filepath.Join(t.TempDir(), "keys.log")
	kl, err := openKeylog(keylogPath)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	cs, err := clientHandshake(nc, clientConfig{Name: "gopher", Addr: addr, Fingerprint: fp, Keylog: kl})
	if err != nil {
		t.Fatalf("handshake with the Python server through the tap: %v", err)
	}
	const msg = "hello Python, through a recording tap ✓"
	cs.Send(msg)
	expectRecv(t, cs, "gopher: "+msg)
	cs.Close()
	kl.Close()
	deadline := time.Now().Add(5 * time.Second)
	for countClosed(reports()) < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()

	frames := replayJSON(t, "-keylog", keylogPath, capturePath)
	if len(frames) < 5 || frames[0].Kind != "public-key" || frames[0].Fingerprint != fp || frames[1].Kind != "key-transport" {
		t.Fatalf("replay of the Python session: %+v", frames)
	}
	var got []string
	for _, f := range frames {
		if f.Plaintext != nil {
			got = append(got, *f.Plaintext)
		}
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{handshakeOKText, "gopher", msg, "Welcome gopher!"} {
		if !strings.Contains(joined, want) {
			t.Errorf("replay lacks %q; got %q", want, got)
		}
	}
}
