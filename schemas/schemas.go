// Package schemas holds Hookstream's Avro schemas as .avsc files and embeds
// them in the binary.
//
// Layout:
//
//	envelope.avsc                 hookstream.Envelope, the record on every event topic
//	endpoint.avsc                 hookstream.Endpoint, the record in the registry topic
//	events/<type>/v<N>.avsc       one schema per event type and version
//
// Rules: a new version of an event type is a new file v<N+1>.avsc that only
// adds fields with defaults (or removes fields that had one), so that it is
// backward and forward compatible with v<N>; the test in pkg/codec enforces
// this. Old versions are never deleted: readers need them to decode records
// written before the change.
package schemas

import "embed"

// FS holds every .avsc file below this directory.
//
//go:embed *.avsc events
var FS embed.FS
