// The browser client's entry point (GOOS=js GOARCH=wasm): a name, then
// Join; the handshake over a WebSocket to the page's own server, with the
// walk-through the terminal client prints; then the chat, with /pm, /list,
// /help, /quit and Tab completion. The session code is the terminal
// client's (session.go, classic.go, modern*.go), the suite follows the
// server's (auto), and pins live in the browser's storage (browser_pins.go).

//go:build js

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall/js"
	"time"

	"github.com/coder/websocket"
)

// How long the page waits for the WebSocket to open, and for the replies
// in flight after /quit (as the terminal client's dialTimeout and quitGrace).
const (
	browserDialTimeout = 5 * time.Second
	browserQuitGrace   = 500 * time.Millisecond
)

// browserClient is the page's one client.
type browserClient struct {
	ui    *pageUI
	host  string // the page's host:port: the server, as pins name it
	url   string // its WebSocket
	list  atomic.Pointer[roster]
	joins chan string
	lines chan string
}

func main() {
	loc := js.Global().Get("location")
	scheme := "ws://"
	if loc.Get("protocol").String() == "https:" {
		scheme = "wss://"
	}
	c := &browserClient{
		ui:    newPageUI(),
		host:  loc.Get("host").String(),
		joins: make(chan string, 1),
		lines: make(chan string, 64),
	}
	c.url = scheme + c.host + "/ws"
	c.list.Store(&roster{})
	ui := c.ui
	ui.on(ui.name.Get("form"), "submit", func(ev js.Value) {
		ev.Call("preventDefault")
		select {
		case c.joins <- ui.name.Get("value").String():
		default:
		}
	})
	ui.on(ui.msg.Get("form"), "submit", func(ev js.Value) {
		ev.Call("preventDefault")
		line := ui.msg.Get("value").String()
		select {
		case c.lines <- line:
			ui.msg.Set("value", "")
			ui.hint.Set("textContent", "")
		default: // the line stays in the field
			ui.line("system", waitingText(len(c.lines)))
		}
	})
	ui.on(ui.msg, "keydown", func(ev js.Value) { ui.complete(ev, func() []string { return c.list.Load().others() }) })
	ui.on(ui.forget, "click", func(js.Value) {
		if err := (browserPins{}).forget(c.host); err != nil {
			ui.line("error", "encchat: forgetting the pin: "+err.Error())
			return
		}
		ui.hideForget()
		ui.line("system", "The pin for "+c.host+" is forgotten: the next Join trusts whatever key the server sends, and pins it.")
	})
	ui.setState(stateReady, "Ready: type a name and press Join.")
	for name := range c.joins {
		c.run(strings.TrimSpace(name))
		ui.setState(stateReady, "Not connected: type a name and press Join to join again.")
	}
}

// run joins as name and chats until the session ends.
func (c *browserClient) run(name string) {
	ui := c.ui
	if err := validateName(name); err != nil {
		ui.line("error", fmt.Sprintf("encchat: invalid username %q: %v", sanitizeText(name), err))
		ui.line("hint", fmt.Sprintf("hint: 1-%d letters, digits, _ - . (not system or server)", maxNameLen))
		return
	}
	ui.setState(stateConnecting, "Connecting to "+c.host+"…")
	ui.hideForget()
	ui.clearWire()
	list := &roster{self: name}
	c.list.Store(list)

	ui.line("plain", "Connecting to server at "+c.url+"...")
	ctx, cancel := context.WithTimeout(context.Background(), browserDialTimeout)
	ws, _, err := websocket.Dial(ctx, c.url, nil)
	cancel()
	if err != nil {
		ui.line("error", fmt.Sprintf("encchat: cannot connect to %s: %v", c.url, err))
		ui.line("hint", "hint: is the server still running? reload the page once it is")
		return
	}
	ui.line("ok", "✓ WebSocket connection established")
	ui.rule(handshakeTitle)

	connCtx, stop := context.WithCancel(context.Background())
	defer stop()
	tap := newWireTap(websocket.NetConn(connCtx, ws, websocket.MessageBinary), ui.wireRow)
	cs, err := clientHandshake(tap, clientConfig{
		Name: name, Addr: c.host, Pins: browserPins{}, Keylog: tap.keylog(),
		Step: func(st handshakeStep) {
			ui.step(st)
			tap.flush()
		},
		HelloTimeout: helloTimeout,
	})
	tap.goLive()
	if err != nil {
		tap.end()
		c.handshakeFailed(err)
		return
	}
	defer tap.end()
	defer cs.Close()

	cipher := "All communication will be encrypted with AES-256"
	if cs.Suite == suiteModern {
		cipher = "All communication will be encrypted with AES-256-GCM (forward secret)"
	}
	ui.rule(securedTitle)
	ui.line("plain", cipher)
	welcome := sanitizeForTerminal(cs.Welcome())
	list.observe(welcome)
	ui.line("system", welcome)
	ui.line("hint", "Type a message and press Enter. Commands: /pm NAME TEXT, /list, /help, /quit (Tab completes).")
	ui.setState(stateJoined, "Joined as "+name+" ("+cs.Suite+" suite).")
	c.chat(cs, list)
}

