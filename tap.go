// The passive tap (encchat tap): a relay between clients and a server that
// forwards bytes unchanged and records them, a sniffer on the path; and the
// tap command, which also starts tap -mitm.

//go:build !js

package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tap relays every connection accepted on ln to upstream, forwarding bytes
// unchanged both ways and recording them into rec (which may be nil). It
// returns when ctx is done, after every relay has ended. report receives a
// line per connection event; it may be called from several goroutines.
func tap(ctx context.Context, ln net.Listener, upstream string, rec *capture, report func(string)) error {
	return acceptEach(ctx, ln, func(ctx context.Context, down net.Conn) {
		tapRelay(ctx, down, upstream, rec, report)
	})
}

// tapRelay relays one client connection until both directions end.
func tapRelay(ctx context.Context, down net.Conn, upstream string, rec *capture, report func(string)) {
	dialer := net.Dialer{Timeout: 10 * time.Second}
	up, err := dialer.DialContext(ctx, "tcp", upstream)
	if err != nil {
		report(fmt.Sprintf("%s: upstream %s unreachable: %v", down.RemoteAddr(), upstream, err))
		down.Close()
		return
	}
	cc := rec.openVia(addrString(down.RemoteAddr()), addrString(up.RemoteAddr()), connTransport(down))
	name := down.RemoteAddr().String()
	if cc != nil {
		name = fmt.Sprintf("conn %d (%s)", cc.id, down.RemoteAddr())
	}
	report(name + ": relaying to " + upstream)
	stop := context.AfterFunc(ctx, func() {
		down.Close()
		up.Close()
	})
	var wg sync.WaitGroup
	var sent [2]int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		sent[wireC2S] = tapPipe(up, down, cc, wireC2S)
	}()
	go func() {
		defer wg.Done()
		sent[wireS2C] = tapPipe(down, up, cc, wireS2C)
	}()
	wg.Wait()
	stop()
	down.Close()
	up.Close()
	cc.close()
	report(fmt.Sprintf("%s: closed (client → server %d B, server → client %d B)", name, sent[wireC2S], sent[wireS2C]))
}

// tapPipe copies src to dst, recording each chunk before forwarding it.
// At EOF it half-closes dst so the other side sees the end; on an error it
// closes both, which ends the other direction too.
func tapPipe(dst, src net.Conn, cc *capConn, dir wireDir) int64 {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			cc.data(dir, buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				dst.Close()
				return total
			}
			total += int64(n)
		}
		if err == io.EOF {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return total
			}
			dst.Close()
			return total
		}
		if err != nil {
			src.Close()
			dst.Close()
			return total
		}
	}
}

