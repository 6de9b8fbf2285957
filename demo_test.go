// Tests of encchat demo (demo.go, demo_peers.go): a whole demo in each
// suite, its flags, and a demo interrupted mid-way that stops and leaves
// nothing behind.

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestDemo(t *testing.T) {
	for _, suite := range []string{suiteClassic, suiteModern} {
		t.Run(suite, func(t *testing.T) {
			tmp := t.TempDir() // the demo's temporary files go here, and must be gone after
			out := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			t.Setenv("COLUMNS", "120")
			before := runtime.NumGoroutine()
			pagePath := filepath.Join(out, "lesson.html")
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := runDemo(context.Background(), []string{"-suite", suite, "-html", pagePath}, &stdout, &stderr)
			took := time.Since(start)
			if code != 0 {
				t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
			if took > 15*time.Second {
				t.Errorf("the demo took %v", took)
			}
			t.Logf("%s demo: %v, %d lines", suite, took.Round(time.Millisecond), strings.Count(stdout.String(), "\n"))

			text := stdout.String()
			want := []string{
				"alice  │ ✓ TCP connection established",
				"matches -fingerprint",
				"alice  │ " + center70(securedTitle),
				"alice  │ alice> " + demoHello,
				"] [PM to alice] " + demoPM,
				"alice  │ Online Users (2): alice, bob",
				"] [SYSTEM] bob left the chat",
				"server │ [",
				"── 5. The capture: what a sniffer saw, beside what the peers read",
				"SNIFFER: what anyone on the path sees",
				"── 6. Later, the server's private key is stolen",
				"wrote " + pagePath + ": 8 connections", // the chat's 2, then part 7's 3 in each suite
				// The attacks with no key, in both suites whatever -suite says.
				"── 7. An attacker with no key: a message rewritten, a session replayed",
				"bob    │ [",
				"] alice: pay bob 90 coins",
				"replay │ ACCEPTED: the server took connection 1 again",
				"] alice: " + demoPay,
				"the forgery was refused and nothing from it was delivered",
				"replay │ REFUSED: the server closed the connection: the modern handshake refused the recorded bytes",
				"[LEAVE] alice left the chat (record rejected: modern: bad record MAC)",
			}
			if suite == suiteClassic {
				want = append(want,
					"alice  │ [5/5] Receiving encrypted confirmation from server...",
					"│ "+demoHello, // the peer column of the replay
					"session key recovered from the RSA-OAEP blob",
					"conn 2: /pm alice "+demoPM,
					"RSA key transport has no forward secrecy",
				)
			} else {
				want = append(want,
					"alice  │ [1/5] Receiving server hello...",
					"Nothing in the",
					"That is forward secrecy.",
				)
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			// The server's log comes in the order things happened: bob's
			// goodbye is logged before anyone quits; each leave is logged
			// right after its /quit.
			inOrder(t, text, "[ENCRYPTED BROADCAST] bob: "+demoGoodbye, "bob    │ bob> /quit", "[LEAVE] bob left the chat",
				"alice  │ alice> /quit", "[LEAVE] alice left the chat", "── 5. The capture")
			// Parts 2, 3 and 7 in the order things happened: the server's
			// log of sending a frame before the client's line of getting
			// it, its log of getting one after the client's of sending it.
			for _, who := range []string{"alice", "bob"} {
				part := demoPart(t, text, map[string]string{"alice": "── 2. ", "bob": "── 3. "}[who])
				p := who + strings.Repeat(" ", 7-len(who)) + "│ "
				if suite == suiteClassic {
					inOrder(t, part, "] [HANDSHAKE] Starting with", "] [HANDSHAKE] Sent RSA public key", p+"[1/5]",
						p+"[4/5]", "] [HANDSHAKE] Received encrypted AES key", "] [HANDSHAKE] Sent encrypted confirmation", p+"[5/5]",
						"] [JOIN] "+who+" joined", p+center70(securedTitle))
				} else {
					inOrder(t, part, "] [HANDSHAKE] Starting with", p+"[1/5]", p+"[5/5]", "] [JOIN] "+who+" joined", p+center70(securedTitle))
				}
			}
			attacks := demoPart(t, text, "── 7. ")
			inOrder(t, attacks, "· the classic suite", "] [JOIN] bob joined", "tap    │ client 1", "] [JOIN] alice joined",
				"bob    │ [", "alice joined (secure channel)", "alice  │ alice> pay bob 10 coins", "tap    │ client 1", "IV byte 8 flipped",
				"] [ENCRYPTED BROADCAST] alice: pay bob 90 coins", "bob    │ [", "] alice: pay bob 90 coins",
				"replay │ → frame 2", "] [JOIN] alice joined", "bob    │ [", "] [SYSTEM] alice joined", "replay │ → frame 3",
				"] [ENCRYPTED BROADCAST] alice: pay bob 10 coins", "bob    │ [", "] alice: pay bob 10 coins", "· the modern suite")
			// The server may refuse the modern replay as soon as the
			// ClientFinished (frame 2) is in, before frame 3 goes.
			inOrder(t, attacks, "· the classic suite", "replay │ → frame 3", "replay │ ACCEPTED", "· the modern suite", "] [JOIN] bob joined", "tap    │ client 1",
				"] [JOIN] alice joined", "alice  │ alice> pay bob 10 coins", "] [LEAVE] alice left the chat (record rejected", "bob    │ [", "] [SYSTEM] alice left the chat",
				"replay │ → frame 2", "] [REFUSED]", "replay │ REFUSED")
			// The real client prints nothing after /quit; piped, the demo
			// does not pause.
			for _, no := range []string{"(disconnected)", "press Enter"} {
				if strings.Contains(text, no) {
					t.Errorf("output has %q", no)
				}
			}
			// The closing hint names the suite the demo ran.
			hint := text[strings.Index(text, "── Try it in three terminals"):]
			if strings.Contains(hint, "-suite modern") != (suite == suiteModern) ||
				!strings.Contains(hint, "encchat server") || !strings.Contains(hint, "encchat replay -keylog keys.log chat.jsonl") {
				t.Errorf("the %s demo's closing hint:\n%s", suite, hint)
			}
			if regexp.MustCompile(`[0-9]+ of [0-9]+ sealed records decrypted with server.pem alone`).MatchString(text) != (suite == suiteClassic) {
				t.Errorf("server.pem decrypted the wrong amount for the %s suite", suite)
			}

			page, err := os.ReadFile(pagePath)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(arrowRE.FindAllString(string(page), -1)); n < 20 {
				t.Errorf("the demo's page draws %d arrows", n)
			}
			if !strings.Contains(string(page), suite+" suite</h2>") {
				t.Errorf("the page does not name the %s suite", suite)
			}
			// Part 7's attacks are on the page: the classic forgery, its
			// replay beside it, and the modern replay.
			for _, want := range []string{
				"pay bob 90 coins", "pay bob 10 coins",
				"REPLAYED, NOT BYTE FOR BYTE: this connection&#39;s client sends connection 4&#39;s session again",
				"SENT AGAIN: connection 5 replays this connection&#39;s session",
				"REPLAYED: this connection&#39;s client sends connection 7&#39;s bytes again",
			} {
				if !strings.Contains(string(page), want) {
					t.Errorf("the page lacks %q", want)
				}
			}

			left, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range left {
				t.Errorf("the demo left %s behind", filepath.Join(tmp, e.Name()))
			}
			lessonWaitGoroutines(t, before)
		})
	}
}

func TestDemoFlags(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	missing := filepath.Join(t.TempDir(), "no", "dir", "lesson.html")
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-suite", "quantum"}, 2, `demo: -suite must be classic or modern, not "quantum"`},
		{[]string{"extra"}, 2, `demo: unexpected argument "extra"`},
		{[]string{"-colour"}, 2, "flag provided but not defined: -colour"},
		{[]string{"-html", missing}, 1, "no such file or directory"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := runDemo(context.Background(), c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.err) {
			t.Errorf("demo %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr.String(), c.code, c.err)
		}
		if stdout.Len() != 0 {
			t.Errorf("demo %v printed %q", c.args, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := runDemo(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "-suite suite") || !strings.Contains(stdout.String(), "-html file") {
		t.Errorf("demo -h: exit %d, stdout %q", code, stdout.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("failed demos left %d files behind", len(left))
	}
}

// TestDemoInterrupted cancels the demo mid-way: it stops, says so, and
// leaves nothing behind.
func TestDemoInterrupted(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	before := runtime.NumGoroutine()
	pagePath := filepath.Join(t.TempDir(), "lesson.html")
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel once alice's walk-through has started.
	w := &cancelOnWrite{after: "alice  │", cancel: cancel}
	code := runDemo(ctx, []string{"-html", pagePath}, w, &w.buf)
	cancel()
	if code != 1 || !strings.Contains(w.buf.String(), "encchat: demo interrupted") {
		t.Errorf("exit %d, output:\n%s", code, w.buf.String())
	}
	if _, err := os.Stat(pagePath); err == nil {
		t.Error("an interrupted demo left its page")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("an interrupted demo left %d files behind", len(left))
	}
	lessonWaitGoroutines(t, before)
}

// cancelOnWrite cancels once a write contains after.
type cancelOnWrite struct {
	buf    bytes.Buffer
	after  string
	cancel func()
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(c.after)) {
		c.cancel()
	}
	return c.buf.Write(p)
}

// lessonWaitGoroutines waits for the goroutine count to come back to
// before, and fails with their stacks when it does not.
func lessonWaitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left running (was %d):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inOrder fails unless each of want appears in text after the one before.
func inOrder(t *testing.T, text string, want ...string) {
	t.Helper()
	pos := 0
	for _, w := range want {
		i := strings.Index(text[pos:], w)
		if i < 0 {
			t.Errorf("%q does not follow %q", w, text[:pos][max(0, pos-80):])
			return
		}
		pos += i + len(w)
	}
}

// TestDemoPacedOnATerminal runs the demo binary in a pseudo-terminal: it
// waits for Enter before each part, and Ctrl-C at a pause stops it.
func TestDemoPacedOnATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := replBinary(t, t.TempDir())
	t.Run("Enter goes on, a screen at a time", func(t *testing.T) {
		// A terminal of 24 rows by 80 columns: each screen, from one
		// Enter to the next prompt, fits it.
		t.Setenv("LINES", "24")
		t.Setenv("COLUMNS", "80")
		term := startReplTermCmd(t, exec.Command(bin, "demo"))
		start, screens := 0, 0
		for {
			end, done := nextDemoPrompt(t, term, start)
			out := term.output()
			if screens == 0 {
				if !strings.Contains(out[start:end], "press Enter for 2. alice connects") {
					t.Fatalf("the first pause is not before part 2:\n%s", out[start:end])
				}
				time.Sleep(300 * time.Millisecond) // the demo is waiting, not running on
				if strings.Contains(term.output(), "── 2. alice connects") {
					t.Fatal("part 2 started without Enter")
				}
			}
			screens++
			rows, last := screenRows(out[start:end], 80), 24
			if done {
				last = 23 // the shell's prompt follows
			}
			if rows > last {
				t.Errorf("screen %d takes %d rows of 24:\n%s", screens, rows, out[start:end])
			}
			if done {
				break
			}
			term.send("\r")
			start = end
		}
		if code := term.exitCode(); code != 0 {
			t.Errorf("exit %d", code)
		}
		out := term.output()
		inOrder(t, out, "── 1. The server starts", "press Enter for 2. alice connects", "── 2. alice connects",
			"press Enter for 3. bob connects", "── 3. bob connects", "── 4. They chat", "── 5. The capture",
			"press Enter for more of this part", "── 6. Later", "── 7. An attacker", "── Try it in three terminals")
		t.Logf("%d screens", screens)
	})
	t.Run("Ctrl-C at a pause stops", func(t *testing.T) {
		term := startReplTermCmd(t, exec.Command(bin, "demo"))
		pos := term.waitFor("press Enter for 2. alice connects", 0)
		term.send("\x03")
		// The exit can be seen before the terminal's last bytes are read:
		// wait for the message, then for the terminal to close.
		term.waitFor("demo interrupted", pos)
		if code := term.exitCode(); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		select {
		case <-term.readDone:
		case <-time.After(replWait):
			t.Fatal("the terminal did not close after the demo exited")
		}
		if out := term.output(); strings.Contains(out, "── 2. alice connects") {
			t.Errorf("output after Ctrl-C:\n%s", out)
		}
	})
}

// nextDemoPrompt waits for the demo's next pause after from, and returns
// the offset past its prompt; or, when the demo exits first, the end of
// its output and done.
func nextDemoPrompt(t *testing.T, term *replTerm, from int) (end int, done bool) {
	t.Helper()
	const tail = "(Ctrl-C stops the demo) "
	deadline := time.Now().Add(replWait)
	for {
		out := term.output()
		if i := strings.Index(out[from:], tail); i >= 0 {
			return from + i + len(tail), false
		}
		select {
		case <-term.readDone:
			out = term.output()
			if i := strings.Index(out[from:], tail); i >= 0 {
				return from + i + len(tail), false
			}
			return len(out), true
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pause and no exit within %v after:\n%s", replWait, out[from:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// screenRows is how many rows of a terminal cols wide the output between
// two pauses takes: the echo of the Enter that ended the last pause, then
// the lines, then the next prompt.
func screenRows(out string, cols int) int {
	out = ansiEscape.ReplaceAllString(out, "")
	out = strings.TrimPrefix(out, "\r\n")
	out = strings.TrimSuffix(out, "\r\n")
	rows := 0
	for _, line := range strings.Split(out, "\n") {
		rows += displayRows(line, cols)
	}
	return rows
}

// demoPart is the part of the demo's output that starts with the rule
// head, up to the next part's rule.
func demoPart(t *testing.T, text, head string) string {
	t.Helper()
	i := strings.Index(text, head)
	if i < 0 {
		t.Fatalf("no part %q", head)
	}
	part := text[i+len(head):]
	if j := strings.Index(part, "\n── "); j >= 0 {
		part = part[:j]
	}
	return part
}
