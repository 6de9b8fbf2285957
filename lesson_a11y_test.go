// Tests of the lesson page in the room: the demo's page, classic and
// modern, default and projector mode, checked in headless Chromium by
// axe-core 4 (the accessibility engine of the browsers' own audit tools), at
// 390 CSS pixels for sideways scrolling, and in projector mode for the
// smallest text. Also the colour palette's contrast, the projector flag and
// the page's file mode.
//
// axe-core comes from npm (npm install axe-core@4); ENCCHAT_AXE names its
// axe.min.js. The page forbids scripts, so the probe is a test copy with its
// Content-Security-Policy removed, axe and a short script inlined; the
// script writes what it measured into the DOM, which Chromium dumps
// (--dump-dom) once the page is idle (--virtual-time-budget).

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// axeEnv names the environment variable that gives axe.min.js.
const axeEnv = "ENCCHAT_AXE"

// needAxe returns axe-core 4's script, or skips the test (fails it under
// ENCCHAT_REQUIRE_TOOLS=1) when there is none.
func needAxe(t *testing.T) string {
	t.Helper()
	missing := func(why string) string {
		why += "; npm install axe-core@4 and set " + axeEnv + "=…/node_modules/axe-core/axe.min.js"
		if os.Getenv("ENCCHAT_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s (ENCCHAT_REQUIRE_TOOLS=1)", why)
		}
		t.Skip(why)
		return ""
	}
	path := os.Getenv(axeEnv)
	if path == "" {
		return missing("axe-core not found: " + axeEnv + " is not set")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return missing(fmt.Sprintf("axe-core not found: %v", err))
	}
	if !regexp.MustCompile(`^/\*! axe v4\.`).Match(src) {
		return missing(fmt.Sprintf("%s is not axe-core 4 (it begins %.20q)", path, src))
	}
	return string(src)
}

// lessonProbe is run in each frame of the probe page. It writes, as JSON
// into the parent's <pre id="result-NAME">: axe's violations, the page's
// width and its widest box that scrolls sideways, and the smallest text
// drawn (font size times the SVG scale, for the diagram's text; generated
// labels such as "SNIFFER" count too).
const lessonProbe = `<script>
(function(){
function out(v){var p=parent.document.getElementById("result-"+frameElement.name);p.textContent=JSON.stringify(v)}
function minFont(){
	var min={px:1e9,what:""};
	function see(px,el,text){if(px<min.px){min={px:px,what:el.tagName.toLowerCase()+"."+(el.getAttribute("class")||"")+" "+JSON.stringify(text.slice(0,40))}}}
	var w=document.createTreeWalker(document.body,NodeFilter.SHOW_TEXT);
	for(var n=w.nextNode();n;n=w.nextNode()){
		if(!n.data.trim())continue;
		var r=document.createRange();r.selectNodeContents(n);
		if(r.getClientRects().length===0)continue;
		var el=n.parentElement,cs=getComputedStyle(el);
		if(cs.visibility!=="visible")continue;
		var px=parseFloat(cs.fontSize);
		if(el instanceof SVGElement){var m=el.getScreenCTM();px*=Math.hypot(m.a,m.b)}
		see(px,el,n.data.trim());
	}
	document.querySelectorAll("body *").forEach(function(el){
		var b=getComputedStyle(el,"::before");
		if(b.content==="none"||b.content==="normal"||el.getClientRects().length===0)return;
		see(parseFloat(b.fontSize),el,"::before "+b.content);
	});
	return min;
}
function overflows(){
	var list=[];
	document.querySelectorAll("body *").forEach(function(el){
		var s=getComputedStyle(el).overflowX;
		if((s==="auto"||s==="scroll")&&el.scrollWidth>el.clientWidth)list.push(el.tagName.toLowerCase()+"."+el.className+" "+el.scrollWidth+">"+el.clientWidth+": "+el.textContent.trim().slice(0,30));
	});
	return list;
}
var d=document.documentElement;
var res={width:d.clientWidth,scrollWidth:d.scrollWidth,overflows:overflows(),minFont:minFont()};
axe.run(document,{resultTypes:["violations"]}).then(function(r){
	res.violations=r.violations.map(function(v){return{id:v.id,impact:v.impact,help:v.help,nodes:v.nodes.length,
		first:v.nodes[0].target.join(" ")+": "+v.nodes[0].failureSummary}});
	out(res);
},function(e){res.error=String(e);out(res)});
})();
</script>`

// lessonProbeResult is what lessonProbe measured in one frame.
type lessonProbeResult struct {
	Width, ScrollWidth int
	Overflows          []string
	MinFont            struct {
		Px   float64
		What string
	}
	Violations []struct {
		ID, Impact, Help, First string
		Nodes                   int
	}
	Error string
}

