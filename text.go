// The chat's texts and rules: the seed's server texts byte for byte, the
// username rules, the removal of control characters, the command table
// that drives /help and the client's completion, and the text helpers the
// views share (plural, printable, truncateRunes, hexPreview).

package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits and texts of the chat layer.
const (
	maxNameLen     = 32
	maxTextLen     = 4096
	separator      = "=================================================="
	shutdownText   = "[SYSTEM] Server shutting down"
	serverFullText = "ERROR: Server full"
	nameTakenText  = "ERROR: Username already taken"
	tooManyText    = "ERROR: Too many connections from your address"
	slowDownText   = "[SYSTEM] Slow down: your lines are being delayed"
)

// waitingText is the client's own notice that its lines are not going out.
func waitingText(n int) string {
	if n == 1 {
		return "[SYSTEM] 1 line is waiting to be sent"
	}
	return fmt.Sprintf("[SYSTEM] %d lines are waiting to be sent", n)
}

// floodedText is the last text a client gets when it was slowed without a
// break for longer than the server allows.
func floodedText(rate float64, paced time.Duration) string {
	return fmt.Sprintf("[ERROR] Disconnected: your lines were held back for %s without a break (the limit is %g lines/s, a long line to many counting as more)", paced, rate)
}

// chatCommands drives the server's /help and the client's completion.
var chatCommands = []struct{ name, args, help string }{
	{"/pm", "<username> <message>", "send a private message"},
	{"/list", "", "show who is online"},
	{"/help", "", "show the commands"},
	{"/quit", "", "leave the chat"},
}

// helpText lists chatCommands: the server's answer to /help, and the
// client's own.
func helpText() string {
	var b strings.Builder
	b.WriteString("[HELP] Commands:")
	for _, c := range chatCommands {
		b.WriteString("\n  " + strings.TrimSpace(c.name+" "+c.args) + " - " + c.help)
	}
	return b.String()
}

// silentHangUp says why a client may close right after the server's first
// frame without sending a byte: what the server can tell of a refusal.
func silentHangUp(suite string) string {
	if suite == suiteModern {
		return "after the server hello and before the client sent a byte: the client refused the key " +
			"(its pin or -fingerprint names another), or it cannot read a modern hello " +
			"(the seed's client speaks only the classic suite: run the server without -suite modern for it)"
	}
	return "after the server's public key and before the client sent a byte: the client refused the key " +
		"(its pin or -fingerprint names another), or refused the classic suite (-suite modern)"
}

// validateName applies the username rules; the error says why.
func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case !utf8.ValidString(name):
		return errors.New("not UTF-8")
	case utf8.RuneCountInString(name) > maxNameLen:
		return fmt.Errorf("longer than %d characters", maxNameLen)
	case strings.EqualFold(name, "system") || strings.EqualFold(name, "server"):
		return fmt.Errorf("%q is reserved", name)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return fmt.Errorf("%q is not allowed (letters, digits, _ - . only)", r)
		}
	}
	return nil
}

// isControl reports the runes that must never reach a terminal: C0, DEL,
// C1 and the Unicode bidi controls.
func isControl(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// sanitizeText removes control characters from one line of chat text.
func sanitizeText(s string) string {
	if printableASCII(s, false) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
}

// sanitizeForTerminal is sanitizeText that keeps line breaks, for the
// server's multi-line texts (welcome, /list) on the client's screen.
func sanitizeForTerminal(s string) string {
	if printableASCII(s, true) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if isControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
}

// printableASCII reports whether s is printable ASCII (and line breaks, when
// allowed): the common case, returned unchanged without decoding runes.
func printableASCII(s string, newlines bool) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 || c > 0x7e) && (c != '\n' || !newlines) {
			return false
		}
	}
	return true
}

// welcomeText is the seed's welcome, byte for byte.
func welcomeText(name string) string {
	return "\n" + separator + "\n✓ Secure connection established!\nWelcome " + name +
		"!\nAll messages are encrypted with AES-256\n" + separator
}

// listText is the seed's /list answer.
func listText(names []string) string {
	return fmt.Sprintf("\n%s\nOnline Users (%d): %s\n%s", separator, len(names), strings.Join(names, ", "), separator)
}

// The seed's banner titles, centred in its 70-column rules.
const (
	serverTitle    = "ENCRYPTED CHAT SERVER (SSL-LIKE HANDSHAKE)"
	clientTitle    = "ENCRYPTED CHAT CLIENT (SSL-LIKE HANDSHAKE)"
	handshakeTitle = "INITIATING SECURE HANDSHAKE"
	securedTitle   = "✓ SECURE CHANNEL ESTABLISHED"
)

// center70 centres s in 70 characters as the seed's Python does
// (s.center(70), f"{s:^70}"): it counts characters, not bytes, and an odd
// padding puts the extra space on the right. Like Python, it pads both
// sides, so the line is the seed's byte for byte.
func center70(s string) string {
	pad := 70 - utf8.RuneCountInString(s)
	if pad <= 0 {
		return s
	}
	return strings.Repeat(" ", pad/2) + s + strings.Repeat(" ", pad-pad/2)
}

// plural picks the word for n things.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// truncateRunes shortens s to at most n runes, marking the cut with "…".
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// printable escapes what must not reach a terminal from a capture: control
// characters (isControl) and invalid UTF-8 become \x.. or \u.... escapes.
func printable(s string) string {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return escapeControls(s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || isControl(r) {
			return escapeControls(s)
		}
		i += size
	}
	return s
}

// escapeControls is printable's slow path: each control character and
// invalid byte of s as an escape.
func escapeControls(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// hexPreview is the first n bytes of p in hex, marking a cut with "…".
func hexPreview(p []byte, n int) string {
	if len(p) <= n {
		return hex.EncodeToString(p)
	}
	return hex.EncodeToString(p[:n]) + "…"
}
