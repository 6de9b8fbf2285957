// The browser client's files, as the server serves them: the page under
// web/, and the client compiled to WebAssembly. go generate (web_build.go)
// writes web/encchat.wasm.gz and web/wasm_exec.js, git-ignored, and go build
// embeds them; ENCCHAT_WASM_DIR serves them from another directory instead
// (the browser tests build the client from the source into one). The
// WebAssembly is served gzipped, as application/wasm.

//go:build !js

//go:generate go run web_build.go

package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
)

//go:embed web
var webFiles embed.FS

// The built client's files, and the variable that names another directory
// to read them from.
const (
	webWasmFile   = "encchat.wasm.gz"
	webExecJSFile = "wasm_exec.js"
	webWasmDirEnv = "ENCCHAT_WASM_DIR"
)

// webBuildHint is what to run when the client is not built.
const webBuildHint = "the browser client is not built: run \"go generate && go build\" in encchat's source (it builds web/encchat.wasm.gz), then start the server again"

// webClientCSP is the page's Content-Security-Policy: its own scripts and
// styles only, WebAssembly compiled from its own file ('wasm-unsafe-eval'
// allows nothing else), connections to its own origin (the WebSocket).
const webClientCSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webClient serves the page from the embedded web/, and the built client
// from built (the embedded web/ too, unless ENCCHAT_WASM_DIR names another).
type webClient struct {
	static fs.FS
	built  fs.FS
}

// webClientFiles serves the browser client's page and assets.
func webClientFiles() http.Handler {
	static, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	built := static
	if dir := os.Getenv(webWasmDirEnv); dir != "" {
		built = os.DirFS(dir)
	}
	return &webClient{static: static, built: built}
}

// webClientMissing says what to run when the client is not built, and is
// empty when it is.
func webClientMissing() string {
	h := webClientFiles().(*webClient)
	for _, name := range []string{webWasmFile, webExecJSFile} {
		if _, err := fs.Stat(h.built, name); err != nil {
			return webBuildHint
		}
	}
	return ""
}

func (h *webClient) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", webClientCSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/encchat.wasm":
		h.serveWasm(w, r)
	case "/" + webExecJSFile:
		h.serveFile(w, r, h.built, webExecJSFile, "text/javascript; charset=utf-8")
	case "/", "/index.html":
		h.serveFile(w, r, h.static, "index.html", "text/html; charset=utf-8")
	case "/" + webWasmFile:
		http.NotFound(w, r) // served decoded, as /encchat.wasm
	default:
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		h.serveFile(w, r, h.static, name, "")
	}
}

// serveFile serves one file with a content hash as its ETag, revalidated
// on each load (Cache-Control: no-cache), so a rebuilt client is never
// mixed with an older page.
func (h *webClient) serveFile(w http.ResponseWriter, r *http.Request, fsys fs.FS, name, ctype string) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		if name == webExecJSFile {
			http.Error(w, webBuildHint, http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
		return
	}
	if ctype == "" {
		switch path.Ext(name) {
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".html":
			ctype = "text/html; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		default:
			ctype = "application/octet-stream"
		}
	}
	w.Header().Set("Content-Type", ctype)
	h.serveBytes(w, r, data)
}

// serveWasm serves the gzipped client as application/wasm with
// Content-Encoding: gzip, or decoded to a client that does not take gzip.
func (h *webClient) serveWasm(w http.ResponseWriter, r *http.Request) {
	gz, err := fs.ReadFile(h.built, webWasmFile)
	if err != nil {
		http.Error(w, webBuildHint, http.StatusServiceUnavailable)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/wasm")
	hd.Set("Vary", "Accept-Encoding")
	if !acceptsGzip(r) {
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			http.Error(w, "the built client is damaged: "+err.Error(), http.StatusInternalServerError)
			return
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			http.Error(w, "the built client is damaged: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h.serveBytes(w, r, raw)
		return
	}
	hd.Set("Content-Encoding", "gzip")
	h.serveBytes(w, r, gz)
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") || strings.TrimSpace(coding) == "*" {
			q := strings.TrimSpace(params)
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// serveBytes writes data with its ETag, or 304 to a client that has it.
func (h *webClient) serveBytes(w http.ResponseWriter, r *http.Request, data []byte) {
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	hd := w.Header()
	hd.Set("ETag", etag)
	hd.Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(data)
}
