// Tests of the browser client in a real browser: the client is built from
// this source (web_build.go, as go generate builds it) into a temporary
// directory that the server serves (ENCCHAT_WASM_DIR), and headless
// Chromium, driven by chromedp, joins a classic and a modern server, chats
// with a terminal client and the Python peer, /pm both ways, and its wire
// panel is compared byte for byte with the server's capture. axe-core
// checks the page; a 390-pixel viewport must not scroll sideways.
//
// Also, without a browser: how the page and the WebAssembly are served.

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserWait bounds one wait on the page: generous, as the machine may be
// busy; it is a failure bound, not a pace.
const browserWait = 60 * time.Second

// buildBrowserClient builds the client from this source with web_build.go
// (as go generate does) into a temporary directory, and returns it.
func buildBrowserClient(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the browser client: %v", err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "run", "web_build.go", "-out", dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run web_build.go: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
	return dir
}

// startBrowser starts headless Chromium for the whole test; each tab is a
// context made from the one returned.
func startBrowser(t testing.TB, bin string) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// browserTab is one tab of the browser.
type browserTab struct {
	t   *testing.T
	ctx context.Context
}

func newTab(t *testing.T, bctx context.Context) *browserTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return &browserTab{t: t, ctx: ctx}
}

// do runs actions, bounded by browserWait.
func (b *browserTab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\npage log:\n%s", err, b.logText())
	}
}

// eval evaluates a JavaScript expression into v.
func eval[T any](b *browserTab, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluating %.80q: %v", expr, err)
	}
	return v
}

