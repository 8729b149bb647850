package kamailiotest

import (
	"fmt"
	"strings"
	"text/template"
	"time"
)

// config is what the configuration template is filled with.
type config struct {
	ModulesDir     string
	RunDir         string
	SIPPort        int
	RPCPort        int
	UseDomain      bool
	DefaultExpires int // seconds
	TimerInterval  int // seconds
	Password       string
	Received       bool
}

// The configuration: a registrar without a database, OPTIONS answered
// statelessly, and JSON-RPC over xhttp at /RPC.
var cfgTemplate = template.Must(template.New("kamailio.cfg").Parse(`#!KAMAILIO
# Written by kamailiotest for one test; removed with the test's temporary
# directory.
debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
rundir="{{.RunDir}}"
listen=udp:127.0.0.1:{{.SIPPort}}
listen=tcp:127.0.0.1:{{.SIPPort}}
listen=tcp:127.0.0.1:{{.RPCPort}}
tcp_accept_no_cl=yes

mpath="{{.ModulesDir}}"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "rr.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "xhttp.so"
loadmodule "jsonrpcs.so"
{{- if .Password}}
loadmodule "auth.so"
{{- end}}
{{- if .Received}}
loadmodule "nathelper.so"
{{- end}}

modparam("usrloc", "db_mode", 0)
modparam("usrloc", "use_domain", {{if .UseDomain}}1{{else}}0{{end}})
modparam("usrloc", "timer_interval", {{.TimerInterval}})
modparam("registrar", "min_expires", 1)
modparam("registrar", "default_expires", {{.DefaultExpires}})
{{- if .Received}}
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("registrar", "received_avp", "$avp(RECEIVED)")
{{- end}}
# JSON-RPC over HTTP only (served by xhttp), no FIFO or datagram socket.
modparam("jsonrpcs", "transport", 1)

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (!sanity_check()) {
		exit;
	}
	if (is_method("OPTIONS")) {
		sl_send_reply("200", "OK");
		exit;
	}
	if (is_method("REGISTER")) {
{{- if .Password}}
		if (!pv_www_authenticate("$td", "{{.Password}}", "0")) {
			www_challenge("$td", "0");
			exit;
		}
		consume_credentials();
{{- end}}
{{- if .Received}}
		fix_nated_register();
{{- end}}
		if (!save("location")) {
			sl_reply_error();
		}
		exit;
	}
	if (is_method("ACK")) {
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
	exit;
}

event_route[xhttp:request] {
	if ($hu =~ "^/RPC") {
		jsonrpc_dispatch();
	} else {
		xhttp_reply("404", "Not Found", "text/plain", "Not Found");
	}
	exit;
}
`))

// render is the configuration file's text.
func render(c config) (string, error) {
	if strings.ContainsAny(c.Password, "\"\\\n$") {
		return "", fmt.Errorf("the registrar password may not hold a quote, a backslash, a newline or a dollar sign")
	}
	var b strings.Builder
	if err := cfgTemplate.Execute(&b, c); err != nil {
		return "", err
	}
	return b.String(), nil
}

// seconds rounds d up to whole seconds, at least 1; def when d is zero.
func seconds(d time.Duration, def int) int {
	if d <= 0 {
		return def
	}
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
