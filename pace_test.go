// Tests of the line-rate limit: the token bucket and what a line costs,
// lines slowed and never dropped, the notice once per spell, the
// disconnect of a client that floods past the bound (time held back for
// the others' writers counting too), and a slowed client holding up
// nobody.

package main

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokenBucketBoundaries(t *testing.T) {
	b := tokenBucket{rate: 1, burst: 2, tokens: 2}
	t0 := time.Unix(0, 0)
	if b.take(t0, 1) != 0 || b.take(t0, 1) != 0 {
		t.Fatal("burst of 2 not taken at once")
	}
	if wait := b.take(t0, 1); wait != time.Second {
		t.Errorf("third line at once waits %v, want 1s", wait)
	}
	if wait := b.take(t0.Add(999*time.Millisecond), 1); wait != time.Millisecond {
		t.Errorf("1 ms before a whole token: waits %v, want 1ms", wait)
	}
	if wait := b.take(t0.Add(2*time.Second), 1); wait != 0 {
		t.Errorf("waits %v after a token refilled", wait)
	}
	// Idle time never banks more than the burst.
	for i := 0; i < 2; i++ {
		if b.take(t0.Add(time.Hour), 1) != 0 {
			t.Fatal("burst not restored")
		}
	}
	if b.take(t0.Add(time.Hour), 1) == 0 {
		t.Error("banked more than the burst")
	}
	// No limit: nothing ever waits.
	free := tokenBucket{}
	for range 100 {
		if free.take(t0, 1) != 0 {
			t.Fatal("rate 0 made a line wait")
		}
	}
}

// TestTokenBucketCost checks lines that cost more than one: one is taken
// while a token is left, into debt, and the next waits for the debt.
func TestTokenBucketCost(t *testing.T) {
	b := tokenBucket{rate: 10, burst: 20, tokens: 20}
	t0 := time.Unix(0, 0)
	cost := lineCost(maxTextLen, 100) // a 4 KB line to 100 members
	if cost != 12.5 {
		t.Fatalf("lineCost(4096, 100) = %g, want 12.5", cost)
	}
	if lineCost(64, 500) != 1 || lineCost(0, 1000) != 1 {
		t.Error("a short line to a room counts as more than one")
	}
	taken := 0
	for b.take(t0, cost) == 0 {
		taken++
	}
	if taken != 2 { // 20 → 7.5 → -5
		t.Errorf("%d lines of cost %g taken from a burst of 20, want 2", taken, cost)
	}
	if wait := b.take(t0, cost); wait != 600*time.Millisecond {
		t.Errorf("after the burst a line waits %v, want 600ms (6 tokens at 10/s)", wait)
	}
}