// probeLesson loads page in headless Chromium in one frame per width
// (name → CSS pixels), with axe and lessonProbe inlined, and returns what
// each frame measured.
func probeLesson(t *testing.T, page, axe string, widths map[string]int) map[string]lessonProbeResult {
	t.Helper()
	csp := `<meta http-equiv="Content-Security-Policy"`
	if !strings.Contains(page, csp) {
		t.Fatal("the page has no Content-Security-Policy meta to remove")
	}
	probe := strings.Replace(page, csp, `<meta name="csp-removed-for-the-probe"`, 1)
	script := "<script>" + strings.ReplaceAll(axe, "</script", `<\/script`) + "</script>"
	probe = strings.Replace(probe, "</body>", script+lessonProbe+"</body>", 1)

	// Headless Chromium's window is at least 500 pixels wide: each width is
	// an iframe of its own, whose viewport it is.
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html><body style="margin:0">`)
	window := 500
	for name, w := range widths {
		fmt.Fprintf(&b, `<pre id="result-%s"></pre><iframe name="%s" width="%d" height="1600" style="border:0;display:block" srcdoc="%s"></iframe>`,
			name, name, w, html.EscapeString(probe))
		window = max(window, w+20)
	}
	b.WriteString(`</body></html>`)
	path := filepath.Join(t.TempDir(), "probe.html")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	dom := chromiumWithin(t, chromiumAxeTimeout, "--hide-scrollbars", fmt.Sprintf("--window-size=%d,1600", window),
		"--virtual-time-budget=60000", "--dump-dom", "file://"+path)
	results := map[string]lessonProbeResult{}
	for name := range widths {
		m := regexp.MustCompile(`<pre id="result-` + name + `">(.*?)</pre>`).FindStringSubmatch(dom)
		if m == nil || m[1] == "" {
			t.Fatalf("the probe at %s wrote no result (axe did not finish?):\n%.500s", name, dom)
		}
		var r lessonProbeResult
		if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &r); err != nil {
			t.Fatalf("the probe at %s: %v\n%.500s", name, err, m[1])
		}
		if r.Error != "" {
			t.Fatalf("axe at %s: %s", name, r.Error)
		}
		results[name] = r
	}
	return results
}

// demoLesson runs "encchat demo -suite SUITE -html OUT" (with -projector
// when asked) and returns the page, checking it was written 0600 over an
// older 0644 file.
func demoLesson(t *testing.T, suite string, projector bool) string {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	out := filepath.Join(t.TempDir(), "lesson.html")
	if err := os.WriteFile(out, []byte("an older page"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-suite", suite, "-html", out}
	if projector {
		args = append(args, "-projector")
	}
	var stdout, stderr bytes.Buffer
	if code := runDemo(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("demo %v: exit %d: %s", args, code, stderr.String())
	}
	checkMode(t, out, 0o600)
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(page)
}

// checkMode checks a file's permission bits.
func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}

// TestLessonAccessibility runs axe-core over the demo's page, classic and
// modern, default and projector mode, 1200 and 390 pixels wide (and 1920 in
// projector mode): no serious
// or critical violation, one main landmark and every part inside a landmark;
// nothing scrolls sideways at 390 pixels; no text under 16 pixels in
// projector mode.
func TestLessonAccessibility(t *testing.T) {
	needTool(t, "chromium")
	axe := needAxe(t)
	for _, suite := range []string{suiteClassic, suiteModern} {
		for _, projector := range []bool{false, true} {
			mode := "default"
			if projector {
				mode = "projector"
			}
			t.Run(suite+"/"+mode, func(t *testing.T) {
				page := demoLesson(t, suite, projector)
				if got := strings.Contains(page, `<html lang="en" class="projector">`); got != projector {
					t.Fatalf("projector mode %v, the page's root element says %v", projector, got)
				}
				widths := map[string]int{"wide": 1200, "narrow": 390}
				if projector {
					widths["projector"] = 1920 // the views side by side
				}
				results := probeLesson(t, page, axe, widths)
				for _, name := range slices.Sorted(maps.Keys(results)) {
					r := results[name]
					for _, v := range r.Violations {
						switch {
						case v.Impact == "serious" || v.Impact == "critical":
							t.Errorf("%s: axe %s (%s), %d elements: %s; first: %s", name, v.ID, v.Impact, v.Nodes, v.Help, v.First)
						case v.ID == "landmark-one-main" || v.ID == "region":
							t.Errorf("%s: axe %s: %s; first: %s", name, v.ID, v.Help, v.First)
						default:
							t.Logf("%s: axe %s (%s), %d elements: %s", name, v.ID, v.Impact, v.Nodes, v.Help)
						}
					}
					if projector && r.MinFont.Px < 16 {
						t.Errorf("%s: projector mode draws %.1fpx text (%s), want at least 16px", name, r.MinFont.Px, r.MinFont.What)
					}
					t.Logf("%s (%dpx): smallest text %.1fpx (%s), %d axe violations", name, r.Width, r.MinFont.Px, r.MinFont.What, len(r.Violations))
				}
				n := results["narrow"]
				if n.Width != 390 || n.ScrollWidth > n.Width {
					t.Errorf("at 390px the page is %dpx wide in a %dpx viewport: it scrolls sideways", n.ScrollWidth, n.Width)
				}
				for _, o := range n.Overflows {
					t.Errorf("at 390px a box scrolls sideways: %s", o)
				}
			})
		}
	}
}

// TestLessonProjectorPage: -projector gives the same page, its root element
// marked; the stylesheet draws the diagram larger by the same factor as the
// one it declares.
func TestLessonProjectorPage(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	keys := filepath.Join(replayTestdata, "session.keys")
	plain := writeLesson(t, "-keylog", keys, capturePath)
	big := writeLesson(t, "-keylog", keys, capturePath, "-projector")
	if want := strings.Replace(plain, `<html lang="en">`, `<html lang="en" class="projector">`, 1); big != want || big == plain {
		t.Error("the projector page is not the default page with its root element marked")
	}
	for _, want := range []string{".projector{--scale:1.5;--floor:16px;", "--lanew:calc(240px*var(--scale))", ".lanes svg{display:block;overflow:visible;width:var(--lanew);height:auto}"} {
		if !strings.Contains(big, want) {
			t.Errorf("the stylesheet lacks %q", want)
		}
	}
	// The diagram's text is 11px in the SVG's own units: scaled, at least 16.
	m := regexp.MustCompile(`--scale:([0-9.]+);--floor:(\d+)px`).FindStringSubmatch(big)
	scale, _ := strconv.ParseFloat(m[1], 64)
	floor, _ := strconv.Atoi(m[2])
	if !strings.Contains(big, `svg .label,svg .size,svg .alabel,svg .btext{font:11px `) || 11*scale < float64(floor) {
		t.Errorf("the diagram's 11px text at scale %v is under the %dpx floor", scale, floor)
	}
}

func TestLessonProjectorFlag(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	cases := []struct {
		name string
		run  func(args []string, stdout, stderr *bytes.Buffer) int
		args []string
	}{
		{"replay", func(a []string, o, e *bytes.Buffer) int { return runReplay(a, o, e) }, []string{"-projector", capturePath}},
		{"replay", func(a []string, o, e *bytes.Buffer) int { return runReplay(a, o, e) }, []string{"-projector", "-json", capturePath}},
		{"demo", func(a []string, o, e *bytes.Buffer) int { return runDemo(context.Background(), a, o, e) }, []string{"-projector"}},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := c.run(c.args, &stdout, &stderr)
		want := "encchat: " + c.name + ": -projector sets the lesson page's type scale; it needs -html OUT\n"
		if code != 2 || stderr.String() != want || stdout.Len() != 0 {
			t.Errorf("%s %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", c.name, c.args, code, stdout.String(), stderr.String(), want)
		}
	}
}

// TestLessonPageMode: the page holds decrypted text, so replay -html and
// demo -html write it 0600, and tighten a file already there.
func TestLessonPageMode(t *testing.T) {
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	keys := filepath.Join(replayTestdata, "session.keys")
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.html")
	old := filepath.Join(dir, "old.html")
	if err := os.WriteFile(old, []byte("an older page"), 0o664); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o664); err != nil { // whatever the umask
		t.Fatal(err)
	}
	for _, out := range []string{fresh, old} {
		var stdout, stderr bytes.Buffer
		if code := runReplay([]string{"-html", out, "-keylog", keys, capturePath}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		checkMode(t, out, 0o600)
	}
	demoLesson(t, suiteClassic, false) // checks the mode over a 0644 file
}

// TestLessonContrast checks the palette on white, as WCAG 2 computes
// contrast: every colour the sheet names reaches 4.5:1, the text minimum,
// except --rule, which only draws lines and reaches 3:1, the minimum for
// graphics. The blue and the vermillion keep their hues (the colour-blind-
// safe pair), and the two directions differ in line and arrowhead too.
func TestLessonContrast(t *testing.T) {
	root := regexp.MustCompile(`:root\{([^}]*)\}`).FindStringSubmatch(lessonHTML)
	if root == nil {
		t.Fatal("no :root rule in the stylesheet")
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z0-9]+):(#[0-9a-f]{3,6})\b`).FindAllStringSubmatch(root[1], -1) {
		vars[m[1]] = m[2]
	}
	for _, name := range []string{"c2s", "s2c", "ink", "muted", "rule", "lane", "ok"} {
		if vars[name] == "" {
			t.Errorf("the palette lacks --%s", name)
		}
	}
	for _, m := range regexp.MustCompile(`#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b`).FindAllString(lessonHTML, -1) {
		c := strings.ToLower(m)
		if c == "#fff" || c == "#ffffff" {
			continue
		}
		want := 4.5
		if c == vars["rule"] {
			want = 3
		}
		if r := contrastOnWhite(t, c); r < want {
			t.Errorf("%s on white: contrast %.2f:1, want at least %.1f:1", c, r, want)
		}
	}
	// --rule draws borders only.
	for _, m := range regexp.MustCompile(`([a-z-]+):[^;{}]*var\(--rule\)`).FindAllStringSubmatch(lessonHTML, -1) {
		if !strings.HasPrefix(m[1], "border") {
			t.Errorf("--rule, a 3:1 colour, is used for %s", m[1])
		}
	}
	if h := hue(t, vars["c2s"]); h < 190 || h > 215 {
		t.Errorf("--c2s %s has hue %.0f°, not blue", vars["c2s"], h)
	}
	if h := hue(t, vars["s2c"]); h < 18 || h > 32 {
		t.Errorf("--s2c %s has hue %.0f°, not vermillion", vars["s2c"], h)
	}
	for _, want := range []string{"svg.s2c .shaft{stroke-dasharray:8 5}", "svg.s2c .head{fill:#fff;", "svg.c2s .head{fill:currentColor;", ".tag.s2c{border-style:dashed}"} {
		if !strings.Contains(lessonHTML, want) {
			t.Errorf("the directions no longer differ by %q", want)
		}
	}
}

