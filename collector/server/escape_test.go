package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector"
	"github.com/basip/basip_exporter/collector/config"
)

// hostileText drives a terminal that shows it: clear the screen, set the
// window title, move the cursor, a C1 CSI, a carriage return, a
// right-to-left override.
const hostileText = "\x1b[2J\x1b]0;owned\x07\x1b[1A\u009b31m\r\u202e"

// reportSource is a source whose debug poll returns a fixed report.
type reportSource struct {
	fakeSource
	rep *collector.DebugReport
	err error
}

func (s *reportSource) DebugPoll(context.Context, string) (*collector.DebugReport, error) {
	return s.rep, s.err
}

// TestPagesEscapeDeviceBytes: html/template escapes markup but passes ESC
// and other control characters through; a page read with curl on a
// terminal must not carry them.
func TestPagesEscapeDeviceBytes(t *testing.T) {
	src := &reportSource{
		fakeSource: fakeSource{
			cfg: &config.Config{LabelNames: []string{"site"}},
			statuses: []collector.DeviceStatus{{DeviceView: collector.DeviceView{Name: "p", Address: "http://h:80", Labels: map[string]string{"site": "hq" + hostileText}}, Polled: true, Reason: "decode",
				LastError: "bad " + hostileText, DownSince: time.Now(), Firmware: "3.9" + hostileText, Transport: "udp" + hostileText,
				Registration: "ok" + hostileText}},
		},
		rep: &collector.DebugReport{DeviceView: collector.DeviceView{Name: "p", Address: "http://h:80"}, Error: "bad " + hostileText,
			Series: `basip_info{device="p",firmware="` + hostileText + `"} 1` + "\n"},
	}
	p := newPages(src, PageOptions{})
	check := func(name, body string) {
		t.Helper()
		for _, c := range []string{"\x1b", "\x07", "\r", "\u009b", "\u202e"} {
			if strings.Contains(body, c) {
				t.Errorf("%s carries %q raw", name, c)
			}
		}
		if !strings.Contains(body, `\x1b[2J\x1b]0;owned\a`) {
			t.Errorf("%s does not show the text escaped:\n%s", name, body)
		}
	}
	check("landing page", get200(t, p.landingHandler(), "/"))
	check("landing page, filtered", get200(t, p.landingHandler(), "/?q=bad&label="+url.QueryEscape("site=hq"+hostileText)))
	check("debug page", get200(t, p.debugHandler(), "/debug?device=p"))
	src.rep, src.err = nil, errorString("poll: "+hostileText)
	rec := httptest.NewRecorder()
	p.debugHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug?device=p", nil))
	check("debug poll error", rec.Body.String())
}

type errorString string

func (e errorString) Error() string { return string(e) }
