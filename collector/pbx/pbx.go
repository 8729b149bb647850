// Package pbx reads the PBX's side of the devices' SIP registrations: is
// the PBX's SIP port answering (one OPTIONS), and which contacts does its
// registrar hold (Kamailio's usrloc over JSON-RPC, Asterisk's PJSIP
// contacts over AMI).
//
// Everything a PBX sends is bounded like a device's answer: a registrar
// answer is read as a stream, never buffered whole, and more than
// MaxContacts contacts or MaxBody bytes is an error, not an allocation.
// Errors never quote a credential nor more of an answer than a short,
// escaped excerpt.
package pbx

import (
	"context"
	"crypto/tls"
	"errors"
	"time"
)

// Contact is one registration a registrar holds.
type Contact struct {
	// User is the user part of the address of record (the SIP account).
	User string
	// Domain is the address of record's domain; empty when the registrar
	// keeps none (Kamailio's usrloc with use_domain off).
	Domain string
	// Source is the IP address the registration came from, in
	// netip.Addr's text form: the address the registrar received it from
	// when it records one (Kamailio's Received), else the host of the
	// contact URI (for Asterisk, which records no received address, the
	// Via's sent-by host when the URI's is a name). Empty when none is an
	// IP address.
	Source string
}

// Registrar reads the registrations a PBX holds.
type Registrar interface {
	// Contacts returns every contact the registrar holds. More than
	// MaxContacts is ErrTooManyContacts; an answer over MaxBody bytes is
	// an error. ctx bounds the whole read.
	Contacts(ctx context.Context) ([]Contact, error)
}

// Bounds on what one registrar answer may hold.
const (
	// MaxContacts is the most contacts one registrar may list: ten times
	// the largest fleet the exporter is built for, behind one PBX.
	MaxContacts = 200_000
	// MaxBody is the most bytes one registrar answer may have.
	MaxBody = 256 << 20
)

// ErrTooManyContacts is returned for a registrar listing more than
// MaxContacts contacts.
var ErrTooManyContacts = errors.New("the registrar lists more contacts than the exporter reads (200000)")

// Registrar types, the values of a PBX's registrar.type.
const (
	TypeKamailio = "kamailio"
	TypeAsterisk = "asterisk"
)

// Answer is a PBX's final answer to one SIP OPTIONS.
type Answer struct {
	Code   int    // the status code (any final code: 200, 404, 483, ...)
	Reason string // the reason phrase, made safe (safetext) and cut
	RTT    time.Duration
}

// Target is where a PBX's OPTIONS go: only the address the operator
// configured, never one a device named.
type Target struct {
	Transport string // "udp", "tcp" or "tls"
	Host      string // an IP address or a host name
	Port      int
	// TLS is the client configuration for Transport "tls"; nil for the
	// system roots.
	TLS *tls.Config
}
