// Classroom mode end to end, as a teacher runs it, in headless Chromium
// driven by chromedp: "encchat server -web" with a browser student and a
// terminal client chatting in one room, the public /wire page showing every
// frame of both connections, the raw public event stream read as a sniffer
// on the network would, and the teacher's view with the texts; the encchat
// command's "tap -web -rewrite" forging a browser student's line; and a
// class of 30 browser tabs, as a benchmark.

package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// classroomBanner is what "encchat server -web" prints: the chat port, the
// key, the students' URL, the public wire and the teacher's wire.
var classroomBanner = regexp.MustCompile(`Server: (\S+)\n(?:.*\n)*?Key: RSA-2048 (SHA256:\S+)\n(?:.*\n)*?Students open: (http://\S+/)\nLive wire: (http://\S+/wire) .*\nTeacher's wire: (http://\S+/wire\?token=([A-Za-z0-9_-]+)) `)

// classroom is "encchat server -web" run in this process by its command's
// entry, with the addresses its banner printed.
type classroom struct {
	tcpAddr, fingerprint                   string
	studentURL, wireURL, teacherURL, token string
	stop                                   func() // ends the command, checks it exited 0; safe twice
}

func startClassroom(t *testing.T, args ...string) *classroom {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- runServer(ctx, args, &out, &errb) }()
	var m []string
	for deadline := time.Now().Add(browserWait); m == nil; time.Sleep(10 * time.Millisecond) {
		m = classroomBanner.FindStringSubmatch(out.String())
		if m == nil {
			select {
			case code := <-done:
				cancel()
				t.Fatalf("encchat server exited %d before its banner:\n%s%s", code, out.String(), errb.String())
			default:
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("no banner with the URLs:\n%s%s", out.String(), errb.String())
			}
		}
	}
	c := &classroom{tcpAddr: m[1], fingerprint: m[2], studentURL: m[3], wireURL: m[4], teacherURL: m[5], token: m[6]}
	var once sync.Once
	c.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("encchat server exited %d:\n%s", code, errb.String())
				}
			case <-time.After(browserWait):
				t.Errorf("encchat server did not stop within %v", browserWait)
			}
		})
	}
	t.Cleanup(c.stop)
	for _, u := range []string{"http://" + c.tcpAddr + "/", c.studentURL, c.wireURL} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Fatalf("%s is not on loopback", u)
		}
	}
	return c
}

// expectSlowly is expect with a bound fit for a machine that also runs a
// browser: the line is awaited, not the clock.
func expectSlowly(t testing.TB, cs *clientSession, want string) {
	t.Helper()
	expectWithin(t, cs, want, browserWait)
}

// joinByKeyboard opens the students' page and joins as a student does from
// the keyboard alone: the name, Tab to Join, Enter.
func (b *browserTab) joinByKeyboard(url, name string) {
	b.t.Helper()
	b.do(chromedp.Navigate(url))
	b.waitState("ready")
	b.do(chromedp.SendKeys(chromedp.ID("name"), name), chromedp.KeyEvent("\t"))
	if id := eval[string](b, `document.activeElement ? document.activeElement.id : ""`); id != "join" {
		b.t.Fatalf("Tab after the name focuses %q, want the Join button", id)
	}
	b.do(chromedp.KeyEvent("\r"))
	b.waitState("joined")
}

// wireConnsJS is the /wire page's connections table, with the frames the
// page draws for each connection.
const wireConnsJS = `Array.from(document.querySelectorAll("#conns tbody tr")).map(function(r){
	var c = r.cells[0].textContent;
	return {Conn: c, Via: r.cells[2].textContent, Frames: r.cells[4].textContent,
		Drawn: Array.from(document.querySelectorAll("#frames .row .conn-badge")).filter(function(b){return b.textContent === "conn " + c}).length};
})`

type wirePageConn struct {
	Conn, Via, Frames string
	Drawn             int
}

