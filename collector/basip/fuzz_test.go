package basip

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/basip/basip_exporter/collector/device"
)

// fuzzMarker stands for a secret in a device's answer: no error may quote it.
const fuzzMarker = "Secret-Marker-7781"

// FuzzDecodeSIPSettings: the settings decoder never panics; its errors
// never quote the body; what it accepts marshals to JSON that decodes to
// the same settings, the SIP password as "<secret>".
func FuzzDecodeSIPSettings(f *testing.F) {
	for _, s := range []string{
		`{"enable":true,"proxy":"sip:pbx.example.com","realm":"example.com","user":"101","password":"` + fuzzMarker + `","transport":"udp","user_id":"101","is_enable_ring_code":false,"timeout":120,"registration_interval":300,"stun":{"ip":"","port":3478}}`,
		`{"proxy":"sip:pbx","realm":"r","user":"100","password":"WebPass","transport":"tls","user_id":"100","registration_interval":120,"stun":{"ip":"stun.example.com","port":3478}}`,
		`{"stun":{"ip":"::1","port":3478}}`,
		`{"enable":null,"stun":null,"timeout":null}`,
		`{"registration_interval":"30"}`,
		`{"password":123456}`,
		`{"proxy":"` + fuzzMarker + `","timeout":"` + fuzzMarker + `"}`,
		`{"user":"\ud800\udc00\u0000\"\\\n"}`,
		`{"timeout":1e400}`,
		`{"timeout":-9223372036854775808}`,
		`<html>` + fuzzMarker + `</html>`,
		``, `null`, `[]`, `"x"`, `{`, `{"a":` + strings.Repeat("[", 64),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := DecodeSIPSettings(body)
		if err != nil {
			if s != nil {
				t.Fatalf("settings %+v with error %v", s, err)
			}
			if strings.Contains(err.Error(), fuzzMarker) {
				t.Fatalf("error quotes the body: %v", err)
			}
			return
		}
		_ = s.STUNAddress()
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("cannot marshal what was decoded: %v", err)
		}
		again, err := DecodeSIPSettings(out)
		if err != nil {
			t.Fatalf("cannot decode %s, the marshalled form of %q: %v", out, body, err)
		}
		want := *s
		if want.Password != nil && *want.Password != "" { // an empty one stays empty
			p := device.Secret("<secret>")
			want.Password = &p
		}
		if !reflect.DeepEqual(&want, again) {
			t.Fatalf("round trip changed the settings:\n%s\n%s", mustJSON(t, &want), mustJSON(t, again))
		}
		if again.STUNAddress() != s.STUNAddress() {
			t.Fatalf("STUN address %q became %q", s.STUNAddress(), again.STUNAddress())
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
