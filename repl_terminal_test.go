// Tests of readline's input (repl_terminal.go): when the keys read so far
// are complete, and the ttyInput workarounds for readline's bugs.

package main

import (
	"io"
	"testing"
	"time"

	"github.com/chzyer/readline"
)

func TestClientKeysComplete(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"abc", true},
		{"\x1b[A", true},
		{"x\x1b[1;5C", true},
		{"\x1b", true}, // a lone Esc key
		{"\x1b[", false},
		{"\x1b[1;", false},
		{"\x1bO", false},
		{"\x1bOH", true},
		{"é", true},
		{"\xc3", false},
		{"ab\xe2\x82", false},
		{"€", true},
	} {
		if got := keysComplete([]byte(tc.in)); got != tc.want {
			t.Errorf("keysComplete(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestTTYInput checks the readline workarounds in process: a wake reaches
// readline's goroutine, and closing the input ends a Readline in progress
// and lets the terminal close (chzyer/readline#217).
func TestTTYInput(t *testing.T) {
	keys, typist := io.Pipe()
	defer typist.Close()
	in := newTTYInput(keys)
	woke := make(chan struct{}, 8)
	var out syncBuffer
	rl, err := readline.NewEx(&readline.Config{
		Prompt:             "> ",
		Stdin:              in,
		Stdout:             &out,
		Stderr:             &out,
		FuncIsTerminal:     func() bool { return true },
		FuncMakeRaw:        func() error { return nil },
		FuncExitRaw:        func() error { return nil },
		FuncGetWidth:       func() int { return 80 },
		FuncOnWidthChanged: func(func()) {},
		FuncFilterInputRune: func(r rune) (rune, bool) {
			if r == wakeRune {
				woke <- struct{}{}
				return readline.CharBell, true // as filterRune does
			}
			return r, true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 2)
	go func() {
		for range 2 {
			line, err := rl.Readline()
			got <- result{line, err}
		}
	}()

	if _, err := typist.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.err != nil || r.line != "hello" {
			t.Fatalf("Readline = %q, %v", r.line, r.err)
		}
	case <-time.After(replWait):
		t.Fatal("no line")
	}
	in.wake()
	select {
	case <-woke:
	case <-time.After(replWait):
		t.Fatal("the wake rune never reached readline")
	}

	// The second Readline is blocked on the terminal: closing the input
	// must end it, and the terminal must then close.
	in.Close()
	select {
	case r := <-got:
		if r.err != io.EOF {
			t.Errorf("Readline after Close = %q, %v; want io.EOF", r.line, r.err)
		}
	case <-time.After(replWait):
		t.Fatal("Readline still blocked after the input closed")
	}
	closed := make(chan struct{})
	go func() {
		rl.Config.Stdin.Close()
		rl.Terminal.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(replWait):
		t.Fatal("readline's terminal did not close")
	}
}
