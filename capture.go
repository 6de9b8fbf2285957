// The capture writer (-record): the bytes of every connection as a sniffer on
// the wire sees them, as JSON Lines. Never a key, never plaintext.

package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"time"
)

const (
	captureVersion    = 1
	captureFlushEvery = 200 * time.Millisecond
	captureKickAt     = 1 << 20  // pending bytes that wake the writer before its tick
	captureMaxPending = 64 << 20 // past this, recording stops rather than slow the chat
	captureMaxLine    = 16 << 20 // longest capture line replay accepts
)

// wireDir is a direction on the wire.
type wireDir uint8

const (
	wireC2S wireDir = iota // client to server
	wireS2C                // server to client
)

func (d wireDir) String() string {
	if d == wireS2C {
		return "s2c"
	}
	return "c2s"
}

func (d wireDir) arrow() string {
	if d == wireS2C {
		return "server → client"
	}
	return "client → server"
}

// errCaptureBehind stops a recording whose disk cannot keep up.
var errCaptureBehind = errors.New("capture fell too far behind the traffic; recording stopped")

// capture records the bytes of connections as a sniffer on the wire sees
// them. Recording never blocks the chat: records go into a pending buffer
// under a short lock, and the capture's own goroutine writes them out every
// captureFlushEvery and on Close. A nil *capture records nothing.
type capture struct {
	w     io.WriteCloser
	now   func() time.Time
	start time.Time

	mu      sync.Mutex
	pending []byte
	nextID  int
	stopped bool  // Close was called: records are dropped
	err     error // the first write error; nothing more is written after it
	// maxPending bounds the pending buffer (captureMaxPending; tests lower it).
	maxPending int
	// watch, when set (setWatch), is told of every record as it is made,
	// in capture order, even once the file has stopped.
	watch func(captureEvent)

	kick      chan struct{}
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// newCapture starts a capture writing to w. recorder is "server", "client"
// or "tap"; addr is the address it serves or connects to. now is the clock
// (nil for time.Now).
func newCapture(w io.WriteCloser, recorder, addr string, now func() time.Time) *capture {
	if now == nil {
		now = time.Now
	}
	c := &capture{
		w:          w,
		now:        now,
		maxPending: captureMaxPending,
		kick:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	c.start = now()
	hdr, _ := json.Marshal(captureHeader{
		Version:  captureVersion,
		Started:  c.start.UTC().Format(time.RFC3339Nano),
		Recorder: recorder,
		Addr:     addr,
	})
	c.pending = append(hdr, '\n')
	go c.run()
	return c
}

// openCapture creates the capture file at path. An existing file is
// refused, never written over: it holds an earlier capture (a link is
// refused too, see createOutput).
func openCapture(path, recorder, addr string) (*capture, error) {
	f, err := createOutput(path, outputNew, false)
	if err != nil {
		return nil, err
	}
	return newCapture(f, recorder, addr, time.Now), nil
}

// run is the capture's writer goroutine; Close ends it.
func (c *capture) run() {
	defer close(c.done)
	tick := time.NewTicker(captureFlushEvery)
	defer tick.Stop()
	var spare []byte
	for {
		select {
		case <-tick.C:
		case <-c.kick:
		case <-c.quit:
			c.flush(&spare)
			return
		}
		c.flush(&spare)
	}
}

// flush swaps the pending buffer out under the lock and writes it without it.
func (c *capture) flush(spare *[]byte) {
	c.mu.Lock()
	buf := c.pending
	c.pending = (*spare)[:0]
	failed := c.err != nil
	c.mu.Unlock()
	if len(buf) > 0 && !failed {
		if _, err := c.w.Write(buf); err != nil {
			c.fail(err)
		}
	}
	if cap(buf) > 4*captureKickAt {
		buf = nil // do not keep a burst's buffer for ever
	}
	*spare = buf[:0]
}

func (c *capture) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.pending = nil
	c.mu.Unlock()
}

// Err returns the first error that stopped the recording (a full disk, a
// writer that fell behind), or nil. The chat goes on either way.
func (c *capture) Err() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close flushes what is pending, stops the writer and closes the file. It
// returns the first error of the whole recording. Connections still open
// keep working but are no longer recorded.
func (c *capture) Close() error {
	if c == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		close(c.quit)
		<-c.done
		c.mu.Lock()
		c.stopped = true
		err := c.err
		c.mu.Unlock()
		if cerr := c.w.Close(); err == nil {
			err = cerr
		}
		c.closeErr = err
	})
	return c.closeErr
}

// setWatch has f told of every record from now on, under the capture's
// lock and in capture order (f must not block; ev.Data is valid only during
// the call). It goes on when the file stops (Close, a write error), so the
// live wire outlives a full disk.
func (c *capture) setWatch(f func(ev captureEvent)) {
	c.mu.Lock()
	c.watch = f
	c.mu.Unlock()
}