// logText is the chat log's text, for failure messages.
func (b *browserTab) logText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("log")||{}).innerText + "\nstatus: " + (document.getElementById("status")||{}).textContent`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// waitFor waits until the JavaScript predicate holds.
func (b *browserTab) waitFor(what, predicate string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(browserWait))); err != nil {
		b.t.Fatalf("waiting for %s: %v\npage log:\n%s", what, err, b.logText())
	}
}

// waitState waits until the page is in state (body's data-state).
func (b *browserTab) waitState(state string) {
	b.t.Helper()
	b.waitFor("the page to be "+state, `document.body.dataset.state === `+jsString(state))
}

// waitLine waits until a line of the chat log, without its timestamp,
// equals want.
func (b *browserTab) waitLine(want string) {
	b.t.Helper()
	b.waitFor("the chat line "+strconv.Quote(want), `Array.from(document.querySelectorAll("#log .line")).some(function(d){return d.textContent.replace(/^\[\d\d:\d\d:\d\d\] /,"") === `+jsString(want)+`})`)
}

// waitText waits until the chat log holds sub.
func (b *browserTab) waitText(sub string) {
	b.t.Helper()
	b.waitFor("the chat log to hold "+strconv.Quote(sub), `document.getElementById("log").textContent.includes(`+jsString(sub)+`)`)
}

// say types a line into Message and presses Enter, as a user does.
func (b *browserTab) say(line string) {
	b.t.Helper()
	b.do(chromedp.SendKeys(chromedp.ID("message"), line+"\r"))
}

func jsString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

// shot saves a screenshot under ENCCHAT_BROWSER_SHOTS, when it is set.
func (b *browserTab) shot(name string) {
	b.t.Helper()
	dir := os.Getenv("ENCCHAT_BROWSER_SHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// openAndJoin opens the page, waits for the client, joins as name from the
// keyboard, and returns the page's timings (ms since it was opened).
func (b *browserTab) openAndJoin(url, name string) (ready, join, joined float64) {
	b.t.Helper()
	b.do(chromedp.Navigate(url))
	b.waitState("ready")
	b.do(chromedp.SendKeys(chromedp.ID("name"), name+"\r"))
	b.waitState("joined")
	ms := eval[map[string]string](b, `({ready: document.body.dataset.readyAt, connecting: document.body.dataset.connectingAt, joined: document.body.dataset.joinedAt})`)
	num := func(k string) float64 {
		f, err := strconv.ParseFloat(ms[k], 64)
		if err != nil {
			b.t.Fatalf("page timing %s: %q", k, ms[k])
		}
		return f
	}
	return num("ready"), num("connecting"), num("joined")
}

// pageWireRow is a row of the wire panel as the page holds it.
type pageWireRow struct {
	Dir, Header, Payload string // data attributes
	HeaderCell, Shown    string // what the cells show
}

func (b *browserTab) wireRows() []pageWireRow {
	b.t.Helper()
	return eval[[]pageWireRow](b, `Array.from(document.querySelectorAll("#wire-rows tr")).map(function(r){
		var p = r.querySelector(".payload");
		return {Dir: r.dataset.dir, Header: r.dataset.header, Payload: r.dataset.payload,
			HeaderCell: r.cells[2].textContent, Shown: p ? p.textContent : ""};
	})`)
}

// memCapture is a server capture held in memory.
type memCapture struct{ syncBuffer }

func (*memCapture) Close() error { return nil }

// capturedFrames waits until the capture holds the close of the (one)
// WebSocket connection, and returns its frames per direction.
func capturedFrames(t *testing.T, buf *memCapture) [2][][]byte {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		frames, closed := wsFrames(t, buf.String())
		if closed {
			return frames
		}
		if time.Now().After(deadline) {
			t.Fatalf("the capture has no close of a WebSocket connection:\n%.2000s", buf.String())
		}
		time.Sleep(50 * time.Millisecond) // the capture is written every captureFlushEvery
	}
}

// wsFrames cuts the WebSocket connection's streams of a capture into
// frames, and says whether it was closed.
func wsFrames(t *testing.T, capture string) (frames [2][][]byte, closed bool) {
	t.Helper()
	if !strings.Contains(capture, "\n") {
		return frames, false
	}
	src, err := readCapture(strings.NewReader(capture))
	if err != nil {
		t.Fatalf("reading the capture: %v", err)
	}
	ws := -1
	var streams [2][]byte
	var ev captureEvent
	for {
		err := src.next(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			// The capture is being written: a last line may be partial.
			break
		}
		switch {
		case ev.Kind == capOpen && ev.Transport == "websocket":
			if ws >= 0 {
				t.Fatalf("two WebSocket connections in the capture (%d and %d)", ws, ev.Conn)
			}
			ws = ev.Conn
		case ev.Conn != ws:
		case ev.Kind == capData:
			streams[ev.Dir] = append(streams[ev.Dir], ev.Data...)
		case ev.Kind == capClose:
			closed = true
		}
	}
	for d, s := range streams {
		for len(s) > 0 {
			p, rest, ok := cutFrame(s)
			if !ok {
				t.Fatalf("the capture's %s stream ends inside a frame: %q", wireDir(d), s)
			}
			frames[d] = append(frames[d], p)
			s = rest
		}
	}
	return frames, closed
}

// checkWirePanel compares the panel with the capture, frame by frame in
// each direction, byte for byte, and checks that the cells show the same.
func checkWirePanel(t *testing.T, rows []pageWireRow, captured [2][][]byte) {
	t.Helper()
	var panel [2][][]byte
	for i, r := range rows {
		d := wireC2S
		if r.Dir == "s2c" {
			d = wireS2C
		} else if r.Dir != "c2s" {
			t.Fatalf("row %d: direction %q", i+1, r.Dir)
		}
		p, err := base64.StdEncoding.DecodeString(r.Payload)
		if err != nil {
			t.Fatalf("row %d: payload %q: %v", i+1, r.Payload, err)
		}
		if want := fmt.Sprintf("%010d", len(p)); r.Header != want || r.HeaderCell != want {
			t.Errorf("row %d: header %q, cell %q; want %q for %d bytes", i+1, r.Header, r.HeaderCell, want, len(p))
		}
		shown := string(p)
		if !printableASCII(shown, true) {
			shown = base64.StdEncoding.EncodeToString(p)
		}
		if r.Shown != shown {
			t.Errorf("row %d: the cell shows %.60q…, the frame is %.60q…", i+1, r.Shown, shown)
		}
		panel[d] = append(panel[d], p)
	}
	for d := range panel {
		if len(panel[d]) != len(captured[d]) {
			t.Errorf("%s: the panel shows %d frames, the server's capture has %d", wireDir(d), len(panel[d]), len(captured[d]))
			continue
		}
		for i := range panel[d] {
			if !bytes.Equal(panel[d][i], captured[d][i]) {
				t.Errorf("%s frame %d: the panel shows %.40q…, the capture has %.40q…", wireDir(d), i+1, panel[d][i], captured[d][i])
			}
		}
	}
}

// TestBrowserClient runs the browser client, built from this source, in
// headless Chromium.
func TestBrowserClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the browser client and runs Chromium")
	}
	// The build comes first: a file that breaks the browser build (one that
	// needs a terminal or a server and lacks //go:build !js) fails here,
	// with or without Chromium.
	t.Setenv(webWasmDirEnv, buildBrowserClient(t))
	bin := needTool(t, "chromium")
	bctx := startBrowser(t, bin)
	t.Run("classic", func(t *testing.T) { browserChat(t, bctx, suiteClassic) })
	t.Run("modern", func(t *testing.T) { browserChat(t, bctx, suiteModern) })
	t.Run("pins", func(t *testing.T) { browserPins(t, bctx) })
	t.Run("accessibility", func(t *testing.T) { browserAccessibility(t, bctx) })
	t.Run("not built", func(t *testing.T) {
		t.Setenv(webWasmDirEnv, t.TempDir())
		ts := startTestServer(t, serverConfig{Suite: suiteClassic})
		b := newTab(t, bctx)
		b.do(chromedp.Navigate("http://" + startWebFor(t, ts) + "/"))
		b.waitState("failed")
		if s := eval[string](b, `document.getElementById("status").textContent`); !strings.Contains(s, "go generate") {
			t.Errorf("the page without a built client says %q", s)
		}
	})
}

// browserPins: the page pins the server's key in localStorage; a changed
// key is refused with the warning, before the username goes out, until the
// pin is forgotten; a server pinned as modern that answers classic is
// refused; a taken name is refused and can be changed.
func browserPins(t *testing.T, bctx context.Context) {
	ts := startTestServer(t, serverConfig{Suite: suiteClassic})
	web := startWebFor(t, ts)
	fp := fingerprint(&testRSAKey(t).PublicKey)
	pinKey := jsString("encchat.pin " + web)
	b := newTab(t, bctx)
	b.do(chromedp.Navigate("http://" + web + "/"))
	b.waitState("ready")
	eval[bool](b, `localStorage.setItem(`+pinKey+`, "classic SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), true`)
	b.do(chromedp.SendKeys(chromedp.ID("name"), "pia\r"))
	b.waitText("WARNING: SERVER KEY HAS CHANGED!")
	b.waitText("got      " + fp)
	b.waitState("ready")
	ts.logged(t, evRefused, "")
	if got := eval[string](b, `localStorage.getItem(`+pinKey+`)`); !strings.Contains(got, "AAAA") {
		t.Errorf("the pin after a refused key: %q", got)
	}

	// Forget, from the keyboard, then join: the key is pinned anew.
	b.do(chromedp.Focus(chromedp.ID("forget")), chromedp.KeyEvent("\r"))
	b.waitText("is forgotten")
	b.do(chromedp.Focus(chromedp.ID("join")), chromedp.KeyEvent("\r"))
	b.waitState("joined")
	b.waitText("Server key " + fp + " first seen now: pinned in this browser's storage")
	if got := eval[string](b, `localStorage.getItem(`+pinKey+`)`); got != "classic "+fp {
		t.Errorf("the pin: %q, want %q", got, "classic "+fp)
	}
	b.say("/quit")
	b.waitState("ready")
	b.do(chromedp.Focus(chromedp.ID("join")), chromedp.KeyEvent("\r"))
	b.waitState("joined")
	b.waitText("Server key " + fp + " matches the pin in this browser's storage")
	b.say("/quit")
	b.waitState("ready")

	// Pinned as modern: a classic answer is a downgrade.
	eval[bool](b, `localStorage.setItem(`+pinKey+`, "modern `+fp+`"), true`)
	b.do(chromedp.Focus(chromedp.ID("join")), chromedp.KeyEvent("\r"))
	b.waitText("refusing the downgrade")
	b.waitState("ready")

	// A taken name.
	eval[bool](b, `localStorage.removeItem(`+pinKey+`), true`)
	join(t, ts.addr, "taken")
	b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("name").value = ""`), chromedp.SendKeys(chromedp.ID("name"), "taken\r"))
	b.waitText("server refused: Username already taken")
	b.waitState("ready")
}

// browserChat: a browser client joins a server of suite, chats with a
// terminal client (and, in the classic suite, the Python peer) in the same
// room, /pm both ways, completes a name with Tab, and leaves; its wire
// panel then shows byte for byte what the server's capture recorded.
func browserChat(t *testing.T, bctx context.Context, suite string) {
	buf := &memCapture{}
	rec := newCapture(buf, "server", "", time.Now)
	ts := startTestServer(t, serverConfig{Suite: suite, Record: rec, HandshakeTimeout: 30 * time.Second})
	web := startWebFor(t, ts)
	key := testRSAKey(t)
	term := join(t, ts.addr, "terry")

	b := newTab(t, bctx)
	ready, pressed, joined := b.openAndJoin("http://"+web+"/", "bria")
	t.Logf("%s: page opened → client ready %.0f ms, Join pressed %.0f ms, joined %.0f ms (%.0f ms after Join)", suite, ready, pressed, joined, joined-pressed)

	// The walk-through, as the terminal client prints it, with the key's
	// fingerprint, pinned in the browser's storage.
	steps := stepsOf(suite)
	for n := 1; n <= 5; n++ {
		b.waitLine(fmt.Sprintf("[%d/5] %s", n, steps.title(n)))
	}
	fp := fingerprint(&key.PublicKey)
	b.waitText("Server key " + fp + " first seen now: pinned in this browser's storage")
	b.waitText("Welcome bria!")
	expect(t, term, "[SYSTEM] bria joined (secure channel)")

	// Chat both ways; the server's texts are cleaned of control characters.
	b.say("hello from the browser")
	expect(t, term, "bria: hello from the browser")
	b.waitLine("bria: hello from the browser")
	if err := term.Send("hi \x1b[31mbrowser\x1b[0m"); err != nil {
		t.Fatal(err)
	}
	b.waitLine("terry: hi [31mbrowser[0m")

	// /pm both ways.
	b.say("/pm terry just for you")
	expect(t, term, "[PM from bria] just for you")
	b.waitLine("[PM to terry] just for you")
	if err := term.Send("/pm bria back at you"); err != nil {
		t.Fatal(err)
	}
	b.waitLine("[PM from terry] back at you")

	// Tab completes a command and a name (the roster knows terry from the
	// /list answer, as the terminal client's does).
	b.say("/list")
	b.waitText("Online Users (2): terry, bria")
	b.do(chromedp.SendKeys(chromedp.ID("message"), "/l\t"))
	if v := eval[string](b, `document.getElementById("message").value`); v != "/list" {
		t.Errorf("Tab after /l: %q, want /list", v)
	}
	eval[bool](b, `document.getElementById("message").value = "", true`)
	b.do(chromedp.SendKeys(chromedp.ID("message"), "/pm te\t"))
	if v := eval[string](b, `document.getElementById("message").value`); v != "/pm terry " {
		t.Errorf("Tab after /pm te: %q, want %q", v, "/pm terry ")
	}
	b.do(chromedp.SendKeys(chromedp.ID("message"), "completed\r"))
	expect(t, term, "[PM from bria] completed")

	// /help is answered in the page.
	b.say("/help")
	b.waitText("[HELP] Commands:")

	if suite == suiteClassic {
		t.Run("python peer", func(t *testing.T) {
			py := startPyPeer(t, "python client", "client", "--connect", ts.addr, "--name", "pyth", "--linger", "0.2")
			py.expectLine(t, "FINGERPRINT "+fp)
			py.expectText(t, seedWelcome("pyth"))
			b.waitLine("[SYSTEM] pyth joined (secure channel)")
			py.send(t, "hello from python")
			py.expectText(t, "{TS} pyth: hello from python")
			b.waitLine("pyth: hello from python")
			b.say("and hello from the browser")
			py.expectText(t, "{TS} bria: and hello from the browser")
			py.send(t, "/pm bria a python secret")
			py.expectText(t, "{TS} [PM to bria] a python secret")
			b.waitLine("[PM from pyth] a python secret")
			b.say("/pm pyth a browser secret")
			py.expectText(t, "{TS} [PM from bria] a browser secret")
			py.send(t, "/quit")
			py.expectExit(t)
			b.waitLine("[SYSTEM] pyth left the chat")
		})
	}

	b.shot("browser-" + suite + ".png")
	wireBefore := len(b.wireRows())
	if wireBefore < 8 {
		t.Errorf("the wire panel shows %d frames", wireBefore)
	}

	// /quit: the server closes, and the page can join again.
	b.say("/quit")
	b.waitLine("You left the chat.")
	b.waitState("ready")
	expect(t, term, "[SYSTEM] bria left the chat")
	checkWirePanel(t, b.wireRows(), capturedFrames(t, buf))
}

// browserAccessibility: axe-core finds no serious or critical violation on
// the page, joined and chatting with its wire panel full, at desktop width
// and at 390 pixels, where nothing scrolls sideways.
func browserAccessibility(t *testing.T, bctx context.Context) {
	axe := needAxe(t)
	ts := startTestServer(t, serverConfig{Suite: suiteClassic})
	web := startWebFor(t, ts)
	term := join(t, ts.addr, "terry")
	for _, width := range []int64{1400, 390} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			b := newTab(t, bctx)
			b.do(chromedp.EmulateViewport(width, 900))
			name := fmt.Sprintf("w%d", width)
			b.openAndJoin("http://"+web+"/", name)
			b.say("a line long enough to wrap: " + strings.Repeat("abcdefghij", 12))
			expect(t, term, name+": a line long enough to wrap: "+strings.Repeat("abcdefghij", 12))
			b.waitText(strings.Repeat("abcdefghij", 12))
			b.do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("#wire-rows details").forEach(function(d){d.open=true})`))
			b.shot(fmt.Sprintf("browser-%d.png", width))

			eval[bool](b, axe+";true")
			violations := eval[[]map[string]any](b, `axe.run(document, {resultTypes: ["violations"]}).then(function(r){
				return r.violations.map(function(v){return {id: v.id, impact: v.impact, help: v.help,
					nodes: v.nodes.slice(0, 3).map(function(n){return n.target.join(" ")})}})})`, chromedp.EvalAwaitPromise)
			for _, v := range violations {
				if v["impact"] == "serious" || v["impact"] == "critical" {
					t.Errorf("axe: %v (%v): %v at %v", v["id"], v["impact"], v["help"], v["nodes"])
				} else {
					t.Logf("axe (%v): %v: %v", v["impact"], v["id"], v["help"])
				}
			}

			wide := eval[map[string]any](b, `(function(){
				var w = document.documentElement.clientWidth, worst = null;
				document.querySelectorAll("body *").forEach(function(el){
					var cs = getComputedStyle(el);
					var scrolls = (cs.overflowX === "auto" || cs.overflowX === "scroll") && el.scrollWidth > el.clientWidth + 1;
					var r = el.getBoundingClientRect();
					var sticks = r.right > w + 1 && cs.position !== "absolute";
					if ((scrolls || sticks) && !worst) worst = el.tagName + "#" + el.id + "." + el.className + " " + el.scrollWidth + ">" + el.clientWidth + " right " + r.right;
				});
				var j = document.getElementById("join").getBoundingClientRect().right;
				return {page: document.documentElement.scrollWidth, width: w, inner: innerWidth, join: j, worst: worst};
			})()`)
			t.Logf("at %d px: %v", width, wide)
			if page, w := wide["page"].(float64), wide["width"].(float64); page > w {
				t.Errorf("at %d px the page is %v px wide", width, page)
			}
			if wide["worst"] != nil {
				t.Errorf("at %d px something scrolls sideways: %v", width, wide["worst"])
			}
			b.say("/quit")
			b.waitState("ready")
		})
	}
}

