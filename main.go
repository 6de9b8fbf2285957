//go:build !js

// Command encchat is an encrypted chat server and client for teaching: the
// seed's mini TLS-like handshake (RSA-2048 key transport, AES-256) byte for
// byte, a modern suite that fixes it, and record/replay of the wire traffic
// to show what a sniffer sees beside what the peer sees.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
)

const usage = `encchat: an encrypted chat for teaching, and the tools to look inside it.

Usage:
    encchat server  [-listen ADDR] [-key FILE | -ephemeral] [-suite classic|modern] [-web ADDR] ...
    encchat client  [-connect ADDR] [-name NAME] [-suite auto|classic|modern] ...
    encchat tap     -listen ADDR [-web ADDR] -upstream ADDR [-record FILE] [-mitm | -rewrite 'OLD=NEW']
    encchat replay  [-keylog FILE] [-rsa-key FILE] [-key HEX] [-view sniffer|peer|both] [-send ADDR] CAPTURE
    encchat bench   [-connect ADDR] [-clients N] [-senders S] [-messages M] [-size BYTES]
    encchat demo    [-suite classic|modern] [-html OUT [-projector]]
    encchat forget  [-known-servers FILE] ADDR
    encchat version

Run "encchat help SUBCOMMAND" (or "encchat SUBCOMMAND -h") for the flags of one subcommand.

Examples:
    encchat server                          # terminal 1: a server on 127.0.0.1:5174
    encchat client -name alice              # terminal 2
    encchat client -name bob                # terminal 3
    encchat server -record chat.jsonl -keylog keys.log
    encchat replay -keylog keys.log chat.jsonl
    encchat server -listen :5174 -web :8080 # a class: browsers join at the URL it prints
`

const (
	defaultPort = "5174" // the seed's
	defaultAddr = "127.0.0.1:" + defaultPort
)

// subcommands says, for "encchat SUB -h" and "encchat help SUB", what each
// subcommand does and the arguments it takes besides its flags.
var subcommands = map[string]struct{ args, about string }{
	"server":  {"[flags]", "Run a chat server: the seed's protocol (classic) or the modern suite."},
	"client":  {"[flags]", "Join a chat server; the name is asked at a prompt when -name is absent."},
	"tap":     {"-listen ADDR -upstream ADDR (-record FILE [-mitm] | -rewrite OLD=NEW [-record FILE])", "Relay clients to a real server and record what passes; with -mitm, read it too; with -rewrite, change it with no key. -web ADDR relays browser clients too (with it, -listen may be left out)."},
	"replay":  {"[flags] CAPTURE", "Show a capture (a file written by -record or tap, or a pcap or pcapng from Wireshark, dumpcap or tcpdump) as a sniffer and as the peer."},
	"bench":   {"[flags]", "Measure a server under load: handshakes, chat throughput, idle memory."},
	"demo":    {"[flags]", "The whole lesson in one terminal: a server, two scripted clients, then the replay."},
	"forget":  {"[-known-servers FILE] ADDR", "Remove the pinned key of the server at ADDR (HOST:PORT) from the known-servers file, as ssh-keygen -R does."},
	"version": {"", "Print encchat's version."},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "help":
		return runHelp(ctx, args[1:], stdin, stdout, stderr)
	case "version", "-version", "--version":
		return runVersion(args[1:], stdout, stderr)
	case "forget":
		return runForget(args[1:], stdout, stderr)
	case "server":
		return runServer(ctx, args[1:], stdout, stderr)
	case "client":
		return runClientCommand(ctx, args[1:], stdin, stdout, stderr)
	case "tap":
		return runTap(args[1:], stdout, stderr)
	case "replay":
		return runReplay(args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	}
	errorf(stderr, "unknown subcommand %q", args[0])
	unknownSubcommandHint(stderr, args[0])
	return 2
}

// unknownSubcommandHint suggests the subcommand a mistyped one is closest
// to ("clinet": client), or the list of them. A suggestion is at most one
// edit (a letter added, dropped, changed, or two swapped) per three letters.
func unknownSubcommandHint(w io.Writer, name string) {
	best, bestDist := "", max(1, utf8.RuneCountInString(name)/3)+1
	for sub := range subcommands {
		if d := editDistance(strings.ToLower(name), sub); d < bestDist || d == bestDist && sub < best {
			best, bestDist = sub, d
		}
	}
	if best != "" {
		hintf(w, "did you mean \"encchat %s\"?", best)
		return
	}
	hintf(w, `run "encchat help" for the list of subcommands`)
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance between a and b: a swap of two neighbours is one edit.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}

// errorf prints "encchat: what went wrong" to stderr.
func errorf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "encchat: "+format+"\n", args...)
}

// hintf prints a hint line under an error.
func hintf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "encchat: hint: "+format+"\n", args...)
}

// outputHint prints the hint of an output file's error, if it has one.
func outputHint(w io.Writer, err error) {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		hintf(w, "%s", h.Hint())
	}
}

// parseFlags parses a subcommand's flags. It returns -1 to go on, or the
// exit code: 0 after -h, 2 after a bad flag (one line naming it, and a hint
// to run -h).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	sub := subcommands[fs.Name()]
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage: %s\n\n%s\n", strings.TrimSpace("encchat "+fs.Name()+" "+sub.args), sub.about)
		if strings.Contains(sub.args, "[flags]") || strings.Contains(sub.args, "-") {
			fmt.Fprintf(stdout, "\nFlags:\n")
			fs.PrintDefaults()
		}
		return 0
	case err != nil:
		errorf(stderr, "%s: %v", fs.Name(), err)
		hintf(stderr, "run \"encchat %s -h\" for its flags", fs.Name())
		return 2
	case fs.NArg() > 0 && fs.Name() != "replay" && fs.Name() != "forget":
		errorf(stderr, "%s: unexpected argument %q", fs.Name(), fs.Arg(0))
		hintf(stderr, "usage: %s", strings.TrimSpace("encchat "+fs.Name()+" "+sub.args))
		return 2
	}
	return -1
}

