package quay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Quay formats timestamps two ways (endpoints/api/__init__.py format_date): robots and app-specific
// tokens use RFC 2822 ("Wed, 22 Jul 2026 10:00:00 -0000"), the organization
// application-token endpoints use Python's isoformat() plus "Z", with or
// without microseconds. Both decode to time.Time; JSON null decodes to the
// zero time.

// ISOTime is an ISO-8601 timestamp as Quay's application-token API sends it.
type ISOTime struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *ISOTime) UnmarshalJSON(b []byte) error {
	s, ok, err := jsonString(b)
	if err != nil || !ok {
		return err
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05"} {
		if parsed, err := time.Parse(layout, s); err == nil {
			t.Time = parsed.UTC()
			return nil
		}
	}
	return fmt.Errorf("quay: unrecognised ISO-8601 timestamp %q", s)
}

// MarshalJSON implements json.Marshaler.
func (t ISOTime) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// RFC2822Time is a timestamp as Quay's robot endpoints send it.
type RFC2822Time struct{ time.Time }

// UnmarshalJSON implements json.Unmarshaler.
func (t *RFC2822Time) UnmarshalJSON(b []byte) error {
	s, ok, err := jsonString(b)
	if err != nil || !ok {
		return err
	}
	for _, layout := range []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if parsed, err := time.Parse(layout, s); err == nil {
			t.Time = parsed.UTC()
			return nil
		}
	}
	return fmt.Errorf("quay: unrecognised RFC 2822 timestamp %q", s)
}

// MarshalJSON implements json.Marshaler.
func (t RFC2822Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC1123Z))
}

func jsonString(b []byte) (string, bool, error) {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", false, err
	}
	return s, s != "", nil
}