// TestWebClientServing: the page with its CSP, the WebAssembly gzipped as
// application/wasm (decoded for a client that takes no gzip), revalidated
// by ETag, and a clear answer when the client is not built.
func TestWebClientServing(t *testing.T) {
	dir := t.TempDir()
	wasm := []byte("\x00asm\x01\x00\x00\x00 not really a program, but bytes to serve")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(wasm)
	zw.Close()
	os.WriteFile(filepath.Join(dir, webWasmFile), gz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, webExecJSFile), []byte("// wasm_exec"), 0o644)
	t.Setenv(webWasmDirEnv, dir)
	if m := webClientMissing(); m != "" {
		t.Errorf("webClientMissing with a built client: %q", m)
	}
	srv := httptest.NewServer(webClientFiles())
	defer srv.Close()
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	resp, body := get("/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "'unsafe-eval'") {
		t.Errorf("CSP %q allows inline script or eval", csp)
	}
	checkPageMarkup(t, string(body))

	resp, body = get("/encchat.wasm", "Accept-Encoding", "gzip, deflate")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/wasm" || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("/encchat.wasm: %s, Content-Type %q, Content-Encoding %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Encoding"))
	}
	if !bytes.Equal(body, gz.Bytes()) {
		t.Errorf("/encchat.wasm with gzip: %d bytes, want the %d gzipped bytes", len(body), gz.Len())
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := get("/encchat.wasm", "Accept-Encoding", "gzip", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %s, want 304", etag, resp.Status)
	}
	resp, body = get("/encchat.wasm")
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, wasm) {
		t.Errorf("/encchat.wasm without gzip: Content-Encoding %q, %d bytes, want the %d decoded bytes", resp.Header.Get("Content-Encoding"), len(body), len(wasm))
	}
	if resp, _ := get("/encchat.wasm.gz"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/encchat.wasm.gz: %s, want 404", resp.Status)
	}
	if resp, body := get("/wasm_exec.js"); resp.StatusCode != 200 || string(body) != "// wasm_exec" {
		t.Errorf("/wasm_exec.js: %s %q", resp.Status, body)
	}
	for _, path := range []string{"/app.js", "/app.css"} {
		if resp, _ := get(path); resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %s, CSP %q", path, resp.Status, resp.Header.Get("Content-Security-Policy"))
		}
	}
	req, _ := http.NewRequest("POST", srv.URL+"/", nil)
	if resp, err := tr.RoundTrip(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %v %v", resp.Status, err)
	}

	// Not built: the server says how to build it.
	t.Setenv(webWasmDirEnv, t.TempDir())
	if m := webClientMissing(); !strings.Contains(m, "go generate") {
		t.Errorf("webClientMissing without a built client: %q", m)
	}
	srv2 := httptest.NewServer(webClientFiles())
	defer srv2.Close()
	resp2, err := http.Get(srv2.URL + "/encchat.wasm")
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(msg), "go generate") {
		t.Errorf("/encchat.wasm not built: %s %q", resp2.Status, msg)
	}
}

