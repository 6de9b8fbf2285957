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
	"net"
	"os"
	"os/signal"
	"path/filepath"
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
    encchat demo    [-suite classic|modern] [-html OUT]

Run "encchat SUBCOMMAND -h" for the flags of one subcommand.

Examples:
    encchat server                          # terminal 1: a server on 127.0.0.1:5174
    encchat client -name alice              # terminal 2
    encchat client -name bob                # terminal 3
    encchat server -record chat.jsonl -keylog keys.log
    encchat replay -keylog keys.log chat.jsonl
`

const defaultAddr = "127.0.0.1:5174"

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
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
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
// exit code: 0 after -h, 2 after a bad flag (one line naming it).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "Usage of encchat %s:\n", fs.Name())
		fs.PrintDefaults()
		return 0
	case err != nil:
		errorf(stderr, "%s: %v", fs.Name(), err)
		return 2
	case fs.NArg() > 0 && fs.Name() != "replay":
		errorf(stderr, "%s: unexpected argument %q", fs.Name(), fs.Arg(0))
		return 2
	}
	return -1
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
	rate := fs.Float64("rate", 10, "chat lines per second a client may send after its burst (0: no limit)")
	burst := fs.Int("burst", 20, "lines a client may send at once before -rate applies")
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
	if *maxFrame < 1024 || *maxFrame > maxFrameLen {
		errorf(stderr, "server: -max-frame must be between 1024 and %d, not %d", maxFrameLen, *maxFrame)
		return 2
	}
	if *keyFile != "" && *ephemeral {
		errorf(stderr, "server: -key and -ephemeral cannot be used together")
		return 2
	}
	pal := newPalette(colorEnabled(*noColor, stdout))

	key, keyNote, err := serverKey(*keyFile, *ephemeral)
	if err != nil {
		errorf(stderr, "server key: %v", err)
		return 1
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		errorf(stderr, "%v", err)
		hintf(stderr, "is another server running? pick another port with -listen 127.0.0.1:PORT")
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

// serverKey loads, creates or generates the server's RSA key and says where
// it lives.
func serverKey(path string, ephemeral bool) (*rsa.PrivateKey, string, error) {
	if ephemeral {
		key, err := rsa.GenerateKey(rand.Reader, rsaBits)
		return key, "none (-ephemeral: a new key every start; clients cannot pin it)", err
	}
	if path == "" {
		dir, err := configDir()
		if err != nil {
			return nil, "", fmt.Errorf("no config dir for the default key (%v); use -key FILE or -ephemeral", err)
		}
		path = filepath.Join(dir, "server.pem")
	}
	key, created, err := loadOrCreateKey(path, rand.Reader)
	if err != nil {
		return nil, "", err
	}
	if created {
		return key, path + " (created now)", nil
	}
	return key, path, nil
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
	if o.knownServers == "" && !o.insecure {
		dir, err := configDir()
		if err == nil {
			o.knownServers = filepath.Join(dir, "known_servers")
		}
	}
	return runClient(ctx, o, stdin, stdout, stderr)
}
