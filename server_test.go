// Tests of the server hub (server.go), end to end with real clients: the
// chat and its commands, usernames, relayed texts, frame and record
// violations, timeouts, limits on clients, addresses, lines and frame
// sizes, and clients that vanish.

package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestChatEndToEnd(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	alice := join(t, ts.addr, "alice")
	if !strings.Contains(alice.Welcome(), "Welcome alice!") || alice.Welcome() != welcomeText("alice") {
		t.Fatalf("welcome = %q", alice.Welcome())
	}
	bob := join(t, ts.addr, "bob")
	expect(t, alice, "[SYSTEM] bob joined (secure channel)")
	carol := join(t, ts.addr, "carol")
	expect(t, alice, "[SYSTEM] carol joined (secure channel)")
	expect(t, bob, "[SYSTEM] carol joined (secure channel)")

	// Broadcast, echoed to the sender too.
	alice.Send("Hello everyone!")
	for _, c := range []*clientSession{alice, bob, carol} {
		expect(t, c, "alice: Hello everyone!")
	}
	ts.logged(t, evBroadcast, "alice: Hello everyone!")

	// /pm reaches only the recipient, and the sender gets a copy.
	bob.Send("/pm carol just between us")
	expect(t, carol, "[PM from bob] just between us")
	expect(t, bob, "[PM to carol] just between us")
	ts.logged(t, evPM, "bob -> carol")
	bob.Send("/pm nobody hello")
	expect(t, bob, "[ERROR] User 'nobody' not found")
	bob.Send("/pm carol")
	expect(t, bob, "[ERROR] Usage: /pm <username> <message>")

	// /list in join order.
	carol.Send("/list")
	expect(t, carol, listText([]string{"alice", "bob", "carol"}))

	// A duplicate name is refused; the holder keeps chatting.
	if _, err := dialTest(t, ts.addr, clientConfig{Name: "alice"}); err == nil || !strings.Contains(err.Error(), "Username already taken") {
		t.Fatalf("duplicate alice: err = %v", err)
	}
	alice.Send("still here")
	skipped := expect(t, bob, "alice: still here")
	for _, s := range skipped {
		if strings.Contains(s, "left") || strings.Contains(s, "joined") {
			t.Errorf("bob saw %q around the refused duplicate", s)
		}
	}
	expect(t, alice, "alice: still here")

	// carol did not see bob's PM errors or the PM copy meant for bob.
	carol.Send("/list")
	skipped = expect(t, carol, listText([]string{"alice", "bob", "carol"}))
	for _, s := range skipped {
		if strings.Contains(s, "ERROR") || strings.Contains(s, "PM to") {
			t.Errorf("carol saw %q", s)
		}
	}

	// Leaving: /quit closes, the others are told.
	carol.Send("/quit")
	expectClosed(t, carol.conn)
	expect(t, alice, "[SYSTEM] carol left the chat")
	expect(t, bob, "[SYSTEM] carol left the chat")
	ts.logged(t, evLeave, "carol")

	// Shutdown: everyone gets the notice, then the connection closes.
	go ts.Shutdown()
	expect(t, alice, shutdownText)
	expect(t, bob, shutdownText)
	expectClosed(t, alice.conn)
}

func TestHelpAndUnknownCommand(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	a := join(t, ts.addr, "alice")
	a.Send("/help")
	a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	text, err := a.Recv()
	if err != nil || !strings.Contains(text, "[HELP]") || !strings.Contains(text, "/pm <username> <message>") {
		t.Fatalf("/help = %q, %v", text, err)
	}
	a.Send("/frobnicate now")
	expect(t, a, "[ERROR] Unknown command: /frobnicate (try /help)")
}

func TestUsernameRules(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	for _, name := range []string{"", "System", "SERVER", "has space", "semi;colon",
		"esc\x1b[2J", "new\nline", strings.Repeat("x", 33), "bidi\u202ename"} {
		_, err := dialTest(t, ts.addr, clientConfig{Name: name})
		var re *refusedError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Text, "ERROR: Invalid username: ") {
			t.Errorf("name %q: err = %v, want an invalid-username refusal", name, err)
		}
	}
	for _, name := range []string{"alice", "Zoë", "名前", "a.b-c_d", strings.Repeat("x", 32), "a"} {
		join(t, ts.addr, name)
	}
	ts.logged(t, evRefused, "invalid username")
}

