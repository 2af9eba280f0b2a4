package payments

// cardLike reports whether s holds a run of 12 to 19 digits (spaces and
// dashes between them allowed) that passes the Luhn check: what a card
// number looks like. mercato never receives card numbers (card entry is
// the provider's hosted page), so such input is refused wherever a client
// may type text: tokens, refund reasons.
func cardLike(s string) bool {
	var digits []byte
	flush := func() bool {
		ok := len(digits) >= 12 && len(digits) <= 19 && luhn(digits)
		digits = digits[:0]
		return ok
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case (c == ' ' || c == '-') && len(digits) > 0:
			// a separator inside a number
		default:
			if flush() {
				return true
			}
		}
	}
	return flush()
}

// luhn reports whether digits pass the Luhn checksum.
func luhn(digits []byte) bool {
	sum := 0
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if (len(digits)-1-i)%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}
