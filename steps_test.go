// Tests of the step tables (steps.go) against their readers: the client's
// walk-through, replay's frame kinds and the lesson page's step names.

package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestStepTables checks the step tables against their readers: the
// walk-through's five titles (the classic ones are the seed client's), a
// frame kind and a lesson name for every step that sends a frame, and how a
// frame finds its step.
func TestStepTables(t *testing.T) {
	titles := map[string][]string{
		suiteClassic: {"Receiving server's RSA public key...", "Generating AES-256 symmetric key...",
			"Encrypting AES key with server's RSA public key...", "Sending encrypted AES key to server...",
			"Receiving encrypted confirmation from server..."},
		suiteModern: {"Receiving server hello...", "Generating ephemeral key shares...", "Sending client hello...",
			"Verifying the server's signature over the transcript...", "Exchanging Finished messages..."},
	}
	for suite, want := range titles {
		steps := stepsOf(suite)
		for n, w := range want {
			if got := steps.title(n + 1); got != w {
				t.Errorf("%s walk-through step %d: %q, want %q", suite, n+1, got, w)
			}
		}
		if got := steps.title(len(want) + 1); got != "" {
			t.Errorf("%s walk-through has a step %d: %q", suite, len(want)+1, got)
		}
		from := 0
		for i, st := range steps {
			if st.Kind == kindNone {
				if st.Name != "" || st.Sniffer != "" || st.Band != "" {
					t.Errorf("%s step %d sends nothing but has a frame's words", suite, i)
				}
				continue
			}
			if st.Name == "" || st.Label == "" || st.Work != "" {
				t.Errorf("%s step %d (%v): a frame's step wants a name and a label, and no work", suite, i, st.Kind)
			}
			if got := steps.next(from, st.By.sends(), st.Kind); got != i {
				t.Errorf("%s step %d (%v) in order: next finds %d", suite, i, st.Kind, got)
			}
			from = i + 1
		}
	}
	cases := []struct {
		steps protocolSteps
		from  int
		dir   wireDir
		kind  frameKind
		want  int
	}{
		{classicSteps, 0, wireC2S, kindKeyTransport, -1}, // the capture began after step 1
		{classicSteps, 1, wireS2C, kindSealed, -1},       // step 4 is missing: a sealed step is known only by its place
		{classicSteps, 4, wireS2C, kindOpaque, 5},        // step 6 whatever the decoder made of it
		{modernSteps, 0, wireC2S, kindClientHello, -1},   // the capture missed the ServerHello
		{modernSteps, 1, wireS2C, kindServerVerify, 4},   // the capture missed the ClientHello
		{modernSteps, 8, wireS2C, kindSealed, -1},        // the welcome before the username
	}
	for _, c := range cases {
		if got := c.steps.next(c.from, c.dir, c.kind); got != c.want {
			t.Errorf("next(%d, %v, %v) = %d, want %d", c.from, c.dir, c.kind, got, c.want)
		}
	}
	for k := kindNone; k <= kindHandshake; k++ {
		if s := k.String(); s == "unknown" || s == "" {
			t.Errorf("frame kind %d has no name", k)
		}
	}
}

// TestWalkThroughChartSteps checks which of the seed chart's Steps 1–8 each
// line of the classic walk-through shows: [1/5]…[4/5] are Steps 1–4 and
// [5/5] is Step 6, the confirmation.
func TestWalkThroughChartSteps(t *testing.T) {
	for n, want := range []int{1, 2, 3, 4, 6, 0} {
		if got := classicSteps.chartStep(n + 1); got != want {
			t.Errorf("[%d/5] is chart Step %d, want %d", n+1, got, want)
		}
	}
	// The lesson page's names carry the same numbers.
	for i, st := range classicSteps[:8] {
		if st.Name != "" && !strings.HasPrefix(st.Name, fmt.Sprintf("Step %d · ", i+1)) {
			t.Errorf("classicSteps[%d] is named %q, not Step %d", i, st.Name, i+1)
		}
		if st.Work != "" && !strings.Contains(st.Work, fmt.Sprintf("%d", i+1)) {
			t.Errorf("classicSteps[%d]'s work %q does not say Step %d", i, st.Work, i+1)
		}
	}
}
