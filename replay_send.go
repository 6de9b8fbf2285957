// The replay attack (replay -send ADDR): a recorded connection's client bytes
// sent again to a live server, by someone with no key. It waits for the
// server's first frame, sends the recorded frames as they were, and reports
// what the server answered without decrypting anything. A classic server
// whose key has not changed accepts the old session again, as its user;
// after a key change, or in the modern suite, the server refuses it.

//go:build !js

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	sendDialTimeout = 5 * time.Second
	sendAnswerWait  = 10 * time.Second       // for each handshake answer (an RSA decryption on a busy server)
	sendSettle      = 300 * time.Millisecond // after the welcome, for a refusal that closes
	sendQuiet       = time.Second            // after the last frame, for the relayed messages
	sendMaxBytes    = 64 << 20               // client bytes of one recorded connection
)

// sentConn is one recorded connection as replay -send uses it.
type sentConn struct {
	id          int
	frames      [][]byte // the client's frames, payloads in order
	serverFirst []byte   // the recorded server's first frame, nil when not recorded
	skip        string   // why it is not sent, or ""
	s2c         []byte   // the recorded server's bytes until its first frame is whole
	c2s         []byte
}

// sentCapture is what replay -send takes from a capture: its connections in
// open order, and what the capture held that is no connection (a pcap's
// notes on skipped packets), said once.
type sentCapture struct {
	conns []*sentConn
	notes []string
}

// readSentConns reads the client bytes of every connection in a capture
// (only connection want, when it is not 0), in open order. Traffic that is
// no connection (a pcap's UDP packets, fragments, other TCP) becomes a note.
// A connection whose start or client bytes the capture lacks is kept, with
// why it cannot be sent, so the count says it was skipped.
func readSentConns(r io.Reader, want int) (*sentCapture, error) {
	cr, err := readCapture(r)
	if err != nil {
		return nil, err
	}
	sc := &sentCapture{}
	byID := map[int]*sentConn{}
	var ev captureEvent
	for {
		err := cr.next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if ev.Conn == 0 {
			if ev.Kind == capNote {
				sc.notes = append(sc.notes, ev.Note)
			}
			continue
		}
		if want != 0 && ev.Conn != want {
			continue
		}
		c := byID[ev.Conn]
		if c == nil {
			c = &sentConn{id: ev.Conn}
			byID[ev.Conn] = c
			sc.conns = append(sc.conns, c)
		}
		switch {
		case c.skip != "":
			continue
		case ev.Kind == capNote && len(c.c2s) == 0:
			// The only note on a connection: the capture began after it opened.
			c.skip = "the capture began during this connection, so its handshake is not in it"
			continue
		case ev.Kind == capGap && ev.Dir == wireC2S:
			c.skip = fmt.Sprintf("%d %s of the client's stream missing from the capture, so its frames cannot be sent as they were", ev.Gap, plural(ev.Gap, "byte", "bytes"))
			c.c2s = nil
			continue
		case ev.Kind != capData:
			continue
		}
		if ev.Dir == wireS2C {
			if c.serverFirst == nil && len(c.s2c) < headerLen+maxFrameLen {
				c.s2c = append(c.s2c, ev.Data...)
				if f, _, ok := cutFrame(c.s2c); ok {
					c.serverFirst, c.s2c = f, nil
				}
			}
			continue
		}
		if len(c.c2s)+len(ev.Data) > sendMaxBytes {
			return nil, &lineError{ev.Line, fmt.Sprintf("connection %d: more than %d MiB of client bytes", ev.Conn, sendMaxBytes>>20)}
		}
		c.c2s = append(c.c2s, ev.Data...)
	}
	for _, c := range sc.conns {
		rest := c.c2s
		for {
			f, after, ok := cutFrame(rest)
			if !ok {
				break
			}
			c.frames = append(c.frames, f)
			rest = after
		}
		c.c2s, c.s2c = nil, nil
		if c.skip == "" && len(c.frames) == 0 {
			c.skip = "its client sent no whole frame"
		}
	}
	if want != 0 && len(sc.conns) == 0 {
		return nil, fmt.Errorf("-conn: the capture has no connection %d", want)
	}
	return sc, nil
}

