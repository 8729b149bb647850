package collector

import (
	"encoding/json"
	"testing"

	"github.com/basip/basip_exporter/collector/device"
)

func decoded(t *testing.T, body string) *device.SIPSettings {
	t.Helper()
	var s device.SIPSettings
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// TestSettingsFingerprint: the fingerprint depends on the settings alone,
// is an integer a float64 holds exactly, ignores the SIP password (which
// must not be testable through it) and changes with any other field.
func TestSettingsFingerprint(t *testing.T) {
	a := decoded(t, `{"proxy":"sip:a","password":"one-Pass1","registration_interval":300}`)
	samePassword := decoded(t, `{"proxy":"sip:a","password":"one-Pass1","registration_interval":300}`)
	otherPassword := decoded(t, `{"proxy":"sip:a","password":"two-Pass2","registration_interval":300}`)
	otherProxy := decoded(t, `{"proxy":"sip:b","password":"one-Pass1","registration_interval":300}`)
	otherInterval := decoded(t, `{"proxy":"sip:a","password":"one-Pass1","registration_interval":600}`)
	fa := settingsFingerprint(a)
	if fa != settingsFingerprint(samePassword) {
		t.Error("equal settings give different fingerprints")
	}
	if fa != settingsFingerprint(otherPassword) {
		t.Error("the SIP password changes the fingerprint: guesses of it could be tested against the published value")
	}
	if fa == settingsFingerprint(otherProxy) || fa == settingsFingerprint(otherInterval) {
		t.Error("a settings change does not change the fingerprint")
	}
	if fa >= 1<<53 || uint64(float64(fa)) != fa {
		t.Errorf("fingerprint %d is not an integer a float64 holds exactly", fa)
	}
	// The value is part of the contract: every replica, and every version
	// of the exporter, must publish the same number for the same settings,
	// or an upgrade fires the change alert for the whole fleet.
	const want = 6109198222160485
	if got := settingsFingerprint(a); got != want {
		t.Errorf("fingerprint of the reference settings = %d, want %d", got, want)
	}
}
