package vendors

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/basip/basip_exporter/collector/device"
)

// Hikvision door stations (DS-KV, DS-KD) over ISAPI: XML over HTTP, Digest
// by default. No public capture of these answers from a device exists;
// the shapes come from the clients that read and write them:
//
//	GET /ISAPI/System/Network/SIP   <SIPServerList><SIPServer><id>1</id>
//	      <Standard><enabled>, <proxy>, <proxyPort>, <displayName>,
//	      <userName>, <authID>, <password>, <expires>
//	GET /ISAPI/System/Network/SIP/1 <SIPServer><id>1</id><Standard>
//	      <enabled>, <registerStatus> ("true"/"false"), ...
//	GET /ISAPI/System/deviceInfo    <DeviceInfo> <deviceName>, <model>,
//	      <serialNumber>, <firmwareVersion>, <firmwareReleasedDate>,
//	      <deviceType>, ...
//
// Sources:
//   - SmartYard-Server (rosteleset/SmartYard-Server @165a3e34):
//     server/hw/ip/domophone/hikvision/hikvision.php L213-243 writes the
//     settings (PUT /ISAPI/System/Network/SIP, the SIPServerList above with
//     proxyPort); server/hw/ip/common/hikvision/hikvision.php L59-69 reads
//     deviceInfo (deviceID, model, hardwareVersion, firmwareVersion,
//     firmwareReleasedDate), L114 authenticates with CURLAUTH_ANYSAFE
//     (Digest), L162 the prefix /ISAPI.
//   - Selpol (Selpol/smartyard @12ff6ce2):
//     server/device/Ip/Intercom/HikVision/Trait/SipTrait.php L11-36 reads
//     SIP/1 Standard.registerStatus and the list's SIPServer.Standard
//     {enabled ("true" compared as text), authID, proxy, port}; L50-53
//     writes proxyPort. Before ca4ed6bd (2024-08) it also read
//     Standard.password from the GET. server/device/Ip/Trait/HikVisionTrait.php
//     L12-29 reads deviceInfo serialNumber, model, hardwareVersion,
//     firmwareVersion, firmwareReleasedDate.
//   - Scrypted (koush/scrypted @06c989b6):
//     plugins/hikvision-doorbell/src/doorbell-api.ts L614-633 PUTs a
//     <SIPServer> document to /ISAPI/System/Network/SIP/1 (the root of
//     that path); src/probe.ts L7-26 reads deviceInfo model, deviceName,
//     serialNumber, macAddress, firmwareVersion.
//   - Hikvision's ISAPI developer guides (Intelligent Security API,
//     "Video Intercom") name these paths; their text was not available to
//     check the fields against.
//
// Choices where the sources differ or are silent:
//   - The port is proxyPort, which every writer sends; Selpol reads "port"
//     where it writes proxyPort (its intval() of a missing key is 0, so
//     that read cannot have worked): "port" is read only when proxyPort is
//     absent.
//   - Transport: no source reads or writes one; none is reported.
//   - The password: Selpol read it until 2024; a device that sends one
//     (not empty, not asterisks) has it kept as a secret so the exposure
//     is reported.
//   - Firmware is firmwareVersion alone (SY and Selpol append
//     firmwareReleasedDate, "build 240814", for display).
//   - The type is "panel": the clients above drive door stations;
//     deviceType ("VIS" in a public test fixture) is not a BAS-IP type.
//   - The namespace: devices send xmlns="http://www.hikvision.com/ver20/XMLSchema"
//     (older firmware) or "http://www.isapi.org/ver20/XMLSchema"; elements
//     are matched by local name, any namespace or none.
//   - registerStatus: see hikvisionStates.
//   - An answer that is not an XML document with the expected root (an
//     HTML login page, JSON, a DOCTYPE) is a decode error quoting nothing
//     of it.

// Hikvision is the client of a Hikvision door station.
type Hikvision struct{ base }

var _ device.Client = (*Hikvision)(nil)

// The ISAPI paths read.
const (
	hikvisionSettingsPath = "/ISAPI/System/Network/SIP"
	hikvisionStatusPath   = "/ISAPI/System/Network/SIP/1"
	hikvisionInfoPath     = "/ISAPI/System/deviceInfo"
)

// hikvisionStandard is a SIPServer's <Standard>. Every field is text,
// converted and checked here so that no error quotes a value.
type hikvisionStandard struct {
	Enabled        *string `xml:"enabled"`
	RegisterStatus *string `xml:"registerStatus"`
	Proxy          *string `xml:"proxy"`
	ProxyPort      *string `xml:"proxyPort"`
	Port           *string `xml:"port"`
	DisplayName    *string `xml:"displayName"`
	UserName       *string `xml:"userName"`
	AuthID         *string `xml:"authID"`
	Password       *string `xml:"password"`
	Expires        *string `xml:"expires"`
}

// hikvisionServer is a <SIPServer>.
type hikvisionServer struct {
	ID       *string            `xml:"id"`
	Standard *hikvisionStandard `xml:"Standard"`
}

// decodeXML decodes body, an XML document whose root element's local name
// is root, into v. The XML declaration, comments and processing
// instructions are skipped; a DOCTYPE (and so any entity declaration) is
// refused; the decoder is strict, and encoding/xml expands no entity but
// the five predefined. Errors quote nothing of the body.
func decodeXML(body []byte, root string, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty body")
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	for {
		tok, err := d.Token()
		if err != nil {
			return xmlError(err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return errors.New("XML with a DOCTYPE or other directive")
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return errors.New("body is not an XML document")
			}
		case xml.EndElement:
			return errors.New("body is not an XML document")
		case xml.StartElement:
			if t.Name.Local != root {
				return fmt.Errorf("root element is not %s", root)
			}
			if err := d.DecodeElement(v, &t); err != nil {
				return xmlError(err)
			}
			return nil
		}
	}
}

