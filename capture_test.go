// Tests of the capture writer and reader (capture.go, capture_read.go): each
// direction's bytes, addresses, nil captures, flushing, write errors, a
// stuck file that must not block the chat, data racing with close, and a
// capture that reads back as it was written.

package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// memFile is an io.WriteCloser into memory.
type memFile struct {
	mu     sync.Mutex
	b      bytes.Buffer
	closed bool
	writes int
}

func (m *memFile) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	return m.b.Write(p)
}

func (m *memFile) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func (m *memFile) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.String()
}

// readEvents parses a whole capture.
func readEvents(t *testing.T, data string) (captureHeader, []captureEvent) {
	t.Helper()
	cr, err := newCaptureReader(strings.NewReader(data))
	if err != nil {
		t.Fatalf("capture header: %v\n%s", err, data)
	}
	var evs []captureEvent
	for {
		var ev captureEvent
		err := cr.next(&ev)
		if err == io.EOF {
			return cr.Header, evs
		}
		if err != nil {
			t.Fatalf("capture: %v\n%s", err, data)
		}
		ev.Data = bytes.Clone(ev.Data)
		evs = append(evs, ev)
	}
}

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	return client, server
}

func TestCaptureWrapConnDirections(t *testing.T) {
	for _, side := range []string{"server", "client"} {
		t.Run(side, func(t *testing.T) {
			out := &memFile{}
			clock := &fakeClock{t: replayEpoch, step: time.Millisecond}
			rec := newCapture(out, side, "127.0.0.1:5174", clock.now)
			var ids []int
			for i := 0; i < 2; i++ {
				rawC, rawS := loopbackPair(t)
				mine, peer := rawS, rawC // the recorder's end and the other end
				if side == "client" {
					mine, peer = rawC, rawS
				}
				conn := rec.wrapConn(mine, side)
				ids = append(ids, conn.(*recConn).rec.id)
				fromClient, fromServer := []byte("hello from the client"), []byte("and from the server")
				toMe, fromMe := fromClient, fromServer
				if side == "client" {
					toMe, fromMe = fromServer, fromClient
				}
				if _, err := peer.Write(toMe); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(toMe))
				if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, toMe) {
					t.Fatalf("read %q, %v", got, err)
				}
				if _, err := conn.Write(fromMe); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(peer, make([]byte, len(fromMe))); err != nil {
					t.Fatal(err)
				}
				conn.Close()
				conn.Close() // a second Close records nothing more
				peer.Close()
				if err := rec.Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := rec.Close(); err != nil {
				t.Fatal(err)
			}
			if !out.closed {
				t.Error("Close did not close the file")
			}
			if ids[0] != 1 || ids[1] != 2 {
				t.Errorf("connection ids %v, want [1 2] in open order", ids)
			}
			hdr, evs := readEvents(t, out.String())
			if hdr.Recorder != side || hdr.Addr != "127.0.0.1:5174" || hdr.Version != 1 {
				t.Errorf("header %+v", hdr)
			}
			if hdr.Started != replayEpoch.Add(time.Millisecond).Format(time.RFC3339Nano) {
				t.Errorf("started %q", hdr.Started)
			}
			var kinds []string
			for _, ev := range evs {
				k := fmt.Sprintf("%d %s", ev.Conn, ev.Kind)
				if ev.Kind == capData {
					k += " " + ev.Dir.String() + " " + string(ev.Data)
				}
				kinds = append(kinds, k)
				if ev.Kind == capOpen && (!strings.HasPrefix(ev.Client, "127.0.0.1:") || !strings.HasPrefix(ev.Server, "127.0.0.1:") || ev.Client == ev.Server) {
					t.Errorf("open addresses %q %q", ev.Client, ev.Server)
				}
			}
			want := []string{
				"1 open", "1 data c2s hello from the client", "1 data s2c and from the server", "1 close",
				"2 open", "2 data c2s hello from the client", "2 data s2c and from the server", "2 close",
			}
			if side == "client" { // the client writes first
				want = []string{
					"1 open", "1 data s2c and from the server", "1 data c2s hello from the client", "1 close",
					"2 open", "2 data s2c and from the server", "2 data c2s hello from the client", "2 close",
				}
			}
			if strings.Join(kinds, "\n") != strings.Join(want, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
			}
			for i := 1; i < len(evs); i++ {
				if evs[i].T <= evs[i-1].T {
					t.Errorf("times not increasing: %v then %v", evs[i-1].T, evs[i].T)
				}
			}
		})
	}
}

func TestCaptureOpenAddresses(t *testing.T) {
	out := &memFile{}
	rec := newCapture(out, "server", "127.0.0.1:5174", nil)
	rawC, rawS := loopbackPair(t)
	defer rawC.Close()
	conn := rec.wrapConn(rawS, "server")
	conn.Close()
	rec.Close()
	_, evs := readEvents(t, out.String())
	if len(evs) != 2 || evs[0].Client != rawC.LocalAddr().String() || evs[0].Server != rawS.LocalAddr().String() {
		t.Fatalf("events %+v, want open client %s server %s", evs, rawC.LocalAddr(), rawS.LocalAddr())
	}
}

