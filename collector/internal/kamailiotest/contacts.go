package kamailiotest

import (
	"encoding/json"
	"strings"
	"testing"
)

// Contact is one contact of ul.dump, as the tests need it.
type Contact struct {
	// AoR is the address of record: "user", or "user@domain" with
	// UseDomain.
	AoR string
	// Address is the Contact URI the UA registered, sip:user@host:port.
	Address string
	// Expires is ul.dump's Expires as text: the seconds left, or
	// "expired" for a contact past its expiry that usrloc's timer has not
	// removed yet.
	Expires string
	// Received is the source address the registrar recorded
	// (sip:IP:port), empty when it recorded none ("[not set]").
	Received  string
	UserAgent string
	CallID    string
	// Socket is Kamailio's socket that received the REGISTER
	// (udp:127.0.0.1:P).
	Socket string
}

// Expired tells whether ul.dump lists the contact as expired.
func (c Contact) Expired() bool { return c.Expires == "expired" }

// dump is the shape of Kamailio 5.6's ul.dump answer.
type dump struct {
	Result struct {
		Domains []struct {
			Domain struct {
				Domain string
				AoRs   []struct {
					Info struct {
						AoR      string
						Contacts []struct {
							Contact struct {
								Address   string
								Expires   json.RawMessage
								Received  string
								UserAgent string `json:"User-Agent"`
								CallID    string `json:"Call-ID"`
								Socket    string
							}
						}
					}
				}
			}
		}
	}
}

// Contacts returns every contact of ul.dump's "location" table. It fails
// the test when Kamailio does not answer or the answer does not parse.
func (s *Server) Contacts(tb testing.TB) []Contact {
	tb.Helper()
	b := s.Dump(tb)
	cs, err := parseDump(b)
	if err != nil {
		tb.Fatalf("kamailiotest: ul.dump answer: %v\n%s", err, b)
	}
	return cs
}

func parseDump(b []byte) ([]Contact, error) {
	var d dump
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	var out []Contact
	for _, dom := range d.Result.Domains {
		for _, aor := range dom.Domain.AoRs {
			for _, c := range aor.Info.Contacts {
				received := c.Contact.Received
				if received == "[not set]" {
					received = ""
				}
				out = append(out, Contact{
					AoR:       aor.Info.AoR,
					Address:   c.Contact.Address,
					Expires:   strings.Trim(string(c.Contact.Expires), `"`),
					Received:  received,
					UserAgent: c.Contact.UserAgent,
					CallID:    c.Contact.CallID,
					Socket:    c.Contact.Socket,
				})
			}
		}
	}
	return out, nil
}

// ContactsOf returns the contacts of one AoR.
func (s *Server) ContactsOf(tb testing.TB, aor string) []Contact {
	tb.Helper()
	var out []Contact
	for _, c := range s.Contacts(tb) {
		if c.AoR == aor {
			out = append(out, c)
		}
	}
	return out
}
