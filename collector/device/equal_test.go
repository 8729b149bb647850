package device

import (
	"reflect"
	"testing"
)

// full is settings with every field set.
func full() *SIPSettings {
	b, s, n, sec := true, "x", int64(1), Secret("p")
	str := func() *string { v := s; return &v }
	num := func() *int64 { v := n; return &v }
	return &SIPSettings{Enable: &b, Proxy: str(), Realm: str(), Outbound: str(), User: str(), Password: &sec,
		Transport: str(), UserID: str(), RingCode: &b, Timeout: num(), RegistrationInterval: num(),
		STUN: &STUN{IP: str(), Port: num()}}
}

// TestEqualIsDeepEqual: Equal says what reflect.DeepEqual says, for
// every field changed, removed or added, the STUN server's too: a field
// added to SIPSettings and not to Equal fails here.
func TestEqualIsDeepEqual(t *testing.T) {
	check := func(name string, a, b *SIPSettings) {
		t.Helper()
		if got, want := a.Equal(b), reflect.DeepEqual(a, b); got != want {
			t.Errorf("%s: Equal %v, DeepEqual %v", name, got, want)
		}
	}
	check("same", full(), full())
	check("nil", nil, full())
	check("both nil", nil, nil)
	check("empty", &SIPSettings{}, &SIPSettings{})
	for _, variant := range []func(v reflect.Value){
		func(v reflect.Value) { v.Set(reflect.Zero(v.Type())) }, // removed
		func(v reflect.Value) { // changed
			switch e := v.Elem(); e.Kind() {
			case reflect.Bool:
				e.SetBool(!e.Bool())
			case reflect.String:
				e.SetString(e.String() + "y")
			case reflect.Int64:
				e.SetInt(e.Int() + 1)
			case reflect.Struct: // STUN: change its IP
				e.Field(0).Elem().SetString("y")
			}
		},
	} {
		typ := reflect.TypeOf(SIPSettings{})
		for i := range typ.NumField() {
			b := full()
			variant(reflect.ValueOf(b).Elem().Field(i))
			check(typ.Field(i).Name, full(), b)
			check(typ.Field(i).Name+" reversed", b, full())
		}
		for i := range reflect.TypeOf(STUN{}).NumField() {
			b := full()
			variant(reflect.ValueOf(b.STUN).Elem().Field(i))
			check("STUN."+reflect.TypeOf(STUN{}).Field(i).Name, full(), b)
		}
	}
}
