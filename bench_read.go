// The bench's messages and the clients that read them: each message
// carries its run's tag, its sender, its sequence number and its send time,
// and each reading client checks that it gets every message exactly once
// and in each sender's order, and times it.

//go:build !js

package main

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// benchTag makes the names and messages of one run unique, so two runs
// against one server, or other users on it, never confuse the checks.
func benchTag() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func benchName(tag string, i int) string { return "b" + tag + "-" + strconv.Itoa(i) }

// isWarmupLeave reports whether a server LEAVE line is a warm-up client's:
// their names are benchName("w"+tag, i).
func isWarmupLeave(text string) bool { return strings.HasPrefix(text, "bw") }

// benchMessage is the text a sender sends: a marker with the sender's
// client index, the per-sender sequence number and the send time, padded
// with 'x' to size bytes.
func benchMessage(tag string, idx, seq int, sent time.Time, size int) string {
	var b strings.Builder
	b.Grow(max(size, 48))
	b.WriteString("~" + tag + "/")
	b.WriteString(strconv.Itoa(idx))
	b.WriteByte('/')
	b.WriteString(strconv.Itoa(seq))
	b.WriteByte('/')
	b.WriteString(strconv.FormatInt(sent.UnixNano(), 10))
	b.WriteByte('~')
	for b.Len() < size {
		b.WriteByte('x')
	}
	return b.String()
}

// parseBenchLine reads "[HH:MM:SS] NAME: TEXT". It reports ok=false for
// lines that are not a chat line of this run (system notices, other users);
// err is a chat line of this run that does not parse.
//
// "b<tag>-<idx>: ~<tag>/<idx>/<seq>/<sent>~" is scanned in one pass, in
// place. The same checks written with bytes.Cut, bytes.Split and
// strconv.ParseInt took 170-200 ns and an allocation a line against 43 ns
// and none (go1.26, this machine's AMD EPYC, one core); the readers share
// the cores with the server they measure, at a million deliveries a second.
// The scan also refuses what strconv accepts and benchMessage never writes:
// a sign, a leading zero.
func parseBenchLine(line []byte, tag string) (idx, seq int, sent int64, ok bool, err error) {
	if len(line) < 11 || line[0] != '[' || line[9] != ']' || line[10] != ' ' {
		return 0, 0, 0, false, nil
	}
	rest := line[11:]
	if !hasTagPrefix(rest, 'b', tag, '-') {
		return 0, 0, 0, false, nil
	}
	nameIdx, rest, found := cutNumber(rest[len(tag)+2:], ':')
	if !found || len(rest) == 0 || rest[0] != ' ' || !hasTagPrefix(rest[1:], '~', tag, '/') {
		return 0, 0, 0, false, nil
	}
	bad := func() (int, int, int64, bool, error) { return 0, 0, 0, true, errors.New("bad marker") }
	idx64, rest, ok1 := cutNumber(rest[len(tag)+3:], '/')
	seq64, rest, ok2 := cutNumber(rest, '/')
	sent, _, ok3 := cutNumber(rest, '~')
	if !ok1 || !ok2 || !ok3 || idx64 != nameIdx || idx64 > math.MaxInt32 || seq64 > math.MaxInt32 {
		return bad()
	}
	return int(idx64), int(seq64), sent, true, nil
}

// cutNumber reads the decimal number at the start of s up to the byte end,
// without a leading zero unless it is 0, and returns what follows end.
func cutNumber(s []byte, end byte) (n int64, rest []byte, ok bool) {
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, s, false
		}
		n = n*10 + d
	}
	if i == 0 || i == len(s) || s[i] != end || (s[0] == '0' && i > 1) {
		return 0, s, false
	}
	return n, s[i+1:], true
}

// hasTagPrefix reports whether s starts with open, tag, close.
func hasTagPrefix(s []byte, open byte, tag string, close byte) bool {
	n := len(tag) + 2
	return len(s) >= n && s[0] == open && string(s[1:n-1]) == tag && s[n-1] == close
}

// senderTrack is one receiver's view of one sender.
type senderTrack struct {
	seen   []bool
	maxSeq int
	n      int
}

// benchReader is one reading client and what it received.
type benchReader struct {
	cs     *clientSession
	tracks map[int]*senderTrack

	delivered, dup, ooo, corrupt int64
	slowDown                     int64
	last                         time.Time       // last bench delivery
	err                          error           // why Recv ended
	pending                      []time.Duration // latencies not yet reported to the run
	opener                       benchOpener
	buf                          []byte // the frame being read
}

// benchRun is the shared state of one run's readers.
type benchRun struct {
	tag       string
	messages  int
	hist      latencyHist
	delivered atomic.Int64
	expected  atomic.Int64 // set before the first send
	allIn     chan struct{}
	allInOnce sync.Once
	progress  *benchProgress
}

