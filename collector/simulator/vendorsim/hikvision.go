package vendorsim

import (
	"fmt"
	"html"
	"net/http"
)

// xmlAnswer is an answer sent as application/xml, as ISAPI devices send.
type xmlAnswer string

// hikvisionNS is the namespace Hikvision devices declare on their answers
// (newer firmware declares http://www.isapi.org/ver20/XMLSchema).
const hikvisionNS = "http://www.hikvision.com/ver20/XMLSchema"

// hikvision answers as a Hikvision door station's ISAPI: the SIP server
// list, server 1 with its registerStatus, and deviceInfo. The password is
// not sent (whether a device returns it is not known). Failure, when set,
// is the registerStatus text sent when not registered ("false" when
// empty).
func (d *Device) hikvision(r *http.Request) (any, bool) {
	esc := html.EscapeString
	reg := "true"
	if !d.Registered {
		reg = d.Failure
		if reg == "" {
			reg = "false"
		}
	}
	standard := func(withStatus bool) string {
		s := fmt.Sprintf("<Standard>\n<enabled>%t</enabled>\n", d.Enabled)
		if withStatus {
			s += "<registerStatus>" + esc(reg) + "</registerStatus>\n"
		}
		return s + fmt.Sprintf("<proxy>%s</proxy>\n<proxyPort>%d</proxyPort>\n<displayName>%s</displayName>\n<userName>%s</userName>\n<authID>%s</authID>\n<expires>%d</expires>\n</Standard>\n",
			esc(d.Server), d.Port, esc(d.User), esc(d.User), esc(d.User), d.RegInterval)
	}
	const decl = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	switch r.URL.Path {
	case "/ISAPI/System/Network/SIP":
		return xmlAnswer(decl + `<SIPServerList version="2.0" xmlns="` + hikvisionNS + `">` + "\n<SIPServer>\n<id>1</id>\n<localPort>5060</localPort>\n" +
			standard(false) + "</SIPServer>\n</SIPServerList>\n"), true
	case "/ISAPI/System/Network/SIP/1":
		return xmlAnswer(decl + `<SIPServer version="2.0" xmlns="` + hikvisionNS + `">` + "\n<id>1</id>\n<localPort>5060</localPort>\n" +
			standard(true) + "</SIPServer>\n"), true
	case "/ISAPI/System/deviceInfo":
		return xmlAnswer(fmt.Sprintf(decl+`<DeviceInfo version="2.0" xmlns="%s">
<deviceName>OUTDOOR STATION</deviceName>
<deviceID>7d49925b-4fc7-406b-a0ec-000000000001</deviceID>
<model>%s</model>
<serialNumber>%s0020230627CCRRAB0000001</serialNumber>
<macAddress>e0:ca:3c:00:00:01</macAddress>
<firmwareVersion>V%s</firmwareVersion>
<firmwareReleasedDate>build 240814</firmwareReleasedDate>
<hardwareVersion>0x10101</hardwareVersion>
<deviceType>VIS</deviceType>
</DeviceInfo>
`, hikvisionNS, esc(d.Model), esc(d.Model), esc(d.Firmware))), true
	}
	return nil, false
}
