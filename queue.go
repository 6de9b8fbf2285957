// Each member's bounded outbound queue, and what keeps it bounded without
// losing a reading client's lines: notice batching, broadcasters waiting
// for writers that are behind, and the buffers members hold only while
// they have something to send.

package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// waitForWriters holds a broadcaster back while writers that are only
// short of CPU drain their queues. On two cores, one reader goroutine can
// push a client's whole burst to every queue in one time slice while the
// writers that would drain them wait to run; without this wait a burst
// longer than the queue bound disconnects clients that are reading.
// Waiting here leaves the rest of the burst in the sender's socket, so TCP
// slows the sender instead. It does not wait for a writer stalled in a
// Write (a client that stopped reading is still disconnected when its
// queue fills), and never longer than writerWaitLimit in all. It reports
// whether it waited: the sender's time held back counts towards the
// line-rate limit's cut-off (see heldBack).
func (s *server) waitForWriters(behind []*member) (waited bool) {
	if len(behind) == 0 {
		return false
	}
	deadline := time.Now().Add(writerWaitLimit)
	timer := time.NewTimer(writerWaitLimit)
	defer timer.Stop()
	for _, m := range behind {
		for m.out.len() > m.out.limit/4 {
			now := time.Now()
			if m.out.stalled(now) || !now.Before(deadline) {
				break
			}
			waited = true
			// Wake when the writer takes a batch, when its current Write
			// would count as stalled, or at the deadline.
			wait := deadline.Sub(now)
			if since := m.out.writeSince.Load(); since != 0 {
				wait = min(wait, time.Unix(0, since).Add(writeStall).Sub(now))
			}
			timer.Reset(wait)
			select {
			case <-m.out.took:
			case <-timer.C:
			}
		}
	}
	return waited
}

const (
	// writerWaitLimit is the longest waitForWriters holds a broadcaster back.
	writerWaitLimit = 100 * time.Millisecond
	// writeStall is how long a Write lasts before its client counts as
	// not reading. A Write to a reading client returns at once, but on a
	// busy machine its writer may wait a while for a core afterwards.
	writeStall = 20 * time.Millisecond
)

func (m *member) tryPush(text string) bool {
	_, ok := m.out.push(text, false)
	return ok
}

// noticeDelay is how long a join or leave notice may wait in a queue for
// company. Every join is announced to everyone online, so N clients
// joining cost N²/2 notices; sent one write each, their syscalls and
// wake-ups cost as much CPU as the joins' RSA decryptions. Held for a
// moment, a burst of joins reaches each member in a few writes. Anything
// else queued behind a notice sends it at once, so order never changes.
const noticeDelay = 50 * time.Millisecond

// outQueue is a member's bounded outbound queue. It holds texts, not sealed
// frames: a broadcast shares one string among its recipients, and each
// recipient's writer seals it. Its memory follows what is waiting, up to
// limit entries, so an idle client costs almost nothing. Notices (joins and
// leaves) may wait up to noticeDelay; any other text takes them along.
type outQueue struct {
	mu     sync.Mutex
	items  []string
	limit  int
	closed bool
	urgent bool          // a text that is not a notice is queued
	ready  chan struct{} // holds one token when the writer should look

	took       chan struct{} // holds one token after the writer took a batch, for waitForWriters
	writeSince atomic.Int64  // when the writer's current conn.Write began (Unix ns), 0 outside one
}

func newOutQueue(limit int) *outQueue {
	return &outQueue{limit: limit, ready: make(chan struct{}, 1), took: make(chan struct{}, 1)}
}

// stalled reports whether the writer has been inside one Write for
// writeStall or longer: its client is not reading, or not fast enough.
func (q *outQueue) stalled(now time.Time) bool {
	since := q.writeSince.Load()
	return since != 0 && now.Sub(time.Unix(0, since)) >= writeStall
}

// len is the number of texts waiting.
func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// push appends text and returns how many texts are waiting, with ok false
// when the queue is full. A push to a closed queue is dropped. A notice
// wakes the writer only when the queue was empty, so that it starts its
// delay, or when the queue is half full.
func (q *outQueue) push(text string, notice bool) (queued int, ok bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, true
	}
	if n := len(q.items); n >= q.limit {
		q.mu.Unlock()
		return n, false
	}
	if notice && len(q.items) >= q.limit/2 {
		notice = false // a queue half full of notices is not held back
	}
	wake := !notice || len(q.items) == 0
	if q.items == nil {
		q.items = textSlices.get()
	}
	q.items = append(q.items, text)
	q.urgent = q.urgent || !notice
	queued = len(q.items)
	q.mu.Unlock()
	if wake {
		q.wake()
	}
	return queued, true
}

func (q *outQueue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// close lets the writer drain what is queued and stop.
func (q *outQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

// take waits for texts and returns all that are queued (the caller gives
// the slice back to textSlices); ok is false once the queue is closed and
// empty. When only notices are queued it waits for more, up to delay (a
// stopped timer it owns, stopped again on return).
func (q *outQueue) take(delay *time.Timer, wait time.Duration) (items []string, ok bool) {
	waiting, expired := false, false
	defer func() {
		if waiting {
			delay.Stop()
		}
	}()
	for {
		q.mu.Lock()
		n, closed := len(q.items), q.closed
		if n > 0 && (q.urgent || closed || expired) {
			items, q.items = q.items, nil
			q.urgent = false
			q.mu.Unlock()
			select {
			case q.took <- struct{}{}:
			default:
			}
			return items, true
		}
		q.mu.Unlock()
		switch {
		case closed:
			return nil, false
		case n == 0:
			<-q.ready
		default: // notices only
			if !waiting {
				waiting = true
				delay.Reset(wait)
			}
			select {
			case <-q.ready:
			case <-delay.C:
				waiting, expired = false, true
			}
		}
	}
}

// Buffers that members use only while they have something to send: an
// idle member holds none, and a burst does not grow new ones per batch for
// every member.
var (
	textSlices   = slicePool[string]{max: 4096}          // queues' backing arrays
	writeBuffers = slicePool[byte]{max: 2 * maxCoalesce} // writers' coalescing buffers
)

// slicePool is a sync.Pool of empty slices, keeping none larger than max.
type slicePool[T any] struct {
	p   sync.Pool
	max int
}

func (sp *slicePool[T]) get() []T {
	if b, ok := sp.p.Get().(*[]T); ok {
		return *b
	}
	return nil
}

func (sp *slicePool[T]) put(b []T) {
	if cap(b) <= sp.max {
		b = b[:0]
		sp.p.Put(&b)
	}
}