// readSentConnsFile is readSentConns of the capture at path.
func readSentConnsFile(path string, want int) (*sentCapture, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readSentConns(f, want)
}

// cutFrame cuts one whole frame off the front of b.
func cutFrame(b []byte) (payload, rest []byte, ok bool) {
	if len(b) < headerLen {
		return nil, b, false
	}
	n, err := parseFrameHeader(b[:headerLen])
	if err != nil || len(b) < headerLen+n {
		return nil, b, false
	}
	return b[headerLen : headerLen+n], b[headerLen+n:], true
}

// sendOutcome is what became of one replayed connection.
type sendOutcome uint8

const (
	sendAccepted sendOutcome = iota // the server took the recorded session
	sendRefused                     // the server refused it
	sendFailed                      // it could not be tried to the end (no answer in time)
)

// sendResult is what the server did with one replayed connection.
type sendResult struct {
	Outcome sendOutcome
	Why     string // one sentence: why it was accepted or refused
}

// Accepted reports whether the server took the recorded session.
func (r sendResult) Accepted() bool { return r.Outcome == sendAccepted }

// sendFrames is a live connection's frames as they arrive, read by its own
// goroutine, which ends when the connection closes.
type sendFrames struct {
	ch  chan []byte
	err error // set before ch closes
}

func readSendFrames(conn net.Conn) *sendFrames {
	sf := &sendFrames{ch: make(chan []byte, 64)}
	go func() {
		br := bufio.NewReader(conn)
		for {
			f, err := readFrame(br)
			if err != nil {
				sf.err = err
				close(sf.ch)
				return
			}
			sf.ch <- f
		}
	}()
	return sf
}

// next waits up to d for a frame; closed reports that the server closed.
func (sf *sendFrames) next(d time.Duration) (f []byte, closed, timedOut bool) {
	select {
	case f, ok := <-sf.ch:
		return f, !ok, false
	case <-time.After(d):
		return nil, false, true
	}
}

