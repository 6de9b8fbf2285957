// The REPL's outbox: the user's lines go out in order on a goroutine of
// their own, so the prompt keeps taking lines while the connection does not
// take them (the server slows a client over its line rate by not reading,
// and once TCP's buffers are full a send blocks). When one send has been
// blocked for a moment, the outbox says once how many lines are waiting.

package main

import (
	"sync"
	"time"
)

// outboxNotice is how long one send blocks before the user is told.
const outboxNotice = time.Second

// outbox sends lines through send, one at a time, in order.
type outbox struct {
	send    func(string) error
	waiting func(n int) // called once per blocked spell, from a timer's goroutine
	notice  time.Duration

	mu     sync.Mutex
	lines  []string // the line being sent first, then the ones behind it
	closed bool
	told   bool // waiting was called since the outbox was last empty

	wake   chan struct{} // holds one token when lines were added or the outbox closed
	failed chan error    // the first send error; the outbox stops at it
	done   chan struct{} // closed when the goroutine has ended
}

// newOutbox starts the outbox's goroutine; close ends it once every line
// is sent, or a send fails. waiting is told how many lines wait when one
// send has blocked for notice.
func newOutbox(send func(string) error, notice time.Duration, waiting func(n int)) *outbox {
	ob := &outbox{
		send: send, waiting: waiting, notice: notice,
		wake: make(chan struct{}, 1), failed: make(chan error, 1), done: make(chan struct{}),
	}
	go ob.run()
	return ob
}

// push queues a line behind the others.
func (ob *outbox) push(line string) {
	ob.mu.Lock()
	ob.lines = append(ob.lines, line)
	ob.mu.Unlock()
	ob.poke()
}

// close lets the goroutine end after the lines queued.
func (ob *outbox) close() {
	ob.mu.Lock()
	ob.closed = true
	ob.mu.Unlock()
	ob.poke()
}

func (ob *outbox) poke() {
	select {
	case ob.wake <- struct{}{}:
	default:
	}
}

func (ob *outbox) run() {
	defer close(ob.done)
	for {
		ob.mu.Lock()
		if len(ob.lines) == 0 {
			ob.told = false
			closed := ob.closed
			ob.mu.Unlock()
			if closed {
				return
			}
			<-ob.wake
			continue
		}
		line := ob.lines[0]
		ob.mu.Unlock()

		var told sync.WaitGroup // so that no notice comes after the outbox ends
		told.Add(1)
		slow := time.AfterFunc(ob.notice, func() { defer told.Done(); ob.blocked() })
		err := ob.send(line)
		if slow.Stop() {
			told.Done()
		}
		told.Wait()
		if err != nil {
			ob.failed <- err
			return
		}
		ob.mu.Lock()
		ob.lines = ob.lines[1:]
		ob.mu.Unlock()
	}
}

// blocked tells the user, once per spell, how many lines are waiting
// (the one being sent among them).
func (ob *outbox) blocked() {
	ob.mu.Lock()
	n, tell := len(ob.lines), !ob.told && len(ob.lines) > 0
	ob.told = true
	ob.mu.Unlock()
	if tell {
		ob.waiting(n)
	}
}
