// Tests of the chat's text rules (text.go): name lengths at the boundaries,
// the removal of control characters, and the banners centred as the seed's
// Python centres them.

package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestBannersCentredAsTheSeed checks center70 against Python's own
// str.center(70) and f"{s:^70}", then the lines the client and the server
// really print.
func TestBannersCentredAsTheSeed(t *testing.T) {
	python := needTool(t, "python3")
	titles := []string{serverTitle, clientTitle, handshakeTitle, securedTitle,
		"odd", "even", "✓ é 漢字", strings.Repeat("x", 69), strings.Repeat("x", 70), strings.Repeat("x", 71)}
	const script = `import sys
sys.stdin.reconfigure(encoding="utf-8")
sys.stdout.reconfigure(encoding="utf-8")
for s in sys.stdin.read().split("\0"):
    sys.stdout.write(s.center(70) + "\0" + f"{s:^70}" + "\0")
`
	cmd := exec.Command(python, "-c", script)
	cmd.Stdin = strings.NewReader(strings.Join(titles, "\x00"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(got) != 2*len(titles) {
		t.Fatalf("python3 printed %d lines for %d titles", len(got), len(titles))
	}
	for i, s := range titles {
		if c := center70(s); c != got[2*i] || c != got[2*i+1] {
			t.Errorf("center70(%q) = %q; python3: center %q, format %q", s, c, got[2*i], got[2*i+1])
		}
	}
	// The figures the seed gives, counted in characters.
	for s, lead := range map[string]int{clientTitle: 14, handshakeTitle: 21, securedTitle: 21, serverTitle: 14} {
		if n := len(center70(s)) - len(strings.TrimLeft(center70(s), " ")); n != lead {
			t.Errorf("%q starts %d spaces in, want %d", s, n, lead)
		}
	}

	// The client's banners, as printed.
	srv := startReplServer(t)
	_, cout, _ := runReplClient(t, replOptions(srv.addr, "bot"), strings.NewReader("/quit\n"))
	for _, s := range []string{clientTitle, handshakeTitle, securedTitle} {
		if !strings.Contains(cout, "\n"+center70(s)+"\n") {
			t.Errorf("the client does not print %q centred:\n%s", s, cout)
		}
	}

	// The server's banner.
	var sout, serr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- runServer(ctx, []string{"-listen", "127.0.0.1:0", "-key", filepath.Join(t.TempDir(), "k.pem")}, &sout, &serr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(sout.String(), "Status:") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(sout.String(), "\n"+center70(serverTitle)+"\n") {
		t.Errorf("the server does not print its title centred:\n%s\n%s", sout.String(), serr.String())
	}
}
