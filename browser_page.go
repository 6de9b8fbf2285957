// The browser client's page: its controls (Name, Join, Message, Send), the
// chat log, the wire panel and the state the page is in, written through
// syscall/js. Every text goes in as text (textContent), never as markup.

//go:build js

package main

import (
	"encoding/base64"
	"fmt"
	"strings"
	"syscall/js"
	"unicode/utf8"
)

// pageUI is the page's elements.
type pageUI struct {
	doc, body               js.Value
	name, join, msg, send   js.Value
	log, wire, status, hint js.Value
	forget, wireBox         js.Value
	funcs                   []js.Func // kept for the page's life
	lastTab                 string    // the line a Tab last listed completions for
}

func newPageUI() *pageUI {
	doc := js.Global().Get("document")
	id := func(s string) js.Value { return doc.Call("getElementById", s) }
	return &pageUI{
		doc: doc, body: doc.Get("body"),
		name: id("name"), join: id("join"), msg: id("message"), send: id("send"),
		log: id("log"), wire: id("wire-rows"), status: id("status"), hint: id("completions"),
		forget: id("forget"), wireBox: id("wire-box"),
	}
}

// on adds a listener that calls f; f must not block.
func (ui *pageUI) on(el js.Value, event string, f func(ev js.Value)) {
	fn := js.FuncOf(func(this js.Value, args []js.Value) any {
		f(args[0])
		return nil
	})
	ui.funcs = append(ui.funcs, fn)
	el.Call("addEventListener", event, fn)
}

// Page states, in body's data-state: the tests wait on them.
const (
	stateReady      = "ready"      // a name can be typed and joined
	stateConnecting = "connecting" // the handshake is running
	stateJoined     = "joined"     // in the chat
)

// setState enables the controls of state s and says it in the status line.
func (ui *pageUI) setState(s, status string) {
	ds := ui.body.Get("dataset")
	ds.Set("state", s)
	// When the page first reached each state, in ms since it was opened:
	// the time to "joined" is measured from these.
	if at := s + "At"; ds.Get(at).IsUndefined() {
		ds.Set(at, fmt.Sprintf("%.0f", js.Global().Get("performance").Call("now").Float()))
	}
	ui.name.Set("disabled", s != stateReady)
	ui.join.Set("disabled", s != stateReady)
	ui.msg.Set("disabled", s != stateJoined)
	ui.send.Set("disabled", s != stateJoined)
	ui.status.Set("textContent", status)
	switch s {
	case stateJoined:
		ui.msg.Call("focus")
	case stateReady:
		ui.name.Call("focus")
	}
}

// line adds one line to the chat log, of a kind the style sheet knows
// (system, pm, error, own, step, ok, warn, rule).
func (ui *pageUI) line(kind, text string) {
	div := ui.doc.Call("createElement", "div")
	div.Set("className", "line "+kind)
	div.Set("textContent", text)
	appendFollowing(ui.log, ui.log, div)
}

// appendFollowing appends child to parent, and keeps the scrolling box at
// its end if it was there: a reader who scrolled back is left reading.
func appendFollowing(box, parent, child js.Value) {
	atEnd := box.Get("scrollTop").Float()+box.Get("clientHeight").Float() >= box.Get("scrollHeight").Float()-40
	parent.Call("appendChild", child)
	if atEnd {
		box.Set("scrollTop", box.Get("scrollHeight"))
	}
}

// rule is one of the walk-through's ruled titles.
func (ui *pageUI) rule(title string) { ui.line("rule", title) }

// step shows one step of the handshake walk-through, as the terminal
// client prints it.
func (ui *pageUI) step(st handshakeStep) {
	const indent = "      "
	if st.N > 0 {
		ui.line("step", fmt.Sprintf("[%d/%d] %s", st.N, st.Total, sanitizeText(st.Title)))
	}
	for _, r := range st.Results {
		r = sanitizeText(r)
		if strings.Contains(r, "NOT CHECKED") {
			ui.line("warn", indent+"! "+r)
			continue
		}
		ui.line("ok", indent+"✓ "+r)
	}
}

