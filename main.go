// Command encchat is an encrypted chat server and client for teaching: the
// seed's mini TLS-like handshake (RSA-2048 key transport, AES-256) byte for
// byte, a modern suite that fixes it, and record/replay of the wire traffic
// to show what a sniffer sees beside what the peer sees.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fatih/color"
	"github.com/mattn/go-isatty"
)

const usage = `encchat: an encrypted chat for teaching, and the tools to look inside it.

Usage:
    encchat server  [-listen ADDR] [-key FILE | -ephemeral] [-suite classic|modern] ...
    encchat client  [-connect ADDR] [-name NAME] [-suite auto|classic|modern] ...
    encchat tap     -listen ADDR -upstream ADDR [-record FILE] [-mitm | -rewrite 'OLD=NEW']
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
	"tap":     {"-listen ADDR -upstream ADDR (-record FILE [-mitm] | -rewrite OLD=NEW [-record FILE])", "Relay clients to a real server and record what passes; with -mitm, read it too; with -rewrite, change it with no key."},
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
	case "version":
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
	hintf(stderr, `run "encchat help" for the list of subcommands`)
	return 2
}

// errorf prints "encchat: what went wrong" to stderr.
func errorf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "encchat: "+format+"\n", args...)
}

// hintf prints a hint line under an error.
func hintf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "encchat: hint: "+format+"\n", args...)
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
	case len(args) == 0:
		fmt.Fprint(stdout, usage)
		return 0
	case len(args) > 1:
		errorf(stderr, "help: one subcommand at a time, not %q", strings.Join(args, " "))
		return 2
	}
	if _, ok := subcommands[args[0]]; !ok {
		errorf(stderr, "help: unknown subcommand %q", args[0])
		hintf(stderr, `run "encchat help" for the list of subcommands`)
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
// to one given without a port ("127.0.0.1", "localhost", "::1").
func withDefaultPort(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("the address is empty: want HOST:PORT, such as " + defaultAddr)
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
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hintf(w, "this machine has no such address: 127.0.0.1 is this machine alone, :%s listens on all of its addresses", defaultPort)
	}
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

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", defaultAddr, "`address` to listen on (:5174 opens it to the LAN)")
	keyFile := fs.String("key", "", "RSA-2048 PKCS#8 PEM private key `file`, created when missing (default: the user config dir)")
	ephemeral := fs.Bool("ephemeral", false, "generate a fresh key at each start, as the seed did")
	suite := fs.String("suite", suiteClassic, "handshake and record `suite`: classic or modern")
	record := fs.String("record", "", "record the wire traffic to this capture `file`")
	keylogFile := fs.String("keylog", "", "append session keys to this key log `file`")
	maxClients := fs.Int("max-clients", 1000, "most users online at once; more get \"ERROR: Server full\"")
	hsTimeout := fs.Duration("handshake-timeout", 10*time.Second, "close connections that do not finish the handshake in this `time`")
	maxPerAddr := fs.Int("max-per-addr", 256, "most connections from one IP address (0: no limit)")
	rate := fs.Float64("rate", defaultRate, "chat lines per second a client may send after its burst (0: no limit)")
	burst := fs.Int("burst", defaultBurst, "lines a client may send at once before -rate applies")
	maxFrame := fs.Int("max-frame", maxFrameLen, "largest frame a client may send, in `bytes` (1024 to 65536); a larger one closes its connection")
	queue := fs.Int("queue", defaultQueueLen, "outbound queue per client, in messages; a client whose queue fills is disconnected")
	noColor := fs.Bool("no-color", false, "no colour in the log")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	if *suite != suiteClassic && *suite != suiteModern {
		errorf(stderr, "server: -suite must be classic or modern, not %q", *suite)
		return 2
	}
	addr, err := withDefaultPort(*listen)
	if err != nil {
		errorf(stderr, "server: -listen %v", err)
		return 2
	}
	if msg := serverLimitsError(*maxClients, *maxPerAddr, *rate, *burst, *queue, *hsTimeout); msg != "" {
		errorf(stderr, "server: %s", msg)
		return 2
	}
	if *maxFrame < 1024 || *maxFrame > maxFrameLen {
		errorf(stderr, "server: -max-frame must be between 1024 and %d, not %d", maxFrameLen, *maxFrame)
		return 2
	}
	if *keyFile != "" && *ephemeral {
		errorf(stderr, "server: -key and -ephemeral cannot be used together")
		return 2
	}
	pal := newPalette(colorEnabled(*noColor, stdout))

	key, keyNote, keyWarning, err := serverKey(*keyFile, *ephemeral)
	if err != nil {
		errorf(stderr, "server key: %v", err)
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		errorf(stderr, "%v", err)
		listenHint(stderr, err)
		return 1
	}
	rec, kl, closeFiles, err := openRecordFiles(*record, *keylogFile, "server", ln.Addr().String())
	if err != nil {
		ln.Close()
		errorf(stderr, "%v", err)
		return 1
	}
	defer closeFiles()

	logEvent := func(ev serverEvent) {
		c := pal.handshake
		switch ev.Kind {
		case evJoin:
			c = pal.join
		case evLeave:
			c = pal.leave
		case evRefused, evDropped, evLimit:
			c = pal.warn
		case evPM:
			c = pal.private
		case evBroadcast:
			c = pal.own
		}
		fmt.Fprintf(stdout, "[%s] %s %s\n", ev.Time.Format("15:04:05"), c.Sprint("["+string(ev.Kind)+"]"), sanitizeText(ev.Text))
	}
	srv, err := newServer(serverConfig{
		Key: key, Suite: *suite, HandshakeTimeout: *hsTimeout, MaxClients: *maxClients,
		MaxPerAddr: *maxPerAddr, MaxFrame: *maxFrame, Rate: *rate, Burst: *burst, QueueLen: *queue, Record: rec, Keylog: kl, Log: logEvent,
	})
	if err != nil {
		ln.Close()
		errorf(stderr, "%v", err)
		return 1
	}

	bar := strings.Repeat("=", 70)
	fmt.Fprintln(stdout, bar)
	fmt.Fprintln(stdout, center70(serverTitle))
	fmt.Fprintln(stdout, bar)
	fmt.Fprintf(stdout, "Server: %s\n", ln.Addr())
	fmt.Fprintf(stdout, "Suite: %s\n", suiteDescription(*suite))
	fmt.Fprintf(stdout, "Key: RSA-2048 %s\n", fingerprint(&key.PublicKey))
	fmt.Fprintf(stdout, "Key file: %s\n", keyNote)
	if keyWarning != nil {
		fmt.Fprintf(stderr, "encchat: warning: %s\n", keyWarning)
		hintf(stderr, "to keep it private to its owner: %s", keyWarning.Fix())
	}
	if *record != "" {
		fmt.Fprintf(stdout, "Recording: %s\n", *record)
	}
	if *keylogFile != "" {
		fmt.Fprintf(stdout, "Key log: %s (session keys: keep it private)\n", *keylogFile)
	}
	fmt.Fprintln(stdout, "Status: Listening for secure connections... (Ctrl-C to stop)")
	fmt.Fprintln(stdout, bar)

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, pal.system.Sprint("[SYSTEM] Server shutting down"))
		srv.Shutdown()
		<-done
		return 0
	case err := <-done:
		srv.Shutdown()
		errorf(stderr, "%v", err)
		return 1
	}
}

// keyFileHint follows a server key file that could not be read: it says
// where a server started without -key keeps its key.
func keyFileHint(w io.Writer, name string, err error) {
	if !errors.Is(err, os.ErrNotExist) {
		return
	}
	if path, perr := defaultServerKeyPath(); perr == nil && name != path {
		hintf(w, "a server started without -key keeps its key in %s: give that path, or -rsa-key %s", path, defaultKeyName)
	}
}

// serverLimitsError checks the server's limits, and says what is wrong
// with the first bad one ("" when all are good). 0 means "no limit" for
// -max-clients, -max-per-addr and -rate; a negative value means nothing.
func serverLimitsError(maxClients, maxPerAddr int, rate float64, burst, queue int, hsTimeout time.Duration) string {
	switch {
	case maxClients < 0:
		return fmt.Sprintf("-max-clients must be 0 (no limit) or more, not %d", maxClients)
	case maxPerAddr < 0:
		return fmt.Sprintf("-max-per-addr must be 0 (no limit) or more, not %d", maxPerAddr)
	case rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0):
		return fmt.Sprintf("-rate must be 0 (no limit) or a positive number of lines per second, not %g", rate)
	case burst < 1:
		return fmt.Sprintf("-burst must be at least 1 line, not %d", burst)
	case queue < 1:
		return fmt.Sprintf("-queue must be at least 1 message, not %d", queue)
	case hsTimeout <= 0:
		return fmt.Sprintf("-handshake-timeout must be positive, not %v", hsTimeout)
	}
	return ""
}

// serverKey loads, creates or generates the server's RSA key and says where
// it lives, with a warning when group or others may read its file.
func serverKey(path string, ephemeral bool) (*rsa.PrivateKey, string, *keyModeWarning, error) {
	if ephemeral {
		key, err := rsa.GenerateKey(rand.Reader, rsaBits)
		return key, "none (-ephemeral: a new key every start; clients cannot pin it)", nil, err
	}
	if path == "" {
		var err error
		if path, err = defaultServerKeyPath(); err != nil {
			return nil, "", nil, fmt.Errorf("no config dir for the default key (%v); use -key FILE or -ephemeral", err)
		}
	}
	key, created, err := loadOrCreateKey(path, rand.Reader)
	if err != nil {
		return nil, "", nil, err
	}
	if created {
		return key, path + " (created now)", nil, nil
	}
	warning, err := checkKeyMode(path)
	if err != nil {
		return nil, "", nil, err
	}
	return key, path, warning, nil
}

// openRecordFiles opens the capture and key log a subcommand asked for; the
// returned func flushes and closes them.
func openRecordFiles(record, keylogPath, recorder, addr string) (*capture, *keylog, func(), error) {
	var rec *capture
	var kl *keylog
	var err error
	if record != "" {
		if rec, err = openCapture(record, recorder, addr); err != nil {
			return nil, nil, nil, fmt.Errorf("capture: %v", err)
		}
	}
	if keylogPath != "" {
		if kl, err = openKeylog(keylogPath); err != nil {
			if rec != nil {
				rec.Close()
			}
			return nil, nil, nil, fmt.Errorf("key log: %v", err)
		}
	}
	closeFiles := func() {
		// Chat goes on when a file fails (a full disk, say); the error is
		// reported once, here.
		if rec != nil {
			if err := rec.Close(); err != nil {
				errorf(os.Stderr, "capture %s: %v", record, err)
			}
		}
		if kl != nil {
			if err := kl.Close(); err != nil {
				errorf(os.Stderr, "key log %s: %v", keylogPath, err)
			}
		}
	}
	return rec, kl, closeFiles, nil
}

// clientOptions are the client's flags.
type clientOptions struct {
	connect, name, suite      string
	knownServers, fingerprint string
	insecure, noColor         bool
	record, keylog            string
	defaultKnownServers       bool // knownServers is the config dir's, not -known-servers
}

func runClientCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	var o clientOptions
	fs.StringVar(&o.connect, "connect", defaultAddr, "server `address`")
	fs.StringVar(&o.name, "name", "", "your username (asked at a prompt when absent)")
	fs.StringVar(&o.suite, "suite", "auto", "`suite`: auto (follow the server), classic, or modern (refuse classic)")
	fs.StringVar(&o.knownServers, "known-servers", "", "pinned server keys `file` (default: the user config dir)")
	fs.StringVar(&o.fingerprint, "fingerprint", "", "expected server key `SHA256:...`, as the server banner prints it")
	fs.BoolVar(&o.insecure, "insecure", false, "do not check the server key (shows what a MITM can do)")
	fs.StringVar(&o.record, "record", "", "record the wire traffic to this capture `file`")
	fs.StringVar(&o.keylog, "keylog", "", "append session keys to this key log `file`")
	fs.BoolVar(&o.noColor, "no-color", false, "no colour")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	switch o.suite {
	case "auto", suiteClassic, suiteModern:
	default:
		errorf(stderr, "client: -suite must be auto, classic or modern, not %q", o.suite)
		return 2
	}
	if o.insecure && o.fingerprint != "" {
		errorf(stderr, "client: -insecure and -fingerprint cannot be used together")
		return 2
	}
	if o.fingerprint != "" {
		fp, err := parseFingerprint(o.fingerprint)
		if err != nil {
			errorf(stderr, "client: -fingerprint %v", err)
			return 2
		}
		o.fingerprint = fp
	}
	addr, err := withDefaultPort(o.connect)
	if err != nil {
		errorf(stderr, "client: -connect %v", err)
		return 2
	}
	o.connect = addr
	if o.knownServers == "" && !o.insecure {
		dir, err := configDir()
		if err == nil {
			o.knownServers = filepath.Join(dir, "known_servers")
			o.defaultKnownServers = true
		}
	}
	return runClient(ctx, o, stdin, stdout, stderr)
}
