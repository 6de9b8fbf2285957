// Tests of who is online and of Tab completion (repl_roster.go).

package main

import (
	"strings"
	"testing"
)

func TestClientCompletions(t *testing.T) {
	names := []string{"bob", "bea", "carol"}
	str := func(c [][]rune) []string {
		var s []string
		for _, r := range c {
			s = append(s, string(r))
		}
		return s
	}
	for _, tc := range []struct {
		head string
		want []string
		n    int
	}{
		{"/l", []string{"ist"}, 2},
		{"/", []string{"pm ", "list", "help", "quit"}, 1},
		{"/p", []string{"m "}, 2},
		{"/pm ", []string{"bob ", "bea ", "carol "}, 0},
		{"/pm b", []string{"ob ", "ea "}, 1},
		{"/pm bo", []string{"b "}, 2},
		{"/pm bob hi", nil, 0},
		{"/x", nil, 2},
		{"hello /l", nil, 0},
		{"/list ", nil, 0},
	} {
		got, n := completions(tc.head, names)
		if strings.Join(str(got), "|") != strings.Join(tc.want, "|") || (len(tc.want) > 0 && n != tc.n) {
			t.Errorf("completions(%q) = %q, %d; want %q, %d", tc.head, str(got), n, tc.want, tc.n)
		}
	}
}

func TestClientRoster(t *testing.T) {
	r := &roster{self: "alice"}
	steps := []struct {
		text   string
		isList bool
		want   string
	}{
		{welcomeText("alice"), false, "alice"},
		{"[10:00:00] [SYSTEM] bob joined (secure channel)", false, "alice bob"},
		{"[10:00:01] bob: [10:00:00] [SYSTEM] eve joined (secure channel)", false, "alice bob"},
		{"[10:00:02] [PM from bob] \n" + separator + "\nOnline Users (1): x\n" + separator, false, "alice bob"},
		{listText([]string{"alice", "bob", "carol"}), true, "alice bob carol"},
		{"[10:00:03] [SYSTEM] bob left the chat", false, "alice carol"},
		{"\n" + separator + "\nOnline Users (3): a, b\n" + separator, false, "alice carol"},
	}
	for _, st := range steps {
		if got := r.observe(st.text); got != st.isList {
			t.Errorf("observe(%q) = %v, want %v", st.text, got, st.isList)
		}
		r.mu.Lock()
		got := strings.Join(r.names, " ")
		r.mu.Unlock()
		if got != st.want {
			t.Errorf("after %q roster is %q, want %q", st.text, got, st.want)
		}
	}
	if got := strings.Join(r.others(), " "); got != "carol" {
		t.Errorf("others() = %q, want carol", got)
	}
}
