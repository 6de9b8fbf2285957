// The live wire page in headless Chromium, driven by chromedp: the frames
// of a live session drawn as they cross, the teacher's view with a hostile
// text shown as text, the public view without it, the projector switch by
// keyboard, nothing sideways at 390 CSS pixels, and axe-core with no
// serious or critical violation. ENCCHAT_WIRE_SHOTS=DIR also saves
// screenshots there, to look at.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// wireBrowser starts headless Chromium for the test and returns a tab.
func wireBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := needTool(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000), chromedp.Flag("disable-quic", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// bounded runs the actions within a generous bound.
func bounded(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func evalIn[T any](t *testing.T, ctx context.Context, expr string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		t.Fatalf("evaluating %.80q: %v", expr, err)
	}
	return v
}

// axeViolations runs axe-core on the page and returns its serious and
// critical violations.
func axeViolations(t *testing.T, ctx context.Context, axe string) []string {
	t.Helper()
	evalIn[chromedp.Void](t, ctx, axe)
	raw := evalIn[[]byte](t, ctx, `axe.run(document,{resultTypes:["violations"]}).then(r=>r.violations.map(v=>({id:v.id,impact:v.impact,help:v.help,first:v.nodes[0].target.join(" ")+": "+v.nodes[0].failureSummary})))`, chromedp.EvalAwaitPromise)
	var vs []struct{ ID, Impact, Help, First string }
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatalf("axe's result %.200q: %v", raw, err)
	}
	var bad []string
	for _, v := range vs {
		t.Logf("axe: %s (%s): %s", v.ID, v.Impact, v.Help)
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, fmt.Sprintf("%s (%s): %s; %s", v.ID, v.Impact, v.Help, v.First))
		}
	}
	return bad
}

// sideways returns what scrolls sideways on the page: the page itself, or
// a box that is not meant to.
const sidewaysJS = `(function(){var d=document.documentElement,out=[];
if(d.scrollWidth>d.clientWidth)out.push("the page: "+d.scrollWidth+" > "+d.clientWidth);
document.querySelectorAll("body *").forEach(function(el){var r=el.getBoundingClientRect();
if(r.width>0&&r.right>d.clientWidth+1&&!el.closest(".scroll"))out.push(el.tagName.toLowerCase()+"."+el.className+" right "+Math.round(r.right));});
return out.slice(0,5)})()`

func saveShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ENCCHAT_WIRE_SHOTS")
	if dir == "" {
		return
	}
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.CaptureScreenshot()) // what the screen shows
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLiveWireInChromium(t *testing.T) {
	axe := needAxe(t)
	ctx := wireBrowser(t)
	rig := startWireRig(t, suiteClassic, wireTestToken, nil)
	const hostile = `<img src=x onerror="document.title='pwned'"> & </script> see you at noon`
	ada := join(t, rig.ts.addr, "Ada_Lovelace-1")
	grace := join(t, rig.ts.addr, "Grace_Hopper-2")
	expect(t, ada, "[SYSTEM] Grace_Hopper-2 joined (secure channel)")
	ada.Send(hostile)
	expect(t, grace, "Ada_Lovelace-1: "+hostile)

	// The teacher's view: the text beside its frame, as text.
	bounded(t, ctx, "the teacher's page", chromedp.Navigate(rig.web.URL+"/wire?token="+wireTestToken))
	bounded(t, ctx, "the hostile text in the teacher's view",
		chromedp.Poll[chromedp.Void](`[...document.querySelectorAll(".peer .text")].some(e=>e.textContent.includes("see you at noon"))`, chromedp.WithPollingTimeout(30*time.Second)))
	if got := evalIn[string](t, ctx, `[...document.querySelectorAll(".peer .text")].map(e=>e.textContent).find(s=>s.includes("noon"))`); !strings.Contains(got, hostile) {
		t.Errorf("the teacher's view shows %q, want the text as sent", got)
	}
	if n := evalIn[int](t, ctx, `document.querySelectorAll("main img, main script").length`); n != 0 {
		t.Errorf("the hostile text made %d elements", n)
	}
	if title := evalIn[string](t, ctx, `document.title`); title == "pwned" {
		t.Error("the hostile text ran")
	}
	if u := evalIn[string](t, ctx, `location.href`); strings.Contains(u, wireTestToken) {
		t.Errorf("the address bar still shows the token: %s", u)
	}
	if mode := evalIn[string](t, ctx, `document.getElementById("mode").textContent`); !strings.HasPrefix(mode, "Teacher view") {
		t.Errorf("the teacher's page says %q", mode)
	}
	saveShot(t, ctx, "wire-teacher.png")
	if bad := axeViolations(t, ctx, axe); len(bad) > 0 {
		t.Errorf("axe on the teacher's view:\n%s", strings.Join(bad, "\n"))
	}

	// The public view. The page keeps the token for its tab (sessionStorage):
	// a tab that never had it is this one with its storage cleared.
	pub := ctx
	evalIn[chromedp.Void](t, pub, `sessionStorage.clear()`)
	bounded(t, pub, "the public page", chromedp.Navigate(rig.web.URL+"/wire"))
	bounded(t, pub, "the handshake on the public page",
		chromedp.Poll[chromedp.Void](`document.querySelectorAll(".row").length>=12&&document.body.textContent.includes("Step 8 · Encrypted Username")`, chromedp.WithPollingTimeout(30*time.Second)))
	body := evalIn[string](t, pub, `document.body.textContent`)
	for _, s := range []string{"see you at noon", "Ada_Lovelace-1", "Grace_Hopper-2"} {
		if strings.Contains(body, s) {
			t.Errorf("the public page shows %q", s)
		}
	}
	if n := evalIn[int](t, pub, `document.querySelectorAll(".peer").length`); n != 0 {
		t.Errorf("the public page has %d peer cells", n)
	}
	// Frames that cross now appear too.
	grace.Send("and one more, live")
	expect(t, ada, "Grace_Hopper-2: and one more, live")
	bounded(t, pub, "a frame sent after the page loaded",
		chromedp.Poll[chromedp.Void](`document.querySelectorAll(".row").length>=15`, chromedp.WithPollingTimeout(30*time.Second)))
	saveShot(t, pub, "wire-public.png")
	if bad := axeViolations(t, pub, axe); len(bad) > 0 {
		t.Errorf("axe on the public view:\n%s", strings.Join(bad, "\n"))
	}

	// The projector switch, by keyboard.
	bounded(t, pub, "the projector switch", chromedp.Focus(chromedp.ID("projector")), chromedp.KeyEvent(" "))
	if on := evalIn[bool](t, pub, `document.documentElement.classList.contains("projector")`); !on {
		t.Fatal("space on the projector switch did not turn the projector scale on")
	}
	if px := evalIn[float64](t, pub, `parseFloat(getComputedStyle(document.querySelector(".row .what")).fontSize)`); px < 20 {
		t.Errorf("projector scale: the frames' text is %.1f px", px)
	}
	saveShot(t, pub, "wire-projector.png")

	// A phone: 390 CSS pixels, both scales.
	bounded(t, pub, "390 px", chromedp.EmulateViewport(390, 844))
	for _, scale := range []string{"projector", "normal"} {
		if scale == "normal" {
			bounded(t, pub, "the projector switch off", chromedp.Focus(chromedp.ID("projector")), chromedp.KeyEvent(" "))
		}
		if over := evalIn[[]string](t, pub, sidewaysJS); len(over) > 0 {
			t.Errorf("at 390 px (%s) these scroll sideways: %q", scale, over)
		}
		saveShot(t, pub, "wire-390-"+scale+".png")
	}
	if bad := axeViolations(t, pub, axe); len(bad) > 0 {
		t.Errorf("axe at 390 px:\n%s", strings.Join(bad, "\n"))
	}
}
