package accounts

import (
	"bufio"
	_ "embed"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"mercato/internal/platform/errs"
)

// MinPasswordLen is the shortest password accepted, in characters.
const MinPasswordLen = 10

// checkPassword records why pw is not an acceptable password: shorter than
// MinPasswordLen characters, too long, or a common password or an obvious
// form of one (case, leetspeak, digits or symbols around a common word,
// one repeated character, a keyboard or counting sequence).
func checkPassword(v *errs.Validation, field, pw string) {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLen:
		v.Add(field, "must be at least 10 characters")
	case len(pw) > maxPasswordLen:
		v.Add(field, "must be at most 256 bytes")
	case isCommonPassword(pw):
		v.Add(field, "is too common; choose a less guessable password")
	}
}

//go:embed common_passwords.txt
var commonPasswordsText string

var (
	commonOnce sync.Once
	commonFull map[string]bool // whole passwords, lower-case
	commonBase map[string]bool // words that stay weak with digits/symbols around them
)

func loadCommon() {
	commonFull, commonBase = map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if w, ok := strings.CutPrefix(line, "base:"); ok {
			commonBase[strings.ToLower(w)] = true
			continue
		}
		commonFull[strings.ToLower(line)] = true
	}
}

var leet = strings.NewReplacer("@", "a", "4", "a", "3", "e", "1", "i", "!", "i", "0", "o", "$", "s", "5", "s", "7", "t", "+", "t")

// isCommonPassword reports whether pw (compared case-insensitively) is on
// the embedded list or an obvious form of an entry.
func isCommonPassword(pw string) bool {
	commonOnce.Do(loadCommon)
	lower := strings.ToLower(pw)
	if commonFull[lower] || commonFull[leet.Replace(lower)] {
		return true
	}
	// Strip the digits and symbols people put before and after a word, and
	// undo leetspeak, in either order.
	trim := func(x string) string { return strings.TrimFunc(x, func(r rune) bool { return !unicode.IsLetter(r) }) }
	core := trim(lower)
	if core == "" {
		return true // digits and symbols only
	}
	for _, c := range []string{core, leet.Replace(core), trim(leet.Replace(lower))} {
		if commonBase[c] || commonFull[c] {
			return true
		}
	}
	// A common word repeated ("passwordpassword") or one character repeated.
	for w := range commonBase {
		if len(core) >= 2*len(w) && len(core)%len(w) == 0 && strings.Repeat(w, len(core)/len(w)) == core {
			return true
		}
	}
	return isSequence(lower)
}

// isSequence reports whether s is one repeated character or a run along
// the keyboard or the alphabet/digits (either way), e.g. "aaaaaaaaaa",
// "qwertyuiop", "abcdefghij", "9876543210".
func isSequence(s string) bool {
	if strings.Count(s, s[:1]) == len(s) {
		return true
	}
	for _, row := range []string{
		"qwertyuiopasdfghjklzxcvbnm", "1234567890", "0123456789", "abcdefghijklmnopqrstuvwxyz",
		"qazwsxedcrfvtgbyhnujmikolp", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "1q2w3e4r5t6y7u8i9o0p",
		"zxcvbnmasdfghjklqwertyuiop",
	} {
		if strings.Contains(row, s) || strings.Contains(reverse(row), s) {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
