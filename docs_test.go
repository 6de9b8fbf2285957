// The documentation checked against the program: every encchat command
// line in README.md and docs/*.md names a real subcommand and only flags
// that subcommand has, the relative links between them resolve (headings
// included), and the README stays at most 300 lines.
//
// A command is a line after "$ " in a code block, a line of a code block
// with no "$ " that starts with encchat (or "go run ."), or an inline code
// span; within it, each piece of a pipeline that starts with encchat. A
// flag that is being added may be named before it exists by a marker in
// the section that uses it (up to the next "#" or "##" heading):
//
//	<!-- docs_test: to come: server -web, bench -transport -->
//
// Once the flag exists the marker changes nothing.

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

const readmeMaxLines = 300

// docCommand is one encchat command line found in a document.
type docCommand struct {
	where  string              // file:line
	line   string              // the command as written
	toCome map[string][]string // subcommand → flags its section says are to come
}

// docFiles are the documents the tests read: README.md and docs/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, files...)
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadmeLength(t *testing.T) {
	text := readDoc(t, "README.md")
	if n := strings.Count(text, "\n"); n > readmeMaxLines {
		t.Errorf("README.md is %d lines, want at most %d: move the detail to docs/", n, readmeMaxLines)
	}
}

var (
	toComeMarker = regexp.MustCompile(`<!--\s*docs_test:\s*to come:(.*?)-->`)
	inlineCode   = regexp.MustCompile("`([^`]+)`")
	flagSynopsis = regexp.MustCompile(`(?:^|[\s\[|(])(-[a-z][a-z0-9-]*)`)
)

// docCommands finds the encchat command lines of one document.
func docCommands(name, text string) []docCommand {
	var (
		out    []docCommand
		toCome = map[string][]string{}
		fence  []string // the open code block's lines, with their numbers
		fenceN []int
		inCode bool
		para   []string
		paraN  int
	)
	add := func(n int, line string) {
		out = append(out, docCommand{where: name + ":" + strconv.Itoa(n), line: line, toCome: toCome})
	}
	flushPara := func() {
		for _, m := range inlineCode.FindAllStringSubmatch(strings.Join(para, " "), -1) {
			add(paraN, m[1])
		}
		para = nil
	}
	flushFence := func() {
		prompt := false
		for _, l := range fence {
			prompt = prompt || strings.HasPrefix(l, "$ ")
		}
		prev := ""
		for i, l := range fence {
			switch {
			case prompt && strings.HasPrefix(l, "$ "):
				add(fenceN[i], strings.TrimPrefix(l, "$ "))
			case prompt:
			case strings.HasPrefix(l, "encchat ") || strings.HasPrefix(l, "go run . "):
				add(fenceN[i], l)
				prev = l
				continue
			case prev != "" && strings.HasPrefix(l, " ") && strings.Contains(l, "["):
				// A synopsis continued: the subcommand is the line above's.
				words := strings.Fields(prev)
				add(fenceN[i], words[0]+" "+words[1]+" "+strings.TrimSpace(l))
				continue
			}
			prev = ""
		}
		fence, fenceN = nil, nil
	}
	for i, l := range strings.Split(text, "\n") {
		n := i + 1
		if strings.HasPrefix(l, "```") {
			if inCode {
				flushFence()
			} else {
				flushPara()
			}
			inCode = !inCode
			continue
		}
		if inCode {
			fence, fenceN = append(fence, l), append(fenceN, n)
			continue
		}
		if strings.HasPrefix(l, "# ") || strings.HasPrefix(l, "## ") {
			toCome = map[string][]string{}
		}
		if m := toComeMarker.FindStringSubmatch(l); m != nil {
			toCome = map[string][]string{}
			for _, item := range strings.Split(m[1], ",") {
				if f := strings.Fields(item); len(f) == 2 {
					toCome[f[0]] = append(toCome[f[0]], strings.TrimLeft(f[1], "-"))
				}
			}
		}
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "|") {
			flushPara()
			if strings.HasPrefix(l, "|") {
				para, paraN = []string{l}, n
				flushPara()
			}
			continue
		}
		if para == nil {
			paraN = n
		}
		para = append(para, l)
	}
	flushPara()
	return out
}

// shellWords splits a command line as a shell would, for the simple lines
// the documents show: quotes kept together, a "#" word starting a comment,
// and the operators | || && ; & > >> < as words of their own.
func shellWords(line string) []string {
	var (
		words []string
		cur   strings.Builder
		in    bool
		quote rune
	)
	end := func() {
		if in {
			words = append(words, cur.String())
			cur.Reset()
			in = false
		}
	}
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			end()
		case r == '#' && !in:
			return words
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	end()
	return words
}

// encchatPieces returns, for each piece of a pipeline or list that runs
// encchat, the words after "encchat".
func encchatPieces(words []string) [][]string {
	var pieces [][]string
	start := 0
	for i := 0; i <= len(words); i++ {
		if i < len(words) && !isShellOperator(words[i]) {
			continue
		}
		p := words[start:i]
		start = i + 1
		for len(p) > 0 && (p[0] == "sudo" || strings.Contains(p[0], "=") && !strings.HasPrefix(p[0], "-")) {
			p = p[1:]
		}
		switch {
		case len(p) >= 1 && (p[0] == "encchat" || strings.HasSuffix(p[0], "/encchat")):
			pieces = append(pieces, p[1:])
		case len(p) >= 3 && p[0] == "go" && p[1] == "run" && p[2] == ".":
			pieces = append(pieces, p[3:])
		}
	}
	return pieces
}

func isShellOperator(w string) bool {
	switch w {
	case "|", "||", "&&", ";", "&", ">", ">>", "<", "2>&1":
		return true
	}
	return false
}

