// Tests of the lesson page's marks for sessions sent twice
// (lesson_repeats.go): a record rewritten by tap -rewrite, shown with the
// flipped IV beside the text the server read, and a connection replayed by
// replay -send.

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestByteList(t *testing.T) {
	for _, c := range []struct {
		in   []int
		want string
	}{{[]int{8}, "8"}, {[]int{0, 4, 5, 6}, "0, 4–6"}, {[]int{1, 2, 9, 11, 12}, "1–2, 9, 11–12"}} {
		if got := byteList(c.in); got != c.want {
			t.Errorf("byteList(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// lessonSection returns connection n's section of a lesson page.
func lessonSection(t *testing.T, page string, n string) string {
	t.Helper()
	start := strings.Index(page, `<section class="conn" id="conn-`+n+`"`)
	if start < 0 {
		t.Fatalf("the page has no section for connection %s", n)
	}
	end := strings.Index(page[start:], "</section>")
	return page[start : start+end]
}

func writeRepeatsLesson(t *testing.T, args ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lesson.html")
	var out, errb bytes.Buffer
	if code := runReplay(append([]string{"-html", path}, args...), &out, &errb); code != 0 {
		t.Fatalf("replay -html: exit %d: %s", code, errb.String())
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(page)
}

func TestLessonMarksRewrittenRecord(t *testing.T) {
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
		t.Fatal(err)
	}
	alice.Send("pay bob 10 coins")
	expect(t, bob, "alice: pay bob 90 coins")
	alice.Close()
	kl.Close()
	waitReport(t, reports, "closed after 1 rewritten record(s)")
	stop()

	page := writeRepeatsLesson(t, "-keylog", keylogPath, capturePath)
	if strings.Contains(lessonSection(t, page, "1"), "REWRITTEN IN FLIGHT") {
		t.Error("the client's leg is marked as rewritten")
	}
	leg := lessonSection(t, page, "2")
	if !strings.Contains(leg, "REWRITTEN IN FLIGHT: this is the server&#39;s leg of connection 1") {
		t.Errorf("the server's leg is not marked:\n%s", leg)
	}
	// The forged frame: the sniffer's note on the flipped IV, and beside it
	// the text the server read.
	i := strings.Index(leg, "IV byte 8 differs from connection 1&#39;s frame #")
	if i < 0 {
		t.Fatalf("no rewritten frame in the server's leg:\n%s", leg)
	}
	row := leg[strings.LastIndex(leg[:i], `<div class="row frame`):]
	if next := strings.Index(row[1:], `<div class="row`); next > 0 {
		row = row[:next+1]
	}
	if !strings.Contains(row, "whose client sent &#34;pay bob 10 coins&#34;") {
		t.Errorf("the rewritten frame does not give the original text")
	}
	peer := row[strings.Index(row, `<div class="cell peer">`):]
	if !strings.Contains(peer[:strings.Index(peer, "</div>\n</div>")], "pay bob 90 coins") {
		t.Errorf("the peer column beside the rewritten frame does not show the forged text:\n%s", peer)
	}
}

func TestLessonMarksReplayedConnection(t *testing.T) {
	capturePath := filepath.Join(t.TempDir(), "server.jsonl")
	rec, err := openCapture(capturePath, "server", "")
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, serverConfig{Record: rec})
	alice := join(t, ts.addr, "alice")
	alice.Send("hello")
	expect(t, alice, "alice: hello")
	alice.Send("/quit")
	expectClosed(t, alice.conn)
	ts.logged(t, evLeave, "alice")
	// The capture is written every 200 ms: wait for connection 1's close.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(capturePath); bytes.Contains(b, []byte(`"conn":1,"ev":"close"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the capture never recorded connection 1's close")
		}
	}
	if code, out, _ := runSend(t, "-send", ts.addr, "-conn", "1", capturePath); code != 0 {
		t.Fatalf("replay -send: exit %d\n%s", code, out)
	}
	ts.logged(t, evBroadcast, "alice: hello") // twice, by now
	ts.Shutdown()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	page := writeRepeatsLesson(t, capturePath)
	if strings.Contains(lessonSection(t, page, "1"), "REPLAYED") {
		t.Error("the original connection is marked as replayed")
	}
	if s := lessonSection(t, page, "2"); !strings.Contains(s, "REPLAYED: this connection&#39;s client sends connection 1&#39;s bytes again") {
		t.Errorf("the replayed connection is not marked:\n%s", s)
	}
}

// TestLessonReplayOfRewrittenSession is the replay told the right way
// round: a server records; alice's "pay bob 10 coins" goes through
// tap -rewrite and reaches it as 90 (connection 2); the tap's capture of
// alice's own leg is sent again with replay -send (connection 3, alice's
// original bytes). On the server's page connection 3 is a replay that
// differs from connection 2, not a rewrite of it, and connection 2 says
// that it was sent again.
func TestLessonReplayOfRewrittenSession(t *testing.T) {
	dir := t.TempDir()
	capturePath, keylogPath := filepath.Join(dir, "server.jsonl"), filepath.Join(dir, "keys.log")
	rec, err := openCapture(capturePath, "server", "")
	if err != nil {
		t.Fatal(err)
	}
	kl, err := openKeylog(keylogPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, serverConfig{Record: rec, Keylog: kl})
	tapAddr, tapCapture, reports, stop := startRewriteTap(t, ts.addr, "pay bob 10=pay bob 90", true)
	bob := join(t, ts.addr, "bob")
	alice, err := dialTest(t, tapAddr, clientConfig{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	alice.Send("pay bob 10 coins")
	expect(t, bob, "alice: pay bob 90 coins")
	alice.Close()
	expect(t, bob, "[SYSTEM] alice left the chat")
	waitReport(t, reports, "closed after 1 rewritten record(s)")
	stop()

	if code, out, errs := runSend(t, "-send", ts.addr, "-conn", "1", tapCapture); code != 0 {
		t.Fatalf("replay -send: exit %d\n%s%s", code, out, errs)
	}
	expect(t, bob, "alice: pay bob 10 coins")
	bob.Close()
	ts.Shutdown()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	kl.Close()

	page := writeRepeatsLesson(t, "-keylog", keylogPath, capturePath)
	forged, replayed := lessonSection(t, page, "2"), lessonSection(t, page, "3")
	if strings.Contains(page, "REWRITTEN IN FLIGHT") || strings.Contains(page, "whose client sent") {
		t.Error("the server's page says which connection was rewritten, which its bytes cannot tell")
	}
	if !strings.Contains(replayed, "REPLAYED, NOT BYTE FOR BYTE: this connection&#39;s client sends connection 2&#39;s session again") ||
		!strings.Contains(replayed, "this one, or connection 2 itself") {
		t.Errorf("connection 3 is not marked as a replay that differs from connection 2:\n%s", replayed)
	}
	if !strings.Contains(replayed, "which carried &#34;pay bob 90 coins&#34;") || !strings.Contains(replayed, "pay bob 10 coins") {
		t.Errorf("connection 3's differing frame does not set what connection 2 carried beside what it carries")
	}
	if !strings.Contains(forged, "SENT AGAIN: connection 3 replays this connection&#39;s session, and 1 of its client frames differ") {
		t.Errorf("connection 2 does not say it was sent again:\n%s", forged)
	}
	if strings.Contains(lessonSection(t, page, "1"), "SENT AGAIN") {
		t.Error("bob's connection is marked")
	}
}