// read receives until the connection ends, checking each bench message.
// Latencies are reported to the run in batches, whenever the reader has
// nothing buffered (its next Recv may wait), so that 200 readers on two
// cores do not fight over the shared counters once per message.
func (r *benchReader) read(run *benchRun) {
	defer r.flush(run)
	r.pending = make([]time.Duration, 0, benchReportBatch)
	r.opener = benchOpener{rc: r.cs.rc}
	var now time.Time
	for {
		if r.cs.br.Buffered() == 0 || len(r.pending) == cap(r.pending) {
			r.flush(run)
		}
		// A message is timed when its bytes come off the socket: frames
		// already whole in the buffer arrived with the read that brought
		// them, which also spares a clock read per message.
		fresh := !frameBuffered(r.cs.br)
		// The text as it decrypted, not copied or cleaned for a terminal:
		// the bench only parses it.
		line, err := r.recv()
		if err != nil {
			r.err = err
			return
		}
		if fresh || now.IsZero() {
			now = time.Now()
		}
		idx, seq, sent, ok, perr := parseBenchLine(line, run.tag)
		if !ok {
			if bytes.HasSuffix(line, []byte("] "+slowDownText)) {
				r.slowDown++
			}
			continue
		}
		if perr != nil || seq >= run.messages {
			r.corrupt++
			continue
		}
		t := r.tracks[idx]
		if t == nil {
			t = &senderTrack{seen: make([]bool, run.messages), maxSeq: -1}
			r.tracks[idx] = t
		}
		if t.seen[seq] {
			r.dup++
			continue
		}
		t.seen[seq] = true
		t.n++
		if seq < t.maxSeq {
			r.ooo++
		}
		t.maxSeq = max(t.maxSeq, seq)
		r.delivered++
		r.last = now
		r.pending = append(r.pending, now.Sub(time.Unix(0, sent)))
	}
}

// frameBuffered reports whether br holds the whole next frame.
func frameBuffered(br *bufio.Reader) bool {
	if br.Buffered() < headerLen {
		return false
	}
	h, _ := br.Peek(headerLen)
	n, err := parseFrameHeader(h)
	return err == nil && br.Buffered() >= headerLen+n
}

// benchReportBatch is the most latencies a reader holds before reporting.
const benchReportBatch = 256

// flush reports the reader's pending latencies to the run.
func (r *benchReader) flush(run *benchRun) {
	n := int64(len(r.pending))
	if n == 0 {
		return
	}
	run.hist.recordAll(r.pending)
	r.pending = r.pending[:0]
	run.progress.add(n)
	if total := run.delivered.Add(n); total == run.expected.Load() {
		run.allInOnce.Do(func() { close(run.allIn) })
	}
}

// recv is clientSession.recvRaw with the bench's opener: the next text as
// it decrypted, valid until the next recv.
func (r *benchReader) recv() ([]byte, error) {
	for {
		payload, err := readFrameInto(r.cs.br, maxFrameLen, r.buf)
		if err != nil {
			return nil, err
		}
		r.buf = keepBuffer(payload)
		text, err := r.opener.open(payload)
		if err != nil {
			if r.cs.Suite == suiteClassic {
				r.cs.Dropped++
				continue
			}
			return nil, err
		}
		return text, nil
	}
}

// benchOpener opens the records a bench reader receives. The bench's
// readers share the machine's cores with the server they measure, so what
// they spend per record is taken from the server's figures. For classic
// records it keeps one CBC decrypter, setting its IV per record as the
// server's classicSealer does, and one buffer; the text is the one
// classicCipher.open returns (TestBenchOpener). Measured with bench
// -rsa-limit, one series: with classicCipher.open, 1.40–1.65 million
// deliveries/s (median 1.49) and a p99 of 117–143 ms (median 133);
// with this, see the README's Performance table.
type benchOpener struct {
	rc  recordCipher
	dec cbcMode
	raw []byte // IV || ciphertext, then the text in place
}

func (o *benchOpener) open(payload []byte) ([]byte, error) {
	c, ok := o.rc.(*classicCipher)
	if !ok {
		return o.rc.open(payload)
	}
	raw, err := base64.StdEncoding.AppendDecode(o.raw[:0], payload)
	if err != nil || len(raw) < cbcIVSize+aes.BlockSize || (len(raw)-cbcIVSize)%aes.BlockSize != 0 {
		return nil, errOpen
	}
	o.raw = keepBuffer(raw)
	iv, ciphertext := raw[:cbcIVSize], raw[cbcIVSize:]
	if o.dec == nil {
		o.dec = cipher.NewCBCDecrypter(c.block, iv).(cbcMode)
	} else {
		o.dec.SetIV(iv)
	}
	o.dec.CryptBlocks(ciphertext, ciphertext)
	text, ok := pkcs7Unpad(ciphertext)
	if !ok || !utf8.Valid(text) {
		return nil, errOpen
	}
	return text, nil
}
