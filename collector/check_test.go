package collector

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/simulator"
)

// hostileText is what a device may put in a text field to drive the
// terminal that shows it: clear the screen, set the window title, move
// the cursor, a C1 CSI, a carriage return, a right-to-left override.
const hostileText = "\x1b[2J\x1b]0;owned\x07\x1b[1A\u009b31m\r\u202e"

// controlBytes are the bytes and characters none of the text outputs may
// carry raw.
var controlBytes = []string{"\x1b", "\x07", "\r", "\u009b", "\u202e"}

func TestCheckReportEscapesDeviceBytes(t *testing.T) {
	d := panel("1", "udp")
	s := simulator.FieldPanelSettings("1", "udp")
	s["proxy"] = "sip:pbx" + hostileText
	s["realm"] = hostileText
	d.SetSettings(s)
	d.SetStatus(simulator.Status("OK", 1732600000))
	d.SetInfo(simulator.Info("Gate"+hostileText, "AA-07FB"+hostileText, "panel", "3.9.2"+hostileText, "2.0"))
	f := startFleet(t, "  collect: [settings, status, info]\n", devSpec{name: "p", dev: d})
	rep, err := f.exp.DebugPoll(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, c := range controlBytes {
		if strings.Contains(out, c) {
			t.Errorf("the report carries %q raw:\n%s", c, out)
		}
	}
	// The values are there, escaped at the boundary, in the decoded answers
	// and the series (where the exposition doubles the backslash).
	for _, want := range []string{`firmware="3.9.2\\x1b[2J\\x1b]0;owned\\a\\x1b[1A\\u009b31m\\r\\u202e"`, `proxy="sip:pbx\\x1b[2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %s:\n%s", want, out)
		}
	}
}