// subcommandFlags reads a subcommand's flags from its -h: each flag's name,
// and whether it takes a value (flag.PrintDefaults shows a value's name
// after the flag, and none for a boolean).
func subcommandFlags(t *testing.T, sub string) map[string]bool {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{sub, "-h"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("encchat %s -h: exit %d: %s", sub, code, stderr.String())
	}
	flags := map[string]bool{}
	for _, l := range strings.Split(stdout.String(), "\n") {
		if !strings.HasPrefix(l, "  -") {
			continue
		}
		name, rest, _ := strings.Cut(strings.TrimPrefix(l, "  -"), "\t")
		name, value, _ := strings.Cut(name, " ")
		_ = rest
		flags[name] = value != ""
	}
	return flags
}

func TestDocsCommands(t *testing.T) {
	known := map[string]map[string]bool{}
	for sub := range subcommands {
		if sub != "help" { // help takes a subcommand, not flags: checked apart
			known[sub] = subcommandFlags(t, sub)
		}
	}
	checked := 0
	for _, name := range docFiles(t) {
		for _, c := range docCommands(name, readDoc(t, name)) {
			for _, args := range encchatPieces(shellWords(c.line)) {
				if len(args) == 0 || !isLowerWord(args[0]) {
					continue // "encchat" alone, or a placeholder such as SUB
				}
				checked++
				if err := checkDocCommand(args, known, c.toCome); err != "" {
					t.Errorf("%s: encchat %s: %s", c.where, strings.Join(args, " "), err)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("found only %d encchat commands in the documents: is the extraction broken?", checked)
	}
	t.Logf("%d encchat commands checked", checked)
}

func isLowerWord(s string) bool {
	for _, r := range s {
		if !unicode.IsLower(r) {
			return false
		}
	}
	return s != ""
}

// checkDocCommand checks one command's subcommand, flags and positional
// arguments as Go's flag package would parse them, and says what is wrong.
func checkDocCommand(args []string, known map[string]map[string]bool, toCome map[string][]string) string {
	sub := args[0]
	if sub == "help" {
		switch {
		case len(args) > 2:
			return "help takes one subcommand"
		case len(args) == 2 && known[args[1]] == nil && isLowerWord(args[1]):
			return "no such subcommand " + args[1]
		}
		return "" // "help", "help server", or a placeholder: "help SUB"
	}
	flags, ok := known[sub]
	if !ok {
		return "no such subcommand"
	}
	rest := args[1:]
	if len(rest) == 0 {
		return "" // the subcommand named in prose: "encchat replay reads pcaps"
	}
	synopsis := strings.ContainsAny(strings.Join(rest, " "), "[")
	if synopsis {
		// A usage line: only its flags' names can be checked.
		for _, m := range flagSynopsis.FindAllStringSubmatch(strings.Join(rest, " "), -1) {
			if name := m[1][1:]; !hasFlag(flags, toCome[sub], name) {
				return "no flag -" + name
			}
		}
		return ""
	}
	var positional []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = rest[i+1:]
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = rest[i:]
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			return ""
		}
		if !hasFlag(flags, toCome[sub], name) {
			return "no flag -" + name
		}
		takesValue, exists := flags[name]
		if !exists {
			takesValue = true // a flag to come: each takes a value
		}
		if takesValue && !hasValue {
			if i+1 == len(rest) {
				return "flag -" + name + " needs a value"
			}
			i++
		}
	}
	want := map[string]int{"replay": 1, "forget": 1}[sub]
	if len(positional) != want {
		return "takes " + strconv.Itoa(want) + " argument(s) after its flags, got " + strings.Join(positional, " ")
	}
	return ""
}

func hasFlag(flags map[string]bool, toCome []string, name string) bool {
	if _, ok := flags[name]; ok {
		return true
	}
	for _, f := range toCome {
		if f == name {
			return true
		}
	}
	return false
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

func TestDocsLinks(t *testing.T) {
	docs := docFiles(t)
	anchors := map[string]map[string]bool{}
	for _, name := range docs {
		anchors[filepath.Clean(name)] = headingAnchors(readDoc(t, name))
	}
	readmeLinks := map[string]bool{}
	for _, name := range docs {
		inCode := false
		for i, l := range strings.Split(readDoc(t, name), "\n") {
			if strings.HasPrefix(l, "```") {
				inCode = !inCode
			}
			if inCode {
				continue
			}
			l = inlineCode.ReplaceAllString(l, "")
			for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				path := filepath.Clean(name)
				if file != "" {
					path = filepath.Join(filepath.Dir(name), file)
				}
				where := name + ":" + strconv.Itoa(i+1) + ": " + target
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				if name == "README.md" {
					readmeLinks[path] = true
				}
				if anchor == "" {
					continue
				}
				if a, ok := anchors[path]; !ok {
					t.Errorf("%s: an anchor into a file that is not one of the documents", where)
				} else if !a[anchor] {
					t.Errorf("%s: %s has no heading #%s", where, path, anchor)
				}
			}
		}
	}
	for _, name := range docs[1:] {
		if !readmeLinks[filepath.Clean(name)] {
			t.Errorf("README.md does not link to %s", name)
		}
	}
}

// headingAnchors gives the anchors GitHub makes of a document's headings:
// lower case, punctuation dropped, spaces as hyphens, "-1" and on for a
// heading met again.
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	inCode := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "```") {
			inCode = !inCode
		}
		if inCode || !strings.HasPrefix(l, "#") {
			continue
		}
		title := strings.TrimLeft(l, "#")
		if !strings.HasPrefix(title, " ") {
			continue // "#217", not a heading
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(title)) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}