func TestControlCharactersNeverRelayed(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	a := join(t, ts.addr, "alice")
	b := join(t, ts.addr, "bob")
	a.Send("clear\x1b[2J screen\r\nfake [SYSTEM]\u202e\x7f\u0085 done\t!")
	expect(t, b, "alice: clear[2J screenfake [SYSTEM] done!")
	a.Send("/pm bob \x1b]0;title\x07hi")
	expect(t, b, "[PM from alice] ]0;titlehi")
	// A message that is only control characters is not relayed at all.
	a.Send("\x1b\x07")
	a.Send("after")
	if skipped := expect(t, b, "alice: after"); len(skipped) != 0 {
		t.Errorf("bob got %q before the next message", skipped)
	}
}

func TestMessageLengthLimit(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	a := join(t, ts.addr, "alice")
	a.Send(strings.Repeat("x", maxTextLen))
	expect(t, a, "alice: "+strings.Repeat("x", maxTextLen))
	a.Send(strings.Repeat("y", maxTextLen+1))
	expect(t, a, "[ERROR] Message too long (max 4096 bytes)")
	a.Send("short")
	expect(t, a, "alice: short")
}

func TestFrameViolationsDropOnlyThatClient(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	watcher := join(t, ts.addr, "watcher")
	for i, bad := range []string{
		"9999999999",   // the seed accepts this and tries to read 10 GB
		"0000065537",   // one over the limit
		"00000001x0",   // not ten digits
		"-000000010",   // a sign
		" 000000010",   // a space
		"0x00000010",   // hex
		"00000000\r\n", // line noise
	} {
		name := fmt.Sprintf("bad%d", i)
		conn, _ := rawClassic(t, ts.addr, name)
		expect(t, watcher, "[SYSTEM] "+name+" joined (secure channel)")
		conn.Write([]byte(bad))
		expectClosed(t, conn)
		expect(t, watcher, "[SYSTEM] "+name+" left the chat")
		ts.logged(t, evLeave, name+" left the chat (protocol violation")
	}
	watcher.Send("still fine")
	expect(t, watcher, "watcher: still fine")
}

func TestCorruptedRecordsDroppedTheSameWay(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	bob := join(t, ts.addr, "bob")
	conn, rc := rawClassic(t, ts.addr, "mallory")
	expect(t, bob, "[SYSTEM] mallory joined (secure channel)")
	good, _ := rc.seal([]byte("a valid message"))
	badPad, _ := rc.seal([]byte("x"))
	raw := make([]byte, 48)
	n, _ := decodeB64(raw, badPad)
	raw[n-17] ^= 0x01 // flip a bit of the last byte's block input: padding breaks
	badUTF8, _ := rc.seal([]byte{0xff, 0xfe})
	for _, p := range [][]byte{
		[]byte("!!!not base64!!!"),
		[]byte("AAAA"), // decodes to 3 bytes: too short
		encodeB64(raw[:n]),
		badUTF8,
		encodeB64(make([]byte, 16+15)), // not a multiple of the block size
	} {
		writeFrame(conn, p)
	}
	writeFrame(conn, good)
	if skipped := expect(t, bob, "mallory: a valid message"); len(skipped) != 0 {
		t.Errorf("bob saw %q", skipped)
	}
	ev := ts.logged(t, evDropped, "(5 so far)")
	for _, i := range []string{"(1 so far)", "(2 so far)", "(3 so far)", "(4 so far)"} {
		e := ts.logged(t, evDropped, i)
		if strings.TrimSuffix(e.Text, i) != strings.TrimSuffix(ev.Text, "(5 so far)") {
			t.Errorf("drop reasons differ: %q vs %q", e.Text, ev.Text)
		}
	}
}