// TestClassroom: the teacher starts "encchat server -web"; a student joins
// from the browser by keyboard and chats both ways, /pm too, with a
// terminal client; the public /wire page draws every frame of both
// connections, one labelled a browser (WebSocket) and one TCP; the public
// event stream, read as raw bytes by a plain GET, carries none of the
// texts, names, session keys or the token; the teacher's URL shows them.
func TestClassroom(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the browser client and runs Chromium")
	}
	t.Setenv(webWasmDirEnv, buildBrowserClient(t))
	bctx := startBrowser(t, needTool(t, "chromium"))
	keylog := filepath.Join(t.TempDir(), "keys.log")
	cls := startClassroom(t, "-listen", "127.0.0.1:0", "-web", "127.0.0.1:0", "-ephemeral", "-no-color", "-keylog", keylog)

	// A sniffer on the network, from before anyone joins; and the
	// teacher's stream, which says when every frame has been published.
	sniffer := openStream(t, cls.wireURL+"/events", "")
	teacher := openStream(t, cls.wireURL+"/events?token="+cls.token, "")
	if sniffer.status != 200 || teacher.status != 200 {
		t.Fatalf("the event streams answer %d (public) and %d (teacher's)", sniffer.status, teacher.status)
	}

	// The projector, on the public URL.
	wire := newTab(t, bctx)
	wire.do(chromedp.Navigate(cls.wireURL))
	wire.waitFor("the wire page to be live", `document.getElementById("status").textContent.startsWith("Live")`)

	const stu, term = "kestrel_9b", "heron_4t"
	texts := map[string]string{
		"from the browser":  "the quiz answer is in the blue folder",
		"from the terminal": "homework moved to thursday, pass it on",
		"pm to terminal":    "can you lend me your notes on modular inverses",
		"pm to browser":     "sure, they are under the big oak desk",
	}
	tc := join(t, cls.tcpAddr, term)
	b := newTab(t, bctx)
	b.joinByKeyboard(cls.studentURL, stu)
	b.waitText("Server key " + cls.fingerprint + " first seen now")
	b.waitText("Welcome " + stu + "!")
	expectSlowly(t, tc, "[SYSTEM] "+stu+" joined (secure channel)")

	b.say(texts["from the browser"])
	expectSlowly(t, tc, stu+": "+texts["from the browser"])
	b.waitLine(stu + ": " + texts["from the browser"])
	if err := tc.Send(texts["from the terminal"]); err != nil {
		t.Fatal(err)
	}
	b.waitLine(term + ": " + texts["from the terminal"])
	expectSlowly(t, tc, term+": "+texts["from the terminal"])
	b.say("/pm " + term + " " + texts["pm to terminal"])
	expectSlowly(t, tc, "[PM from "+stu+"] "+texts["pm to terminal"])
	b.waitLine("[PM to " + term + "] " + texts["pm to terminal"])
	if err := tc.Send("/pm " + stu + " " + texts["pm to browser"]); err != nil {
		t.Fatal(err)
	}
	b.waitLine("[PM from " + term + "] " + texts["pm to browser"])
	expectSlowly(t, tc, "[PM to "+stu+"] "+texts["pm to browser"])

	// Both clients have read the last frames of the chat, so the server
	// has written, and the wire will publish, every frame there is. The
	// teacher's stream says when: both copies of the last PM.
	lastTo := map[string]bool{"[PM from " + term + "] " + texts["pm to browser"]: false, "[PM to " + stu + "] " + texts["pm to browser"]: false}
	var lastSeq uint64 // of the later of the two: an event's id is RUN-SEQ
	lastID := ""
	teacher.until(t, "the last PM's frames on the teacher's stream", func(ev sseEvent) bool {
		if ev.Kind != "frame" {
			return false
		}
		for s, seen := range lastTo {
			if f := frameOf(t, ev); !seen && f.Peer != nil && strings.Contains(f.Peer.Text, s) {
				lastTo[s] = true
				seq, err := strconv.ParseUint(ev.ID[strings.LastIndexByte(ev.ID, '-')+1:], 10, 64)
				if err != nil {
					t.Fatalf("event id %q", ev.ID)
				}
				if seq > lastSeq {
					lastSeq, lastID = seq, ev.ID
				}
			}
		}
		return !slices.Contains(slices.Collect(maps.Values(lastTo)), false)
	})
	evs := sniffer.until(t, "the last PM's frames on the public stream", func(ev sseEvent) bool { return ev.ID == lastID })

	// The public stream: two connections, a browser's and a terminal's,
	// with their frames.
	transport := map[int]string{}
	for _, ev := range evs {
		if ev.Kind == "open" {
			var c wireConnInfo
			if err := json.Unmarshal(ev.Data, &c); err != nil {
				t.Fatalf("open event %q: %v", ev.Data, err)
			}
			transport[c.Conn] = c.Transport
		}
	}
	if len(transport) != 2 {
		t.Fatalf("the public stream opened %d connections, want 2: %v", len(transport), transport)
	}
	want := map[string]wirePageConn{} // by the page's label
	for conn, tr := range transport {
		frames := framesOf(t, evs, conn)
		var c2s, s2c int
		for _, f := range frames {
			if f.Dir == "c2s" {
				c2s++
			} else {
				s2c++
			}
		}
		via := map[string]string{"": "TCP", "websocket": "browser (WebSocket)"}[tr]
		if via == "" {
			t.Fatalf("conn %d came by %q", conn, tr)
		}
		if len(frames) < 10 || frames[0].Step != "Step 1 · Server RSA Public Key" || frames[3].Step != "Step 8 · Encrypted Username" {
			t.Errorf("conn %d (%s): %d frames on the public stream, the first %+v", conn, via, len(frames), frames[0])
		}
		want[via] = wirePageConn{Conn: strconv.Itoa(conn), Via: via, Frames: fmt.Sprintf("%d / %d", c2s, s2c), Drawn: len(frames)}
	}
	if len(want) != 2 {
		t.Fatalf("the two connections came by %v, want a browser's and TCP", transport)
	}

	// The projector draws every one of those frames, each under its
	// connection, labelled as it came.
	wantJSON, _ := json.Marshal([]wirePageConn{want["TCP"], want["browser (WebSocket)"]})
	wire.waitFor("the wire page to draw every frame of both connections", `(function(){
		var want = `+string(wantJSON)+`, got = `+wireConnsJS+`;
		return want.every(function(w){return got.some(function(g){return g.Conn === w.Conn && g.Via === w.Via && g.Frames === w.Frames && g.Drawn === w.Drawn})});
	})()`)
	t.Logf("the wire page's connections: %+v", eval[[]wirePageConn](wire, wireConnsJS))
	page := eval[string](wire, `document.body.textContent`)
	for _, s := range append(slices.Collect(maps.Values(texts)), stu, term, cls.token) {
		if strings.Contains(page, s) {
			t.Errorf("the public wire page shows %q", s)
		}
	}
	if n := eval[int](wire, `document.querySelectorAll(".peer").length`); n != 0 {
		t.Errorf("the public wire page has %d peer cells", n)
	}
	t.Run("axe", func(t *testing.T) {
		if bad := axeViolations(t, wire.ctx, needAxe(t)); len(bad) > 0 {
			t.Errorf("axe on the public wire page with a browser and a terminal:\n%s", strings.Join(bad, "\n"))
		}
	})
	b.shot("classroom-student.png")
	wire.shot("classroom-wire.png")

	// The sniffer's bytes: no text, no name, no session key, no token.
	raw := sniffer.bytes()
	secret := append(slices.Collect(maps.Values(texts)), stu, term, cls.token, "joined (secure channel)", "[PM from", "[PM to")
	for _, text := range slices.Collect(maps.Values(texts)) { // in the encodings the stream uses for bytes
		secret = append(secret, base64.StdEncoding.EncodeToString([]byte(text)), hex.EncodeToString([]byte(text)))
	}
	entries := readKeylogFile(t, keylog)
	if len(entries) != 2 {
		t.Fatalf("the keylog holds %d sessions, want 2", len(entries))
	}
	for _, e := range entries {
		h := hex.EncodeToString(e.Secret)
		secret = append(secret, h, h[:16], base64.StdEncoding.EncodeToString(e.Secret)[:16])
	}
	for _, s := range secret {
		if strings.Contains(string(raw), s) {
			t.Errorf("the public event stream carries %q", s)
		}
	}
	if !strings.Contains(string(raw), `"transport":"websocket"`) {
		t.Error("the public event stream does not say which connection is a browser")
	}

	// The teacher's URL: the texts and the names beside their frames.
	tt := newTab(t, bctx)
	tt.do(chromedp.Navigate(cls.teacherURL))
	for _, s := range append(slices.Collect(maps.Values(texts)), stu) {
		tt.waitFor("the teacher's view to show "+strconv.Quote(s), `Array.from(document.querySelectorAll(".peer .text")).some(function(e){return e.textContent.includes(`+jsString(s)+`)})`)
	}
	if mode := eval[string](tt, `document.getElementById("mode").textContent`); !strings.HasPrefix(mode, "Teacher view") {
		t.Errorf("the teacher's page says %q", mode)
	}
	tt.shot("classroom-teacher.png")
	traw := string(teacher.bytes())
	for _, s := range append(slices.Collect(maps.Values(texts)), stu, term) {
		if !strings.Contains(traw, s) {
			t.Errorf("the teacher's stream lacks %q", s)
		}
	}
	if strings.Contains(traw, cls.token) {
		t.Error("the teacher's stream carries the token")
	}

	// The teacher stops the server: both students are told.
	cls.stop()
	expectSlowly(t, tc, "[SYSTEM] Server shutting down")
	b.waitText("[SYSTEM] Server shutting down")
}

