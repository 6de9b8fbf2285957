// Tests for the lesson page (replay -html). The golden pages under
// testdata/lesson/ are rendered from the golden capture of the replay tests;
// "go test -run TestLessonGolden -update" rewrites them (open them in a
// browser and read the diff before accepting). The Chromium tests load a
// page in headless Chromium and check what it rendered.

package main

import (
	"bytes"
	"context"
	"fmt"
	"html"
	htmltemplate "html/template"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const lessonTestdata = "testdata/lesson"

// arrowRE matches one frame's arrow in a page or in Chromium's DOM.
var arrowRE = regexp.MustCompile(`<svg class="arrow (c2s|s2c)`)

// writeLesson runs "encchat replay -html OUT args..." and returns the page.
func writeLesson(t *testing.T, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "lesson.html")
	var stdout, stderr bytes.Buffer
	if code := runReplay(append([]string{"-html", out}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("replay -html %v: exit %d: %s", args, code, stderr.String())
	}
	if stderr.Len() != 0 || !strings.HasPrefix(stdout.String(), "wrote "+out+": ") {
		t.Fatalf("replay -html: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(page)
}

// checkLessonGolden compares a page with testdata/lesson/name, or writes it
// with -update.
func checkLessonGolden(t *testing.T, name, got string) {
	t.Helper()
	checkGoldenFile(t, filepath.Join(lessonTestdata, name), got)
}

// activeMarkupRE finds markup that runs or loads something: elements, and
// attributes inside a tag (text that merely reads "src=" is fine).
var activeMarkupRE = regexp.MustCompile(`(?i)<(script|link|iframe|img|object|embed|base|form|audio|video)\b|<[a-z][^<>]*\s(src|srcset|action|formaction|on[a-z]+)\s*=|<[a-z][^<>]*https?:|url\(|@import`)

// templateEscape escapes s as html/template does in element text.
func templateEscape(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	if err := htmltemplate.Must(htmltemplate.New("").Parse("{{.}}")).Execute(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// domEscape escapes s as Chromium serialises a text node.
var domEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\u00a0", "&nbsp;").Replace

// checkPageInvariants checks what every lesson page must hold, whatever
// the capture: one arrow per frame, every decrypted text shown escaped, no
// script, nothing loaded from elsewhere.
func checkPageInvariants(t *testing.T, page string, frames []jsonFrame) {
	t.Helper()
	if n := len(arrowRE.FindAllString(page, -1)); n != len(frames) {
		t.Errorf("%d arrows for %d frames", n, len(frames))
	}
	for _, f := range frames {
		if !strings.Contains(page, fmt.Sprintf(`id="frame-%d"`, f.Index)) {
			t.Errorf("frame %d has no row", f.Index)
		}
		if f.Plaintext == nil {
			continue
		}
		for _, line := range strings.Split(*f.Plaintext, "\n") {
			if !strings.Contains(page, templateEscape(t, printable(line))) {
				t.Errorf("frame %d: decrypted line %q is not on the page", f.Index, line)
			}
		}
	}
	if m := activeMarkupRE.FindString(page); m != "" {
		t.Errorf("the page contains %q", m)
	}
	for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "#") {
			t.Errorf("link to %q: the page must not load or link anything outside itself", m[1])
		}
	}
	if !strings.Contains(page, `content="default-src 'none'; style-src 'unsafe-inline'"`) {
		t.Error("the page lacks its Content-Security-Policy")
	}
}

func TestLessonGolden(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	keys := filepath.Join(replayTestdata, "session.keys")
	rsaKey := filepath.Join(replayTestdata, "server.pem")
	helloFrame := goldenFrame(t, capturePath, keys, goldenHello)
	tamper := fmt.Sprintf("%d:5", helloFrame) // a bit of the IV: the attacker's chosen change to the text

	cases := []struct {
		golden string
		args   []string
		want   []string // what the page must say, beside the golden match
	}{
		{"keylog.html", []string{"-keylog", keys, capturePath}, []string{
			"Step 1 · Server RSA Public Key", "Step 4 · Encrypted AES Key", "Step 6 · Encrypted Confirmation", "Step 8 · Encrypted Username",
			"Steps 2–3, client", "Step 5, server", "Step 7, client", "SECURE CHANNEL",
			"PEER: what the endpoint read", "decrypted with keylog session.keys", "-----BEGIN PUBLIC KEY-----",
			`<td data-label="key">keylog session.keys</td><td data-label="opened">conn 1 (11 records), conn 2 (7 records)</td>`,
		}},
		{"sniffer.html", []string{capturePath}, []string{
			"No key was given", "text 32–47 B", "the server then sends",
		}},
		{"tamper.html", []string{"-keylog", keys, "-rsa-key", rsaKey, "-tamper", tamper, capturePath}, []string{
			`class="row frame c2s tampered" id="frame-` + fmt.Sprint(helloFrame) + `"`, "TAMPERED", "CBC has no integrity",
			`<td data-label="key">recovered with server.pem</td><td data-label="opened">conn 1, conn 2</td>`, "no forward secrecy",
		}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			page := writeLesson(t, c.args...)
			checkPageInvariants(t, page, replayJSON(t, c.args...))
			for _, w := range c.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if c.golden == "sniffer.html" && strings.Contains(page, `class="cell peer"`) {
				t.Error("a page without keys shows a peer column")
			}
			checkLessonGolden(t, c.golden, page)
		})
	}
}

// hostileTexts are chat lines that would be markup if a page did not
// escape them.
var hostileTexts = []string{
	`<script>document.title="pwned"</script>`,
	`</div></section><img src=x onerror=alert(1)><b>bold?</b>`,
	`"'><svg onload=alert(2)> & &amp; {{.Capture}}`,
}

// recordHostileChat records a chat whose messages are hostileTexts.
func recordHostileChat(t *testing.T) chatRun {
	t.Helper()
	return recordChat(t, t.TempDir(), testRSAKey(t), 9, func(connect func(string) *clientSession) {
		alice := connect("alice")
		bob := connect("bob")
		expectRecv(t, alice, "bob joined")
		for _, s := range hostileTexts {
			alice.Send(s)
			expectRecv(t, bob, "alice: "+s)
		}
		alice.Send("/quit")
		bob.Send("/quit")
		alice.Recv()
		bob.Recv()
	})
}

func TestLessonEscapesCaptureText(t *testing.T) {
	run := recordHostileChat(t)
	page := writeLesson(t, "-keylog", run.keylog, run.capture)
	checkPageInvariants(t, page, replayJSON(t, "-keylog", run.keylog, run.capture))
	for _, s := range hostileTexts {
		if strings.Contains(page, s) {
			t.Errorf("the page holds %q unescaped", s)
		}
		if !strings.Contains(page, templateEscape(t, s)) {
			t.Errorf("the page does not show %q", s)
		}
	}
	if !strings.Contains(page, "<title>encchat lesson: session.jsonl</title>") {
		t.Error("the page's title changed")
	}
}

// TestLessonCaptureFields checks that addresses and the recorder, which
// come from the capture file as any string, are escaped too, and control
// characters are shown, not passed on.
func TestLessonCaptureFields(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "evil.jsonl")
	lines := []string{
		`{"encchat_capture":1,"started":"<i>x</i>","recorder":"<script>r()</script>","addr":"\u001b[31m<b>a</b>"}`,
		`{"t":0.1,"conn":1,"ev":"open","client":"<img src=x onerror=c()>","server":"</svg><script>s()</script>"}`,
		`{"t":0.2,"conn":1,"dir":"s2c","data":"MDAwMDAwMDAxMEVSUk9SOiA8Yj4="}`,
		`{"t":0.3,"conn":1,"ev":"close"}`,
	}
	if err := os.WriteFile(capture, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	page := writeLesson(t, capture)
	for _, bad := range []string{"<i>x", "<script>", "<img", "</svg><script", "\x1b", "<b>a"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q from the capture unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;r()&lt;/script&gt;", "&lt;img src=x onerror=c()&gt;", `\x1b[31m&lt;b&gt;a&lt;/b&gt;`, "ERROR: &lt;b&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := len(arrowRE.FindAllString(page, -1)); n != 1 {
		t.Errorf("%d arrows, want 1", n)
	}
}

// TestLessonFrameLimit checks that a page stops drawing after maxFrames
// and says so, while the summary still counts every frame.
func TestLessonFrameLimit(t *testing.T) {
	f, err := os.Open(filepath.Join(replayTestdata, "session.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	opts := &replayOptions{name: "session.jsonl", view: "sniffer", keys: &replayKeys{}}
	o := newHTMLOutput(&buf, opts)
	o.maxFrames = 3
	if err := replayCapture(f, opts, o); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	total := len(replayJSON(t, filepath.Join(replayTestdata, "session.jsonl")))
	if n := len(arrowRE.FindAllString(page, -1)); n != 3 {
		t.Errorf("%d arrows drawn, want 3", n)
	}
	if want := fmt.Sprintf("<b>%d</b> frames", total); !strings.Contains(page, want) {
		t.Errorf("summary lacks %q", want)
	}
	if want := fmt.Sprintf("the first 3 frames; the other %d are only counted here", total-3); !strings.Contains(page, want) {
		t.Errorf("page lacks %q", want)
	}
}

func TestReplayHTMLFlags(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	out := filepath.Join(t.TempDir(), "x.html")
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-html", out, "-json", capturePath}, 2, "-html writes a page; it cannot be used with -json"},
		{[]string{"-html", out, "-speed", "2", "-pcap", out + ".pcap", capturePath}, 2, "cannot be used with -pcap, -speed"},
		{[]string{"-html", filepath.Join(t.TempDir(), "no", "such", "dir.html"), capturePath}, 1, "no such file or directory"},
		{[]string{"-html", out, filepath.Join(t.TempDir(), "missing.jsonl")}, 1, "no such file or directory"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := runReplay(c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.err) {
			t.Errorf("replay %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr.String(), c.code, c.err)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written by a failed run", out)
	}
}

// TestLessonBadCaptureLine checks that a bad line still gives the page of
// everything before it, and says so.
func TestLessonBadCaptureLine(t *testing.T) {
	lines := goldenLines(t)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(strings.Join(lines[:12], "")+"{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bad.html")
	var stdout, stderr bytes.Buffer
	if code := runReplay([]string{"-html", out, bad}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "bad.jsonl:13:") || !strings.Contains(stderr.String(), out+" shows everything before that line") {
		t.Errorf("stderr %q", stderr.String())
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(arrowRE.FindAllString(string(page), -1)); n == 0 {
		t.Error("the page of a capture with a bad line draws nothing")
	}
}

// chromium runs headless Chromium with a fresh profile, bounded in time,
// and returns its stdout.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	return chromiumWithin(t, 60*time.Second, args...)
}

// chromiumAxeTimeout bounds a Chromium run that runs axe-core: a few
// seconds alone, longer on a machine under load.
const chromiumAxeTimeout = 3 * time.Minute

// chromiumWithin is chromium bounded by timeout.
func chromiumWithin(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	bin := needTool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// innerTextProbe is appended to a test copy of a page (without its CSP):
// it puts the text the browser rendered, as document.body.innerText, into
// the DOM for --dump-dom.
const innerTextProbe = `<script>var p=document.createElement("pre");p.id="rendered-text";p.textContent=document.body.innerText;document.body.appendChild(p)</script>`

func TestLessonInChromium(t *testing.T) {
	needTool(t, "chromium")
	run := recordHostileChat(t)
	frames := replayJSON(t, "-keylog", run.keylog, run.capture)
	page := writeLesson(t, "-keylog", run.keylog, run.capture)
	dir := t.TempDir()
	pagePath := filepath.Join(dir, "lesson.html")
	if err := os.WriteFile(pagePath, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}

	// The page as Chromium built it: no script ran, none was added.
	dom := chromium(t, "--dump-dom", "file://"+pagePath)
	if !strings.Contains(dom, "</html>") {
		t.Fatalf("chromium dumped no page:\n%.500s", dom)
	}
	if n := len(arrowRE.FindAllString(dom, -1)); n != len(frames) {
		t.Errorf("chromium rendered %d arrows for %d frames", n, len(frames))
	}
	if strings.Contains(strings.ToLower(dom), "<script") {
		t.Error("the rendered page has a script element")
	}
	if !strings.Contains(dom, "<title>encchat lesson: session.jsonl</title>") {
		t.Error("the page's title changed")
	}
	for _, s := range hostileTexts {
		if !strings.Contains(dom, domEscape(s)) {
			t.Errorf("the rendered page does not hold %q as text", s)
		}
	}

	// What is visible: the same markup and style, with a probe that reads
	// the rendered text (innerText leaves out what CSS hides).
	probe := strings.Replace(page, `<meta http-equiv="Content-Security-Policy"`, `<meta name="csp-removed-for-the-probe"`, 1)
	probe = strings.Replace(probe, "</body>", innerTextProbe+"</body>", 1)
	probePath := filepath.Join(dir, "probe.html")
	if err := os.WriteFile(probePath, []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	pdom := chromium(t, "--dump-dom", "file://"+probePath)
	m := regexp.MustCompile(`(?s)<pre id="rendered-text">(.*?)</pre>`).FindStringSubmatch(pdom)
	if m == nil {
		t.Fatalf("the probe found no rendered text:\n%.500s", pdom)
	}
	visible := html.UnescapeString(m[1])
	for _, want := range append([]string{"Step 1 · Server RSA Public Key", "HANDSHAKE_OK", "SECURE CHANNEL ESTABLISHED", "PEER: what the endpoint read"}, hostileTexts...) {
		if !strings.Contains(visible, want) {
			t.Errorf("%q is not visible on the rendered page", want)
		}
	}

	// A screenshot, for a person to look at (go test -run TestLessonInChromium -v shows where).
	shot := filepath.Join(dir, "page.png")
	chromium(t, "--hide-scrollbars", "--screenshot="+shot, "--window-size=1200,2000", "file://"+pagePath)
	checkScreenshot(t, shot, 1200, 2000)
	t.Logf("screenshot: %s", shot)
}

// TestLessonOnAPhone renders the golden page 360 CSS pixels wide (in an
// iframe: headless Chromium's window is at least 500 wide): nothing may
// stick out sideways, and the views say which is which.
func TestLessonOnAPhone(t *testing.T) {
	needTool(t, "chromium")
	page, err := os.ReadFile(filepath.Join(lessonTestdata, "keylog.html"))
	if err != nil {
		t.Fatal(err)
	}
	probe := strings.Replace(string(page), `<meta http-equiv="Content-Security-Policy"`, `<meta name="csp-removed-for-the-probe"`, 1)
	probe = strings.Replace(probe, "</body>", `<script>var d=document.documentElement;`+
		`parent.document.body.appendChild(Object.assign(parent.document.createElement("pre"),{id:"width",`+
		`textContent:d.scrollWidth+" "+d.clientWidth+" "+getComputedStyle(document.querySelector(".cell.peer"),"::before").content}))</script></body>`, 1)
	wrapper := `<!DOCTYPE html><html><body style="margin:0"><iframe width="360" height="1600" style="border:0" srcdoc="` +
		html.EscapeString(probe) + `"></iframe></body></html>`
	dir := t.TempDir()
	path := filepath.Join(dir, "phone.html")
	if err := os.WriteFile(path, []byte(wrapper), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := chromium(t, "--window-size=500,1600", "--dump-dom", "file://"+path)
	m := regexp.MustCompile(`<pre id="width">(\d+) (\d+) (.*?)</pre>`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no width measured:\n%.300s", dom)
	}
	if m[1] != m[2] {
		t.Errorf("360px wide, the page is %spx wide in a %spx viewport: it scrolls sideways", m[1], m[2])
	}
	if m[3] != `"PEER"` {
		t.Errorf("on a phone the peer view is labelled %s, want \"PEER\"", m[3])
	}
	shot := filepath.Join(dir, "phone.png")
	chromium(t, "--hide-scrollbars", "--screenshot="+shot, "--window-size=500,1600", "file://"+path)
	checkScreenshot(t, shot, 500, 1600)
	t.Logf("screenshot: %s", shot)
}

// checkScreenshot checks a PNG has the size asked for and is not blank.
func checkScreenshot(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
	colours := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colours) < 20 {
		t.Errorf("screenshot has %d colours: the page looks blank", len(colours))
	}
}

// TestLessonAnswersPairing: the "What leaks" table pairs a client's frame
// with the server frames that answer it: on its connection, or records
// relayed after a record, within half a second; a greeting on another
// connection, or a frame seconds later, starts a row of its own.
func TestLessonAnswersPairing(t *testing.T) {
	o := newHTMLOutput(io.Discard, &replayOptions{view: "sniffer", keys: &replayKeys{}})
	frames := []struct {
		t    float64
		conn int
		dir  wireDir
		kind frameKind
		size int
	}{
		{0.000, 1, wireS2C, kindPublicKey, 450},    // row 1: the server greets conn 1
		{0.001, 1, wireC2S, kindKeyTransport, 256}, // row 2
		{0.002, 1, wireS2C, kindSealed, 44},        //   answered on conn 1
		{0.010, 1, wireC2S, kindSealed, 88},        // row 3: a chat line
		{0.011, 1, wireS2C, kindSealed, 88},        //   relayed to conn 1
		{0.012, 2, wireS2C, kindSealed, 88},        //   and to conn 2
		{2.000, 3, wireS2C, kindPublicKey, 450},    // row 4: conn 3 opens 2 s later
		{2.001, 1, wireS2C, kindSealed, 44},        //   a record right after a greeting: a row of its own (5)
		{3.000, 2, wireC2S, kindSealed, 44},        // row 6
		{3.001, 2, wireS2C, kindSealed, 216},       //   its answer
		{20.00, 2, wireS2C, kindSealed, 108},       // row 7: 17 s later, no answer to row 6
	}
	for i, f := range frames {
		o.traffic(&replayFrame{Num: i + 1, Conn: f.conn, T: f.t, Dir: f.dir, Kind: f.kind, Payload: make([]byte, f.size)})
	}
	var got []string
	for _, b := range o.page.Bursts {
		row := fmt.Sprintf("%d:%d ->", b.From, b.Size)
		for _, s := range b.Sends {
			row += fmt.Sprintf(" %d:%d", s.Conn, s.Size)
		}
		got = append(got, row)
	}
	want := []string{"0:0 -> 1:450", "1:256 -> 1:44", "1:88 -> 1:88 2:88", "0:0 -> 3:450", "0:0 -> 1:44", "2:44 -> 2:216", "0:0 -> 2:108"}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n%q\nwant\n%q", got, want)
	}
}
