// The rewriting tap (tap -rewrite 'OLD=NEW'): an active attacker with no key.
// It relays each client to the real server and XORs OLD⊕NEW into every
// client-to-server chat record after the username: into a classic record's
// IV, which CBC without a MAC turns into the same change of the first
// plaintext bytes (text that began with OLD arrives as NEW); into a modern
// record's first ciphertext bytes, which AES-GCM's tag refuses.

//go:build !js

package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rewriteSpec is a parsed -rewrite 'OLD=NEW'.
type rewriteSpec struct {
	old, new string
	mask     []byte // OLD XOR NEW
}

// maxRewrite is the longest OLD: one AES block, the bytes a classic IV controls.
const maxRewrite = 16

// parseRewrite reads 'OLD=NEW'; it cuts at the first '=', so OLD cannot
// contain one. OLD and NEW must be the same number of bytes, 1 to 16.
func parseRewrite(s string) (rewriteSpec, error) {
	old, new, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return rewriteSpec{}, fmt.Errorf("wants OLD=NEW, not %q", s)
	case len(old) == 0 || len(old) > maxRewrite:
		return rewriteSpec{}, fmt.Errorf("OLD must be 1 to %d bytes, not %d", maxRewrite, len(old))
	case len(new) != len(old):
		return rewriteSpec{}, fmt.Errorf("OLD and NEW must be the same length in bytes (%q is %d, %q is %d)", old, len(old), new, len(new))
	case old == new:
		return rewriteSpec{}, errors.New("OLD and NEW are the same: nothing to change")
	}
	mask := make([]byte, len(old))
	for i := range mask {
		mask[i] = old[i] ^ new[i]
	}
	return rewriteSpec{old: old, new: new, mask: mask}, nil
}

// changedBytes describes the positions mask changes, as "bytes 4–5".
func (r rewriteSpec) changedBytes() string {
	first, last, n := -1, -1, 0
	for i, m := range r.mask {
		if m != 0 {
			if first < 0 {
				first = i
			}
			last, n = i, n+1
		}
	}
	if first < 0 {
		return "no byte"
	}
	if first == last {
		return fmt.Sprintf("byte %d", first)
	}
	return fmt.Sprintf("bytes %d–%d (%d changed)", first, last, n)
}

// rewriteTap accepts clients on ln, relays each to upstream and rewrites
// its chat records. Both legs (client ↔ tap as the client sent it, tap ↔
// server as the server got it) are recorded into rec, which may be nil.
// report gets a line per event; it is called from several goroutines. It
// returns when ctx is done, after every relay has ended.
func rewriteTap(ctx context.Context, ln net.Listener, upstream string, spec rewriteSpec, rec *capture, report func(string)) error {
	report(fmt.Sprintf("REWRITE: no key; XOR-ing %q⊕%q into every chat record after the username. The attack is blind: the tap cannot read the records, so one that does not begin with %q comes out changed at the same %s", spec.old, spec.new, spec.old, spec.changedBytes()))
	var n atomic.Int64
	return acceptEach(ctx, ln, func(ctx context.Context, down net.Conn) {
		r := &rewriteRelay{spec: spec, report: report, label: fmt.Sprintf("client %d (%s)", n.Add(1), down.RemoteAddr())}
		r.run(ctx, down, upstream, rec)
	})
}

// rewriteRelay is one relayed client.
type rewriteRelay struct {
	spec   rewriteSpec
	report func(string)
	label  string
	suite  string        // set before known closes; "" when neither suite
	known  chan struct{} // closed once the server's first frame is read, or its leg ended
}

// rewriteWait bounds the dial and the wait for the server's first frame.
const rewriteWait = 10 * time.Second

// rewriteHandshakeFrames is how many client frames come before the chat
// records: classic, the key blob and the sealed username; modern, the
// ClientHello, the ClientFinished and the sealed username.
func rewriteHandshakeFrames(suite string) int {
	if suite == suiteModern {
		return 3
	}
	return 2
}