// sendTogether seals lines and writes them in one Write, so they reach the
// server together however busy the machine is.
func sendTogether(t *testing.T, cs *clientSession, lines ...string) {
	t.Helper()
	var buf []byte
	for _, line := range lines {
		payload, err := cs.rc.seal([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		buf = appendFrame(buf, payload)
	}
	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	if _, err := cs.conn.Write(buf); err != nil {
		t.Fatal(err)
	}
}

// numbered is n lines "PREFIX 0" … "PREFIX n-1".
func numbered(prefix string, n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = prefix + " " + strconv.Itoa(i)
	}
	return lines
}

// recvUntil reads texts (timestamps removed) until one equals last, for at
// most d; it fails the test on an error.
func recvUntil(t *testing.T, cs *clientSession, last string, d time.Duration) []string {
	t.Helper()
	cs.conn.SetReadDeadline(time.Now().Add(d))
	defer cs.conn.SetReadDeadline(time.Time{})
	var got []string
	for {
		text, err := cs.Recv()
		if err != nil {
			t.Fatalf("waiting for %q: %v (after %d texts)", last, err, len(got))
		}
		text = stampRE.ReplaceAllString(text, "")
		got = append(got, text)
		if text == last {
			return got
		}
	}
}

// TestPacedLinesAllArrive is 10 senders × 100 lines at once to 50 clients,
// at the default burst and ten times the default rate (so that it takes
// about a second, not eight; the bench runs the real default): every line
// reaches every client, once, in each sender's order, and each sender is
// told that it is being slowed (TestSlowDownNoticeOncePerSpell counts how
// often: here the bucket refills in 0.2 s, which a reader kept busy by
// 50 recipients may take between two lines on a loaded machine).
func TestPacedLinesAllArrive(t *testing.T) {
	const clients, senders, lines = 50, 10, 100
	ts := startTestServer(t, serverConfig{Rate: 10 * defaultRate, Burst: defaultBurst})
	cs := make([]*clientSession, clients)
	for i := range cs {
		cs[i] = join(t, ts.addr, fmt.Sprintf("c%02d", i))
	}
	type tally struct {
		next   map[string]int // sender → next sequence number expected
		wrong  []string
		notice int
		err    error
	}
	tallies := make([]tally, clients)
	var readers sync.WaitGroup
	for i, c := range cs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			tl := tally{next: make(map[string]int)}
			c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			for done := 0; done < senders; {
				text, err := c.Recv()
				if err != nil {
					tl.err = err
					break
				}
				text = stampRE.ReplaceAllString(text, "")
				if text == slowDownText {
					tl.notice++
					continue
				}
				// "cNN: pace cNN SEQ"
				f := strings.Fields(text)
				if len(f) != 4 || f[1] != "pace" {
					continue
				}
				seq, _ := strconv.Atoi(f[3])
				if seq != tl.next[f[2]] {
					tl.wrong = append(tl.wrong, fmt.Sprintf("%s's line %d where %d was due", f[2], seq, tl.next[f[2]]))
				}
				tl.next[f[2]] = seq + 1
				if seq == lines-1 {
					done++
				}
			}
			tallies[i] = tl
		}()
	}
	start := time.Now()
	var sending sync.WaitGroup
	for s := range senders {
		sending.Add(1)
		go func() {
			defer sending.Done()
			sendTogether(t, cs[s], numbered(fmt.Sprintf("pace c%02d", s), lines)...)
		}()
	}
	sending.Wait()
	readers.Wait()
	elapsed := time.Since(start)

	for i, tl := range tallies {
		if tl.err != nil {
			t.Errorf("c%02d: %v", i, tl.err)
		}
		if len(tl.wrong) > 0 {
			t.Errorf("c%02d: %d lines out of order, missing or repeated, first %s", i, len(tl.wrong), tl.wrong[0])
		}
		for s := range senders {
			if n := tl.next[fmt.Sprintf("c%02d", s)]; n != lines {
				t.Errorf("c%02d got c%02d's lines up to %d of %d", i, s, n, lines)
			}
		}
		if sender := i < senders; sender != (tl.notice > 0) {
			t.Errorf("c%02d was told %d times that its lines are delayed (a sender: %v)", i, tl.notice, sender)
		}
	}
	// 80 lines past the burst at 100 lines/s cannot all arrive in less
	// than 0.8 s: they were paced, not let through.
	if minimum := time.Duration(float64(lines-defaultBurst) / (10 * defaultRate) * float64(time.Second)); elapsed < minimum {
		t.Errorf("all lines arrived in %v, faster than the rate allows (%v)", elapsed, minimum)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, ev := range ts.log {
		if ev.Kind == evLeave || ev.Kind == evDropped {
			t.Errorf("server logged %s %s", ev.Kind, ev.Text)
		}
	}
}

