// The line-rate limit: a client over its rate is read more slowly, not
// dropped. Its lines wait in TCP's buffers and arrive late, in order, all
// of them; only a client slowed for MaxPaced without a break is cut off.

package main

import (
	"fmt"
	"time"
)

// Defaults of the line-rate limit, as the server's flags show them, and
// the longest the server slows a client without a break (see slowDown).
const (
	defaultRate     = 10 // lines per second, after the burst
	defaultBurst    = 20
	defaultMaxPaced = 30 * time.Second
)

// tokenBucket paces a client's lines: Burst at once, then Rate per second.
// A line that finds no token waits for one. The first such line starts a
// spell, which lasts until a line finds the bucket full again: the client
// kept under the rate long enough to earn its whole burst back. (A line
// that merely finds one token may have waited in the socket all the same,
// while the reader was busy.) Only the member's reader touches it.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
	spell               time.Time // when the current spell began; zero outside one
}

// take spends a token on one line at now and returns 0, or, when there is
// none, returns how long until there is one.
func (b *tokenBucket) take(now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= b.burst {
		b.spell = time.Time{}
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	return max(wait, time.Millisecond)
}

// slowDown holds a member's line back until its bucket has a token, wait
// from now. Nothing is read from the member's socket meanwhile, so the
// lines behind wait in TCP's buffers (the client's sends block once they
// are full) and arrive later, in order. The member is told once per spell.
// A member slowed without a break for longer than MaxPaced is not pasting
// a paragraph but flooding: it is told why and disconnected. slowDown
// holds no lock while it waits, and returns false, at once, when the
// member is gone (it left, was disconnected, or the server is shutting
// down) or was disconnected here.
func (s *server) slowDown(m *member, limit *tokenBucket, wait time.Duration) bool {
	now := s.cfg.Now()
	if limit.spell.IsZero() {
		limit.spell = now
		s.logf(evLimit, "%s: over %g lines/s, delaying their lines", m.name, s.cfg.Rate)
		s.send(m, s.stamp(slowDownText))
	}
	for wait > 0 {
		if now.Add(wait).Sub(limit.spell) > s.cfg.MaxPaced {
			s.logf(evLimit, "%s: over %g lines/s for %s without a break, disconnecting", m.name, s.cfg.Rate, s.cfg.MaxPaced)
			s.send(m, s.stamp(floodedText(s.cfg.Rate, s.cfg.MaxPaced)))
			s.remove(m, fmt.Sprintf("over the line rate for %s without a break", s.cfg.MaxPaced))
			return false
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-m.quit:
			timer.Stop()
			return false
		}
		now = s.cfg.Now()
		wait = limit.take(now)
	}
	return true
}
