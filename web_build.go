// The browser client's build, run by go generate (see web_client.go): this
// package compiled with GOOS=js GOARCH=wasm, gzipped at the best level to
// web/encchat.wasm.gz, and the Go toolchain's own wasm_exec.js beside it,
// so the two always come from the same Go. Both are git-ignored: they are
// built from the source on every machine, never committed. -out DIR writes
// them elsewhere (the browser tests build into a temporary directory).

//go:build ignore

package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	out := flag.String("out", "web", "the directory to write encchat.wasm.gz and wasm_exec.js into")
	flag.Parse()
	if err := build(*out); err != nil {
		fmt.Fprintln(os.Stderr, "web_build:", err)
		os.Exit(1)
	}
}

// goCommand is the go command of the toolchain that runs this build: go
// generate sets GOROOT to it.
func goCommand() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) || fileExists(p+".exe") {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func build(out string) error {
	goBin := goCommand()
	goroot, err := exec.Command(goBin, "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %v", err)
	}
	execJS, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "encchat-wasm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	wasm := filepath.Join(tmp, "encchat.wasm")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", wasm, ".")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("GOOS=js GOARCH=wasm go build: %v", err)
	}
	raw, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(out, "encchat.wasm.gz"), gz.Bytes()); err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(out, "wasm_exec.js"), execJS); err != nil {
		return err
	}
	fmt.Printf("%s: %d bytes gzipped (%d bytes of WebAssembly)\n", filepath.Join(out, "encchat.wasm.gz"), gz.Len(), len(raw))
	return nil
}

// writeAtomic writes through a temporary file and a rename, so a server
// serving the directory never reads half a file.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