// wireRow adds one frame to the wire panel. The row carries the frame's
// bytes in data attributes (direction, header, payload in base64) as well
// as in its cells.
func (ui *pageUI) wireRow(r wireRow) {
	doc := ui.doc
	tr := doc.Call("createElement", "tr")
	tr.Set("className", r.Dir.String())
	ds := tr.Get("dataset")
	ds.Set("dir", r.Dir.String())
	header := string(appendFrameHeader(nil, len(r.Payload)))
	if r.Problem != "" && r.What == "" {
		header = ""
	}
	ds.Set("header", header)
	ds.Set("payload", base64.StdEncoding.EncodeToString(r.Payload))
	cell := func(label, cls, text string) js.Value {
		td := doc.Call("createElement", "td")
		td.Get("dataset").Set("label", label)
		if cls != "" {
			td.Set("className", cls)
		}
		td.Set("textContent", text)
		tr.Call("appendChild", td)
		return td
	}
	th := doc.Call("createElement", "th")
	th.Set("scope", "row")
	th.Get("dataset").Set("label", "#")
	th.Set("textContent", fmt.Sprint(r.N))
	tr.Call("appendChild", th)
	dir := "→ sent"
	if r.Dir == wireS2C {
		dir = "← received"
	}
	cell("Direction", "dir", dir)
	cell("Header", "mono", header)
	cell("Size", "num", fmt.Sprint(len(r.Payload), " ", plural(len(r.Payload), "byte", "bytes")))
	cell("IV", "mono iv", r.IV)

	// The bytes: as text when they are printable ASCII (a PEM key, a classic
	// record's base64), else in base64; long ones fold.
	shown, how := string(r.Payload), "as ASCII"
	if !printableASCII(shown, true) {
		shown, how = base64.StdEncoding.EncodeToString(r.Payload), "in base64"
	}
	td := cell("On the wire", "bytes", "")
	if utf8.RuneCountInString(shown) <= 64 {
		code := doc.Call("createElement", "code")
		code.Set("className", "payload")
		code.Set("textContent", shown)
		td.Call("appendChild", code)
	} else {
		det := doc.Call("createElement", "details")
		sum := doc.Call("createElement", "summary")
		sum.Set("textContent", fmt.Sprintf("%s… (%d characters %s)", shown[:40], len(shown), how))
		code := doc.Call("createElement", "code")
		code.Set("className", "payload")
		code.Set("textContent", shown)
		det.Call("appendChild", sum)
		det.Call("appendChild", code)
		td.Call("appendChild", det)
	}

	carries := cell("Carries", "carries", "")
	what := r.What
	if len(r.Details) > 0 {
		what += " · " + strings.Join(r.Details, " · ")
	}
	if what != "" {
		p := doc.Call("createElement", "span")
		p.Set("className", "what")
		p.Set("textContent", sanitizeText(what))
		carries.Call("appendChild", p)
	}
	if r.HasText {
		q := doc.Call("createElement", "span")
		q.Set("className", "text")
		q.Set("textContent", r.Text)
		carries.Call("appendChild", q)
	}
	if r.Problem != "" {
		q := doc.Call("createElement", "span")
		q.Set("className", "problem")
		q.Set("textContent", sanitizeText(r.Problem))
		carries.Call("appendChild", q)
	}
	appendFollowing(ui.wireBox, ui.wire, tr)
}

// clearWire empties the wire panel for a new connection.
func (ui *pageUI) clearWire() { ui.wire.Set("textContent", "") }

// showForget shows the button that forgets addr's pin; f runs on click.
func (ui *pageUI) showForget(addr string) {
	ui.forget.Set("textContent", "Forget the pin for "+addr)
	ui.forget.Set("hidden", false)
}

// hideForget hides it again.
func (ui *pageUI) hideForget() { ui.forget.Set("hidden", true) }

// complete handles Tab in the Message field: it completes a command or a
// name as the terminal client does (completions, repl_roster.go). It
// keeps the focus only when it changed the line or listed the choices for
// the first time: a second Tab on the same line moves on, so the field
// never traps the keyboard.
func (ui *pageUI) complete(ev js.Value, names func() []string) {
	if ev.Get("key").String() != "Tab" || ev.Get("shiftKey").Bool() || ev.Get("altKey").Bool() || ev.Get("ctrlKey").Bool() {
		if ev.Get("key").String() != "Shift" {
			ui.lastTab = ""
		}
		return
	}
	value := ui.msg.Get("value").String()
	pos := ui.msg.Get("selectionStart").Int()
	head := string([]rune(value)[:min(pos, utf8.RuneCountInString(value))])
	opts, _ := completions(head, names())
	add := commonPrefix(opts)
	switch {
	case add != "":
		rest := string([]rune(value)[len([]rune(head)):])
		ui.msg.Set("value", head+add+rest)
		p := len([]rune(head + add))
		ui.msg.Call("setSelectionRange", p, p)
		ui.hint.Set("textContent", "")
		ui.lastTab = ""
		ev.Call("preventDefault")
	case len(opts) > 1 && ui.lastTab != value:
		var list []string
		for _, o := range opts {
			list = append(list, strings.TrimSpace(lastWord(head)+string(o)))
		}
		ui.hint.Set("textContent", "Completions: "+strings.Join(list, ", "))
		ui.lastTab = value
		ev.Call("preventDefault")
	}
}

// commonPrefix is what every completion starts with.
func commonPrefix(opts [][]rune) string {
	if len(opts) == 0 {
		return ""
	}
	p := opts[0]
	for _, o := range opts[1:] {
		n := 0
		for n < len(p) && n < len(o) && p[n] == o[n] {
			n++
		}
		p = p[:n]
	}
	return string(p)
}

// lastWord is the word the cursor is in: what a completion continues.
func lastWord(head string) string {
	if i := strings.LastIndexByte(head, ' '); i >= 0 {
		return head[i+1:]
	}
	return head
}