// encchatCommand is the encchat command, built from this source, running
// as a child process with its output collected.
type encchatCommand struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	errb *syncBuffer
	done chan struct{} // closed when it has exited; then err is set
	err  error
	once sync.Once // stop's
}

// buildEncchat builds the encchat command from this source into a
// temporary directory, with the race detector when asked.
func buildEncchat(t testing.TB, race bool) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build encchat: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "encchat")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startEncchat runs bin with args; the test's cleanup stops it (stop).
func startEncchat(t testing.TB, bin string, args ...string) *encchatCommand {
	t.Helper()
	c := &encchatCommand{cmd: exec.Command(bin, args...), out: &syncBuffer{}, errb: &syncBuffer{}, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.errb
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// waitOutput waits until the command's output matches re, and returns the
// match.
func (c *encchatCommand) waitOutput(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(browserWait)
	for {
		if m := re.FindStringSubmatch(c.out.String()); m != nil {
			return m
		}
		select {
		case <-c.done:
			t.Fatalf("%s exited (%v) before printing %s:\n%s%s", c.cmd.Path, c.err, re, c.out.String(), c.errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no %s in %v:\n%s%s", c.cmd.Path, re, browserWait, c.out.String(), c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop interrupts the command as Ctrl-C does and checks that it exits 0
// (it is killed if it does not exit within the bound).
func (c *encchatCommand) stop(t testing.TB) {
	t.Helper()
	c.once.Do(func() { c.interrupt(t) })
}

func (c *encchatCommand) interrupt(t testing.TB) {
	t.Helper()
	select {
	case <-c.done:
	default:
		c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(browserWait):
			c.cmd.Process.Kill()
			<-c.done
			t.Errorf("%s did not stop on an interrupt within %v", filepath.Base(c.cmd.Path), browserWait)
		}
	}
	if c.err != nil && !t.Failed() {
		t.Errorf("%s %s: %v\n%s", filepath.Base(c.cmd.Path), c.cmd.Args[1], c.err, c.errb.String())
	}
}

// TestClassroomTapRewritesBrowserStudent: the encchat command's "tap -web
// -rewrite" between the browser and a classic server: a student who types
// "pay bob 10 coins" in the page is read by the room as "pay bob 90 coins".
func TestClassroomTapRewritesBrowserStudent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the browser client and encchat, and runs Chromium")
	}
	t.Setenv(webWasmDirEnv, buildBrowserClient(t)) // the tap's child process inherits it
	bctx := startBrowser(t, needTool(t, "chromium"))
	bin := buildEncchat(t, replRaceEnabled())

	ts := startTestServer(t, serverConfig{Suite: suiteClassic})
	bob := join(t, ts.addr, "bob")
	tapCmd := startEncchat(t, bin, "tap", "-web", "127.0.0.1:0", "-upstream", ts.addr, "-rewrite", "pay bob 10=pay bob 90")
	m := tapCmd.waitOutput(t, regexp.MustCompile(`between clients on http://(127\.0\.0\.1:\d+)/ \(browsers\) and `+regexp.QuoteMeta(ts.addr)))

	const stu = "wren_student"
	b := newTab(t, bctx)
	b.joinByKeyboard("http://"+m[1]+"/", stu)
	expectSlowly(t, bob, "[SYSTEM] "+stu+" joined (secure channel)")
	b.say("pay bob 10 coins")
	expectSlowly(t, bob, stu+": pay bob 90 coins")
	ts.logged(t, evBroadcast, "pay bob 90 coins")
	// The server echoes what it read to the sender too: the student's own
	// screen shows the forged line, and never the one typed.
	b.waitLine(stu + ": pay bob 90 coins")
	if eval[bool](b, `document.getElementById("log").textContent.includes("pay bob 10")`) {
		t.Error("the student's chat shows the line as typed: the server read another")
	}
	b.shot("classroom-tap-student.png")

	// The rewrite is blind: it flips the same byte of every record after
	// the username. "/quit" is 5 bytes, so that byte is in its padding,
	// which no longer checks: the server drops the record, and the
	// student leaves as the page closes its connection.
	b.say("/quit")
	b.waitState("ready")
	expectSlowly(t, bob, "[SYSTEM] "+stu+" left the chat")
	ts.logged(t, evDropped, stu+": record does not decrypt, dropped (1 so far)")
	tapCmd.waitOutput(t, regexp.MustCompile(`closed after 2 rewritten record\(s\)`))
	tapCmd.stop(t)
	if out := tapCmd.out.String(); !strings.Contains(out, `XOR-ing "pay bob 10"⊕"pay bob 90"`) {
		t.Errorf("the tap's report:\n%s", out)
	}
}

// classBrowser starts one headless Chromium for a class: each tab stands for
// a student's own machine, in the foreground, so the browser's throttling
// of background tabs is off (chromedp's default options).
func classBrowser(b *testing.B, bin string) context.Context {
	b.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(b.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.WindowSize(1200, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	b.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil {
		b.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// procRSS returns the resident and peak resident memory of process pid, in
// bytes, from /proc (0, 0 where there is none).
func procRSS(pid int) (rss, peak float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			v, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "VmRSS:":
				rss = v * 1024
			case "VmHWM:":
				peak = v * 1024
			}
		}
	}
	return rss, peak
}

// procCPU is the CPU time process pid has used, user and system, in
// seconds (0 where there is none).
func procCPU(pid int) float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// After "pid (comm)": state is field 0, utime 11 and stime 12, in ticks of 1/100 s.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

// procPSS is process pid's proportional set size in bytes, from /proc: its
// resident memory with each page shared among n processes counted 1/n (0
// where there is none).
func procPSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "Pss:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v * 1024
		}
	}
	return 0
}

// treePSS is the memory of process pid and all its descendants, each page
// counted once (the sum of their proportional set sizes).
func treePSS(pid int) float64 {
	children := map[int][]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so after the last ")".
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var total float64
	for todo := []int{pid}; len(todo) > 0; {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		total += procPSS(p)
		todo = append(todo, children[p]...)
	}
	return total
}

// classSize is the class the benchmark seats: ENCCHAT_CLASS_SIZE, or 30.
func classSize(b *testing.B) int {
	n := 30
	if s := os.Getenv("ENCCHAT_CLASS_SIZE"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 || n > 99 {
			b.Fatalf("ENCCHAT_CLASS_SIZE=%q: want 1 to 99", s)
		}
	}
	return n
}

// BenchmarkClassOf30 seats a class in one headless Chromium: 30 tabs (one
// per student, ENCCHAT_CLASS_SIZE to change it) open the page of an
// "encchat server -web" run as its own process, and join at once as
// student01…student30; when all have joined, each sends one line, and
// every tab waits until it shows all 30. It reports the seconds from
// opening the pages until the last one joined, from the sends until the
// last line reached the last tab, the page's own median time from opening
// to joined, the server process's memory and CPU time (since its start),
// and the whole browser's memory (PSS). The tabs share this machine's
// cores, where a class has a machine each.
func BenchmarkClassOf30(b *testing.B) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		b.Skip("chromium not found")
	}
	n := classSize(b)
	b.Setenv(webWasmDirEnv, buildBrowserClient(b))
	bin := buildEncchat(b, false)
	bctx := classBrowser(b, chromium)
	browserPID := 0
	if p := chromedp.FromContext(bctx).Browser.Process(); p != nil {
		browserPID = p.Pid
	}
	var joinedS, deliveredS, pageMs, rss, peak, cpu, browserPSS float64
	b.ResetTimer()
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		srv := startEncchat(b, bin, "server", "-listen", "127.0.0.1:0", "-web", "127.0.0.1:0", "-ephemeral", "-no-color")
		url := srv.waitOutput(b, regexp.MustCompile(`Students open: (http://127\.0\.0\.1:\d+/)\n`))[1]
		tabs := make([]context.Context, n)
		closeTabs := make([]context.CancelFunc, n)
		for i := range tabs {
			tabs[i], closeTabs[i] = chromedp.NewContext(bctx)
			b.Cleanup(closeTabs[i])
			if err := chromedp.Do(tabs[i]); err != nil {
				b.Fatalf("opening tab %d: %v", i+1, err)
			}
		}
		names := make([]string, n)
		lines := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("student%02d", i+1)
			lines[i] = names[i] + ": hello class, this is " + names[i]
		}
		linesJSON, _ := json.Marshal(lines)
		allLines := `(function(){var want = ` + string(linesJSON) + `;
			var have = new Set(Array.from(document.querySelectorAll("#log .line")).map(function(d){return d.textContent.replace(/^\[\d\d:\d\d:\d\d\] /, "")}));
			return want.every(function(l){return have.has(l)})})()`
		// everyTab runs step in every tab at once, and fails on the first error.
		everyTab := func(what string, step func(i int, ctx context.Context) error) {
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range tabs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(tabs[i], 10*time.Minute)
					defer cancel()
					errs[i] = step(i, ctx)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					b.Fatalf("%s, tab %d: %v", what, i+1, err)
				}
			}
		}
		poll := func(ctx context.Context, predicate string) error {
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(0)))
			return err
		}
		ms := make([]float64, n)

		b.StartTimer()
		start := time.Now()
		everyTab("joining", func(i int, ctx context.Context) error {
			if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
				return err
			}
			if err := poll(ctx, `document.body.dataset.state === "ready"`); err != nil {
				return err
			}
			if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("name").value = `+
				jsString(names[i])+`; document.getElementById("join-form").requestSubmit()`)); err != nil {
				return err
			}
			if err := poll(ctx, `document.body.dataset.state === "joined"`); err != nil {
				return err
			}
			at, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.joinedAt`))
			if err == nil {
				ms[i], err = strconv.ParseFloat(at, 64)
			}
			return err
		})
		joined := time.Since(start)
		sent := time.Now()
		everyTab("sending", func(i int, ctx context.Context) error {
			return chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById("message").value = `+
				jsString("hello class, this is "+names[i])+`; document.getElementById("send-form").requestSubmit()`))
		})
		everyTab("waiting for every line", func(i int, ctx context.Context) error { return poll(ctx, allLines) })
		delivered := time.Since(sent)
		b.StopTimer()

		r, p := procRSS(srv.cmd.Process.Pid)
		c := procCPU(srv.cmd.Process.Pid)
		cpu += c
		rss += r
		peak = max(peak, p)
		if browserPID != 0 {
			browserPSS += treePSS(browserPID)
		}
		sort.Float64s(ms)
		pageMs += ms[n/2]
		joinedS += joined.Seconds()
		deliveredS += delivered.Seconds()
		b.Logf("%d tabs: all joined in %.1f s (page's open to joined: median %.0f ms, slowest %.0f ms); %d lines to all in %.1f s; server RSS %.1f MB, CPU %.2f s",
			n, joined.Seconds(), ms[n/2], ms[n-1], n, delivered.Seconds(), r/1e6, c)
		for _, closeTab := range closeTabs {
			closeTab()
		}
		srv.stop(b)
		b.StartTimer()
	}
	N := float64(b.N)
	b.ReportMetric(float64(n), "students")
	b.ReportMetric(joinedS/N, "s-all-joined")
	b.ReportMetric(deliveredS/N, "s-all-lines-to-all")
	b.ReportMetric(pageMs/N, "ms-median-page-to-joined")
	b.ReportMetric(rss/N/1e6, "MB-server-RSS")
	b.ReportMetric(peak/1e6, "MB-server-peak-RSS")
	b.ReportMetric(cpu/N, "s-server-CPU")
	if browserPID != 0 {
		b.ReportMetric(browserPSS/N/1e6, "MB-browser-PSS")
	}
}