func TestHandshakeTimeout(t *testing.T) {
	ts := startTestServer(t, serverConfig{HandshakeTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	expectClosed(t, conn) // reads the PEM frame, then the close
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	ts.logged(t, evRefused, "handshake timeout")

	// A client stuck after the key exchange (no username) is also closed.
	conn2, _ := rawClassic(t, ts.addr, "")
	expectClosed(t, conn2)
}

func TestHalfFrameThenDisconnect(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	bob := join(t, ts.addr, "bob")
	conn, _ := rawClassic(t, ts.addr, "half")
	expect(t, bob, "[SYSTEM] half joined (secure channel)")
	conn.Write([]byte("0000000100abc"))
	conn.Close()
	expect(t, bob, "[SYSTEM] half left the chat")
	ts.logged(t, evLeave, "half left the chat (connection closed mid-frame)")
	join(t, ts.addr, "half") // the name is free again
}

func TestMaxClients(t *testing.T) {
	ts := startTestServer(t, serverConfig{MaxClients: 2})
	join(t, ts.addr, "a")
	join(t, ts.addr, "b")
	_, err := dialTest(t, ts.addr, clientConfig{Name: "c"})
	var re *refusedError
	if !errors.As(err, &re) || re.Text != serverFullText {
		t.Fatalf("third client: %v", err)
	}
	ts.logged(t, evRefused, "server full")
}

func TestFramesAreWholeUnderConcurrentSends(t *testing.T) {
	ts := startTestServer(t, serverConfig{QueueLen: 4096})
	reader := join(t, ts.addr, "reader")
	const senders, each = 8, 50
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		cs := join(t, ts.addr, fmt.Sprintf("s%d", s))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				cs.Send(fmt.Sprintf("m%d %s", i, strings.Repeat("p", 200)))
			}
		}()
	}
	wg.Wait()
	// Every record must open: a split frame would fail to decrypt or parse.
	got := 0
	reader.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got < senders*each {
		text, err := reader.Recv()
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		if strings.Contains(text, strings.Repeat("p", 200)) {
			got++
		}
	}
	if reader.Dropped != 0 {
		t.Errorf("%d records did not decrypt", reader.Dropped)
	}
}

func encodeB64(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }

func decodeB64(dst, src []byte) (int, error) { return base64.StdEncoding.Decode(dst, src) }

func TestMaxPerAddr(t *testing.T) {
	ts := startTestServer(t, serverConfig{MaxPerAddr: 2})
	join(t, ts.addr, "a")
	b := join(t, ts.addr, "b")
	_, err := dialTest(t, ts.addr, clientConfig{Name: "c"})
	var re *refusedError
	if !errors.As(err, &re) || re.Text != tooManyText {
		t.Fatalf("third connection from one address: %v", err)
	}
	ts.logged(t, evRefused, "too many connections from 127.0.0.1 (max 2)")
	// A slot frees when someone leaves.
	b.Send("/quit")
	expectClosed(t, b.conn)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := dialTest(t, ts.addr, clientConfig{Name: "c"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChatRightBehindTheName(t *testing.T) {
	// A client may send its first line in the same segment as its name.
	ts := startTestServer(t, serverConfig{})
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	first, _ := readFrame(br)
	rc, err := classicClientHandshake(frameRW{br, conn}, first, &handshakeConfig{CheckKey: anyServerKey})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := rc.seal([]byte("eager"))
	line, _ := rc.seal([]byte("first words"))
	conn.Write(appendFrame(appendFrame(nil, name), line)) // one write, one segment
	for {
		p, err := readFrame(br)
		if err != nil {
			t.Fatalf("never saw the first line: %v", err)
		}
		if text, _ := rc.open(p); strings.HasSuffix(string(text), "eager: first words") {
			return
		}
	}
}

func TestMaxFrameFlag(t *testing.T) {
	ts := startTestServer(t, serverConfig{MaxFrame: 2048})
	w := join(t, ts.addr, "watcher")
	a := join(t, ts.addr, "alice")
	a.Send(strings.Repeat("k", 1000)) // a 1,368-byte record: under the limit
	expect(t, w, "alice: "+strings.Repeat("k", 1000))
	a.Send(strings.Repeat("m", 1500)) // 2,028 bytes: just under
	expect(t, w, "alice: "+strings.Repeat("m", 1500))
	a.Send(strings.Repeat("n", 1600)) // 2,176 bytes: over the limit
	expectClosed(t, a.conn)
	expect(t, w, "[SYSTEM] alice left the chat")
	ts.logged(t, evLeave, "alice left the chat (protocol violation: frame too long: over 2048 bytes)")
}

func TestClientKilledMidHandshake(t *testing.T) {
	ts := startTestServer(t, serverConfig{})
	w := join(t, ts.addr, "watcher")
	for i, cut := range []int{0, 5, headerLen, headerLen + 100} {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := readFrame(conn); err != nil { // the public key
			t.Fatal(err)
		}
		// Part of the 266-byte key-transport frame, then the process dies.
		conn.Write(appendFrame(nil, make([]byte, rsaBlobSize))[:cut])
		conn.Close()
		if ev := ts.logged(t, evRefused, "closed during handshake"); i == 0 && ev.Text == "" {
			t.Fatal("no refusal logged")
		}
	}
	w.Send("unbothered")
	expect(t, w, "watcher: unbothered")
}
