package pricing

import (
	"strconv"

	"mercato/internal/platform/errs"
)

// path names a field of the input for an error, built only when a check
// fails: validating a valid rule set, which every quote does, formats
// nothing. A path is a parent, a member name and an index (-1 for none):
// path{&zones3, ".rates", 1} is "shipping.zones[3].rates[1]".
type path struct {
	parent *path
	name   string
	index  int
}

// root is a top-level member or list ("promotions", "tax.regions").
func root(name string) path { return path{name: name, index: -1} }

// at is element i of the list p names.
func (p *path) at(name string, i int) path { return path{parent: p, name: name, index: i} }

func (p path) String() string {
	s := p.name
	if p.index >= 0 {
		s += "[" + strconv.Itoa(p.index) + "]"
	}
	if p.parent != nil {
		s = p.parent.String() + s
	}
	return s
}

// problems collects field errors against paths.
type problems struct{ errs.Validation }

// check records msg for the member sub of p (sub "" for p itself) unless
// ok.
func (v *problems) check(ok bool, p *path, sub, msg string) {
	if !ok {
		v.Add(p.String()+sub, msg)
	}
}
