package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for the session layer's parsers. Each checks invariants, not
// only the absence of a panic. Seed corpora live in testdata/fuzz/.

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("0000000005hello"))
	f.Add([]byte("9999999999"))
	f.Add([]byte("0000065536"))
	f.Add([]byte("00000000"))
	f.Add([]byte("0000000003ab"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		payload, err := readFrame(r)
		consumed := len(in) - r.Len()
		if err != nil {
			if payload != nil {
				t.Fatal("payload returned with an error")
			}
			// Never reads past what the header allows.
			if consumed > headerLen+maxFrameLen {
				t.Fatalf("consumed %d bytes", consumed)
			}
			return
		}
		if len(payload) > maxFrameLen || consumed != headerLen+len(payload) {
			t.Fatalf("payload %d bytes, consumed %d", len(payload), consumed)
		}
		// Parse then format returns the same bytes.
		if got := appendFrame(nil, payload); !bytes.Equal(got, in[:consumed]) {
			t.Fatalf("round trip %q != %q", got, in[:consumed])
		}
	})
}

func FuzzFrameRoundTrip(f *testing.F) {
	f.Add([]byte(""), []byte("x"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if len(a) > maxFrameLen || len(b) > maxFrameLen {
			return
		}
		var buf bytes.Buffer
		writeFrame(&buf, a)
		writeFrame(&buf, b)
		for _, want := range [][]byte{a, b} {
			got, err := readFrame(&buf)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
		}
		if _, err := readFrame(&buf); err != io.EOF {
			t.Fatalf("after the frames: %v, want io.EOF", err)
		}
	})
}

func FuzzClassicOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, aesKeySize)
	c, err := newClassicCipher(key, nil)
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := c.seal([]byte("hello"))
	f.Add(sealed, []byte("hello"))
	f.Add([]byte("!!!!"), []byte(""))
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), []byte("\xff"))
	f.Fuzz(func(t *testing.T, payload, text []byte) {
		// Anything at all: one error, or valid UTF-8.
		out, err := c.open(payload)
		if err != nil && err != errOpen {
			t.Fatalf("error %v is not errOpen", err)
		}
		if err == nil && !utf8.Valid(out) {
			t.Fatalf("open returned invalid UTF-8 %q", out)
		}
		// open(seal(x)) == x for UTF-8 text; errOpen otherwise.
		s, err := c.seal(text)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != sealedLen(len(text)) {
			t.Fatalf("sealed %d bytes, sealedLen says %d", len(s), sealedLen(len(text)))
		}
		got, err := c.open(s)
		if utf8.Valid(text) {
			if err != nil || !bytes.Equal(got, text) {
				t.Fatalf("open(seal(%q)) = %q, %v", text, got, err)
			}
		} else if err != errOpen {
			t.Fatalf("non-UTF-8 text opened: %v", err)
		}
	})
}

func FuzzSanitize(f *testing.F) {
	f.Add("clear\x1b[2J\r\n\u202eevil\u0085")
	f.Add("plain text")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		for name, clean := range map[string]func(string) string{
			"sanitizeText": sanitizeText, "sanitizeForTerminal": sanitizeForTerminal,
		} {
			out := clean(s)
			for _, r := range out {
				if (isControl(r) && r != '\n') || r == utf8.RuneError {
					t.Fatalf("%s(%q) kept %U", name, s, r)
				}
				if r == '\n' && name == "sanitizeText" {
					t.Fatalf("sanitizeText(%q) kept a newline", s)
				}
			}
			if clean(out) != out {
				t.Fatalf("%s is not idempotent on %q", name, s)
			}
			if len(out) > len(s) {
				t.Fatalf("%s grew %q", name, s)
			}
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"alice", "", "system", "a b", "Zoë", "x\x1b", strings.Repeat("n", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if validateName(name) != nil {
			return
		}
		// An accepted name is printable as is and cannot pose as the server.
		if sanitizeText(name) != name || strings.ContainsAny(name, " []:/") {
			t.Fatalf("accepted %q", name)
		}
		if n := utf8.RuneCountInString(name); n < 1 || n > maxNameLen {
			t.Fatalf("accepted %q of %d runes", name, n)
		}
		if strings.EqualFold(name, "system") || strings.EqualFold(name, "server") {
			t.Fatalf("accepted reserved %q", name)
		}
	})
}

func FuzzParsePM(f *testing.F) {
	f.Add("bob hello there")
	f.Add("  bob   spaced  ")
	f.Add("bob")
	f.Add("")
	f.Fuzz(func(t *testing.T, args string) {
		to, text, ok := parsePM(args)
		if !ok {
			return
		}
		if to == "" || strings.ContainsAny(to, " ") || text == "" {
			t.Fatalf("parsePM(%q) = %q, %q", args, to, text)
		}
		if sanitizeText(text) != text || strings.TrimSpace(text) != text {
			t.Fatalf("text %q not clean", text)
		}
		// Formatting the command again parses to the same parts.
		to2, text2, ok2 := parsePM(to + " " + text)
		if !ok2 || to2 != to || text2 != text {
			t.Fatalf("round trip of %q: %q %q", args, to2, text2)
		}
	})
}

func FuzzParseKeylog(f *testing.F) {
	f.Add("# comment\nCLASSIC 0011223344556677 " + strings.Repeat("ab", 32) + "\n")
	f.Add("MODERN " + strings.Repeat("01", 32) + " " + strings.Repeat("cd", 32))
	f.Add("CLASSIC zz 00\n")
	f.Add("lower 00 00\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		entries, err := parseKeylog(strings.NewReader(in))
		lines := strings.Count(in, "\n") + 1
		if err != nil {
			var le *lineError
			if errors.As(err, &le) && (le.Line < 1 || le.Line > lines+1) {
				t.Fatalf("error names line %d of %d: %v", le.Line, lines, err)
			}
		}
		// Formatting the entries as a key log and parsing again gives them back.
		var b strings.Builder
		for _, e := range entries {
			fmt.Fprintf(&b, "%s %x %x\n", e.Label, e.ID, e.Secret)
		}
		again, err := parseKeylog(strings.NewReader(b.String()))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("round trip: %d entries, %v; want %d", len(again), err, len(entries))
		}
		for i := range entries {
			if again[i].Label != entries[i].Label || !bytes.Equal(again[i].ID, entries[i].ID) || !bytes.Equal(again[i].Secret, entries[i].Secret) {
				t.Fatalf("entry %d changed in the round trip", i)
			}
		}
	})
}
