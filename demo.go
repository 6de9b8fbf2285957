// encchat demo: the whole lesson in one terminal. A server on a free
// loopback port records the wire and logs the session keys into a temporary
// directory; two scripted clients, alice and bob, connect (showing their
// handshake walk-throughs) and chat; then the capture is replayed as the
// sniffer saw it beside what the peers read, and with the server's private
// key alone; then the attacks with no key (demo_attacks.go); with -html, a
// lesson page of all of it. The server's log is printed among the clients'
// lines in the order things happened. Everything runs in this process and
// is stopped, and the temporary directory removed, before it returns.

//go:build !js

package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fatih/color"
)

// demoWait bounds the wait for any one scripted event.
const demoWait = 10 * time.Second

// The scripted chat.
const (
	demoHello   = "Hello Bob! This message is encrypted!"
	demoPM      = "psst: the answers are in the capture"
	demoGoodbye = "Bye alice, see you in class!"
)

// runDemo is "encchat demo".
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	suite := fs.String("suite", suiteClassic, "`suite` the server speaks: classic or modern")
	htmlPath := fs.String("html", "", "also write the lesson page of the capture to this `file`")
	projector := fs.Bool("projector", false, "with -html: the page on a larger type scale, for a projector")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if *projector && *htmlPath == "" {
		errorf(stderr, "demo: -projector sets the lesson page's type scale; it needs -html OUT")
		return 2
	}
	if *suite != suiteClassic && *suite != suiteModern {
		errorf(stderr, "demo: -suite must be classic or modern, not %q", *suite)
		return 2
	}
	d := &demo{
		suite:  *suite,
		term:   &demoTerm{w: stdout},
		stderr: stderr,
		pal:    newPalette(colorEnabled(false, stdout)),
		pager:  newDemoPager(stdout),
		logged: make(chan struct{}, 1),
		ctx:    ctx,
	}
	d.projector = *projector
	defer d.pager.close()
	d.term.hold = d.pager != nil
	d.stdout = d.term.speaker("", nil)
	d.server = d.term.speaker("server", d.pal.dim)
	var page *os.File
	if *htmlPath != "" {
		// Created first, so that a path that cannot be written fails
		// before the demo rather than after it.
		var err error
		if page, err = createLessonFile(*htmlPath); err != nil {
			errorf(stderr, "%v", err)
			outputHint(stderr, err)
			return 1
		}
	}
	var pageW io.Writer // a nil *os.File in an io.Writer would not be nil
	if page != nil {
		pageW = page
	}
	err := d.run(ctx, pageW, *htmlPath)
	if err == nil && ctx.Err() == nil {
		d.page("")
	}
	if ctx.Err() == nil {
		d.term.unhold() // what led to an error
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // interrupted during a pause
	}
	if page != nil {
		if cerr := page.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("%s: %v", *htmlPath, cerr)
		}
		if err != nil {
			os.Remove(*htmlPath)
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		errorf(stderr, "demo interrupted")
		return 1
	case err != nil:
		errorf(stderr, "demo: %v", err)
		return 1
	}
	return 0
}

// demo is one run of the demo.
type demo struct {
	suite  string
	term   *demoTerm
	stdout *demoSpeaker // the demo's own lines
	server *demoSpeaker // the server's log
	stderr io.Writer
	pal    *palette

	projector bool // -projector: the lesson page on the larger type scale

	// On a terminal the demo waits for Enter before each part after the
	// first; ctx ends a wait.
	pager    *demoPager
	ctx      context.Context
	sections int

	dir, addr string
	key       *rsa.PrivateKey
	fp        string

	// The server's log and the tap's reports, in the order they happened;
	// they are printed where they belong among the clients' lines (see
	// showLogTo and showLogThrough).
	logMu     sync.Mutex
	bg        []demoLogLine
	shown     int           // bg[:shown] are printed
	logged    chan struct{} // signalled at each new line
	attackLog bool          // the attacks' act: the handshakes' steps are left out
}

// demoLogLine is one line of the server's log or the tap's reports.
type demoLogLine struct {
	who  *demoSpeaker
	ev   serverEvent // the server's event; Kind "" for the tap
	text string
}

// File names inside the demo's temporary directory; they show in the
// replay's output and on the lesson page.
const (
	demoCapture = "chat.jsonl"
	demoKeylog  = "keys.log"
	demoKeyName = "server.pem"

	demoAttackCapture = "attacks.jsonl" // part 7's servers
	demoAttackKeylog  = "attacks.log"
	demoPageCapture   = "demo.jsonl" // the capture of the lesson page: both of the above
)