// runHelp is "encchat help [SUBCOMMAND]".
func runHelp(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0, len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		fmt.Fprint(stdout, usage)
		return 0
	case len(args) > 1:
		errorf(stderr, "help: one subcommand at a time, not %q", strings.Join(args, " "))
		return 2
	}
	if _, ok := subcommands[args[0]]; !ok {
		errorf(stderr, "help: unknown subcommand %q", args[0])
		unknownSubcommandHint(stderr, args[0])
		return 2
	}
	return run(ctx, []string{args[0], "-h"}, stdin, stdout, stderr)
}

// runVersion is "encchat version": the module version and VCS revision
// the binary was built from, and the Go release.
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	version, revision, dirty := "(unknown)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	line := "encchat " + version
	if revision != "" {
		if len(revision) > 12 {
			revision = revision[:12]
		}
		line += " (commit " + revision
		if dirty {
			line += ", modified"
		}
		line += ")"
	}
	fmt.Fprintf(stdout, "%s %s %s/%s\n", line, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}

// runForget is "encchat forget ADDR": OpenSSH's "ssh-keygen -R" for the
// known-servers file.
func runForget(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("forget", flag.ContinueOnError)
	known := fs.String("known-servers", "", "pinned server keys `file` (default: the user config dir)")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		errorf(stderr, "forget needs one server address")
		hintf(stderr, "usage: encchat forget [-known-servers FILE] HOST:PORT")
		return 2
	}
	addr, err := withDefaultPort(fs.Arg(0))
	if err != nil {
		errorf(stderr, "forget: %v", err)
		return 2
	}
	if *known == "" {
		dir, err := configDir()
		if err != nil {
			errorf(stderr, "forget: no config dir (%v); use -known-servers FILE", err)
			return 1
		}
		*known = filepath.Join(dir, "known_servers")
	}
	n, err := forgetKnownServer(*known, addr)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stdout, "%s: no such file: nothing pinned, nothing to forget\n", *known)
		return 0
	case err != nil:
		errorf(stderr, "forget: %v", err)
		return 1
	case n == 0:
		fmt.Fprintf(stdout, "%s is not in %s: nothing to forget\n", addr, *known)
		return 0
	}
	fmt.Fprintf(stdout, "%s: forgot the key of %s (%d %s removed); the next client pins the key it then sees\n", *known, addr, n, plural(n, "line", "lines"))
	return 0
}

// withDefaultPort checks a HOST:PORT address and adds the seed's port 5174
// to one given without a port ("127.0.0.1", "localhost", "::1"). A bare
// number is a port on this machine alone ("5174": 127.0.0.1:5174), as the
// default address is: a server open to the LAN is asked for as ":5174".
func withDefaultPort(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("the address is empty: want HOST:PORT, such as " + defaultAddr)
	}
	if strings.Trim(addr, "0123456789") == "" {
		if n, err := strconv.Atoi(addr); err != nil || n > 65535 {
			return "", fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
		}
		return net.JoinHostPort("127.0.0.1", addr), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		bare := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if !strings.Contains(addr, ":") || net.ParseIP(bare) != nil {
			return net.JoinHostPort(bare, defaultPort), nil
		}
		return "", fmt.Errorf("%q is not HOST:PORT: %v", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q: the port must be a number from 0 to 65535, not %q", addr, port)
	}
	return net.JoinHostPort(host, port), nil
}

// listenHint says what to do about a failed Listen, from its cause.
func listenHint(w io.Writer, err error) {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hintf(w, "is another server running? pick another port with -listen 127.0.0.1:PORT")
	case errors.Is(err, syscall.EACCES):
		hintf(w, "ports below 1024 need privileges; pick a higher one, such as -listen %s", defaultAddr)
	case errors.Is(err, syscall.EADDRNOTAVAIL), isLookupError(err):
		hintf(w, "this machine has no such address: 127.0.0.1 is this machine alone, :%s listens on all of its addresses", defaultPort)
	}
}

// isLookupError reports whether err is a host name that did not resolve.
func isLookupError(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// colorEnabled decides colour for w: off with -no-color, NO_COLOR, or when
// w is not a terminal.
func colorEnabled(noColor bool, w io.Writer) bool {
	if noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// palette holds the colours of each kind of text; with colour off, every
// entry prints plainly.
type palette struct {
	system, private, own, errorC, handshake, join, leave, warn, dim *color.Color
}

func newPalette(enabled bool) *palette {
	mk := func(attrs ...color.Attribute) *color.Color {
		c := color.New(attrs...)
		if enabled {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
		return c
	}
	return &palette{
		system:    mk(color.FgYellow),
		private:   mk(color.FgMagenta),
		own:       mk(color.FgCyan),
		errorC:    mk(color.FgRed, color.Bold),
		handshake: mk(color.FgBlue),
		join:      mk(color.FgGreen),
		leave:     mk(color.FgYellow),
		warn:      mk(color.FgRed, color.Bold),
		dim:       mk(color.Faint),
	}
}

// suiteDescription names a suite's algorithms for banners.
func suiteDescription(suite string) string {
	if suite == suiteModern {
		return "modern (X25519+ML-KEM-768, RSA-PSS signed, AES-256-GCM)"
	}
	return "classic (RSA-2048 key transport + AES-256-CBC, the seed's protocol)"
}
