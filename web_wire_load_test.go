// Tests of the live wire's viewers and feed under pressure: a viewer that
// never reads, one whose writes block while the wire goes on (it is told
// what it skipped), one whose write never returns (it is dropped), the
// feed's bound and its gaps; and the benchmark of the live decoder.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// smallSendBuffers makes each accepted connection's send buffer small, so
// that a viewer who does not read blocks the server's writes at once.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestLiveWireStuckViewer: a viewer that never reads its stream does not
// hold the chat up, the viewers who read see every frame, and the stuck
// one is dropped once a write has waited writeTimeout.
func TestLiveWireStuckViewer(t *testing.T) {
	rig := startWireRigOn(t, suiteClassic, "", func(lw *liveWire) { lw.histLen = 16; lw.writeTimeout = 2 * time.Second },
		func(ln net.Listener) net.Listener { return smallSendBuffers{ln} })
	// The stuck viewer: a request, then never a read, on a small buffer.
	nc, err := net.Dial("tcp", rig.web.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(nc, "GET /wire/events HTTP/1.1\r\nHost: x\r\n\r\n")
	watch := openStream(t, rig.web.URL+"/wire/events", "")

	a := join(t, rig.ts.addr, "sender")
	b := join(t, rig.ts.addr, "reader")
	expect(t, a, "[SYSTEM] reader joined (secure channel)")
	big := strings.Repeat("x", 900)
	const n = 300
	for i := range n {
		a.Send(fmt.Sprintf("%d %s", i, big))
		expect(t, b, fmt.Sprintf("sender: %d %s", i, big))
		// The sender reads its echo too: a client that reads nothing is
		// dropped once its socket's bounded buffers fill.
		expect(t, a, fmt.Sprintf("sender: %d %s", i, big))
	}
	// 5 handshake frames each, the join notice, and per message one frame
	// in and two out (the echo and the relay).
	want := 5*2 + 1 + 3*n
	evs := watch.until(t, "every frame", func(ev sseEvent) bool {
		return ev.Kind == "frame" && frameOf(t, ev).N == want
	})
	skips := 0
	for _, ev := range evs {
		if ev.Kind == "skipped" {
			skips++
		}
	}
	t.Logf("the reading viewer: %d events, %d skip notices", len(evs), skips)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rig.lw.hmu.Lock()
		viewers := len(rig.lw.viewers)
		rig.lw.hmu.Unlock()
		if viewers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d viewers, want the reading one only: the stuck one was not dropped", viewers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockingWriter is a viewer's ResponseWriter that takes nothing until
// released, and honours write deadlines.
type blockingWriter struct {
	h        http.Header
	mu       sync.Mutex
	buf      bytes.Buffer
	release  chan struct{}
	deadline time.Time
	writes   chan struct{}
}

func (w *blockingWriter) Header() http.Header { return w.h }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) FlushError() error   { return nil }
func (w *blockingWriter) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	w.deadline = t
	w.mu.Unlock()
	return nil
}
func (w *blockingWriter) Write(p []byte) (int, error) {
	select {
	case w.writes <- struct{}{}:
	default:
	}
	w.mu.Lock()
	dl := w.deadline
	w.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		timer := time.NewTimer(time.Until(dl))
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-w.release:
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestLiveWireSlowViewer: a viewer whose writes block while more events
// go by than the history holds is told how many it skipped, then goes on;
// one whose write never returns is dropped after writeTimeout. Neither
// holds up publish.
func TestLiveWireSlowViewer(t *testing.T) {
	lw := newLiveWire("")
	lw.histLen = 8
	defer lw.Close()
	serve := func(w *blockingWriter) chan struct{} {
		done := make(chan struct{})
		req := httptest.NewRequest(http.MethodGet, "/wire/events", nil)
		ctx, cancel := context.WithCancel(req.Context())
		t.Cleanup(func() { cancel(); <-done })
		go func() {
			defer close(done)
			lw.ServeHTTP(w, req.WithContext(ctx))
		}()
		return done
	}
	viewers := func() int {
		lw.hmu.Lock()
		defer lw.hmu.Unlock()
		return len(lw.viewers)
	}

	slow := &blockingWriter{h: http.Header{}, release: make(chan struct{}), writes: make(chan struct{}, 1)}
	serve(slow)
	<-slow.writes // blocked in its first write, the hello
	for i := range 50 {
		lw.publish("note", mustJSON(wireNote{Text: fmt.Sprint("event ", i)}), nil) // never waits for the viewer
	}
	close(slow.release)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(slow.text(), "event 49") {
		if time.Now().After(deadline) {
			t.Fatalf("the slow viewer never got the last event:\n%s", slow.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := slow.text()
	if !strings.Contains(got, "event: skipped\ndata: {\"skipped\":42,") || strings.Contains(got, `"event 41"`) || !strings.Contains(got, `"event 42"`) {
		t.Fatalf("the slow viewer's stream:\n%s", got)
	}

	// A write deadline, not a wait: the viewer is dropped when it passes.
	lw2 := newLiveWire("")
	lw2.writeTimeout = 50 * time.Millisecond
	defer lw2.Close()
	lw = lw2
	stuck := &blockingWriter{h: http.Header{}, release: make(chan struct{}), writes: make(chan struct{}, 1)}
	done := serve(stuck)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a viewer whose writes never return was not dropped")
	}
	if n := viewers(); n != 0 {
		t.Fatalf("%d viewers left, want none", n)
	}
}

func (w *blockingWriter) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestLiveFeedGap: past its bound the feed drops data and tells the engine
// of the gap before the connection's next record; opens and closes always
// get through.
func TestLiveFeedGap(t *testing.T) {
	f := newLiveFeed(100)
	f.record(captureEvent{Kind: capOpen, Conn: 1})
	f.record(captureEvent{Kind: capData, Conn: 1, Dir: wireC2S, Data: make([]byte, 80)})
	f.record(captureEvent{Kind: capData, Conn: 1, Dir: wireC2S, Data: make([]byte, 30)}) // over the bound
	f.record(captureEvent{Kind: capData, Conn: 1, Dir: wireS2C, Data: make([]byte, 25)}) // over it too
	var ev captureEvent
	for _, want := range []string{"open", "data 80"} {
		if err := f.next(&ev); err != nil || describeEvent(ev) != want {
			t.Fatalf("next = %q, %v; want %q", describeEvent(ev), err, want)
		}
	}
	f.record(captureEvent{Kind: capData, Conn: 1, Dir: wireC2S, Data: make([]byte, 10)})
	f.record(captureEvent{Kind: capClose, Conn: 1})
	for _, want := range []string{"gap c2s 30", "data 10", "gap s2c 25", "close"} {
		if err := f.next(&ev); err != nil || describeEvent(ev) != want {
			t.Fatalf("next = %q, %v; want %q", describeEvent(ev), err, want)
		}
	}
	f.close()
	if err := f.next(&ev); err != io.EOF {
		t.Fatalf("next after close = %v", err)
	}
}

func describeEvent(ev captureEvent) string {
	switch ev.Kind {
	case capData:
		return fmt.Sprintf("data %d", len(ev.Data))
	case capGap:
		return fmt.Sprintf("gap %s %d", ev.Dir, ev.Gap)
	}
	return ev.Kind
}

// countingOutput counts the events a replay view is given.
type countingOutput struct {
	discardOutput
	events int
}

func (c *countingOutput) open(*replayConn)                 { c.events++ }
func (c *countingOutput) frame(*replayFrame)               { c.events++ }
func (c *countingOutput) note(*replayConn, string)         { c.events++ }
func (c *countingOutput) close(*replayConn, float64, bool) { c.events++ }

// BenchmarkLiveWire feeds a 10 MB modern capture, with the keys that open
// it, to a live wire with a teacher's view, as the server's capture and
// keylog would, and waits until every event is published: the decoder's
// throughput, in MB/s of traffic and events/s, and the peak heap. The feed's bound is lifted
// so that nothing is dropped; in a server, traffic past this rate would be
// shown as gaps, and the chat would not wait.
func BenchmarkLiveWire(b *testing.B) {
	const size = 10 << 20
	template, keys := newModernBenchCapture(b, size)
	count := func() int {
		bc := *template
		bc.buf = nil
		var c countingOutput
		if err := replayCapture(&bc, &replayOptions{name: "bench", view: "both", keys: &replayKeys{}}, &c); err != nil {
			b.Fatal(err)
		}
		return c.events
	}
	events := count()
	// The records, read once: the server's capture hands them over as made.
	var recs []captureEvent
	bc := *template
	bc.buf = nil
	cr, err := readCapture(&bc)
	if err != nil {
		b.Fatal(err)
	}
	var ev captureEvent
	for cr.next(&ev) == nil {
		ev.Data = bytes.Clone(ev.Data)
		recs = append(recs, ev)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	peak := sampleHeapPeak()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lw := newLiveWire(wireTestToken)
		lw.feed.max = 1 << 30
		for _, k := range keys {
			lw.feed.key(k.Label, k.ID, k.Secret)
		}
		for _, r := range recs {
			lw.feed.record(r)
		}
		for {
			lw.hmu.Lock()
			seq := lw.seq
			lw.hmu.Unlock()
			if seq >= uint64(events) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		lw.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB") // with the 10 MB of records held for the feed
}

// TestLiveWireShowsGaps: while the decoder is held up, the feed drops what
// passes its bound; the viewers are told how many bytes are missing, and
// the frames after the gap are decoded again.
func TestLiveWireShowsGaps(t *testing.T) {
	lw := newLiveWire("")
	lw.feed.max = 250
	defer lw.Close()
	web := httptest.NewServer(lw)
	defer web.Close()
	defer lw.Close() // before web.Close, which waits for the stream

	frame := func(i int) []byte {
		return appendFrame(nil, []byte(fmt.Sprintf("opaque payload %02d: %s", i, strings.Repeat("z", 60))))
	}
	lw.hmu.Lock() // the decoder cannot publish: it is held up
	lw.feed.record(captureEvent{Kind: capOpen, Conn: 1, Client: "192.0.2.1:1000", Server: "192.0.2.2:5174", Transport: "websocket"})
	for i := range 10 {
		lw.feed.record(captureEvent{Kind: capData, Conn: 1, Dir: wireC2S, Data: frame(i)})
	}
	lw.feed.mu.Lock()
	dropped := lw.feed.dropped
	lw.feed.mu.Unlock()
	lw.hmu.Unlock()
	if dropped == 0 {
		t.Fatal("nothing was dropped past the bound")
	}
	watch := openStream(t, web.URL+"/wire/events", "")
	waitPublished(t, lw, 2) // the open and a frame at least: the queue drains
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		lw.feed.mu.Lock()
		empty := len(lw.feed.items) == 0
		lw.feed.mu.Unlock()
		if empty {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the decoder did not take the queue in 20 s")
		}
	}
	lw.feed.record(captureEvent{Kind: capData, Conn: 1, Dir: wireC2S, Data: frame(99)})
	evs := watch.until(t, "the frame after the gap", func(ev sseEvent) bool {
		return ev.Kind == "frame" && strings.Contains(string(ev.Data), "opaque payload 99")
	})
	var note wireNote
	var open wireConnInfo
	for _, ev := range evs {
		switch ev.Kind {
		case "note":
			json.Unmarshal(ev.Data, &note)
		case "open":
			json.Unmarshal(ev.Data, &open)
		}
	}
	if open.Conn != 1 || open.Transport != "websocket" {
		t.Errorf("the open event: %+v, want conn 1 over websocket", open)
	}
	if want := fmt.Sprintf("conn 1 client → server: %d bytes missing from the capture", dropped); !strings.HasPrefix(note.Text, want) {
		t.Fatalf("the note before the frame after the gap: %q, want %q…", note.Text, want)
	}
}