func (d *demo) run(ctx context.Context, page io.Writer, pageName string) (err error) {
	d.dir, err = os.MkdirTemp("", "encchat-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(d.dir)

	d.printf("encchat demo: a server, two clients and a sniffer in one terminal (%s suite)\n", d.suite)
	d.section("1. The server starts, recording the wire")
	if d.key, err = rsa.GenerateKey(rand.Reader, rsaBits); err != nil {
		return err
	}
	d.fp = fingerprint(&d.key.PublicKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	d.addr = ln.Addr().String()
	rec, kl, closeFiles, err := openRecordFiles(filepath.Join(d.dir, demoCapture), filepath.Join(d.dir, demoKeylog), "server", d.addr)
	if err != nil {
		ln.Close()
		return err
	}
	srv, err := newServer(serverConfig{Key: d.key, Suite: d.suite, Record: rec, Keylog: kl, Log: d.logEvent})
	if err != nil {
		ln.Close()
		closeFiles()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var serveErr error
	stopServer := sync.OnceFunc(func() {
		srv.Shutdown()
		serveErr = <-served
		closeFiles()
	})
	defer stopServer()

	fmt.Fprintf(d.server, "listening on %s, %s\n", d.addr, suiteDescription(d.suite))
	fmt.Fprintf(d.server, "key: RSA-2048 %s (the clients pin it with -fingerprint, as if read off the banner)\n", d.fp)
	fmt.Fprintf(d.server, "recording the wire to %s and the session keys to %s, in a temporary directory\n", demoCapture, demoKeylog)

	var peers []*demoPeer
	defer func() {
		for _, p := range peers {
			p.close()
		}
	}()
	connect := func(name string, c *color.Color) (*demoPeer, error) {
		p, err := d.connect(ctx, name, c)
		if p != nil {
			peers = append(peers, p)
		}
		d.showLog()
		return p, err
	}

	d.section("2. alice connects: the handshake, step by step")
	alice, err := connect("alice", d.pal.own)
	if err != nil {
		return err
	}
	d.section("3. bob connects")
	bob, err := connect("bob", d.pal.private)
	if err != nil {
		return err
	}
	d.section("4. They chat: a greeting, a private message, /list, goodbye")
	steps := []func() error{
		func() error { return alice.expect(ctx, "bob joined") },
		func() error { return alice.say(demoHello) },
		func() error { return alice.expect(ctx, "alice: "+demoHello) },
		func() error { return bob.expect(ctx, "alice: "+demoHello) },
		func() error { return bob.say("/pm alice " + demoPM) },
		func() error { return alice.expect(ctx, "[PM from bob] "+demoPM) },
		func() error { return bob.expect(ctx, "[PM to alice] "+demoPM) },
		func() error { return alice.say("/list") },
		func() error { return alice.expect(ctx, "Online Users (2)") },
		func() error { return bob.say(demoGoodbye) },
		func() error { return bob.expect(ctx, "bob: "+demoGoodbye) },
		func() error { return alice.expect(ctx, "bob: "+demoGoodbye) },
		func() error { return bob.say("/quit") },
		func() error { return bob.waitClosed(ctx) },
		func() error { return d.showLogThrough(ctx, 0, evLeave, "bob left") },
		func() error { return alice.expect(ctx, "bob left") },
		func() error { return alice.say("/quit") },
		func() error { return alice.waitClosed(ctx) },
		func() error { return d.showLogThrough(ctx, 0, evLeave, "alice left") },
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
	}
	stopServer()
	d.showLog()
	if serveErr != nil {
		return serveErr
	}

	capturePath := filepath.Join(d.dir, demoCapture)
	entries, err := d.readKeylog()
	if err != nil {
		return err
	}
	d.section("5. The capture: what a sniffer saw, beside what the peers read")
	d.printf("(encchat replay -keylog %s %s)\n\n", demoKeylog, demoCapture)
	opts := &replayOptions{name: demoCapture, view: "both", keys: &replayKeys{keylog: entries, keylogName: demoKeylog}}
	opts.width, opts.color = terminalLayout(d.term.w)
	if err := d.replay(capturePath, opts, newTextOutput(d.stdout, opts)); err != nil {
		return err
	}

	d.section("6. Later, the server's private key is stolen")
	d.printf("(encchat replay -rsa-key %s %s)\n\n", demoKeyName, demoCapture)
	stolen := &replayKeys{rsa: d.key, rsaName: demoKeyName, rsaFP: d.fp}
	tally := &demoTally{}
	if err := d.replay(capturePath, &replayOptions{name: demoCapture, view: "peer", keys: stolen}, tally); err != nil {
		return err
	}
	d.stolenKey(tally)

	if err := d.attacks(ctx, "7. An attacker with no key: a message rewritten, a session replayed"); err != nil {
		return err
	}

	if page != nil {
		d.section("8. The lesson page")
		// The page is of the whole demo: the chat, then the attacks'
		// servers (part 7), in one capture.
		pagePath := filepath.Join(d.dir, demoPageCapture)
		if err := mergeCaptures(pagePath, d.addr, capturePath, filepath.Join(d.dir, demoAttackCapture)); err != nil {
			return err
		}
		attackKeys, err := readDemoKeylog(filepath.Join(d.dir, demoAttackKeylog))
		if err != nil {
			return err
		}
		all := append(append(keylogEntries(nil), entries...), attackKeys...)
		both := &replayKeys{keylog: all, keylogName: demoKeylog + " and " + demoAttackKeylog, rsa: d.key, rsaName: demoKeyName, rsaFP: d.fp}
		opts := &replayOptions{name: demoPageCapture, view: "both", keys: both, projector: d.projector}
		o := newHTMLOutput(page, opts)
		if err := d.replay(pagePath, opts, o); err != nil {
			return err
		}
		d.printf("(the capture of parts 2 to 4, then of part 7's servers)\n")
		d.printf("wrote %s: %d connections, %d frames, %d records decrypted; open it in a browser\n", pageName, o.page.Stats.Conns, o.page.Stats.Frames, o.page.Stats.Decrypted)
	}

	d.section("Try it in three terminals")
	if d.suite == suiteModern {
		d.printf("  encchat server -suite modern -record chat.jsonl -keylog keys.log   # terminal 1\n")
		d.printf("  encchat client -suite modern -name alice                           # terminal 2\n")
		d.printf("  encchat client -suite modern -name bob                             # terminal 3\n")
		d.printf("  encchat replay -keylog keys.log chat.jsonl                         # afterwards\n")
	} else {
		d.printf("  encchat server -record chat.jsonl -keylog keys.log   # terminal 1\n")
		d.printf("  encchat client -name alice                           # terminal 2\n")
		d.printf("  encchat client -name bob                             # terminal 3\n")
		d.printf("  encchat replay -keylog keys.log chat.jsonl           # afterwards\n")
	}
	d.printf("  encchat replay -html lesson.html -keylog keys.log chat.jsonl\n")
	return nil
}

// printf is the demo's own words; what was logged before them is shown first.
func (d *demo) printf(format string, args ...any) {
	if !d.stopped() {
		d.showLog()
		fmt.Fprintf(d.stdout, format, args...)
	}
}

// stopped reports whether the demo was interrupted (during a pause, the
// script's next step has not seen it yet): nothing more is printed.
func (d *demo) stopped() bool { return d.ctx != nil && d.ctx.Err() != nil }

// section starts a part of the demo with a rule.
func (d *demo) section(title string) {
	if d.sections++; d.sections > 1 && d.pager != nil {
		d.printf("\n")
		prompt := fmt.Sprintf("  press Enter for %s (Ctrl-C stops the demo) ", title)
		d.page(prompt)
		d.pager.wait(d.ctx, d.term.w, d.pal.dim.Sprint(prompt))
	}
	if d.stopped() {
		return
	}
	rule := strings.Repeat("─", max(3, 70-len([]rune(title))-4))
	d.printf("\n%s\n\n", d.pal.system.Sprint("── "+title+" "+rule))
}

// logEvent is the server's log. It is printed among the clients' lines in
// the order things happened: see showLogTo and showLogThrough.
func (d *demo) logEvent(ev serverEvent) {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	if d.attackLog && ev.Kind == evHandshake && !strings.Contains(ev.Text, "✓") {
		return // the earlier parts showed the handshake's steps
	}
	d.addLogLocked(demoLogLine{who: d.server, ev: ev, text: fmt.Sprintf("[%s] [%s] %s", ev.Time.Format("15:04:05"), ev.Kind, sanitizeText(ev.Text))})
}

// tapReport is a line of the tap's, kept in order with the server's log.
func (d *demo) tapReport(who *demoSpeaker, text string) {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	d.addLogLocked(demoLogLine{who: who, text: printable(text)})
}

func (d *demo) addLogLocked(l demoLogLine) {
	d.bg = append(d.bg, l)
	select {
	case d.logged <- struct{}{}:
	default:
	}
}

// logMark is the place in the log now: a client line taken at this moment
// comes after every log line before the mark.
func (d *demo) logMark() int {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return len(d.bg)
}

// showLog prints every log line not printed yet.
func (d *demo) showLog() { d.showLogTo(-1) }

// showLogTo prints the log lines before mark (-1: all) not printed yet.
func (d *demo) showLogTo(mark int) {
	d.logMu.Lock()
	if mark < 0 || mark > len(d.bg) {
		mark = len(d.bg)
	}
	var lines []demoLogLine
	if mark > d.shown {
		lines = append(lines, d.bg[d.shown:mark]...)
		d.shown = mark
	}
	d.logMu.Unlock()
	for _, l := range lines {
		fmt.Fprintln(l.who, l.text)
	}
}

// showLogThrough waits until the server has logged an event of kind
// holding text at or after log line from, and prints the log through it
// (nothing, when it was printed already). The server logs some events
// after the frame they report has gone (a key sent, a join, a leave, which
// it logs after telling the others): the line of the client who got the
// frame waits for the log line, so the two read in the order they happened.
func (d *demo) showLogThrough(ctx context.Context, from int, kind eventKind, text string) error {
	t := time.NewTimer(demoWait)
	defer t.Stop()
	for {
		d.logMu.Lock()
		at := -1
		for i := from; i < len(d.bg); i++ {
			if ev := d.bg[i].ev; ev.Kind == kind && strings.Contains(ev.Text, text) {
				at = i
				break
			}
		}
		d.logMu.Unlock()
		if at >= 0 {
			d.showLogTo(at + 1)
			return nil
		}
		select {
		case <-d.logged:
		case <-t.C:
			d.showLog()
			return fmt.Errorf("the server did not log [%s] %s", kind, text)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dropLog forgets the log lines not printed yet.
func (d *demo) dropLog() {
	d.logMu.Lock()
	d.bg = d.bg[:d.shown]
	d.logMu.Unlock()
}

func (d *demo) readKeylog() (keylogEntries, error) {
	return readDemoKeylog(filepath.Join(d.dir, demoKeylog))
}

func readDemoKeylog(path string) (keylogEntries, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseKeylog(f)
}

// mergeCaptures writes to dst one capture, recorded by the server at
// addr, of the connections of each of srcs in turn (encchat captures),
// numbered on from 1, each at its time from the first capture's start.
func mergeCaptures(dst, addr string, srcs ...string) (err error) {
	files := make([]*captureReader, len(srcs))
	for i, src := range srcs {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		if files[i], err = newCaptureReader(f); err != nil {
			return fmt.Errorf("%s: %v", filepath.Base(src), err)
		}
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	clock := files[0].Started
	c := newCapture(out, "server", addr, func() time.Time { return clock })
	defer func() {
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}()
	var ev captureEvent
	for _, cr := range files {
		conns := map[int]*capConn{}
		for {
			if err := cr.next(&ev); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			clock = cr.Started.Add(time.Duration(ev.T * float64(time.Second)))
			switch ev.Kind {
			case capOpen:
				conns[ev.Conn] = c.open(ev.Client, ev.Server)
			case capData:
				conns[ev.Conn].data(ev.Dir, ev.Data)
			case capClose:
				conns[ev.Conn].close()
			}
		}
	}
	return nil
}

// replay replays the capture at path into out.
func (d *demo) replay(path string, opts *replayOptions, out replayOutput) error {
	if d.stopped() {
		return d.ctx.Err()
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return replayCapture(f, opts, out)
}

// stolenKey says what the server's private key alone made of the capture.
func (d *demo) stolenKey(t *demoTally) {
	for _, n := range t.notes {
		d.printf("  %s\n", n)
	}
	if sealed := t.stats.decrypted + t.stats.undecrypted; t.stats.decrypted > 0 {
		d.printf("\n  %d of %d sealed records decrypted with %s alone.\n", t.stats.decrypted, sealed, demoKeyName)
	} else {
		d.printf("\n  Nothing in the %d frames decrypted with %s alone.\n", t.stats.frames, demoKeyName)
	}
	if d.suite == suiteModern {
		d.printf("  The modern suite's session keys came from an ephemeral X25519 + ML-KEM-768 exchange that\n  nobody recorded: the server's key only signed the handshake. That is forward secrecy.\n")
		return
	}
	d.printf("  What the clients typed, recovered from the recording:\n")
	for _, s := range t.typed {
		d.printf("    %s\n", s)
	}
	d.printf("  RSA key transport has no forward secrecy: a recording today plus the key tomorrow reads everything.\n")
}

// demoTally is a replay view that keeps the notes, the counts, and the
// texts the clients sent.
type demoTally struct {
	notes []string
	typed []string
	stats replayStats
}

func (t *demoTally) begin(captureHeader, time.Time)   {}
func (t *demoTally) open(*replayConn)                 {}
func (t *demoTally) close(*replayConn, float64, bool) {}
func (t *demoTally) flush() error                     { return nil }
func (t *demoTally) end(s replayStats)                { t.stats = s }
func (t *demoTally) note(_ *replayConn, s string)     { t.notes = append(t.notes, printable(s)) }

func (t *demoTally) frame(f *replayFrame) {
	for _, n := range f.Notes {
		t.notes = append(t.notes, printable(n))
	}
	if f.HasText && f.Dir == wireC2S {
		t.typed = append(t.typed, fmt.Sprintf("#%-3d conn %d: %s", f.Num, f.Conn, printable(string(f.Text))))
	}
}