// record appends one line built by add, unless recording has stopped or
// cc was closed: a read or write racing with Close must not appear after
// the connection's close record. ev is the record for the watch: record
// fills in its connection and time (and gives an opened connection its id).
func (c *capture) record(cc *capConn, ev captureEvent, add func(b []byte, t float64) []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc.closed {
		return
	}
	switch ev.Kind {
	case capOpen:
		c.nextID++
		cc.id = c.nextID
	case capClose:
		cc.closed = true
	}
	t := c.now().Sub(c.start).Seconds()
	if c.watch != nil {
		ev.Conn, ev.T = cc.id, t
		c.watch(ev)
	}
	if c.stopped || c.err != nil {
		return
	}
	if len(c.pending) > c.maxPending {
		c.err = errCaptureBehind
		c.pending = nil
		return
	}
	c.pending = add(c.pending, t)
	if len(c.pending) >= captureKickAt {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// capConn records one connection. A nil *capConn records nothing.
type capConn struct {
	c      *capture
	id     int
	closed bool // guarded by c.mu
}

// open records a new TCP connection and returns its recorder. Ids are
// given in open order, from 1.
func (c *capture) open(client, server string) *capConn {
	return c.openVia(client, server, "")
}

// openVia is open for a connection that another transport carries
// ("websocket"): its open event says so. An empty transport is TCP, whose
// open event has no transport field.
func (c *capture) openVia(client, server, transport string) *capConn {
	if c == nil {
		return nil
	}
	cc := &capConn{c: c}
	c.record(cc, captureEvent{Kind: capOpen, Client: client, Server: server, Transport: transport}, func(b []byte, t float64) []byte {
		b = appendRecordStart(b, t, cc.id)
		b = append(b, `,"ev":"open","client":`...)
		b = appendJSONString(b, client)
		b = append(b, `,"server":`...)
		b = appendJSONString(b, server)
		if transport != "" {
			b = append(b, `,"transport":`...)
			b = appendJSONString(b, transport)
		}
		return append(b, "}\n"...)
	})
	return cc
}

// data records bytes seen in one direction.
func (cc *capConn) data(dir wireDir, p []byte) {
	if cc == nil || len(p) == 0 {
		return
	}
	cc.c.record(cc, captureEvent{Kind: capData, Dir: dir, Data: p}, func(b []byte, t float64) []byte {
		b = appendRecordStart(b, t, cc.id)
		b = append(b, `,"dir":"`...)
		b = append(b, dir.String()...)
		b = append(b, `","data":"`...)
		b = base64.StdEncoding.AppendEncode(b, p)
		return append(b, "\"}\n"...)
	})
}

// close records the end of the connection.
func (cc *capConn) close() {
	if cc == nil {
		return
	}
	cc.c.record(cc, captureEvent{Kind: capClose}, func(b []byte, t float64) []byte {
		b = appendRecordStart(b, t, cc.id)
		return append(b, `,"ev":"close"}`+"\n"...)
	})
}

func appendRecordStart(b []byte, t float64, id int) []byte {
	if t < 0 || math.IsNaN(t) {
		t = 0
	}
	b = append(b, `{"t":`...)
	b = strconv.AppendFloat(b, math.Round(t*1e6)/1e6, 'f', -1, 64)
	b = append(b, `,"conn":`...)
	return strconv.AppendInt(b, int64(id), 10)
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// wrapConn returns nc recording into c. side is the recorder's role,
// "server" or "client": it decides which direction reads and writes are.
// A nil c returns nc unchanged.
func (c *capture) wrapConn(nc net.Conn, side string) net.Conn {
	if c == nil {
		return nc
	}
	rc := &recConn{Conn: nc, readDir: wireC2S, writeDir: wireS2C}
	client, server := nc.RemoteAddr(), nc.LocalAddr()
	if side == "client" {
		rc.readDir, rc.writeDir = wireS2C, wireC2S
		client, server = server, client
	}
	rc.rec = c.openVia(addrString(client), addrString(server), connTransport(nc))
	return rc
}

// transportConn is a connection carried by something other than TCP; its
// Transport names it for the capture ("websocket").
type transportConn interface {
	net.Conn
	Transport() string
}

// connTransport is what carries nc as its capture's open event names it:
// "" for TCP.
func connTransport(nc net.Conn) string {
	if t, ok := nc.(transportConn); ok {
		return t.Transport()
	}
	return ""
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// recConn is a net.Conn whose bytes are recorded. A write is recorded
// before it is made, so a reply never appears in the capture before the
// bytes that caused it.
type recConn struct {
	net.Conn
	rec               *capConn
	readDir, writeDir wireDir
	closeOnce         sync.Once
}

func (r *recConn) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if n > 0 {
		r.rec.data(r.readDir, p[:n])
	}
	return n, err
}

func (r *recConn) Write(p []byte) (int, error) {
	r.rec.data(r.writeDir, p)
	return r.Conn.Write(p)
}

func (r *recConn) Close() error {
	err := r.Conn.Close()
	r.closeOnce.Do(r.rec.close)
	return err
}
