// The live wire page (/wire) for the projector: every connection's frames
// as they cross, as a sniffer sees them, streamed with Server-Sent Events;
// with the teacher's token, the text each frame carries beside it.
//
// The live wire watches the server's capture and keylog (their setWatch
// hooks) and runs replay's own engine over what they see: liveFeed is a
// captureSource that never ends until Close, and wireOutput is a replay view
// that turns each frame into two events, the sniffer's and the teacher's.
// The last wireHistoryLen events are kept; each viewer's handler sends
// what it has not sent yet from them, so a slow viewer skips (and is told
// so) and never holds the server up or grows a queue.

//go:build !js

package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	wireHistoryLen   = 500              // events kept for a new or slow viewer
	wireQueueMax     = 8 << 20          // bytes waiting for the decoder; past it, data is dropped and shown as a gap
	wireKeysKept     = 4096             // session keys kept for sessions whose first record is still to come
	wireTextShown    = 1000             // runes of a text the teacher's view shows
	wireWriteTimeout = 10 * time.Second // a viewer who takes longer to take an event is dropped
	wirePing         = 15 * time.Second // a comment line so that proxies and dead viewers show up
	wireRetryMillis  = 2000             // EventSource's reconnect delay
	wireKeylogName   = "held by the server"
)

var (
	//go:embed web/wire.html
	wirePageHTML []byte
	//go:embed web/wire.js
	wirePageJS []byte
	//go:embed web/wire.css
	wirePageCSS []byte
)

// wireCSP is the page's Content-Security-Policy: its own script and style
// sheet, its own event stream, nothing else, and no framing.
const wireCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// liveWire watches the server's capture and keylog and serves /wire.
type liveWire struct {
	teacher  bool     // a token was given: the teacher's view exists
	tokenSum [32]byte // SHA-256 of the token, compared in constant time
	run      string   // random at each start: event ids are RUN-SEQ

	feed   *liveFeed
	keys   *replayKeys // the decoder's keys; only the pump touches them
	keyIDs []string    // keys.index's entries, oldest first (wireKeysKept)
	ownRec *capture    // made by observe when the user records nothing
	ownKl  *keylog

	// The history and the viewers.
	hmu     sync.Mutex
	hist    []*wireEvent // ring of the last historyLen events
	head    int          // where the next event goes in hist
	seq     uint64       // the last event's number
	conns   map[int]*wireConnInfo
	viewers map[chan struct{}]bool // each viewer's wake-up, capacity 1
	histLen int                    // wireHistoryLen; tests lower it

	writeTimeout time.Duration // wireWriteTimeout; tests lower it
	quit         chan struct{}
	done         chan struct{} // the pump has ended
	closeOnce    sync.Once
}

// wireEvent is one event of the stream, encoded once: pub for everyone,
// teach for the teacher (nil: the same as pub).
type wireEvent struct {
	seq        uint64
	kind       string
	pub, teach []byte
}

// wireConnInfo is an open connection, for a viewer who joins later.
type wireConnInfo struct {
	Conn      int     `json:"conn"`
	T         float64 `json:"t"`
	Client    string  `json:"client"`
	Server    string  `json:"server"`
	Transport string  `json:"transport,omitempty"` // "websocket": a browser; absent for TCP
	Suite     string  `json:"suite,omitempty"`
}

