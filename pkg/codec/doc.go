// Package codec encodes and decodes Hookstream's Avro records — the event
// envelope, each event type's data and the internal records — and holds the
// catalog of their schemas.
//
// # Wire format
//
// Every Avro value Hookstream stores is framed with Avro Single Object
// Encoding: the bytes C3 01, the 8-byte little-endian CRC-64-AVRO
// fingerprint of the writer schema's Parsing Canonical Form, then the Avro
// binary body. The fingerprint is computed per the Avro specification
// (see CanonicalForm), so other Avro implementations (Java, fastavro, ...)
// compute the same one. An envelope carries its event's data as such a
// framed value in a bytes field, so routing needs only the envelope and the
// data's header (CheckData), never the data's body.
//
// # Catalog
//
// A Catalog (Load, Default) holds the schemas of package schemas: every
// version of every event type, the envelope and the other internal records.
// Data written with any known version is read as the latest version of its
// type (Avro schema resolution: fields added since get their default), so a
// webhook receiver always sees the newest shape. The catalog is immutable
// after Load; its methods are safe for concurrent use. Schema resolution is
// worked out once per writer schema at Load, never per record.
//
// # JSON mapping
//
// EncodeJSON reads, and DataToJSON and AppendDataJSON write, event data as
// JSON; it is the JSON webhook receivers get. Avro types map as follows:
//
//	record            object, fields in schema order; on input unknown fields are an
//	                  error, missing fields take their default or are an error
//	null, boolean     null, true/false
//	int, long         number; input must be an integer in range (1.5 and 1e3 are rejected)
//	float, double     number; NaN and ±infinity as the strings "NaN", "Infinity", "-Infinity"
//	string            string (invalid UTF-8 in Avro data is written as U+FFFD)
//	bytes, fixed      base64 string (standard alphabet, padded); fixed must have its size
//	enum              symbol string, checked against the symbols
//	array             array
//	map               object, keys sorted on output
//	["null", T]       null or the bare T value (either order of the branches)
//	other unions      null for the null branch, else {"<branch>": value}, where <branch>
//	                  is the type name ("string", "long", "array", "map") or the full
//	                  name of a named type (the short name is accepted on input)
//
// Logical types:
//
//	timestamp-millis  RFC 3339 string in UTC with 3 fractional digits
//	                  ("2026-11-23T18:21:00.000Z"); input: any RFC 3339 string
//	                  (finer digits truncated) or integer epoch milliseconds
//	timestamp-micros  the same with 6 fractional digits; integer input is epoch microseconds
//	date              "YYYY-MM-DD"; input also integer days since 1970-01-01
//	uuid              string, checked to be 8-4-4-4-12 hex digits on input
//	decimal           decimal string such as "-12.50" (scale digits after the point);
//	                  input: string or number, rejected if it needs rounding or has
//	                  more digits than the precision
//
// Other logical types (time-millis, local-timestamp-millis, duration, ...)
// use their underlying type's representation. Output is deterministic for
// given bytes: field order from the schema, map keys sorted, numbers in the
// shortest form that round-trips (like encoding/json), no insignificant
// whitespace.
package codec