// rgb reads #rgb or #rrggbb.
func rgb(t *testing.T, c string) [3]float64 {
	t.Helper()
	h := strings.TrimPrefix(c, "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil || len(h) != 6 {
		t.Fatalf("colour %q", c)
	}
	return [3]float64{float64(v>>16) / 255, float64(v>>8&0xff) / 255, float64(v&0xff) / 255}
}

// contrastOnWhite is WCAG 2's contrast ratio of c against #fff.
func contrastOnWhite(t *testing.T, c string) float64 {
	t.Helper()
	var l float64
	for i, ch := range rgb(t, c) {
		if ch <= 0.04045 {
			ch /= 12.92
		} else {
			ch = math.Pow((ch+0.055)/1.055, 2.4)
		}
		l += [3]float64{0.2126, 0.7152, 0.0722}[i] * ch
	}
	return 1.05 / (l + 0.05)
}

// hue is c's hue in degrees.
func hue(t *testing.T, c string) float64 {
	t.Helper()
	v := rgb(t, c)
	r, g, b := v[0], v[1], v[2]
	hi, lo := max(r, g, b), min(r, g, b)
	var h float64
	switch d := hi - lo; {
	case d == 0:
		return 0
	case hi == r:
		h = math.Mod((g-b)/d, 6)
	case hi == g:
		h = (b-r)/d + 2
	default:
		h = (r-g)/d + 4
	}
	return math.Mod(h*60+360, 360)
}

