// Tests of the REPL's outbox: lines in order, the waiting notice once per
// blocked spell, a failed send, and a real socket that a pacing server
// stops reading.

package main

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedSend is a send that blocks while its gate is shut.
type gatedSend struct {
	mu   sync.Mutex
	sent []string
	gate chan struct{} // nil: open
	fail error
}

func (g *gatedSend) send(line string) error {
	g.mu.Lock()
	gate, fail := g.gate, g.fail
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail != nil {
		return fail
	}
	g.mu.Lock()
	g.sent = append(g.sent, line)
	g.mu.Unlock()
	return nil
}

func (g *gatedSend) shut() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
	return g.gate
}

func (g *gatedSend) open(gate chan struct{}) {
	g.mu.Lock()
	g.gate = nil
	g.mu.Unlock()
	close(gate)
}

func (g *gatedSend) lines() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.sent...)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestOutboxTellsOncePerBlockedSpell(t *testing.T) {
	g := &gatedSend{}
	var mu sync.Mutex
	var told []int
	ob := newOutbox(g.send, 50*time.Millisecond, func(n int) { mu.Lock(); told = append(told, n); mu.Unlock() })
	toldNow := func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), told...) }

	// Sends that do not block say nothing.
	ob.push("a")
	ob.push("b")
	waitFor(t, "a and b sent", func() bool { return len(g.lines()) == 2 })
	time.Sleep(100 * time.Millisecond)
	if n := toldNow(); len(n) != 0 {
		t.Fatalf("told %v with nothing blocked", n)
	}

	// A blocked send: three lines wait, the user is told once.
	gate := g.shut()
	ob.push("c")
	ob.push("d")
	ob.push("e")
	waitFor(t, "the notice", func() bool { return len(toldNow()) > 0 })
	time.Sleep(200 * time.Millisecond)
	if n := toldNow(); len(n) != 1 || n[0] != 3 {
		t.Errorf("told %v while c, d, e waited, want [3]", n)
	}
	g.open(gate)
	waitFor(t, "c, d, e sent", func() bool { return len(g.lines()) == 5 })

	// Once everything went out, the next blocked spell is told again.
	gate = g.shut()
	ob.push("f")
	waitFor(t, "the second notice", func() bool { return len(toldNow()) == 2 })
	if n := toldNow(); n[1] != 1 {
		t.Errorf("second notice for %d lines, want 1", n[1])
	}
	g.open(gate)
	ob.close()
	<-ob.done
	if got := strings.Join(g.lines(), ""); got != "abcdef" {
		t.Errorf("sent %q, want abcdef", got)
	}
}

func TestOutboxStopsAtAFailedSend(t *testing.T) {
	g := &gatedSend{fail: errors.New("broken pipe")}
	ob := newOutbox(g.send, time.Hour, func(int) { t.Error("told with nothing blocked") })
	ob.push("x")
	ob.push("y")
	select {
	case err := <-ob.failed:
		if err.Error() != "broken pipe" {
			t.Errorf("failed with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no failure reported")
	}
	<-ob.done
}

// TestOutboxOnAPacedSocket: long lines to a server that lets one line a
// second through fill TCP's buffers; the client's send blocks and the
// outbox says how many lines wait.
func TestOutboxOnAPacedSocket(t *testing.T) {
	ts := startTestServer(t, serverConfig{Rate: 1, Burst: 1})
	alice := join(t, ts.addr, "alice")
	told := make(chan int, 1)
	ob := newOutbox(alice.Send, 200*time.Millisecond, func(n int) { told <- n })
	long := strings.Repeat("x", maxTextLen-10)
	const lines = 1500 // 8 MB sealed: on Linux the socket buffers took about 4 MB
	for range lines {
		ob.push(long)
	}
	select {
	case n := <-told:
		if n < 2 || n > lines {
			t.Errorf("told %d lines wait, want between 2 and %d", n, lines)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the send never blocked")
	}
	alice.Close() // ends the blocked send
	select {
	case <-ob.failed:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked send did not end when the connection closed")
	}
	<-ob.done
}