// checkPageMarkup: the names the tests and users rely on, and nothing the
// CSP would block (inline scripts, styles or handlers).
func checkPageMarkup(t *testing.T, page string) {
	t.Helper()
	for _, want := range []string{
		`<label for="name">Name</label>`, `<button id="join" type="submit" disabled>Join</button>`,
		`<label for="message">Message</label>`, `<button id="send" type="submit" disabled>Send</button>`,
		`role="log"`, `<caption>`, `<script src="wasm_exec.js" defer></script>`, `<script src="app.js" defer></script>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if n := strings.Count(page, "<script"); n != strings.Count(page, "<script src=") {
		t.Errorf("the page has an inline script")
	}
	if regexp.MustCompile(`(?i)\s(on[a-z]+|style)=`).MatchString(page) || strings.Contains(page, "<style") {
		t.Errorf("the page has an inline handler or style")
	}
}

// BenchmarkBrowserJoin measures, in headless Chromium on loopback, the time
// from opening the page to "joined" in a classic and a modern room: the page records
// when it reached each state (ms since navigation began); the benchmark
// fills in the name and submits as soon as the page is ready, so no typing
// is counted. Each join is a new tab; the browser may reuse its cache.
func BenchmarkBrowserJoin(b *testing.B) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		b.Skip("chromium not found")
	}
	b.Setenv(webWasmDirEnv, buildBrowserClient(b))
	bctx := startBrowser(b, bin)
	for _, suite := range []string{suiteClassic, suiteModern} {
		b.Run(suite, func(b *testing.B) {
			ts := startTestServer(b, serverConfig{Suite: suite})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			web := startWebServer(ln, webConfig{Client: webClientFiles(), Conn: func(nc net.Conn) { ts.serveConn(nc) }})
			b.Cleanup(func() { web.Close() })
			var ready, joined, handshake float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx, cancel := chromedp.NewContext(bctx)
				tctx, cancelT := context.WithTimeout(ctx, browserWait)
				ms, err := joinOnce(tctx, "http://"+ln.Addr().String()+"/", fmt.Sprintf("b%d", i))
				cancelT()
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				f := func(k string) float64 { v, _ := strconv.ParseFloat(ms[k], 64); return v }
				ready += f("ready")
				joined += f("joined")
				handshake += f("joined") - f("connecting")
			}
			b.ReportMetric(ready/float64(b.N), "ms-to-ready")
			b.ReportMetric(joined/float64(b.N), "ms-to-joined")
			b.ReportMetric(handshake/float64(b.N), "ms-join-to-joined")
		})
	}
}

// joinOnce opens the page in the tab of ctx, joins as name as soon as the
// page is ready, and returns the page's timings.
func joinOnce(ctx context.Context, url, name string) (map[string]string, error) {
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return nil, err
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.state === "ready"`, chromedp.WithPollingMutation())); err != nil {
		return nil, err
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("name").value = `+jsString(name)+`; document.getElementById("join-form").requestSubmit()`)); err != nil {
		return nil, err
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.state === "joined"`, chromedp.WithPollingMutation())); err != nil {
		return nil, err
	}
	return chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`({ready: document.body.dataset.readyAt, connecting: document.body.dataset.connectingAt, joined: document.body.dataset.joinedAt})`))
}