// chat sends the typed lines and shows the server's texts until the user
// quits or the connection ends.
func (c *browserClient) chat(cs *clientSession, list *roster) {
	ui := c.ui
	var sawShutdown atomic.Bool
	recvDone := make(chan error, 1)
	go func() {
		for {
			text, err := cs.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			text = sanitizeForTerminal(text)
			if text == shutdownText {
				sawShutdown.Store(true)
			}
			list.observe(text)
			ui.line(textKind(text, list.self), text)
		}
	}()
	ob := newOutbox(cs.Send, outboxNotice, func(n int) {
		ui.line("system", "["+time.Now().Format("15:04:05")+"] "+waitingText(n))
	})
	for {
		select {
		case line := <-c.lines:
			text := strings.TrimSpace(line)
			if text == "" {
				continue
			}
			if cmd, _, _ := strings.Cut(text, " "); cmd == "/help" {
				ui.line("system", helpText())
				continue
			}
			ob.push(text)
			if text == "/quit" {
				ob.close()
				<-ob.done
				c.leave(cs, recvDone)
				ui.line("system", "You left the chat.")
				return
			}
		case <-ob.failed:
			cs.Close()
			c.gone(<-recvDone, false)
			return
		case err := <-recvDone:
			ob.close()
			cs.Close()
			<-ob.done
			c.gone(err, sawShutdown.Load())
			return
		}
	}
}

// leave waits a moment for the replies in flight and the server's close.
func (c *browserClient) leave(cs *clientSession, recvDone chan error) {
	t := time.NewTimer(browserQuitGrace)
	defer t.Stop()
	select {
	case <-recvDone:
	case <-t.C:
		cs.Close()
		<-recvDone
	}
}

// gone says why the session ended without the user asking.
func (c *browserClient) gone(err error, shutdown bool) {
	if shutdown {
		c.ui.line("system", "the server shut down; disconnected")
		return
	}
	why := "connection to the server closed"
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		why += ": " + sanitizeText(err.Error())
	}
	c.ui.line("error", "encchat: "+why)
}

// handshakeFailed explains a failed handshake, as the terminal client does.
func (c *browserClient) handshakeFailed(err error) {
	ui := c.ui
	var mismatch *keyMismatchError
	var downgrade *downgradeError
	var refused *refusedError
	var notChat *notChatServerError
	switch {
	case errors.As(err, &mismatch):
		at := strings.Repeat("@", 40)
		ui.line("warn", at)
		ui.line("warn", "WARNING: SERVER KEY HAS CHANGED!")
		ui.line("warn", at)
		ui.line("error", "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!")
		ui.line("error", "Someone could be reading your chat right now (man-in-the-middle), or the server's key has just been changed.")
		ui.line("error", fmt.Sprintf("The key of %s does not match %s:", sanitizeText(mismatch.Addr), sanitizeText(mismatch.Source)))
		ui.line("error", "  expected "+sanitizeText(mismatch.Want))
		ui.line("error", "  got      "+sanitizeText(mismatch.Got))
		ui.line("error", "encchat: the key of "+sanitizeText(mismatch.Addr)+" has changed: the connection was closed before your username was sent")
		ui.line("hint", "hint: if the change is expected (the server made a new key), ask the teacher, then forget the old pin with the button below")
		ui.showForget(c.host)
	case errors.As(err, &downgrade):
		ui.line("error", "encchat: "+sanitizeText(downgrade.Error()))
		ui.line("hint", "hint: if "+sanitizeText(downgrade.Addr)+" really went back to the classic suite, forget its pin with the button below")
		ui.showForget(c.host)
	case errors.As(err, &refused):
		ui.line("error", "encchat: "+sanitizeText(refused.Error()))
		if refused.Text == nameTakenText {
			ui.line("hint", "hint: someone with that name is online; pick another")
		}
	case errors.As(err, &notChat):
		ui.line("error", "encchat: "+sanitizeText(notChat.Error()))
	default:
		ui.line("error", "encchat: handshake with "+c.host+" failed: "+sanitizeText(err.Error()))
	}
}

// browserStampRE matches the server's "[HH:MM:SS] " prefix.
var browserStampRE = regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] `)

// textKind is how the page shows a server text: system, pm, error, own or
// plain, from the server's own prefixes, as the terminal client colours
// them (a chat line always starts with "[time] NAME: ").
func textKind(text, self string) string {
	body := browserStampRE.ReplaceAllLiteralString(text, "")
	switch {
	case strings.HasPrefix(body, "[SYSTEM]"), strings.HasPrefix(body, "[HELP]"), strings.HasPrefix(body, "\n"+separator):
		return "system"
	case strings.HasPrefix(body, "[PM "):
		return "pm"
	case strings.HasPrefix(body, "[ERROR]"), strings.HasPrefix(body, "ERROR:"):
		return "error"
	case body != text && strings.HasPrefix(body, self+": "):
		return "own"
	}
	return "plain"
}