// TestSlowDownNoticeOncePerSpell: a paste past the burst is told once,
// then arrives whole and in order; after a pause, a second paste is a
// second spell with its own notice. Nobody else is told.
func TestSlowDownNoticeOncePerSpell(t *testing.T) {
	const rate, burst = 20, 10
	ts := startTestServer(t, serverConfig{Rate: rate, Burst: burst})
	alice := join(t, ts.addr, "alice")
	bob := join(t, ts.addr, "bob")
	expect(t, alice, "[SYSTEM] bob joined (secure channel)")

	paste := numbered("paste", 40)
	start := time.Now()
	sendTogether(t, alice, paste...)
	got := recvUntil(t, alice, "alice: paste 39", 30*time.Second)
	elapsed := time.Since(start)
	var want []string
	for i, line := range paste {
		if i == burst {
			want = append(want, slowDownText) // queued as the first line past the burst waits
		}
		want = append(want, "alice: "+line)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alice saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if minimum := time.Duration(float64(len(paste)-burst) / rate * float64(time.Second)); elapsed < minimum {
		t.Errorf("the paste arrived in %v, faster than %d lines/s allows (%v)", elapsed, rate, minimum)
	}
	ts.logged(t, evLimit, "alice: over 20 lines/s, delaying their lines")
	for _, text := range recvUntil(t, bob, "alice: paste 39", 30*time.Second) {
		if text == slowDownText {
			t.Error("bob was told to slow down for alice's paste")
		}
	}

	// The bucket refills in burst/rate = 0.5 s; the next paste starts a
	// new spell and is told again.
	time.Sleep(2 * burst * time.Second / rate)
	sendTogether(t, alice, numbered("again", 2*burst)...)
	got = recvUntil(t, alice, fmt.Sprintf("alice: again %d", 2*burst-1), 30*time.Second)
	notices := 0
	for _, text := range got {
		if text == slowDownText {
			notices++
		}
	}
	if notices != 1 || len(got) != 2*burst+1 {
		t.Errorf("second paste: %q; want its %d lines and one notice", got, 2*burst)
	}
}

// TestFloodPastTheBoundIsDisconnected: a client that stays over the rate
// for longer than MaxPaced gets a clear error and is disconnected, and the
// server says why; the lines it got through arrive in order, and everyone
// else loses nothing.
func TestFloodPastTheBoundIsDisconnected(t *testing.T) {
	const rate, burst, bound = 50, 5, 400 * time.Millisecond
	ts := startTestServer(t, serverConfig{Rate: rate, Burst: burst, MaxPaced: bound})
	flood := join(t, ts.addr, "flood")
	bob := join(t, ts.addr, "bob")
	carol := join(t, ts.addr, "carol")
	expect(t, flood, "[SYSTEM] carol joined (secure channel)")
	expect(t, bob, "[SYSTEM] carol joined (secure channel)")

	sendTogether(t, flood, numbered("flood", 500)...) // 10 s of lines at 50/s
	sendTogether(t, bob, numbered("bob", burst)...)

	// The flooder: its own lines in order, the notice, then the error, then
	// the close.
	wantErr := floodedText(rate, bound)
	got := recvUntil(t, flood, wantErr, 30*time.Second)
	next := 0
	for _, text := range got {
		if rest, ok := strings.CutPrefix(text, "flood: flood "); ok {
			if rest != strconv.Itoa(next) {
				t.Fatalf("flooder saw line %s where %d was due", rest, next)
			}
			next++
		}
	}
	// About bound × rate lines past the burst got through before the cut;
	// far fewer than the 500 sent.
	if next < burst || next > 250 {
		t.Errorf("%d of the flooder's lines got through, want about %d", next, burst+int(bound.Seconds()*rate))
	}
	expectClosed(t, flood.conn)
	ts.logged(t, evLimit, "flood: over 50 lines/s for 400ms without a break, disconnecting")
	ts.logged(t, evLeave, "flood left the chat (over the line rate for 400ms without a break)")

	// Carol has bob's lines, the flooder's lines up to the cut, in order,
	// and its leaving; bob is still there.
	gotCarol := recvUntil(t, carol, "[SYSTEM] flood left the chat", 30*time.Second)
	nextFlood, nextBob := 0, 0
	for _, text := range gotCarol {
		switch {
		case strings.HasPrefix(text, "flood: flood "):
			if text != "flood: flood "+strconv.Itoa(nextFlood) {
				t.Fatalf("carol: %q where flood %d was due", text, nextFlood)
			}
			nextFlood++
		case strings.HasPrefix(text, "bob: bob "):
			if text != "bob: bob "+strconv.Itoa(nextBob) {
				t.Fatalf("carol: %q where bob %d was due", text, nextBob)
			}
			nextBob++
		case text == slowDownText || text == wantErr:
			t.Errorf("carol got the flooder's notice %q", text)
		}
	}
	if nextFlood != next || nextBob != burst {
		t.Errorf("carol got %d of the flooder's %d lines and %d of bob's %d", nextFlood, next, nextBob, burst)
	}
	bob.Send("still here")
	expect(t, carol, "bob: still here")
}

// TestSlowedClientHoldsUpNobody: while one client's lines wait for their
// tokens (for close to a minute), the others chat at once, /list answers,
// and Shutdown ends the wait at once, leaving no goroutine behind.
func TestSlowedClientHoldsUpNobody(t *testing.T) {
	before := runtime.NumGoroutine()
	ts := startTestServer(t, serverConfig{Rate: 1, Burst: 10})
	slow := join(t, ts.addr, "slow")
	bob := join(t, ts.addr, "bob")
	carol := join(t, ts.addr, "carol")
	expect(t, bob, "[SYSTEM] carol joined (secure channel)")

	sendTogether(t, slow, numbered("slow", 60)...) // 50 s of waiting at 1 line/s
	expect(t, carol, "slow: slow 9")
	ts.logged(t, evLimit, "slow: over 1 lines/s")
	start := time.Now()
	for i := range 5 {
		line := fmt.Sprintf("quick %d", i) // within bob's own burst
		bob.Send(line)
		expect(t, carol, "bob: "+line)
	}
	bob.Send("/list")
	expect(t, bob, listText([]string{"slow", "bob", "carol"}))
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("bob's lines took %v while slow's waited", elapsed)
	}

	start = time.Now()
	ts.Shutdown()
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Shutdown took %v with a client's lines waiting", elapsed)
	}
	expect(t, slow, shutdownText)
	for _, cs := range []*clientSession{slow, bob, carol} {
		cs.Close()
	}
	waitGoroutines(t, before)
}

