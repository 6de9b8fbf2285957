// The live wire's feed: what the server's capture and keylog see, queued
// for replay's engine, which reads it as a capture that runs until Close.
// The queue is bounded: past liveFeed.max bytes, data is dropped and the
// engine is told of a gap, as with a pcap that missed segments; the chat
// never waits for the decoder.

//go:build !js

package main

import (
	"bytes"
	"io"
	"sync"
	"time"
)

// feedMaxItems bounds the records queued; opens, closes and keys are
// always queued, data only below this and liveFeed.max.
const feedMaxItems = 1 << 16

// liveFeed queues records and keys for the pump, in the order they happen.
type liveFeed struct {
	mu       sync.Mutex
	items    []feedItem
	data     []byte // the queued items' bytes
	max      int    // bytes of data queued at most
	gaps     map[feedDir]int
	dropped  int64 // bytes dropped, ever
	isClosed bool
	wake     chan struct{} // capacity 1
	started  time.Time

	// The pump's side: the batch being read, and what to do with a key.
	batch     []feedItem
	batchData []byte
	pos       int
	onKey     func(label string, id, secret []byte)
}

// feedDir is one direction of one connection.
type feedDir struct {
	conn int
	dir  wireDir
}

// feedItem is a capture record (its data in the feed's bytes, from:to),
// or a key (label set; the bytes are the session id, idLen long, then the
// secret).
type feedItem struct {
	ev       captureEvent
	from, to int
	label    string
	idLen    int
}

func newLiveFeed(max int) *liveFeed {
	return &liveFeed{max: max, gaps: make(map[feedDir]int), wake: make(chan struct{}, 1), started: time.Now()}
}

// record is the capture's watch: it runs under the capture's lock, so it
// only copies and never waits.
func (f *liveFeed) record(ev captureEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isClosed {
		return
	}
	switch ev.Kind {
	case capData:
		d := feedDir{ev.Conn, ev.Dir}
		if len(f.data)+len(ev.Data) > f.max || len(f.items) >= feedMaxItems {
			f.gaps[d] += len(ev.Data)
			f.dropped += int64(len(ev.Data))
			return
		}
		f.flushGap(d)
		from := len(f.data)
		f.data = append(f.data, ev.Data...)
		ev.Data = nil
		f.items = append(f.items, feedItem{ev: ev, from: from, to: len(f.data)})
	case capClose:
		f.flushGap(feedDir{ev.Conn, wireC2S})
		f.flushGap(feedDir{ev.Conn, wireS2C})
		f.items = append(f.items, feedItem{ev: ev})
	default:
		ev.Data = nil
		f.items = append(f.items, feedItem{ev: ev})
	}
	f.signal()
}

// flushGap queues the gap of bytes dropped in d before its next record.
func (f *liveFeed) flushGap(d feedDir) {
	if n := f.gaps[d]; n > 0 {
		delete(f.gaps, d)
		f.items = append(f.items, feedItem{ev: captureEvent{Kind: capGap, Conn: d.conn, Dir: d.dir, Gap: n}})
	}
}

// key is the keylog's watch.
func (f *liveFeed) key(label string, id, secret []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isClosed {
		return
	}
	from := len(f.data)
	f.data = append(f.data, id...)
	f.data = append(f.data, secret...)
	f.items = append(f.items, feedItem{label: label, from: from, idLen: len(id), to: len(f.data)})
	f.signal()
}

func (f *liveFeed) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// close ends the feed: next returns io.EOF.
func (f *liveFeed) close() {
	f.mu.Lock()
	f.isClosed = true
	f.items, f.data = nil, nil
	f.mu.Unlock()
	f.signal()
}

func (f *liveFeed) closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isClosed
}

// header makes the feed a captureSource.
func (f *liveFeed) header() (captureHeader, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return captureHeader{Version: captureVersion, Recorder: "server", Started: f.started.UTC().Format(time.RFC3339Nano)}, f.started
}

// next gives the pump the next record, waiting for one; keys go to onKey
// on the way. ev.Data is valid until the next call.
func (f *liveFeed) next(ev *captureEvent) error {
	for {
		if f.pos < len(f.batch) {
			it := &f.batch[f.pos]
			f.pos++
			if it.label != "" {
				b := f.batchData[it.from:it.to]
				f.onKey(it.label, bytes.Clone(b[:it.idLen]), bytes.Clone(b[it.idLen:]))
				continue
			}
			*ev = it.ev
			if ev.Kind == capData {
				ev.Data = f.batchData[it.from:it.to]
			}
			return nil
		}
		f.mu.Lock()
		for len(f.items) == 0 && !f.isClosed {
			f.mu.Unlock()
			<-f.wake
			f.mu.Lock()
		}
		if f.isClosed {
			f.mu.Unlock()
			return io.EOF
		}
		f.batch, f.items = f.items, f.batch[:0]
		f.batchData, f.data = f.data, f.batchData[:0]
		f.pos = 0
		f.mu.Unlock()
	}
}