// replaySend sends the recorded client frames of c to the server at addr
// and reports each step. It decrypts nothing.
func replaySend(ctx context.Context, addr string, c *sentConn, report func(string)) (sendResult, error) {
	if len(c.frames) == 0 {
		return sendResult{}, fmt.Errorf("connection %d has no whole client frame to send", c.id)
	}
	d := net.Dialer{Timeout: sendDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return sendResult{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	frames := readSendFrames(conn)
	defer func() {
		conn.Close()
		for range frames.ch {
		}
	}()

	first, closed, timedOut := frames.next(sendAnswerWait)
	if closed || timedOut {
		return sendResult{}, fmt.Errorf("the server sent no first frame (%v)", firstNonNil(frames.err, errors.New("timeout")))
	}
	suite, note := describeSendFirst(first, c.serverFirst)
	report("← server's first frame, " + note)
	if suite == "" {
		return sendResult{Outcome: sendRefused, Why: "the server speaks neither suite"}, nil
	}
	if recorded := replayFirstClientKind(c.frames[0]); recorded != "" && recorded != suite {
		return replayOtherSuite(conn, frames, c, recorded, suite, report), nil
	}

	// The client's handshake frames and the frames the server answers each with.
	answers := []int{1, 1} // classic: key blob → HANDSHAKE_OK; username → welcome
	names := sendFrameNames(suiteClassic)
	if suite == suiteModern {
		answers = []int{2, 0, 1} // ClientHello → ServerVerify, ServerFinished; ClientFinished; username → welcome
		names = sendFrameNames(suiteModern)
	}
	if replayFirstClientKind(c.frames[0]) == "" {
		report(fmt.Sprintf("  the recorded client's first frame (%d B) is neither suite's: sent anyway", len(c.frames[0])))
	}
	for i := 0; i < len(answers) && i < len(c.frames); i++ {
		report(fmt.Sprintf("→ frame %d, %s, %d B, as recorded", i+1, names[i], len(c.frames[i])))
		if err := writeFrame(conn, c.frames[i]); err != nil {
			return refusedAfter(suite, i, c, first, "the write failed: "+err.Error()), nil
		}
		for a := 0; a < answers[i]; a++ {
			f, closed, timedOut := frames.next(sendAnswerWait)
			switch {
			case closed:
				return refusedAfter(suite, i, c, first, "the server closed the connection"), nil
			case timedOut:
				return sendResult{Outcome: sendFailed, Why: fmt.Sprintf("the server did not answer the %s within %v", names[i], sendAnswerWait)}, nil
			}
			report(fmt.Sprintf("← %d B %s", len(f), describeSendAnswer(suite, i, f)))
		}
	}
	if len(c.frames) < len(answers) {
		return sendResult{Outcome: sendFailed, Why: "the recording ends before the username: nothing to accept"}, nil
	}
	// A refused name is answered, then closed.
	if f, closed, _ := frames.next(sendSettle); closed {
		return refusedAfter(suite, len(answers)-1, c, first, "the server answered the username and closed the connection"), nil
	} else if f != nil {
		report(fmt.Sprintf("← %d B %s", len(f), describeSendAnswer(suite, -1, f)))
	}
	rest := c.frames[len(answers):]
	switch len(rest) {
	case 0:
	case 1:
		report(fmt.Sprintf("→ frame %d, a chat record, as recorded", len(c.frames)))
	default:
		report(fmt.Sprintf("→ frames %d–%d, %d chat records, as recorded", len(answers)+1, len(c.frames), len(rest)))
	}
	for _, f := range rest {
		if err := writeFrame(conn, f); err != nil {
			break
		}
	}
	n, size := 0, 0
	closedAtEnd := false
	for {
		f, closed, timedOut := frames.next(sendQuiet)
		if closed {
			closedAtEnd = true
			break
		}
		if timedOut {
			break
		}
		n, size = n+1, size+len(f)
	}
	end := "then quiet for " + sendQuiet.String() + "; the tool closed the connection"
	if closedAtEnd {
		end = "then the server closed the connection (the recorded session ended with /quit, or the connection was dropped)"
	}
	report(fmt.Sprintf("← %s, %d B, %s", fmt.Sprintf("%d %s", n, plural(n, "sealed record", "sealed records")), size, end))
	return sendResult{Outcome: sendAccepted, Why: fmt.Sprintf("the server took connection %d again as its recorded user: it answered the recorded username as it did the first time, and %s came back: the server relaying the old messages under the recorded name (unreadable here: no key)", c.id, fmt.Sprintf("%d %s", n, plural(n, "record", "records")))}, nil
}

// sendFrameNames names the client's handshake frames of a suite as
// replay -send sends them: the classic ones by the seed chart's steps.
func sendFrameNames(suite string) []string {
	if suite == suiteModern {
		return []string{"ClientHello", "ClientFinished", "sealed username"}
	}
	return []string{"Step 4 key-transport blob", "Step 8 sealed username"}
}

// replayOtherSuite sends the first frame of a session recorded in one suite
// to a server that speaks the other, and says why that cannot work: the
// server reads it as its own suite's first client message.
func replayOtherSuite(conn net.Conn, frames *sendFrames, c *sentConn, recorded, suite string, report func(string)) sendResult {
	name := sendFrameNames(recorded)[0]
	want := sendFrameNames(suite)[0]
	why := fmt.Sprintf("the recording is a %s session and the server speaks the %s suite: it wants a %s first and cannot read the recorded %s as one. The suites differ, so no recording of the other suite is ever accepted, whatever the keys", recorded, suite, want, name)
	report(fmt.Sprintf("→ frame 1, %s session's %s, %d B, as recorded", recorded, name, len(c.frames[0])))
	if err := writeFrame(conn, c.frames[0]); err != nil {
		return sendResult{Outcome: sendRefused, Why: "the write failed: " + err.Error() + ": " + why}
	}
	for {
		f, closed, timedOut := frames.next(sendAnswerWait)
		switch {
		case closed:
			return sendResult{Outcome: sendRefused, Why: "the server closed the connection: " + why}
		case timedOut:
			return sendResult{Outcome: sendRefused, Why: fmt.Sprintf("the server did not answer within %v: %s", sendAnswerWait, why)}
		}
		report(fmt.Sprintf("← %d B", len(f)))
	}
}

// refusedAfter explains a refusal after the client's handshake frame i.
func refusedAfter(suite string, i int, c *sentConn, first []byte, what string) sendResult {
	if suite == suiteModern {
		return sendResult{Outcome: sendRefused, Why: what + ": the modern handshake refused the recorded bytes. The server's hello carried a fresh random and fresh X25519 and ML-KEM shares, so the recorded ClientHello leads to other keys, and the recorded ClientFinished does not match this transcript"}
	}
	if i == 0 {
		why := what + " after the recorded key blob (Step 4): it could not decrypt it with its key"
		if rec, live := recordedKey(c.serverFirst), recordedKey(first); rec != "" && live != "" && rec != live {
			why += fmt.Sprintf(". The server's key changed since the recording (%s then, %s now): the blob holds the session key under the old key, which only the old key opens", rec, live)
		}
		return sendResult{Outcome: sendRefused, Why: why}
	}
	return sendResult{Outcome: sendRefused, Why: what + ": the server refused the recorded username (Step 8; the recorded user may still be online: a name is refused while its holder is connected)"}
}

// recordedKey is the fingerprint in a classic first frame, or "".
func recordedKey(first []byte) string {
	if !isPublicKeyPEM(first) {
		return ""
	}
	pub, err := parsePublicKeyPEM(first)
	if err != nil {
		return ""
	}
	return fingerprint(pub)
}

// describeSendFirst names the live server's first frame beside the recorded one.
func describeSendFirst(first, recorded []byte) (suite, note string) {
	switch {
	case isPublicKeyPEM(first):
		live := recordedKey(first)
		if live == "" {
			return "", "a PEM block that does not parse"
		}
		rec := recordedKey(recorded)
		switch {
		case rec == "":
			return suiteClassic, fmt.Sprintf("classic public key %s (the recording holds no server key to compare)", live)
		case rec == live:
			return suiteClassic, fmt.Sprintf("classic public key %s: the same key as in the recording", live)
		default:
			return suiteClassic, fmt.Sprintf("classic public key %s: not the recording's %s, the server's key changed", live, rec)
		}
	case isModernHello(first):
		return suiteModern, "modern ServerHello with a fresh random and fresh key shares (the recorded session's cannot match)"
	}
	return "", fmt.Sprintf("%d B that are neither a classic key nor a modern hello", len(first))
}

// describeSendAnswer names one answer from the server to the client's
// handshake frame step (-1: after them), without a key.
func describeSendAnswer(suite string, step int, f []byte) string {
	if suite == suiteModern {
		switch modernMessage(f) {
		case typeServerVerify:
			return "ServerVerify: the server signed a transcript that holds the recorded ClientHello"
		case typeServerFinished:
			return "ServerFinished"
		}
		if step == 2 {
			return "sealed record: the server's answer to the recorded username"
		}
		return "sealed record"
	}
	switch step {
	case 0:
		return "sealed record: the server decrypted the recorded key blob with its key and confirmed (HANDSHAKE_OK)"
	case 1:
		return "sealed record: the server's answer to the recorded username"
	}
	return "sealed record"
}

// replayFirstClientKind is the suite a recorded client's first frame belongs to.
func replayFirstClientKind(f []byte) string {
	switch {
	case modernMessage(f) == typeClientHello:
		return suiteModern
	case len(f) == rsaBits/8:
		return suiteClassic
	}
	return ""
}

func firstNonNil(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// runReplaySend is "encchat replay -send ADDR [-conn N] CAPTURE". Each
// connection ends ACCEPTED, REFUSED, SKIPPED (the capture lacks what it
// would send: its start, or bytes of its client's stream) or FAILED (no
// answer in time), and a summary line counts them. The exit status is
// decided on that count: 0 when the server accepted every connection sent
// (at least one); 1 when it refused at least one; 2 when none was refused
// but not every connection could be tried (one failed, the server could not
// be reached, or nothing in the capture could be sent), and on bad usage.
func runReplaySend(path, addr string, connID int, stdout, stderr io.Writer) int {
	ctx := context.Background()
	if err := checkBenchTarget(ctx, addr); err != nil {
		errorf(stderr, "replay -send: %v", err)
		hintf(stderr, "replay -send sends recorded traffic to servers on this machine only")
		return 2
	}
	sc, err := readSentConnsFile(path, connID)
	if err != nil {
		var le *lineError
		if errors.As(err, &le) {
			errorf(stderr, "%s", le.in(path))
		} else {
			errorf(stderr, "%v", err)
		}
		return 2
	}
	name := filepath.Base(path)
	fmt.Fprintf(stdout, "replay -send %s: %d recorded %s of %s, sent again with no key\n", addr, len(sc.conns), plural(len(sc.conns), "connection", "connections"), name)
	for _, n := range sc.notes {
		fmt.Fprintf(stdout, "  note: %s\n", printable(n))
	}
	var tally sendTally
	unreachable := false
	for _, c := range sc.conns {
		fmt.Fprintf(stdout, "\n── conn %d: %d client %s\n", c.id, len(c.frames), plural(len(c.frames), "frame", "frames"))
		if unreachable {
			fmt.Fprintf(stdout, "  NOT TRIED: the server could not be reached\n")
			tally.failed++
			continue
		}
		if c.skip != "" {
			fmt.Fprintf(stdout, "  SKIPPED: %s\n", printable(c.skip))
			tally.skipped++
			continue
		}
		res, err := replaySend(ctx, addr, c, func(s string) { fmt.Fprintln(stdout, "  "+printable(s)) })
		if err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) && oe.Op == "dial" {
				errorf(stderr, "replay -send: cannot connect to %s: %v", addr, oe.Err)
				hintf(stderr, "is the server running? start one with \"encchat server -listen %s\", or give its address to -send", addr)
				fmt.Fprintf(stdout, "  NOT TRIED: the server could not be reached\n")
				unreachable = true
			} else {
				fmt.Fprintf(stdout, "  FAILED: %s\n", printable(err.Error()))
			}
			tally.failed++
			continue
		}
		switch res.Outcome {
		case sendAccepted:
			fmt.Fprintf(stdout, "  ACCEPTED: %s\n", res.Why)
			tally.accepted++
		case sendRefused:
			fmt.Fprintf(stdout, "  REFUSED: %s\n", res.Why)
			tally.refused++
		default:
			fmt.Fprintf(stdout, "  FAILED: %s\n", res.Why)
			tally.failed++
		}
	}
	fmt.Fprintf(stdout, "\n%s\n", tally.summary())
	return tally.exitCode()
}

// sendTally counts what became of the connections of one replay -send.
type sendTally struct{ accepted, refused, skipped, failed int }

// summary is the run's last line: the counts, then what they mean.
func (t sendTally) summary() string {
	parts := []string{fmt.Sprintf("%d accepted", t.accepted), fmt.Sprintf("%d refused", t.refused)}
	if t.skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", t.skipped))
	}
	if t.failed > 0 {
		parts = append(parts, fmt.Sprintf("%d not tried to the end", t.failed))
	}
	n := t.accepted + t.refused + t.skipped + t.failed
	line := fmt.Sprintf("summary: %s, of %d %s", strings.Join(parts, ", "), n, plural(n, "connection", "connections"))
	switch {
	case t.accepted > 0 && t.refused == 0:
		return line + ": the server took every replayed session that was sent; nothing in the protocol tells a recording from its user"
	case t.accepted > 0:
		return line + ": the server took some replayed sessions and refused others (see each REFUSED)"
	case t.refused > 0:
		return line + ": the server refused every replayed session"
	}
	return line + ": nothing was accepted or refused"
}

// exitCode is the exit status on the counts (see runReplaySend).
func (t sendTally) exitCode() int {
	switch {
	case t.refused > 0:
		return 1
	case t.failed > 0 || t.accepted == 0:
		return 2
	}
	return 0
}