func TestCaptureAndKeylogNil(t *testing.T) {
	var c *capture
	rawC, rawS := loopbackPair(t)
	defer rawC.Close()
	defer rawS.Close()
	if got := c.wrapConn(rawS, "server"); got != rawS {
		t.Error("a nil capture wrapped the connection")
	}
	if c.Close() != nil || c.Err() != nil || c.open("a", "b") != nil {
		t.Error("a nil capture is not a no-op")
	}
	var cc *capConn
	cc.data(wireC2S, []byte("x"))
	cc.close()
	var k *keylog
	k.logKey(keylogClassic, []byte("12345678"), make([]byte, 32))
	if k.Close() != nil || k.Err() != nil {
		t.Error("a nil keylog is not a no-op")
	}
}

func TestCaptureFlushesPeriodically(t *testing.T) {
	out := &memFile{}
	rec := newCapture(out, "server", "x", nil)
	defer rec.Close()
	rec.open("a", "b").data(wireC2S, []byte("tick"))
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(out.String(), base64.StdEncoding.EncodeToString([]byte("tick"))) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing flushed without Close after 3s (flush period %v); file: %q", captureFlushEvery, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failingFile fails every write, like a full disk.
type failingFile struct{ writes int }

func (f *failingFile) Write([]byte) (int, error) {
	f.writes++
	return 0, errors.New("no space left on device")
}
func (f *failingFile) Close() error { return nil }

func TestCaptureWriteErrorReportedOnce(t *testing.T) {
	f := &failingFile{}
	rec := newCapture(f, "server", "x", nil)
	cc := rec.open("a", "b")
	cc.data(wireC2S, []byte("lost"))
	deadline := time.Now().Add(3 * time.Second)
	for rec.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("write error never reported")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 100; i++ {
		cc.data(wireS2C, []byte("more")) // the chat goes on; nothing is queued
	}
	err := rec.Close()
	if err == nil || !strings.Contains(err.Error(), "no space") || rec.Err() != err {
		t.Fatalf("Close = %v, Err = %v", err, rec.Err())
	}
	if f.writes != 1 {
		t.Errorf("%d writes after the first failure, want none", f.writes-1)
	}
}

// stuckFile blocks every write until released.
type stuckFile struct {
	release chan struct{}
	memFile
}

func (s *stuckFile) Write(p []byte) (int, error) {
	<-s.release
	return s.memFile.Write(p)
}

func TestCaptureNeverBlocksChat(t *testing.T) {
	f := &stuckFile{release: make(chan struct{})}
	rec := newCapture(f, "server", "x", nil)
	rec.maxPending = 1 << 20
	cc := rec.open("a", "b")
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	start := time.Now()
	for i := 0; i < 100; i++ { // 3.2 MB against a disk that takes nothing
		cc.data(wireC2S, chunk)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("recording 3.2 MB into a stuck file took %v", d)
	}
	if !errors.Is(rec.Err(), errCaptureBehind) {
		t.Errorf("Err = %v, want %v", rec.Err(), errCaptureBehind)
	}
	close(f.release)
	if err := rec.Close(); !errors.Is(err, errCaptureBehind) {
		t.Errorf("Close = %v", err)
	}
}

func TestCaptureParseRoundTrip(t *testing.T) {
	// What the writer writes, the reader reads back, byte for byte.
	out := &memFile{}
	clock := &fakeClock{t: replayEpoch, step: 1234567 * time.Nanosecond}
	rec := newCapture(out, "client", `we"ird\addr`, clock.now)
	cc := rec.open("127.0.0.1:1", `"quoted" é`)
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	var sent [][]byte
	for i := 0; i < 50; i++ {
		p := make([]byte, rng.IntN(3000))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		sent = append(sent, p)
		cc.data(wireDir(i%2), p)
	}
	cc.close()
	rec.Close()
	hdr, evs := readEvents(t, out.String())
	if hdr.Addr != `we"ird\addr` || evs[0].Server != `"quoted" é` {
		t.Errorf("strings did not survive: %q %q", hdr.Addr, evs[0].Server)
	}
	for i, p := range sent {
		ev := evs[i+1]
		if ev.Kind != capData || ev.Dir != wireDir(i%2) || !bytes.Equal(ev.Data, p) {
			t.Fatalf("record %d differs", i)
		}
	}
}

// TestCaptureNoDataAfterClose: reads and writes racing with Close never
// land after the connection's close record, so replay accepts the capture.
func TestCaptureNoDataAfterClose(t *testing.T) {
	out := &memFile{}
	rec := newCapture(out, "server", "x", nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		cc := rec.open("c", "s")
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 50; j++ {
					cc.data(wireDir(j%2), []byte("0000000001x"))
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%5) * 100 * time.Microsecond)
			cc.close()
		}()
	}
	wg.Wait()
	rec.Close()
	closed := map[int]bool{}
	_, evs := readEvents(t, out.String())
	for _, ev := range evs {
		if closed[ev.Conn] {
			t.Fatalf("line %d: %s on connection %d after its close", ev.Line, ev.Kind, ev.Conn)
		}
		if ev.Kind == capClose {
			closed[ev.Conn] = true
		}
	}
	if len(closed) != 20 {
		t.Errorf("%d connections closed, want 20", len(closed))
	}
	path := writeCapture(t, "race.jsonl", out.String())
	if _, stderr, code := runReplayTest(t, 80, path); code != 0 {
		t.Errorf("replay: exit %d: %s", code, stderr)
	}
}
