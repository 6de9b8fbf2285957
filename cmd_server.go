// The server command: its flags, the key and files it opens, the banner,
// and the run until Ctrl-C. The hub itself is server.go.

//go:build !js

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
	"strings"
	"time"
)

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
	maxPerAddr := fs.Int("max-per-addr", 256, "most connections from one IPv4 address or IPv6 /64 (0: no limit)")
	rate := fs.Float64("rate", defaultRate, "chat lines per second a client may send after its burst (0: no limit)")
	burst := fs.Int("burst", defaultBurst, "lines a client may send at once before -rate applies")
	maxFrame := fs.Int("max-frame", maxFrameLen, "largest frame a client may send, in `bytes` (1024 to 65536); a larger one closes its connection")
	queue := fs.Int("queue", defaultQueueLen, "outbound queue per client, in messages; a client whose queue fills is disconnected")
	webAddr := fs.String("web", "", "classroom mode: also serve HTTP on this `address` (such as :8080): the browser client at /, the live wire at /wire")
	webToken := fs.String("web-token", "", "with -web: the teacher's `token`, which shows each message's text on /wire (default: a random one at each start)")
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
	if msg := webFlagsError(*webAddr, *webToken); msg != "" {
		errorf(stderr, "server: %s", msg)
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
	var webLn net.Listener
	if *webAddr != "" {
		if webLn, err = net.Listen("tcp", *webAddr); err != nil {
			ln.Close()
			errorf(stderr, "server: -web %v", err)
			return 1
		}
	}
	closeListeners := func() {
		ln.Close()
		if webLn != nil {
			webLn.Close()
		}
	}
	rec, kl, closeFiles, err := openRecordFiles(*record, *keylogFile, "server", ln.Addr().String())
	if err != nil {
		closeListeners()
		errorf(stderr, "%v", err)
		outputHint(stderr, err)
		return 1
	}
	defer closeFiles()
	var wire *liveWire
	token := *webToken
	if webLn != nil {
		if token == "" {
			token = newWireToken()
		}
		wire = newLiveWire(token)
		defer wire.Close() // before closeFiles: it watches them
		rec, kl = wire.observe(rec, kl)
	}

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
		closeListeners()
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
	if webLn != nil {
		base := "http://" + webURLHost(webLn.Addr())
		fmt.Fprintf(stdout, "Students open: %s/\n", base)
		fmt.Fprintf(stdout, "Live wire: %s/wire (what anyone on the network sees)\n", base)
		fmt.Fprintf(stdout, "Teacher's wire: %s (adds the text of every message: keep it to yourself)\n", teacherURL(base, token))
		if missing := webClientMissing(); missing != "" {
			fmt.Fprintf(stderr, "encchat: warning: -web: %s\n", missing)
		}
	}
	fmt.Fprintln(stdout, "Status: Listening for secure connections... (Ctrl-C to stop)")
	fmt.Fprintln(stdout, bar)

	var web *webServer
	if webLn != nil {
		web = startWebServer(webLn, webConfig{
			Client: webClientFiles(),
			Wire:   wire,
			Conn:   func(nc net.Conn) { srv.serveConn(nc) },
			Log:    func(msg string) { srv.logf(evRefused, "%s", msg) },
		})
	}
	// stop ends the web side first, so no browser joins a server that is
	// going away, then the chat server.
	stop := func() {
		if web != nil {
			if err := web.Close(); err != nil {
				errorf(stderr, "-web: %v", err)
			}
		}
		srv.Shutdown()
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, pal.system.Sprint("[SYSTEM] Server shutting down"))
		stop()
		<-done
		return 0
	case err := <-done:
		stop()
		errorf(stderr, "%v", err)
		return 1
	}
}

// webFlagsError checks -web and -web-token ("" when both are good).
func webFlagsError(webAddr, token string) string {
	if webAddr == "" {
		if token != "" {
			return "-web-token needs -web"
		}
		return ""
	}
	if _, port, err := net.SplitHostPort(webAddr); err != nil || port == "" {
		return fmt.Sprintf("-web wants HOST:PORT or :PORT, such as :8080, not %q", webAddr)
	}
	if token != "" {
		return checkWebToken(token)
	}
	return ""
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
			return nil, nil, nil, fmt.Errorf("capture: %w", err)
		}
	}
	if keylogPath != "" {
		if kl, err = openKeylog(keylogPath); err != nil {
			if rec != nil {
				rec.Close()
			}
			return nil, nil, nil, fmt.Errorf("key log: %w", err)
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