// TestHeldBackCountsTowardsCutOff: time a member's lines wait for the
// others' writers counts as time held back, as the rate's waits do: it
// starts a spell, and a member held back for longer than MaxPaced without
// a break is cut off with the same error, however few lines it sent.
func TestHeldBackCountsTowardsCutOff(t *testing.T) {
	const bound = time.Second
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
		return now
	}
	ts := startTestServer(t, serverConfig{Rate: defaultRate, Burst: defaultBurst, MaxPaced: bound, Now: clock})
	alice := join(t, ts.addr, "alice")
	ts.server.mu.Lock()
	m := ts.byName["alice"]
	ts.server.mu.Unlock()

	limit := tokenBucket{rate: defaultRate, burst: defaultBurst, tokens: defaultBurst}
	if !ts.heldBack(m, &limit) || limit.spell.IsZero() {
		t.Fatal("a first hold did not start a spell")
	}
	advance(bound / 2)
	if !ts.heldBack(m, &limit) {
		t.Fatal("cut off within the bound")
	}
	// A line that finds the bucket full ends the spell.
	advance(bound / 4)
	if limit.take(clock(), 1); !limit.spell.IsZero() {
		t.Fatal("a full bucket did not end the spell")
	}
	if !ts.heldBack(m, &limit) {
		t.Fatal("cut off at the start of a new spell")
	}
	advance(bound + time.Millisecond)
	if ts.heldBack(m, &limit) {
		t.Fatal("held back past the bound and not cut off")
	}
	recvUntil(t, alice, floodedText(defaultRate, bound), 5*time.Second)
	expectClosed(t, alice.conn)
	ts.logged(t, evLeave, "alice left the chat (over the line rate for 1s without a break)")
}

// TestLineCostCountsWhatIsRelayed: a line is counted by what the server
// relays, so one it refuses as too long, or that is only white space
// around a short text, is not counted as a long line to everyone.
func TestLineCostCountsWhatIsRelayed(t *testing.T) {
	srv, err := newServer(serverConfig{Key: testRSAKey(t), Rate: defaultRate, Burst: defaultBurst})
	if err != nil {
		t.Fatal(err)
	}
	srv.members = make([]*member, 1000)
	for _, c := range []struct {
		line string
		want float64
	}{
		{strings.Repeat("x", maxTextLen+1), 1},                        // refused: an error to the sender only
		{strings.Repeat(" ", 40000) + "hi", 1},                        // relayed as "hi"
		{"/pm bob " + strings.Repeat("x", 4000), 1},                   // to one member
		{strings.Repeat("x", 4096), lineCost(4096, len(srv.members))}, // to all 1000
	} {
		if got := srv.lineCost([]byte(c.line)); got != c.want {
			t.Errorf("a %d-byte line counts as %g, want %g", len(c.line), got, c.want)
		}
	}
}
