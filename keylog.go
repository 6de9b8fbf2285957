// Key logs (-keylog), in the spirit of the NSS key log that Wireshark reads:
// one line per session, LABEL <session id hex> <secret hex>; writing them,
// and parsing them for replay.

package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// keylog writes session secrets in the NSS key log spirit. A nil *keylog
// writes nothing.
type keylog struct {
	mu     sync.Mutex
	w      io.WriteCloser
	closed bool
	err    error
	watch  func(label string, id, secret []byte) // setWatch
}

// openKeylog opens path for appending (mode 0600: it holds keys). An
// existing file that group or others could read is made 0600 first; a
// device or pipe (-keylog /dev/stdout) is left as it is; a link is
// refused (createOutput).
func openKeylog(path string) (*keylog, error) {
	f, err := createOutput(path, outputAppend, true)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	k := &keylog{w: f}
	if st.Size() == 0 {
		k.writeLine("# encchat key log: LABEL <session id hex> <secret hex>. It decrypts every session it names: keep it secret.\n")
	}
	return k, nil
}

// setWatch has f told of every key logged from now on, before its line is
// written and even once the file has stopped (f must not block or keep the
// slices).
func (k *keylog) setWatch(f func(label string, id, secret []byte)) {
	k.mu.Lock()
	k.watch = f
	k.mu.Unlock()
}

// watchedKeylog is a key log written nowhere, whose keys only watch sees
// (the live wire's, or a browser tab's own memory).
func watchedKeylog(watch func(label string, id, secret []byte)) *keylog {
	k := &keylog{w: discardCloser{}}
	k.setWatch(watch)
	return k
}

// discardCloser is the file of a capture or key log that only a watcher reads.
type discardCloser struct{}

func (discardCloser) Write(p []byte) (int, error) { return len(p), nil }
func (discardCloser) Close() error                { return nil }

// logKey writes one line: LABEL <id hex> <secret hex>.
func (k *keylog) logKey(label string, id, secret []byte) {
	if k == nil {
		return
	}
	k.mu.Lock()
	watch := k.watch
	k.mu.Unlock()
	if watch != nil {
		watch(label, id, secret)
	}
	line := make([]byte, 0, len(label)+2*len(id)+2*len(secret)+3)
	line = append(line, label...)
	line = append(line, ' ')
	line = hex.AppendEncode(line, id)
	line = append(line, ' ')
	line = hex.AppendEncode(line, secret)
	line = append(line, '\n')
	k.writeLine(string(line))
}

func (k *keylog) writeLine(s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil && !k.closed {
		_, k.err = io.WriteString(k.w, s)
	}
}

// Err returns the first write error, if any.
func (k *keylog) Err() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// Close closes the file and returns the first error of the whole log.
func (k *keylog) Close() error {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return k.err
	}
	k.closed = true
	if err := k.w.Close(); k.err == nil {
		k.err = err
	}
	return k.err
}

// keylogEntry is one line of a keylog.
type keylogEntry struct {
	Label  string
	ID     []byte
	Secret []byte
	Line   int
}

// keylogEntries is a parsed keylog, in file order.
type keylogEntries []keylogEntry

// lookup returns the secret logged for a session. A later line wins.
func (e keylogEntries) lookup(label string, id []byte) ([]byte, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if e[i].Label == label && bytes.Equal(e[i].ID, id) {
			return e[i].Secret, true
		}
	}
	return nil, false
}

// lineError names the line of a capture or keylog that stopped the reading.
type lineError struct {
	Line int
	Msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// in formats the error for a named file: "name:LINE: what".
func (e *lineError) in(name string) string { return fmt.Sprintf("%s:%d: %s", name, e.Line, e.Msg) }

// parseKeylog reads a keylog: LABEL <id hex> <secret hex> a line, # comments
// and blank lines ignored. A bad line is a *lineError naming it.
func parseKeylog(r io.Reader) (keylogEntries, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var out keylogEntries
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return out, &lineError{n, `want "LABEL <session id hex> <secret hex>"`}
		}
		if !validKeylogLabel(f[0]) {
			return out, &lineError{n, fmt.Sprintf("label %q is not upper-case letters, digits and _", truncateRunes(f[0], 20))}
		}
		id, err := hex.DecodeString(f[1])
		if err != nil || len(id) == 0 {
			return out, &lineError{n, "session id is not hex"}
		}
		secret, err := hex.DecodeString(f[2])
		if err != nil || len(secret) == 0 {
			return out, &lineError{n, "secret is not hex"}
		}
		if f[0] == keylogClassic {
			if len(id) != classicKeylogID {
				return out, &lineError{n, fmt.Sprintf("CLASSIC session id is %d bytes, want %d", len(id), classicKeylogID)}
			}
			if len(secret) != aesKeySize {
				return out, &lineError{n, fmt.Sprintf("CLASSIC key is %d bytes, want %d", len(secret), aesKeySize)}
			}
		}
		out = append(out, keylogEntry{Label: f[0], ID: id, Secret: secret, Line: n})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return out, &lineError{n + 1, "line too long"}
		}
		return out, err
	}
	return out, nil
}

func validKeylogLabel(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

const (
	keylogClassic   = "CLASSIC" // keylog label of a classic session
	classicKeylogID = 8         // bytes of the RSA-OAEP blob that name a classic session
)