// TestLessonProjectorPrints: the projector page prints as the default page
// does: Chromium's PDFs of the two have as many pages.
func TestLessonProjectorPrints(t *testing.T) {
	needTool(t, "chromium")
	capturePath := filepath.Join(replayTestdata, "session.jsonl")
	keys := filepath.Join(replayTestdata, "session.keys")
	dir := t.TempDir()
	pageRE := regexp.MustCompile(`/Type\s*/Page\b`)
	var pages []int
	for _, args := range [][]string{nil, {"-projector"}} {
		page := writeLesson(t, append([]string{"-keylog", keys, capturePath}, args...)...)
		path := filepath.Join(dir, fmt.Sprintf("page%d.html", len(pages)))
		if err := os.WriteFile(path, []byte(page), 0o600); err != nil {
			t.Fatal(err)
		}
		pdf := path + ".pdf"
		chromium(t, "--no-pdf-header-footer", "--print-to-pdf="+pdf, "file://"+path)
		data, err := os.ReadFile(pdf)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, len(pageRE.FindAll(data, -1)))
	}
	if pages[0] == 0 || pages[0] != pages[1] {
		t.Fatalf("printed, the default page has %d pages and the projector page %d", pages[0], pages[1])
	}
	t.Logf("printed: %d pages each", pages[0])
}
