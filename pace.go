// The line-rate limit, the pace the server reads a client's lines at: a
// client over its rate is read more slowly, not dropped. Its lines wait in
// TCP's buffers and arrive late, in order, all of them; only a client held
// back for MaxPaced without a break is cut off. A line counts by what it
// costs the server to relay, its size times its recipients (lineCost).

package main

import (
	"bytes"
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

// lineCostUnit is what one line may cost the server to relay, in bytes
// delivered (its size times its recipients), before it counts as more
// than one line: a 64-byte line to 512 members, or a 4 KB line to 8.
// Sealing and writing take time in proportion to the bytes, so a 4 KB
// line to a room of 100 counts as 12.5 lines, and a flood of large lines
// is slowed as a flood of many lines is. Counted one each, 100 clients
// sending 4 KB lines saturated two cores with none over the rate.
const lineCostUnit = 32 << 10

// lineCost is what a line of size bytes to recipients members counts as
// against the line rate: one line, or more for a line that costs the
// server more than lineCostUnit to relay.
func lineCost(size, recipients int) float64 {
	return max(1, float64(size)*float64(recipients)/lineCostUnit)
}

// lineCost is what a member's line (a decrypted record) counts as: a chat
// line goes to everyone online; a command, an empty line and one over
// maxTextLen (refused with an error) go to one or two.
func (s *server) lineCost(raw []byte) float64 {
	text := bytes.TrimSpace(raw)
	if s.cfg.Rate <= 0 || len(text) > maxTextLen || (len(text) > 0 && text[0] == '/') {
		return 1
	}
	return lineCost(len(text), s.online())
}

// tokenBucket paces a client's lines: Burst at once, then Rate per second,
// each line spending what it costs (lineCost). A line that finds less
// than one token waits for one; one that finds a token spends its whole
// cost, going into debt, so one long line is never refused and the lines
// after it wait for the debt to be paid. The first line that waits starts
// a spell, which lasts until a line finds the bucket full again: the
// client kept under the rate long enough to earn its whole burst back. (A
// line that merely finds one token may have waited in the socket all the
// same, while the reader was busy.) Only the member's reader touches it.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
	spell               time.Time // when the current spell began; zero outside one
}

// take spends cost tokens on one line at now and returns 0, or, when
// there is not one token, returns how long until there is one.
func (b *tokenBucket) take(now time.Time, cost float64) time.Duration {
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
		b.tokens -= cost
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
func (s *server) slowDown(m *member, limit *tokenBucket, wait time.Duration, cost float64) bool {
	now := s.cfg.Now()
	if limit.spell.IsZero() {
		limit.spell = now
		counts := ""
		if cost > 1 {
			counts = fmt.Sprintf(" (their last line, long and to %d members, counted as %.1f)", s.online(), cost)
		}
		s.logf(evLimit, "%s: over %g lines/s%s, delaying their lines", m.name, s.cfg.Rate, counts)
		s.send(m, s.stamp(slowDownText))
	}
	for wait > 0 {
		if now.Add(wait).Sub(limit.spell) > s.cfg.MaxPaced {
			s.cutOff(m)
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
		wait = limit.take(now, cost)
	}
	return true
}

// heldBack counts the time a member's line waited for the others' writers
// (waitForWriters) as time held back, as slowDown's waits are: it starts a
// spell when none is running, and cuts off a member held back, whatever
// the cause, for longer than MaxPaced without a break. It returns false
// when the member was cut off.
func (s *server) heldBack(m *member, limit *tokenBucket) bool {
	if s.cfg.Rate <= 0 {
		return true // no line rate: no spells, no cut-off
	}
	now := s.cfg.Now()
	if limit.spell.IsZero() {
		limit.spell = now
		return true
	}
	if now.Sub(limit.spell) > s.cfg.MaxPaced {
		s.cutOff(m)
		return false
	}
	return true
}

// cutOff disconnects a member held back for longer than MaxPaced without
// a break, telling them why.
func (s *server) cutOff(m *member) {
	s.logf(evLimit, "%s: over %g lines/s for %s without a break, disconnecting", m.name, s.cfg.Rate, s.cfg.MaxPaced)
	s.send(m, s.stamp(floodedText(s.cfg.Rate, s.cfg.MaxPaced)))
	s.remove(m, fmt.Sprintf("over the line rate for %s without a break", s.cfg.MaxPaced))
}
