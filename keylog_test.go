// Tests of key logs (keylog.go): writing and parsing them, parse errors
// that name the line, and the file's mode.

package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestKeylogWriteAndParse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.log")
	k, err := openKeylog(path)
	if err != nil {
		t.Fatal(err)
	}
	id := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	secret := bytes.Repeat([]byte{0xab}, 32)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.logKey(keylogClassic, id, secret)
		}()
	}
	wg.Wait()
	k.logKey("MODERN", []byte("random-32-bytes-random-32-bytes!"), []byte("traffic secret"))
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("keylog mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[0], "#") {
		t.Fatalf("keylog:\n%s", data)
	}
	if want := "CLASSIC 0102030405060708 " + strings.Repeat("ab", 32); lines[1] != want {
		t.Errorf("line %q, want %q", lines[1], want)
	}
	entries, err := parseKeylog(bytes.NewReader(data))
	if err != nil || len(entries) != 9 {
		t.Fatalf("parse: %d entries, %v", len(entries), err)
	}
	if got, ok := entries.lookup(keylogClassic, id); !ok || !bytes.Equal(got, secret) {
		t.Error("lookup of the classic session failed")
	}
	if got, ok := entries.lookup("MODERN", []byte("random-32-bytes-random-32-bytes!")); !ok || string(got) != "traffic secret" {
		t.Error("lookup of the modern session failed")
	}
	// Appending keeps what is there.
	k2, _ := openKeylog(path)
	k2.logKey(keylogClassic, id, secret)
	k2.Close()
	data2, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data2), string(data)) || strings.Count(string(data2), "#") != 1 {
		t.Error("reopening the keylog did not append")
	}
}

func TestParseKeylogErrors(t *testing.T) {
	good := "CLASSIC 0102030405060708 " + strings.Repeat("00", 32)
	cases := []struct{ in, want string }{
		{"# comment\n\n" + good + "\n   # indented comment\n", ""},
		{good + "\nCLASSIC 0102\n", "line 2: want"},
		{"\n\nclassic 0102030405060708 00\n", "line 3: label"},
		{"CLASSIC zz " + strings.Repeat("00", 32), "line 1: session id is not hex"},
		{"CLASSIC 0102030405060708 0g", "line 1: secret is not hex"},
		{"CLASSIC 01020304050607 " + strings.Repeat("00", 32), "line 1: CLASSIC session id is 7 bytes, want 8"},
		{"CLASSIC 0102030405060708 " + strings.Repeat("00", 31), "line 1: CLASSIC key is 31 bytes, want 32"},
		{"MODERN 01 02", ""},
	}
	for _, c := range cases {
		_, err := parseKeylog(strings.NewReader(c.in))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
	var le *lineError
	_, err := parseKeylog(strings.NewReader("\nbad"))
	if !errors.As(err, &le) || le.in("keys.log") != `keys.log:2: want "LABEL <session id hex> <secret hex>"` {
		t.Errorf("error %v", err)
	}
}

// TestKeylogMode: a new key log is created 0600, and an
// existing one that group and others could read is made 0600 when opened,
// its lines kept and appended to.
func TestKeylogMode(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "new.log")
	k, err := openKeylog(fresh)
	if err != nil {
		t.Fatal(err)
	}
	k.Close()
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new key log: mode %v %v, want 0600", fi.Mode(), err)
	}

	old := filepath.Join(dir, "old.log")
	line := "CLASSIC 0102030405060708 " + strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(old, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err = openKeylog(old)
	if err != nil {
		t.Fatal(err)
	}
	k.logKey(keylogClassic, []byte{9, 9, 9, 9, 9, 9, 9, 9}, bytes.Repeat([]byte{0xcd}, 32))
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(old)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("existing 0644 key log after opening: mode %v %v, want 0600", fi.Mode(), err)
	}
	data, _ := os.ReadFile(old)
	if want := line + "CLASSIC 0909090909090909 " + strings.Repeat("cd", 32) + "\n"; string(data) != want {
		t.Errorf("key log reads %q, want %q", data, want)
	}
}
