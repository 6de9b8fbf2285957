// Who is online, read from the server's own texts, and Tab completion of
// commands and names for the REPL.

package main

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// roster is who is online, kept from the server's own texts (the classic
// protocol has no roster message), in join order.
type roster struct {
	mu    sync.Mutex
	self  string
	names []string
}

var (
	welcomeRE = regexp.MustCompile(`(?m)^Welcome (\S+)!$`)
	joinRE    = regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] \[SYSTEM\] (\S+) joined \(secure channel\)$`)
	leftRE    = regexp.MustCompile(`^\[\d\d:\d\d:\d\d\] \[SYSTEM\] (\S+) left the chat$`)
	listRE    = regexp.MustCompile(`^=+\nOnline Users \((\d+)\): (.*)\n=+$`)
)

// observe updates the roster from one server text and reports whether the
// text was a /list answer.
func (r *roster) observe(text string) (isList bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := listRE.FindStringSubmatch(strings.Trim(text, "\n")); m != nil {
		var names []string
		if m[2] != "" {
			names = strings.Split(m[2], ", ")
		}
		if n, err := strconv.Atoi(m[1]); err != nil || n != len(names) {
			return false
		}
		r.names = names
		return true
	}
	if m := joinRE.FindStringSubmatch(text); m != nil && validateName(m[1]) == nil {
		r.addLocked(m[1])
	} else if m := leftRE.FindStringSubmatch(text); m != nil {
		r.names = removeName(r.names, m[1])
	} else if m := welcomeRE.FindStringSubmatch(text); m != nil && validateName(m[1]) == nil &&
		strings.HasPrefix(strings.TrimLeft(text, "\n"), separator) {
		r.addLocked(m[1])
	}
	return false
}

func (r *roster) addLocked(name string) {
	for _, n := range r.names {
		if n == name {
			return
		}
	}
	r.names = append(r.names, name)
}

func removeName(names []string, name string) []string {
	out := names[:0]
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// others is everyone online but the user, for /pm completion.
func (r *roster) others() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.names {
		if n != r.self {
			out = append(out, n)
		}
	}
	return out
}

// completer is readline's AutoCompleter over chatCommands and the roster.
type completer struct{ list *roster }

func (c completer) Do(line []rune, pos int) ([][]rune, int) {
	return completions(string(line[:pos]), c.list.others())
}

// completions returns what Tab may add after head (the line up to the
// cursor) and how many runes of head it completes: a command after "/",
// a name after "/pm ".
func completions(head string, names []string) ([][]rune, int) {
	var out [][]rune
	if strings.HasPrefix(head, "/") && !strings.Contains(head, " ") {
		for _, cmd := range chatCommands {
			if strings.HasPrefix(cmd.name, head) {
				s := cmd.name[len(head):]
				if cmd.args != "" {
					s += " "
				}
				out = append(out, []rune(s))
			}
		}
		return out, utf8.RuneCountInString(head)
	}
	rest, ok := strings.CutPrefix(head, "/pm ")
	if !ok {
		return nil, 0
	}
	word := strings.TrimLeft(rest, " ")
	if strings.Contains(word, " ") {
		return nil, 0
	}
	for _, n := range names {
		if strings.HasPrefix(n, word) {
			out = append(out, []rune(n[len(word):]+" "))
		}
	}
	return out, utf8.RuneCountInString(word)
}
