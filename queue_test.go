// Tests of the outbound queues (queue.go): notices batched without holding
// up or reordering anything else, a client that stops reading dropped when
// its queue fills, and bursts longer than the queue that keep every reader.

package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// smallBuffers shrinks the kernel send buffer of accepted connections, so
// a client that stops reading fills it after kilobytes, not megabytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8192)
	}
	return c, err
}

// bigBuffers gives accepted connections a send buffer of a megabyte.
type bigBuffers struct{ net.Listener }

func (l bigBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(1 << 20)
	}
	return c, err
}

func TestSlowReaderDoesNotStallOthers(t *testing.T) {
	ts := startTestServerOn(t, serverConfig{QueueLen: 64, SocketBuffer: -1}, func(l net.Listener) net.Listener { return smallBuffers{l} })
	// The sluggard completes the handshake and then never reads again.
	slow, _ := rawClassic(t, ts.addr, "sluggard")
	slow.(*net.TCPConn).SetReadBuffer(4096)
	a := join(t, ts.addr, "alice")
	b := join(t, ts.addr, "bob")
	expect(t, a, "[SYSTEM] bob joined (secure channel)")
	big := strings.Repeat("z", 2000)
	const n = 400
	last := fmt.Sprintf("alice: %d %s", n-1, big)
	bDone := make(chan []string, 1)
	bGot := make(chan string, 1)
	go func() {
		var seen []string
		b.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			text, err := b.Recv()
			if err != nil {
				bDone <- append(seen, "error: "+err.Error())
				close(bGot)
				return
			}
			text = stampRE.ReplaceAllString(text, "")
			if !strings.HasPrefix(text, "alice: ") {
				seen = append(seen, text)
				continue
			}
			bGot <- text
			if text == last {
				bDone <- seen
				return
			}
		}
	}()
	// alice waits for each message to reach her and bob, so only the
	// sluggard falls behind; its socket buffers fill, then its queue, then
	// it is dropped.
	start := time.Now()
	for i := 0; i < n; i++ {
		msg := fmt.Sprintf("%d %s", i, big)
		if err := a.Send(msg); err != nil {
			t.Fatal(err)
		}
		expect(t, a, "alice: "+msg)
		if got, ok := <-bGot; !ok || got != "alice: "+msg {
			t.Fatalf("bob got %.40q, want message %d", got, i)
		}
	}
	if seen := <-bDone; len(seen) != 1 || seen[0] != "[SYSTEM] sluggard left the chat" {
		t.Errorf("besides the chat, bob saw %q; want only the sluggard leaving", seen)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("%d messages took %v with a stalled reader", n, d)
	}
	ts.logged(t, evLeave, "sluggard left the chat (outbound queue full")
}

// TestOutQueueNotices checks that join and leave notices wait for company
// but never hold up, or change the order of, anything else.
func TestOutQueueNotices(t *testing.T) {
	q := newOutQueue(8)
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	type result struct {
		items []string
		ok    bool
	}
	take := func(wait time.Duration) <-chan result {
		c := make(chan result, 1)
		go func() {
			items, ok := q.take(delay, wait)
			c <- result{append([]string(nil), items...), ok}
		}()
		return c
	}
	expect := func(c <-chan result, want ...string) {
		t.Helper()
		select {
		case r := <-c:
			if !r.ok || strings.Join(r.items, ",") != strings.Join(want, ",") {
				t.Fatalf("take = %q, %v; want %q", r.items, r.ok, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("take did not return; want %q", want)
		}
	}

	// Notices alone wait; a chat line takes them along, in order.
	q.push("join a", true)
	q.push("join b", true)
	c := take(time.Hour)
	select {
	case r := <-c:
		t.Fatalf("notices alone were taken at once: %q", r.items)
	case <-time.After(30 * time.Millisecond):
	}
	q.push("chat", false)
	expect(c, "join a", "join b", "chat")

	// A chat line queued first is not held by a notice behind it.
	q.push("chat 2", false)
	q.push("join c", true)
	expect(take(time.Hour), "chat 2", "join c")

	// A queue half full of notices is not held back.
	for i := range q.limit/2 + 1 {
		q.push(fmt.Sprintf("join %d", i), true)
	}
	expect(take(time.Hour), "join 0", "join 1", "join 2", "join 3", "join 4")

	// Notices alone go after the delay, and when the queue closes.
	q.push("join d", true)
	expect(take(time.Millisecond), "join d")
	q.push("leave d", true)
	c = take(time.Hour)
	q.close()
	expect(c, "leave d")
	if items, ok := q.take(delay, time.Hour); ok {
		t.Fatalf("closed and empty: take = %q, true", items)
	}
}

// TestBurstLongerThanQueueKeepsReaders sends bursts far longer than the
// queue bound to clients that all read: waitForWriters must slow the
// senders down instead of disconnecting readers whose writers are only
// waiting for CPU.
//
// Socket buffers are made large enough for the whole burst, so no writer
// ever blocks in a Write: waitForWriters rightly does not wait for a
// client whose socket is full (it may have stopped reading), and on a
// loaded machine a reader that is not scheduled for a while would look
// like one.
func TestBurstLongerThanQueueKeepsReaders(t *testing.T) {
	ts := startTestServerOn(t, serverConfig{QueueLen: 16, SocketBuffer: -1}, func(l net.Listener) net.Listener { return bigBuffers{l} })
	const readers, senders, each = 20, 2, 150
	var rs []*clientSession
	for i := range readers {
		cs := join(t, ts.addr, fmt.Sprintf("r%d", i))
		cs.conn.(*net.TCPConn).SetReadBuffer(1 << 20)
		rs = append(rs, cs)
	}
	counts := make([]int, readers)
	var wg sync.WaitGroup
	for i, cs := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			for counts[i] < senders*each {
				text, err := cs.Recv()
				if err != nil {
					return
				}
				if strings.Contains(text, ": burst ") {
					counts[i]++
				}
			}
		}()
	}
	for s := range senders {
		go func() {
			for j := range each {
				rs[s].Send(fmt.Sprintf("burst %d", j))
			}
		}()
	}
	wg.Wait()
	for i, n := range counts {
		if n != senders*each {
			t.Errorf("reader r%d got %d of %d messages", i, n, senders*each)
		}
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, ev := range ts.log {
		if ev.Kind == evLeave {
			t.Errorf("a reader was dropped: %s", ev.Text)
		}
	}
}
