//go:build !js

// The browser client's files, as the server serves them: the page under
// web/ and the client compiled to WebAssembly.

package main

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed web
var webFiles embed.FS

// webClientFiles serves the browser client's page and assets.
func webClientFiles() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree always has web/
	}
	return http.FileServerFS(sub)
}
