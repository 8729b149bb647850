package collector

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/basip/basip_exporter/collector/internal/testutil"
	"github.com/basip/basip_exporter/collector/simulator"
)

func TestStatusesAndDebugPoll(t *testing.T) {
	mon := monitor("101", "tls")
	wrong := panel("2", "udp")
	f := startFleet(t, "", devSpec{name: "m", dev: mon}, devSpec{name: "w", dev: wrong, extra: "    credentials: other\n"})
	before := f.exp.Statuses()
	if len(before) != 2 || before[0].Polled {
		t.Fatalf("statuses before any poll: %+v", before)
	}
	f.scrape(t)
	st := f.exp.Statuses()
	if !st[0].Up || st[0].Transport != "tls" || st[0].SIPEnabled == nil || !*st[0].SIPEnabled {
		t.Errorf("monitor status %+v", st[0])
	}
	if st[1].Up || st[1].Reason != "auth" || !strings.Contains(st[1].LastError, "rejected") {
		t.Errorf("wrong-password status %+v", st[1])
	}

	mon.ExpireTokens()
	rep, err := f.exp.DebugPoll(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	// The expired token is refused, a login follows, then the retry.
	var steps []string
	for _, r := range rep.Requests {
		steps = append(steps, r.Path+" "+itoa(r.Status))
	}
	if got := strings.Join(steps, ", "); got != "/api/v0/device/sip/settings 401, /api/v0/login 200, /api/v0/device/sip/settings 200" {
		t.Errorf("requests: %s", got)
	}
	if !strings.Contains(rep.Series, `basip_up{device="m"} 1`) {
		t.Errorf("series:\n%s", rep.Series)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(append(testutil.SecretForms(testPassword), testutil.SecretForms("s1p-101-pass")...), mon.Tokens()...) {
		if strings.Contains(string(b), s) {
			t.Errorf("debug report leaks a secret: %s", testutil.Around(string(b), s))
		}
	}
	var decoded struct{ Settings struct{ Password string } }
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Settings.Password != "<secret>" {
		t.Errorf("the SIP password is shown as %q, want <secret>", decoded.Settings.Password)
	}
	if _, err := f.exp.DebugPoll(context.Background(), "nope"); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("unknown device: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestStatusesCarryPolicyCompliance(t *testing.T) {
	f := startFleetWith(t, testPolicies, "",
		devSpec{name: "mon", dev: monitor("101", "tcp")},
		devSpec{name: "lobby", dev: panel("1", "tcp"), extra: "    policy: lobby\n"},
		devSpec{name: "free", dev: panel("2", "udp"), extra: "    policy: none\n"},
	)
	f.scrape(t)
	st := f.exp.Statuses()
	if st[0].Policy != "default" || st[0].PolicyCompliant == nil || *st[0].PolicyCompliant || strings.Join(st[0].Violations, ",") != "transports,stun" {
		t.Errorf("mon: %+v", st[0])
	}
	if st[1].Policy != "lobby" || st[1].PolicyCompliant == nil || !*st[1].PolicyCompliant || len(st[1].Violations) != 0 {
		t.Errorf("lobby: %+v", st[1])
	}
	if st[2].Policy != "" || st[2].PolicyCompliant != nil {
		t.Errorf("free: %+v", st[2])
	}
}

func TestStatusesSayDownSinceAndLabels(t *testing.T) {
	dev := panel("1", "udp")
	f := startFleet(t, "", devSpec{name: "p", dev: dev, extra: "    labels: {site: hq}\n"})
	f.scrape(t)
	st := f.exp.Statuses()[0]
	if !st.Up || !st.DownSince.IsZero() || st.Labels["site"] != "hq" {
		t.Fatalf("up device: %+v", st)
	}
	dev.SetFault(simulator.FaultServerError)
	before := time.Now()
	f.scrape(t)
	since := f.exp.Statuses()[0].DownSince
	if since.Before(before) || since.After(time.Now()) {
		t.Fatalf("down since %v, want the poll that failed (after %v)", since, before)
	}
	f.scrape(t) // still down: the date stays
	if got := f.exp.Statuses()[0].DownSince; !got.Equal(since) {
		t.Errorf("down since moved from %v to %v while the device stayed down", since, got)
	}
	dev.SetFault(simulator.FaultNone)
	f.scrape(t)
	if st := f.exp.Statuses()[0]; !st.Up || !st.DownSince.IsZero() {
		t.Errorf("back up: %+v", st)
	}
}
