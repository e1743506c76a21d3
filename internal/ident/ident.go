package ident

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxIDLen is the longest identifier (subject, request, event ids).
const MaxIDLen = 64

// CheckID accepts identifiers that are safe in MQTT topics, file names and
// logs: 1..MaxIDLen bytes of [A-Za-z0-9._-], not starting with a dot.
func CheckID(s string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	if len(s) > MaxIDLen {
		return fmt.Errorf("longer than %d bytes", MaxIDLen)
	}
	if s[0] == '.' {
		return fmt.Errorf("must not start with a dot")
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("invalid character %s at byte %d (allowed: A-Z a-z 0-9 . _ -)", Describe(r), i)
		}
	}
	return nil
}

// CheckText accepts display text (names, operator notes) of at most max
// bytes: valid UTF-8 without control characters, bidirectional overrides
// and other invisible format characters (which can make what an operator
// reads differ from what is stored), line or paragraph separators, private
// use or unassigned code points.
func CheckText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Errorf("invalid UTF-8 at byte %d", i)
			}
		}
		if why := refused(r); why != "" {
			return fmt.Errorf("%s %s at byte %d is not allowed", why, Describe(r), i)
		}
	}
	return nil
}

// refused says why r may not appear in display text, or "".
func refused(r rune) string {
	switch {
	case r == utf8.RuneError:
		return "replacement character"
	case unicode.Is(unicode.Cc, r):
		return "control character"
	case isBidi(r):
		return "bidirectional formatting character"
	case unicode.Is(unicode.Cf, r):
		return "invisible format character"
	case unicode.In(r, unicode.Zl, unicode.Zp):
		return "line or paragraph separator"
	case unicode.In(r, unicode.Co, unicode.Cs):
		return "private-use or surrogate code point"
	case r&0xFFFE == 0xFFFE || (r >= 0xFDD0 && r <= 0xFDEF):
		return "noncharacter"
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
		return "unassigned code point"
	}
	return ""
}

// isBidi reports the explicit directional formatting characters of the
// Unicode bidirectional algorithm (UAX #9): LRM, RLM, ALM, the embeddings,
// overrides and isolates.
func isBidi(r rune) bool {
	return r == 0x061C || r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// Describe names a rune for an error message: the character quoted when it
// is visible, and always its code point, e.g. "é" (U+00E9) or U+202E.
func Describe(r rune) string {
	if unicode.IsGraphic(r) && !unicode.Is(unicode.Cf, r) && r != utf8.RuneError {
		return fmt.Sprintf("%q (U+%04X)", string(r), r)
	}
	return fmt.Sprintf("U+%04X", r)
}
