// TCP reassembly for the pcap reader: each direction of a connection put
// back in sequence order. Segments that come ahead of their turn wait;
// bytes sent twice are used once; bytes the capture lacks are given up as a
// gap once the receiver acknowledges them, after pcapWaitGap of capture
// time, or when the waiting segments pass the memory bounds. The work per
// packet does not depend on how many connections are open: a wait is
// timed by a queue of its own, never by a scan of every connection.

//go:build !js

package main

import (
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Bounds of the reassembly's memory: segments waiting for their turn are
// counted in pages of 2 KB (a segment takes at least one), per connection
// and in all; past these, after pcapWaitGap of capture time, or once the
// receiver acknowledges them, the missing bytes are given up as a gap.
const (
	pcapPageSize     = 2 << 10
	pcapPagesPerConn = 256  // about 0.5 MB per connection
	pcapPagesTotal   = 4096 // about 8 MB in all
	pcapWaitGap      = 10 * time.Second
)

// seqAfter is how far sequence number b is after a, wrapping around 2^32
// (negative when b is before a).
func seqAfter(a, b uint32) int { return int(int32(b - a)) }

// tcpPending is a segment that came ahead of its turn.
type tcpPending struct {
	seq  uint32
	data []byte
	fin  bool
	seen time.Time
}

func (p *tcpPending) pages() int { return 1 + len(p.data)/pcapPageSize }

// tcpHalf is one direction of a connection.
type tcpHalf struct {
	started bool   // its first segment (or its SYN) has been seen
	closed  bool   // its FIN or the connection's RST has been used
	next    uint32 // the sequence number of the next byte due
	pending []tcpPending
	pages   int
	wait    int // which wait of this half the queue's entries name
}

// tcpWait is an entry of the queue that times the waits for missing bytes.
type tcpWait struct {
	st    *pcapStream
	d     int
	wait  int
	since time.Time
}

// segment takes one TCP segment of direction d (0: sent by the stream's
// endpoint a) captured at t.
func (st *pcapStream) segment(d int, tcp *layers.TCP, t time.Time) {
	s, h := st.src, &st.half[d]
	seq, data := tcp.Seq, tcp.Payload
	if tcp.SYN {
		st.syn = true
		if h.started {
			return // a SYN sent again: its payload is not stream data
		}
		seq++
	}
	if !h.started {
		// Its SYN, or (a connection open when the capture began) its first
		// segment seen.
		h.started, h.next = true, seq
	}
	if tcp.FIN || tcp.RST {
		st.ending = t
	}
	if st.state == streamOther {
		// Not encchat: none of its bytes are kept or counted; only its end
		// matters, which frees its place among the connections followed.
		if tcp.RST {
			st.reset()
		} else if tcp.FIN && !h.closed {
			st.finish(d)
		}
		return
	}
	ahead := seqAfter(h.next, seq)
	switch {
	case ahead > 0 && len(data) > 0:
		s.reordered++
	case ahead < 0 && len(data) > 0:
		s.overlap[0]++
		s.overlap[1] += min(len(data), -ahead)
	}
	if h.closed {
		return
	}
	if tcp.RST {
		// The receiver drops a RST that is not at the next byte due.
		if ahead == 0 {
			st.reset()
		}
		return
	}
	if ahead > 0 {
		if len(data) > 0 || tcp.FIN {
			st.hold(d, tcpPending{seq: seq, data: data, fin: tcp.FIN, seen: t})
		}
		return
	}
	if tcp.FIN && ahead+len(data) < 0 {
		return // a FIN before the next byte due: sent before, already used
	}
	if -ahead < len(data) {
		st.deliver(d, 0, data[-ahead:], t)
		h.next += uint32(len(data) + ahead)
	}
	if tcp.FIN {
		st.finish(d)
		return
	}
	st.drain(d, t)
}

// hold keeps a segment that came ahead of its turn, in sequence order,
// giving up the bytes before it when the bounds are passed.
func (st *pcapStream) hold(d int, p tcpPending) {
	s, h := st.src, &st.half[d]
	p.data = slices.Clone(p.data)
	i, _ := slices.BinarySearchFunc(h.pending, p.seq, func(q tcpPending, seq uint32) int {
		return seqAfter(seq, q.seq)
	})
	if len(h.pending) == 0 {
		h.wait++
		s.addWait(tcpWait{st: st, d: d, wait: h.wait, since: p.seen})
	}
	h.pending = slices.Insert(h.pending, i, p)
	h.pages += p.pages()
	s.pages += p.pages()
	for len(h.pending) > 0 && !h.closed && (h.pages > pcapPagesPerConn || s.pages > pcapPagesTotal) {
		st.giveUp(d)
	}
}

// drain delivers the waiting segments that are now due.
func (st *pcapStream) drain(d int, t time.Time) {
	h := &st.half[d]
	for len(h.pending) > 0 && !h.closed && seqAfter(h.next, h.pending[0].seq) <= 0 {
		p := st.unhold(d)
		if over := seqAfter(p.seq, h.next); over < len(p.data) {
			st.deliver(d, 0, p.data[over:], t)
			h.next += uint32(len(p.data) - over)
		}
		if p.fin {
			st.finish(d)
		}
	}
	if len(h.pending) > 0 && !h.closed {
		st.rewait(d)
	}
}

// unhold takes the first waiting segment off.
func (st *pcapStream) unhold(d int) tcpPending {
	h := &st.half[d]
	p := h.pending[0]
	h.pending[0] = tcpPending{}
	h.pending = h.pending[1:]
	if len(h.pending) == 0 {
		h.pending = nil
	}
	h.pages -= p.pages()
	st.src.pages -= p.pages()
	return p
}

// rewait times the wait of what still waits, from the earliest of it.
func (st *pcapStream) rewait(d int) {
	h := &st.half[d]
	since := h.pending[0].seen
	for _, p := range h.pending[1:] {
		if p.seen.Before(since) {
			since = p.seen
		}
	}
	h.wait++
	st.src.addWait(tcpWait{st: st, d: d, wait: h.wait, since: since})
}

// addWait queues a wait. Entries of waits that ended early stay in the
// queue until their time comes; when they crowd it (a capture whose clock
// stands still), they are swept out, so the queue holds at most about
// twice the waits still on, and each is swept a bounded number of times.
func (s *pcapSource) addWait(w tcpWait) {
	if len(s.waits) >= max(2*s.liveWaits, 1024) {
		live := s.waits[:0]
		for _, w := range s.waits {
			if h := &w.st.half[w.d]; h.wait == w.wait && len(h.pending) > 0 && !h.closed {
				live = append(live, w)
			}
		}
		clear(s.waits[len(live):])
		s.waits, s.liveWaits = live, len(live)
	}
	s.waits = append(s.waits, w)
}

// giveUp gives up the bytes missing before the first waiting segment (a
// gap) and delivers what follows it.
func (st *pcapStream) giveUp(d int) {
	h := &st.half[d]
	if len(h.pending) == 0 || h.closed {
		return
	}
	p := h.pending[0]
	if skip := seqAfter(h.next, p.seq); skip > 0 {
		st.deliver(d, skip, nil, p.seen)
		h.next = p.seq
	}
	h.wait++ // the queue's entries for the old wait are spent
	st.drain(d, p.seen)
}

// acked gives up the bytes of direction d that the other side acknowledges
// but the capture lacks: the peer has them, so waiting longer is no use.
// (One more than the bytes is a FIN.)
func (st *pcapStream) acked(d int, ack uint32) {
	h := &st.half[d]
	for len(h.pending) > 0 && !h.closed && seqAfter(h.next+1, ack) > 0 {
		st.giveUp(d)
	}
}

// finish closes direction d at its FIN; the stream completes once both are.
func (st *pcapStream) finish(d int) {
	h := &st.half[d]
	h.closed = true
	for len(h.pending) > 0 {
		st.unhold(d)
	}
	if st.half[1-d].closed {
		st.complete()
	}
}

// reset closes both directions at a RST.
func (st *pcapStream) reset() {
	for d := range st.half {
		if !st.half[d].closed {
			st.finish(d)
		}
	}
}

// expire gives up the waits that began pcapWaitGap or more before the
// latest packet time.
func (s *pcapSource) expire() {
	limit := s.last.Add(-pcapWaitGap)
	n := 0
	for ; n < len(s.waits); n++ {
		w := s.waits[n]
		if !w.since.Before(limit) {
			break
		}
		if h := &w.st.half[w.d]; h.wait == w.wait && len(h.pending) > 0 && !h.closed {
			w.st.giveUp(w.d)
		}
	}
	if n > 0 {
		clear(s.waits[:n])
		s.waits = s.waits[n:]
		if len(s.waits) == 0 {
			s.waits = nil
		}
	}
}

// endAll ends the streams still open when the capture ends, in the order
// they began: what waits is given up, and each stream completes.
func (s *pcapSource) endAll() {
	open := make([]*pcapStream, 0, len(s.byKey))
	for _, st := range s.byKey {
		open = append(open, st)
	}
	slices.SortFunc(open, func(a, b *pcapStream) int { return a.seq - b.seq })
	for _, st := range open {
		for d := range st.half {
			for len(st.half[d].pending) > 0 && !st.half[d].closed {
				st.giveUp(d)
			}
		}
		if !st.done {
			st.complete()
		}
	}
	s.waits = nil
}
