//go:build !js

// The live wire page (/wire) for the projector: every connection's frames
// as they cross, as a sniffer sees them, streamed with Server-Sent Events;
// with the teacher's token, the text each frame carries beside it.

package main

import (
	"net/http"
)

// liveWire watches the server's capture and keylog and serves /wire.
type liveWire struct {
	token string
}

// newLiveWire makes the live wire; token "" means no teacher view.
func newLiveWire(token string) *liveWire {
	return &liveWire{token: token}
}

// observe returns what the server should get as serverConfig.Record and .Keylog:
// the user's own capture/keylog (either may be nil) with the live wire watching them.
func (lw *liveWire) observe(rec *capture, kl *keylog) (*capture, *keylog) {
	return rec, kl
}

// ServeHTTP serves the page, its assets and its event stream; it is
// mounted at /wire and /wire/.
func (lw *liveWire) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "the live wire is not built yet", http.StatusNotImplemented)
}

// Close stops the live wire and ends every viewer's stream.
func (lw *liveWire) Close() {}