func (r *rewriteRelay) run(ctx context.Context, downConn net.Conn, upstream string, rec *capture) {
	dialer := net.Dialer{Timeout: rewriteWait}
	upConn, err := dialer.DialContext(ctx, "tcp", upstream)
	if err != nil {
		r.report(fmt.Sprintf("%s: upstream %s unreachable: %v", r.label, upstream, err))
		downConn.Close()
		return
	}
	downConn = rec.wrapConn(downConn, "server")
	upConn = rec.wrapConn(upConn, "client")
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			downConn.Close()
			upConn.Close()
		})
	}
	defer closeBoth()
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	r.known = make(chan struct{})

	var wg sync.WaitGroup
	var firstEnded atomic.Int32 // 1: the server's side ended first; 2: the client's
	var rewritten int
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.serverToClient(downConn, upConn)
		firstEnded.CompareAndSwap(0, 1)
		// The server is gone: nothing more the client sends reaches it.
		closeBoth()
	}()
	go func() {
		defer wg.Done()
		rewritten = r.clientToServer(upConn, downConn, closeBoth)
		firstEnded.CompareAndSwap(0, 2)
	}()
	wg.Wait()
	switch {
	case rewritten == 0:
		r.report(fmt.Sprintf("%s: closed, no record rewritten", r.label))
	case r.suite == suiteModern && firstEnded.Load() == 1:
		r.report(fmt.Sprintf("%s: the server closed the connection after %d rewritten record(s): modern records are authenticated (AES-GCM), so the forgery was refused and nothing from it was delivered", r.label, rewritten))
	default:
		r.report(fmt.Sprintf("%s: closed after %d rewritten record(s)", r.label, rewritten))
	}
}

// serverToClient forwards the server's bytes unchanged, learning the suite
// from its first frame.
func (r *rewriteRelay) serverToClient(down, up net.Conn) {
	up.SetReadDeadline(time.Now().Add(rewriteWait))
	first, err := readFrame(up)
	up.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		close(r.known)
		down.Close()
		return
	case isPublicKeyPEM(first):
		r.suite = suiteClassic
	case isModernHello(first):
		r.suite = suiteModern
	}
	close(r.known)
	if r.suite == "" {
		r.report(fmt.Sprintf("%s: the server's first frame is neither classic nor modern; relaying unchanged", r.label))
	} else {
		r.report(fmt.Sprintf("%s: the server speaks the %s suite; rewriting this client's chat records", r.label, r.suite))
	}
	if err := writeFrame(down, first); err != nil {
		up.Close()
		return
	}
	io.Copy(down, up)
}

// clientToServer forwards the client's frames, rewriting each chat record,
// and returns how many it rewrote.
func (r *rewriteRelay) clientToServer(up, down net.Conn, closeBoth func()) int {
	br := bufio.NewReader(down)
	n, rewritten := 0, 0
	var buf []byte
	for {
		payload, err := readFrameInto(br, maxFrameLen, buf)
		if err != nil {
			if err == io.EOF {
				if cw, ok := up.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
					return rewritten
				}
			}
			closeBoth()
			return rewritten
		}
		n++
		if n == 1 {
			<-r.known
		}
		if r.suite != "" && n > rewriteHandshakeFrames(r.suite) {
			if where, ok := flipRecord(r.suite, payload, r.spec); ok {
				rewritten++
				r.report(fmt.Sprintf("%s: client → server frame %d (chat record %d): %s; blind: it reads %q only if it began with %q", r.label, n, n-rewriteHandshakeFrames(r.suite), where, r.spec.new, r.spec.old))
			} else {
				r.report(fmt.Sprintf("%s: client → server frame %d relayed unchanged: not a %s record, or too short to reach the changed bytes", r.label, n, r.suite))
			}
		}
		if err := writeFrame(up, payload); err != nil {
			closeBoth()
			return rewritten
		}
		buf = keepBuffer(payload)
	}
}

// flipRecord XORs spec's mask into a record of suite, in place: a classic
// record's IV (the first bytes after base64 decoding; the base64 is
// re-encoded to the same length), a modern record's first ciphertext bytes.
func flipRecord(suite string, payload []byte, spec rewriteSpec) (string, bool) {
	if suite == suiteModern {
		n := min(len(spec.mask), len(payload)-gcmTagLen)
		if n <= 0 || (rewriteSpec{mask: spec.mask[:n]}).changedBytes() == "no byte" {
			return "", false // too short to reach the changed bytes
		}
		for i, m := range spec.mask[:n] {
			payload[i] ^= m
		}
		return fmt.Sprintf("ciphertext %s flipped", rewriteSpec{mask: spec.mask[:n]}.changedBytes()), true
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(payload)))
	n, err := base64.StdEncoding.Decode(raw, payload)
	if err != nil || n < 2*16 || n%16 != 0 {
		return "", false
	}
	raw = raw[:n]
	before := fmt.Sprintf("%x", raw[:16])
	for i, m := range spec.mask {
		raw[i] ^= m
	}
	base64.StdEncoding.Encode(payload, raw)
	return fmt.Sprintf("IV %s flipped (%s → %x)", spec.changedBytes(), before, raw[:16]), true
}