// xmlError describes a decoding error without the body's text: encoding/xml
// quotes element names, entities and declared encodings in its messages.
func xmlError(err error) error {
	var se *xml.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("malformed XML at line %d", se.Line)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated XML")
	}
	return errors.New("body is not an XML document")
}

// hikvisionText is a trimmed text field, nil when absent.
func hikvisionText(s *string) *string {
	if s == nil {
		return nil
	}
	return ptr(strings.TrimSpace(*s))
}

func hikvisionBool(key string, s *string) (*bool, error) {
	if s == nil {
		return nil, nil
	}
	b, err := parseBool(key, *s)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

func hikvisionInt(key string, s *string) (*int64, error) {
	if s == nil {
		return nil, nil
	}
	return parseInt(key, *s)
}

// firstHikvision returns server 1, or the first listed; nil for none.
func firstHikvision(servers []hikvisionServer) *hikvisionServer {
	for i := range servers {
		if id := servers[i].ID; id != nil && strings.TrimSpace(*id) == "1" {
			return &servers[i]
		}
	}
	if len(servers) > 0 {
		return &servers[0]
	}
	return nil
}

// decodeHikvisionSettings decodes GET /ISAPI/System/Network/SIP.
func decodeHikvisionSettings(body []byte) (*device.SIPSettings, error) {
	var r struct {
		Servers []hikvisionServer `xml:"SIPServer"`
	}
	if err := decodeXML(body, "SIPServerList", &r); err != nil {
		return nil, err
	}
	s := &device.SIPSettings{}
	srv := firstHikvision(r.Servers)
	if srv == nil || srv.Standard == nil {
		return s, nil
	}
	st := srv.Standard
	var err error
	if s.Enable, err = hikvisionBool("enabled", st.Enabled); err != nil {
		return nil, err
	}
	portKey, port := "proxyPort", st.ProxyPort
	if port == nil {
		portKey, port = "port", st.Port
	}
	p, err := hikvisionInt(portKey, port)
	if err != nil {
		return nil, err
	}
	s.Proxy = hostPort(hikvisionText(st.Proxy), p)
	if s.RegistrationInterval, err = hikvisionInt("expires", st.Expires); err != nil {
		return nil, err
	}
	s.User, s.UserID = hikvisionText(st.UserName), hikvisionText(st.AuthID)
	if st.Password != nil {
		s.Password = ptr(device.Secret(*st.Password))
	}
	return s, nil
}

// hikvisionStates are the values of registerStatus: "true" is OK,
// "false" ERROR; any other text is ERROR too, kept raw (a device that
// does not say it is registered is not; never a decode failure). An
// account the same answer says is disabled (enabled false) is OFFLINE,
// as for every vendor with an enabled flag.
var hikvisionStates = map[string]string{"true": device.StatusOK, "false": device.StatusError}

// decodeHikvisionStatus decodes GET /ISAPI/System/Network/SIP/1. A
// SIPServerList (firmware that answers the list there) is read as its
// first server.
func decodeHikvisionStatus(body []byte) (*device.SIPStatus, error) {
	var srv hikvisionServer
	if err := decodeXML(body, "SIPServer", &srv); err != nil {
		var list struct {
			Servers []hikvisionServer `xml:"SIPServer"`
		}
		if decodeXML(body, "SIPServerList", &list) != nil {
			return nil, err
		}
		f := firstHikvision(list.Servers)
		if f == nil {
			return &device.SIPStatus{}, nil
		}
		srv = *f
	}
	st := &device.SIPStatus{}
	if srv.Standard == nil || srv.Standard.RegisterStatus == nil {
		return st, nil
	}
	enabled, err := hikvisionBool("enabled", srv.Standard.Enabled)
	if err != nil {
		return nil, err
	}
	state, raw := mapState(*srv.Standard.RegisterStatus, hikvisionStates)
	if enabled != nil && !*enabled {
		state, raw = device.StatusOffline, ""
	}
	st.Status, st.Raw = &state, raw
	return st, nil
}

// decodeHikvisionInfo decodes GET /ISAPI/System/deviceInfo.
func decodeHikvisionInfo(body []byte) (*device.Info, error) {
	var r struct {
		DeviceName      string `xml:"deviceName"`
		Model           string `xml:"model"`
		SerialNumber    string `xml:"serialNumber"`
		FirmwareVersion string `xml:"firmwareVersion"`
	}
	if err := decodeXML(body, "DeviceInfo", &r); err != nil {
		return nil, err
	}
	t := func(s string) device.FlexString { return device.FlexString(strings.TrimSpace(s)) }
	return &device.Info{Name: t(r.DeviceName), Model: t(r.Model), Serial: t(r.SerialNumber), Firmware: t(r.FirmwareVersion)}, nil
}

// SIPSettings implements device.Client.
func (c *Hikvision) SIPSettings(ctx context.Context) (*device.SIPSettings, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, hikvisionSettingsPath, &res)
	if err != nil {
		return nil, res, err
	}
	s, err := decodeHikvisionSettings(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// SIPStatus implements device.Client.
func (c *Hikvision) SIPStatus(ctx context.Context) (*device.SIPStatus, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, hikvisionStatusPath, &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	s, err := decodeHikvisionStatus(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return s, res, nil
}

// Info implements device.Client.
func (c *Hikvision) Info(ctx context.Context) (*device.Info, device.Result, error) {
	var res device.Result
	body, op, err := c.get(ctx, hikvisionInfoPath, &res)
	if err != nil {
		return nil, res, notSupported(err)
	}
	i, err := decodeHikvisionInfo(body)
	if err != nil {
		return nil, res, decodeError(op, err)
	}
	return i, res, nil
}