// runTap is "encchat tap".
func runTap(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	listen := fs.String("listen", "", "`address` the clients connect to")
	webAddr := fs.String("web", "", "also serve the browser client on this HTTP `address` (such as :8080) and relay its WebSocket clients to -upstream the same way")
	upstream := fs.String("upstream", "", "`address` of the real server")
	record := fs.String("record", "", "capture `file` to write")
	mitm := fs.Bool("mitm", false, "be an active attacker: complete each handshake with the tap's own key")
	rewriteText := fs.String("rewrite", "", "be an attacker with no key: flip bits of each client's chat records so that text beginning with OLD arrives as NEW (`OLD=NEW`, same length, at most 16 bytes)")
	if code := parseFlags(fs, args, stdout, stderr); code >= 0 {
		return code
	}
	var spec rewriteSpec
	if *rewriteText != "" {
		var err error
		if spec, err = parseRewrite(*rewriteText); err != nil {
			errorf(stderr, "tap: -rewrite %v", err)
			return 2
		}
		if *mitm {
			errorf(stderr, "tap: -mitm and -rewrite cannot be used together")
			return 2
		}
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"-listen", *listen}, {"-upstream", *upstream}, {"-record", *record}} {
		if f.v == "" && (f.name != "-record" || *rewriteText == "") && (f.name != "-listen" || *webAddr == "") {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		errorf(stderr, "tap needs %s", strings.Join(missing, ", "))
		hintf(stderr, "encchat tap -listen 127.0.0.1:6000 -upstream 127.0.0.1:5174 -record chat.jsonl")
		return 2
	}
	var mu sync.Mutex
	report := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "[%s] %s\n", time.Now().Format("15:04:05"), printable(s))
	}
	ln, web, where, err := tapListen(*listen, *webAddr, report)
	if err != nil {
		errorf(stderr, "%v", err)
		return 1
	}
	if web != nil {
		if missing := webClientMissing(); missing != "" {
			fmt.Fprintf(stderr, "encchat: warning: tap -web: %s\n", missing)
		}
		// After the tap: it has closed the listener, so /ws hands over nothing more.
		defer func() {
			if err := web.Close(); err != nil {
				errorf(stderr, "tap -web: %v", err)
			}
		}()
	}
	var mitmKey *rsa.PrivateKey
	if *mitm {
		// The attacker's key: fresh each run, like the seed's server.
		if mitmKey, err = rsa.GenerateKey(rand.Reader, rsaBits); err != nil {
			ln.Close()
			errorf(stderr, "tap -mitm: %v", err)
			return 1
		}
	}
	var rec *capture
	if *record != "" {
		if rec, err = openCapture(*record, "tap", *upstream); err != nil {
			ln.Close()
			errorf(stderr, "%v", err)
			outputHint(stderr, err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var tapErr error
	switch {
	case *rewriteText != "":
		fmt.Fprintf(stdout, "encchat tap -rewrite: an attacker with no key between clients on %s and %s (Ctrl-C stops)\n", where, *upstream)
		tapErr = rewriteTap(ctx, ln, *upstream, spec, rec, report)
	case *mitm:
		fmt.Fprintf(stdout, "encchat tap -mitm: an active attacker between clients on %s and %s, recorded to %s (Ctrl-C stops)\n", where, *upstream, *record)
		tapErr = runMITMTap(ctx, ln, *upstream, mitmKey, rec, report)
	default:
		fmt.Fprintf(stdout, "encchat tap: clients connect to %s, relayed to %s, recorded to %s (Ctrl-C stops)\n", where, *upstream, *record)
		tapErr = tap(ctx, ln, *upstream, rec, report)
	}
	var recErr error
	if rec != nil {
		recErr = rec.Close()
	}
	code := 0
	if tapErr != nil {
		errorf(stderr, "%v", tapErr)
		code = 1
	}
	if recErr != nil {
		errorf(stderr, "recording %s: %v", *record, recErr)
		code = 1
	} else if rec != nil {
		fmt.Fprintf(stdout, "encchat tap: capture written to %s; replay it with: encchat replay %s\n", *record, *record)
	}
	return code
}

// tapListen opens what the tap's clients connect to: the -listen TCP
// address, the -web HTTP address whose /ws clients are relayed the same
// way, or both as one listener. where says it for the banner. Closing ln
// closes the TCP listener; web (nil without -web) is closed after it.
func tapListen(listen, webAddr string, report func(string)) (ln net.Listener, web *webServer, where string, err error) {
	var tcp net.Listener
	if listen != "" {
		if tcp, err = net.Listen("tcp", listen); err != nil {
			return nil, nil, "", err
		}
		ln, where = tcp, tcp.Addr().String()
	}
	if webAddr == "" {
		return ln, nil, where, nil
	}
	webLn, err := net.Listen("tcp", webAddr)
	if err != nil {
		if tcp != nil {
			tcp.Close()
		}
		return nil, nil, "", fmt.Errorf("-web %v", err)
	}
	wl := newWSListener(webLn.Addr())
	web = startWebServer(webLn, webConfig{Client: webClientFiles(), Conn: wl.deliver, Log: report})
	browsers := "http://" + webURLHost(webLn.Addr()) + "/ (browsers)"
	if tcp == nil {
		return wl, web, browsers, nil
	}
	return listenBoth(tcp, wl), web, where + " and " + browsers, nil
}
