// Tests of the chat's text rules (text.go): name lengths at the boundaries,
// and the removal of control characters.

package main

import (
	"strings"
	"testing"
)

func TestValidateNameBoundaries(t *testing.T) {
	for n, ok := range map[int]bool{0: false, 1: true, 31: true, 32: true, 33: false} {
		if err := validateName(strings.Repeat("é", n)); (err == nil) != ok {
			t.Errorf("name of %d runes: err = %v", n, err)
		}
	}
}

func TestSanitize(t *testing.T) {
	in := "a\x00b\x1fc\x7fd\u0080e\u009ff\u061cg\u200eh\u200fi\u202aj\u202ek\u2066l\u2069m\nn\tö"
	if got, want := sanitizeText(in), "abcdefghijklmnö"; got != want {
		t.Errorf("sanitizeText = %q, want %q", got, want)
	}
	if got, want := sanitizeForTerminal(in), "abcdefghijklm\nnö"; got != want {
		t.Errorf("sanitizeForTerminal = %q, want %q", got, want)
	}
}
