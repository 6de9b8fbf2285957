// Tests of outfile.go: no output flag writes through a symbolic link, and
// -record never writes over a capture.

package main

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// testKeyFile writes the test RSA key where -key can read it.
func testKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, testRSAKey(t))})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOutputFlagsRefuseLinks: every flag that writes a file (-record and
// -keylog of server, client and tap, replay -html and -pcap, demo -html)
// refuses a path that is a symbolic link, says so, and leaves the link's
// target as it was, contents and mode; a dangling link's target is not
// created.
func TestOutputFlagsRefuseLinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	key := testKeyFile(t)
	capture := filepath.Join(t.TempDir(), "chat.jsonl")
	rec, err := openCapture(capture, "server", "127.0.0.1:5174")
	if err != nil {
		t.Fatal(err)
	}
	rec.Close()
	for _, tc := range []struct {
		name string
		args func(link string) []string
	}{
		{"server -record", func(l string) []string {
			return []string{"server", "-listen", "127.0.0.1:0", "-key", key, "-record", l}
		}},
		{"server -keylog", func(l string) []string {
			return []string{"server", "-listen", "127.0.0.1:0", "-key", key, "-keylog", l}
		}},
		{"client -record", func(l string) []string {
			return []string{"client", "-connect", "127.0.0.1:1", "-name", "a", "-record", l}
		}},
		{"client -keylog", func(l string) []string {
			return []string{"client", "-connect", "127.0.0.1:1", "-name", "a", "-keylog", l}
		}},
		{"tap -record", func(l string) []string {
			return []string{"tap", "-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:1", "-record", l}
		}},
		{"replay -html", func(l string) []string { return []string{"replay", "-html", l, capture} }},
		{"replay -pcap", func(l string) []string { return []string{"replay", "-pcap", l, capture} }},
		{"demo -html", func(l string) []string { return []string{"demo", "-html", l} }},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "precious.txt")
			const content = "last lesson's work\n"
			if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, "out")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			code, _, errs := runCLI(t, tc.args(link)...)
			if code != 1 || !strings.Contains(errs, link+" is a symbolic link (to "+target+"): encchat does not write through links") ||
				!strings.Contains(errs, "encchat: hint: give the path of the file itself, or remove the link") {
				t.Errorf("exit %d, stderr:\n%s", code, errs)
			}
			st, err := os.Stat(target)
			if data, _ := os.ReadFile(target); string(data) != content || err != nil || st.Mode().Perm() != 0o644 {
				t.Errorf("the link's target became %q, mode %v (%v)", data, st.Mode().Perm(), err)
			}
			if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the link is gone: %v", err)
			}

			dangling := filepath.Join(dir, "dangling")
			nowhere := filepath.Join(dir, "nowhere")
			os.Symlink(nowhere, dangling)
			if code, _, errs := runCLI(t, tc.args(dangling)...); code != 1 || !strings.Contains(errs, "is a symbolic link") {
				t.Errorf("dangling link: exit %d, stderr:\n%s", code, errs)
			}
			if _, err := os.Lstat(nowhere); !os.IsNotExist(err) {
				t.Errorf("a dangling link's target was created (%v)", err)
			}
		})
	}
}

// TestSecondRecordKeepsFirstCapture: a server records a chat; a second
// server started with the same -record is refused with a hint naming a
// free file, and the first capture is whole, byte for byte.
func TestSecondRecordKeepsFirstCapture(t *testing.T) {
	key := testKeyFile(t)
	path := filepath.Join(t.TempDir(), "chat.jsonl")
	srv := startCLIServer(t, "-listen", "127.0.0.1:0", "-key", key, "-record", path)
	alice := join(t, srv.addr, "alice")
	if err := alice.Send("a line worth keeping"); err != nil {
		t.Fatal(err)
	}
	expect(t, alice, "alice: a line worth keeping")
	alice.Close()
	if code := srv.stop(); code != 0 {
		t.Fatalf("first server: exit %d", code)
	}
	first, err := os.ReadFile(path)
	if err != nil || strings.Count(string(first), "\n") < 4 {
		t.Fatalf("first capture: %q, %v", first, err)
	}

	code, _, errs := runCLI(t, "server", "-listen", "127.0.0.1:0", "-key", key, "-record", path)
	free := strings.TrimSuffix(path, ".jsonl") + "-2.jsonl"
	if code != 1 || !strings.Contains(errs, "encchat: capture: "+path+" already exists: a capture is never written over\n") ||
		!strings.Contains(errs, "encchat: hint: give another name ("+free+" is free), or move "+path+" away first\n") {
		t.Errorf("second -record: exit %d, stderr:\n%s", code, errs)
	}
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Errorf("the first capture changed:\n%q\nbecame\n%q", first, again)
	}
	if code, _, errs := runCLI(t, "replay", path); code != 0 {
		t.Errorf("replay of the first capture: exit %d\n%s", code, errs)
	}
}

// TestCreateOutputDevicesAndModes: a device is written as it is, even by
// -record; a private output is created 0600 and an existing one made
// 0600; the key log appends.
func TestCreateOutputDevicesAndModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no /dev on Windows")
	}
	for _, mode := range []outputMode{outputNew, outputTruncate, outputAppend} {
		f, err := createOutput(os.DevNull, mode, true)
		if err != nil {
			t.Fatalf("%s, mode %d: %v", os.DevNull, mode, err)
		}
		f.Close()
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "page.html")
	os.WriteFile(page, []byte("old"), 0o644)
	f, err := createOutput(page, outputTruncate, true)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, _ := os.Stat(page); st.Mode().Perm() != 0o600 || st.Size() != 0 {
		t.Errorf("private truncate: mode %v size %d, want 0600 and empty", st.Mode().Perm(), st.Size())
	}
	keys := filepath.Join(dir, "keys.log")
	for range 2 {
		k, err := openKeylog(keys)
		if err != nil {
			t.Fatal(err)
		}
		k.logKey("CLASSIC", []byte{1}, []byte{2})
		k.Close()
	}
	if data, _ := os.ReadFile(keys); strings.Count(string(data), "CLASSIC 01 02\n") != 2 {
		t.Errorf("key log after two runs: %q", data)
	}
}