// newLiveWire makes the live wire; token "" means no teacher view.
func newLiveWire(token string) *liveWire {
	var run [6]byte
	rand.Read(run[:])
	lw := &liveWire{
		teacher:      token != "",
		tokenSum:     sha256.Sum256([]byte(token)),
		run:          hex.EncodeToString(run[:]),
		feed:         newLiveFeed(wireQueueMax),
		keys:         &replayKeys{keylogName: wireKeylogName, index: make(map[string][]byte), live: true},
		conns:        make(map[int]*wireConnInfo),
		viewers:      make(map[chan struct{}]bool),
		histLen:      wireHistoryLen,
		writeTimeout: wireWriteTimeout,
		quit:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	lw.feed.onKey = lw.addKey
	go lw.pump()
	return lw
}

// newWireToken returns a random token for the teacher's view: 128 bits,
// URL-safe.
func newWireToken() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// teacherURL is the address of the teacher's view under base (such as
// "http://192.0.2.7:8080"), for the server's banner.
func teacherURL(base, token string) string {
	return strings.TrimSuffix(base, "/") + "/wire?token=" + url.QueryEscape(token)
}

// observe returns what the server should get as serverConfig.Record and .Keylog:
// the user's own capture/keylog (either may be nil) with the live wire watching them.
// Keys seen here stay in memory and only the teacher's view uses them: when
// the user gave no keylog, none is written, and without a token none is
// watched at all.
func (lw *liveWire) observe(rec *capture, kl *keylog) (*capture, *keylog) {
	if rec == nil {
		if lw.ownRec == nil {
			// A capture closed at once writes nothing, and still tells its
			// watch of every record (setWatch): no bytes are encoded for a
			// file nobody reads.
			lw.ownRec = newCapture(discardCloser{}, "server", "", nil)
			lw.ownRec.Close()
		}
		rec = lw.ownRec
	}
	lw.feed.mu.Lock()
	lw.feed.started = rec.start
	lw.feed.mu.Unlock()
	rec.setWatch(lw.feed.record)
	if !lw.teacher {
		return rec, kl
	}
	if kl == nil {
		if lw.ownKl == nil {
			lw.ownKl = watchedKeylog(lw.feed.key)
		}
		return rec, lw.ownKl
	}
	kl.setWatch(lw.feed.key)
	return rec, kl
}

// Close stops the live wire and ends every viewer's stream.
func (lw *liveWire) Close() {
	lw.closeOnce.Do(func() {
		close(lw.quit)
		lw.feed.close()
		<-lw.done
		lw.ownRec.Close()
		lw.ownKl.Close()
	})
}

// pump runs replay's engine over the feed until Close.
func (lw *liveWire) pump() {
	defer close(lw.done)
	opts := &replayOptions{name: "live", view: "both", keys: lw.keys, live: true}
	out := &wireOutput{lw: lw, conns: make(map[int]*lessonConn)}
	for {
		err := replaySource(lw.feed, opts, out)
		if lw.feed.closed() {
			return
		}
		// The feed never holds a bad record; should the engine stop all
		// the same, say so and go on with a fresh one.
		lw.publish("note", mustJSON(wireNote{Text: fmt.Sprintf("the live decoder stopped (%v) and starts again", err)}), nil)
	}
}

// addKey is the feed's key handler, on the pump: it makes a session's key
// known to the decoders, forgetting the oldest past wireKeysKept.
func (lw *liveWire) addKey(label string, id, secret []byte) {
	k := label + " " + string(id)
	if _, ok := lw.keys.index[k]; !ok {
		lw.keyIDs = append(lw.keyIDs, k)
	}
	lw.keys.index[k] = secret
	if len(lw.keyIDs) > wireKeysKept {
		delete(lw.keys.index, lw.keyIDs[0])
		lw.keyIDs = lw.keyIDs[1:]
	}
}

// publish adds an event to the history and wakes every viewer; it never
// waits for one.
func (lw *liveWire) publish(kind string, pub, teach []byte) {
	lw.hmu.Lock()
	defer lw.hmu.Unlock()
	lw.seq++
	ev := &wireEvent{seq: lw.seq, kind: kind, pub: pub, teach: teach}
	if len(lw.hist) < lw.histLen {
		lw.hist = append(lw.hist, ev)
	} else {
		lw.hist[lw.head] = ev
		lw.head = (lw.head + 1) % lw.histLen
	}
	for wake := range lw.viewers {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// since returns the events after seq in order, and how many of them the
// history no longer holds.
func (lw *liveWire) since(seq uint64) (evs []*wireEvent, lost uint64) {
	lw.hmu.Lock()
	defer lw.hmu.Unlock()
	if seq >= lw.seq {
		return nil, 0
	}
	oldest := lw.seq - uint64(len(lw.hist)) + 1
	if seq+1 < oldest {
		lost = oldest - seq - 1
		seq = oldest - 1
	}
	for i := range len(lw.hist) {
		ev := lw.hist[(lw.head+i)%len(lw.hist)]
		if ev.seq > seq {
			evs = append(evs, ev)
		}
	}
	return evs, lost
}

// ServeHTTP serves the page, its assets and its event stream; it is
// mounted at /wire and /wire/.
func (lw *liveWire) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	switch r.URL.Path {
	case "/wire", "/wire/", "/wire/events":
	case "/wire/wire.js":
		serveWireAsset(w, r, "text/javascript; charset=utf-8", wirePageJS)
		return
	case "/wire/wire.css":
		serveWireAsset(w, r, "text/css; charset=utf-8", wirePageCSS)
		return
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	teacher, ok := lw.checkToken(r)
	if !ok {
		h.Set("Cache-Control", "no-store")
		http.Error(w, "403 forbidden: wrong token for the teacher's view (the public view is /wire, without a token)", http.StatusForbidden)
		return
	}
	if r.URL.Path == "/wire/events" {
		if r.Method == http.MethodHead {
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			return
		}
		lw.serveEvents(w, r, teacher)
		return
	}
	h.Set("Content-Security-Policy", wireCSP)
	h.Set("Cache-Control", "no-store")
	serveWireAsset(w, r, "text/html; charset=utf-8", wirePageHTML)
}

// checkToken reports whether the request is the teacher's, and false for
// ok when it names a token that is not the teacher's (or there is none).
// The comparison takes the same time whatever the token.
func (lw *liveWire) checkToken(r *http.Request) (teacher, ok bool) {
	q := r.URL.Query()
	if !q.Has("token") {
		return false, true
	}
	got := sha256.Sum256([]byte(q.Get("token")))
	match := subtle.ConstantTimeCompare(got[:], lw.tokenSum[:]) == 1
	return match && lw.teacher, match && lw.teacher
}

func serveWireAsset(w http.ResponseWriter, r *http.Request, ctype string, body []byte) {
	w.Header().Set("Content-Type", ctype)
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// wireHello is the first event of each stream.
type wireHello struct {
	Run     string         `json:"run"`
	Started string         `json:"started"` // when t is 0, RFC 3339
	Teacher bool           `json:"teacher"`
	Resumed bool           `json:"resumed"` // the viewer reconnected and gets only what it missed
	Conns   []wireConnInfo `json:"conns"`   // the connections open now (copies: the pump goes on changing its own)
	History int            `json:"history"` // events a new viewer is sent first, at most
}

// wireSkipped tells a viewer that events went by without it.
type wireSkipped struct {
	Skipped uint64 `json:"skipped"`
	Why     string `json:"why"`
}

// serveEvents streams the events: first what the viewer has not seen of
// the history (all of it for a new viewer, what it missed after a
// reconnect), then each event as it comes, until the viewer goes, a write
// takes longer than writeTimeout, or Close.
func (lw *liveWire) serveEvents(w http.ResponseWriter, r *http.Request, teacher bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	wake := make(chan struct{}, 1)
	lw.hmu.Lock()
	last, resumed := lw.resumeFrom(r.Header.Get("Last-Event-ID"))
	_, started := lw.feed.header()
	hello := wireHello{Run: lw.run, Started: started.UTC().Format(time.RFC3339Nano), Teacher: teacher, Resumed: resumed, History: lw.histLen}
	for _, c := range lw.conns {
		hello.Conns = append(hello.Conns, *c)
	}
	lw.viewers[wake] = true
	lw.hmu.Unlock()
	defer func() {
		lw.hmu.Lock()
		delete(lw.viewers, wake)
		lw.hmu.Unlock()
	}()
	slices.SortFunc(hello.Conns, func(a, b wireConnInfo) int { return a.Conn - b.Conn })

	var buf []byte
	buf = fmt.Appendf(buf, "retry: %d\n\n", wireRetryMillis)
	buf = appendSSE(buf, lw.run, last, "hello", mustJSON(hello))
	if !lw.send(w, rc, buf) {
		return
	}
	ping := time.NewTicker(wirePing)
	defer ping.Stop()
	caughtUp := false
	for {
		evs, lost := lw.since(last)
		buf = buf[:0]
		if lost > 0 {
			buf = appendSSE(buf, lw.run, last+lost, "skipped", mustJSON(wireSkipped{lost,
				"this screen fell behind the wire: the server kept going and did not wait for it"}))
		}
		for _, ev := range evs {
			data := ev.pub
			if teacher && ev.teach != nil {
				data = ev.teach
			}
			buf = appendSSE(buf, lw.run, ev.seq, ev.kind, data)
			last = ev.seq
		}
		if !caughtUp {
			// The history is sent: what follows crosses now. No id, so
			// that a reconnect resumes after the last event.
			buf = append(buf, "event: live\ndata: {}\n\n"...)
			caughtUp = true
		}
		if len(buf) > 0 && !lw.send(w, rc, buf) {
			return
		}
		select {
		case <-wake:
		case <-ping.C:
			if !lw.send(w, rc, []byte(": ping\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		case <-lw.quit:
			return
		}
	}
}

// resumeFrom is the last event a viewer has: the one its Last-Event-ID
// names, when it is of this run and not in the future; else the one before
// the history, so that it gets all of it. lw.hmu is held.
func (lw *liveWire) resumeFrom(id string) (last uint64, resumed bool) {
	oldest := lw.seq - uint64(len(lw.hist))
	run, seq, ok := strings.Cut(id, "-")
	if !ok || run != lw.run {
		return oldest, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || n > lw.seq {
		return oldest, false
	}
	return n, true
}

// send writes one batch of events within writeTimeout and flushes it.
func (lw *liveWire) send(w http.ResponseWriter, rc *http.ResponseController, b []byte) bool {
	rc.SetWriteDeadline(time.Now().Add(lw.writeTimeout))
	if _, err := w.Write(b); err != nil {
		return false
	}
	return rc.Flush() == nil
}

// appendSSE appends one Server-Sent Event; data is JSON, on one line.
func appendSSE(b []byte, run string, seq uint64, kind string, data []byte) []byte {
	b = append(b, "id: "...)
	b = append(b, run...)
	b = append(b, '-')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, kind...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// mustJSON encodes v; json.Marshal escapes <, > and &, and never writes a
// raw newline, so the result is one SSE data line, inert in HTML too.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only the types of this file, which always encode
	}
	return b
}
