// The client command: its flags, then the session and the terminal UI
// (session.go, repl.go).

//go:build !js

package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"path/filepath"
	"syscall"
)

// clientOptions are the client's flags.
type clientOptions struct {
	connect, name, suite      string
	knownServers, fingerprint string
	insecure, noColor         bool
	record, keylog            string
	defaultKnownServers       bool // knownServers is the config dir's, not -known-servers
}

// fingerprintSourceHint says where a -fingerprint comes from, and that
// the seed's server gives none.
const fingerprintSourceHint = "an encchat server prints its fingerprint on its banner (\"Key: RSA-2048 SHA256:...\"); " +
	"the seed's Python server prints none and makes a new key at every start, so it has no fingerprint to give in advance"

// dialHint says what to do about a failed connection, from its cause.
func dialHint(w io.Writer, err error) {
	var ne net.Error
	switch {
	case isLookupError(err):
		hintf(w, "no such host: check the name in -connect HOST:PORT, or give an address, such as -connect %s", defaultAddr)
	case errors.Is(err, syscall.ECONNREFUSED):
		hintf(w, "is the server running? start one with \"encchat server\", or pick the address with -connect HOST:PORT")
	case errors.As(err, &ne) && ne.Timeout():
		hintf(w, "nothing answered: is the address right, and does a firewall let the port through?")
	default:
		hintf(w, "check the address given to -connect HOST:PORT (an encchat server's default is %s)", defaultAddr)
	}
}

func runClientCommand(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	var o clientOptions
	fs.StringVar(&o.connect, "connect", defaultAddr, "server `address`")
	fs.StringVar(&o.name, "name", "", "your username (asked at a prompt when absent)")
	fs.StringVar(&o.suite, "suite", "auto", "`suite`: auto (follow the server), classic, or modern (refuse classic)")
	fs.StringVar(&o.knownServers, "known-servers", "", "pinned server keys `file` (default: the user config dir)")
	fs.StringVar(&o.fingerprint, "fingerprint", "", "expected server key `SHA256:...`, as an encchat server's banner prints it (\"Key: RSA-2048 SHA256:...\")")
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
