package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// A connector's mapping template says what it sends for an event: a JSON
// object whose members are, in order, the fields of the outside format.
// Each member's value is one of
//
//   - a string starting with "$." — a path into the event envelope
//     ("$.data.total"): the value there, copied with its JSON type (null,
//     or an empty CSV cell, when the event has none);
//   - any other string — a text/template over the envelope
//     ("{{.data.order_id}}", "ORD-{{.aggregate_id}}"), rendered as a JSON
//     string (a field the event lacks renders empty);
//   - a number, true, false or null — a constant;
//   - an object — a nested object of the same rules (JSON bodies only: a
//     CSV row is flat).
//
// The envelope's fields are id, type, schema_version, aggregate_type,
// aggregate_id, sequence, occurred_at and data; the fields under data are
// those of the payloads of the event types the connector's filters select.
// A path or template naming another field is refused at registration, and
// so is a template that does not parse, defines or calls other templates,
// nests range more than twice, or calls a function outside templateFuncs
// and the comparisons and logic of text/template (no printf, print, call,
// html, js or urlquery: nothing reaches outside the envelope, and nothing
// builds output larger than its input without being counted). Rendering is
// bounded: a body over maxRendered bytes fails the attempt.

// Bounds of a mapping template.
const (
	maxTemplateBytes  = 16 << 10 // the template's JSON
	maxTemplateFields = 100      // members, nested ones included
	maxTemplateDepth  = 4        // object nesting
	maxTemplateString = 1024     // one member's template or path
	maxRangeDepth     = 2        // range inside range, at most
	maxRendered       = 64 << 10 // one rendered body or row
)

// envelopeFields are the fields of an event envelope a template may name.
var envelopeFields = []string{"id", "type", "schema_version", "aggregate_type", "aggregate_id", "sequence", "occurred_at", "data"}

// templateFuncs are the functions a template may call besides text/template's
// comparisons and logic (templateBuiltins).
var templateFuncs = template.FuncMap{
	"upper": func(v any) string { return strings.ToUpper(text(v)) },
	"lower": func(v any) string { return strings.ToLower(text(v)) },
	"trim":  func(v any) string { return strings.TrimSpace(text(v)) },
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// templateBuiltins are the text/template built-ins a template may call.
var templateBuiltins = []string{"and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "len", "index", "slice"}

func text(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// fieldKnown reports whether a data field (the name after .data) is known;
// nil knows every name.
type fieldKnown func(name string) bool

// mapping is a parsed mapping template. Safe for concurrent use.
type mapping struct {
	members []member
}

// member is one field of the output.
type member struct {
	key  string
	lit  json.RawMessage    // a constant, or
	path []string           // a "$." path, or
	tmpl *template.Template // a text/template, or
	obj  *mapping           // a nested object
}

// parseMapping parses and checks a mapping template; flat refuses nested
// objects (CSV). The error is a message for the template field.
func parseMapping(raw json.RawMessage, flat bool, known fieldKnown) (*mapping, error) {
	if len(raw) == 0 {
		return nil, errors.New("is required: a JSON object of output fields")
	}
	if len(raw) > maxTemplateBytes {
		return nil, fmt.Errorf("must be at most %d bytes", maxTemplateBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	p := &mappingParser{dec: dec, flat: flat, known: known}
	if tok, err := dec.Token(); err != nil {
		return nil, errors.New("is not valid JSON")
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("must be a JSON object of output fields")
	}
	m, err := p.object("", 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("has data after the object")
	}
	if len(m.members) == 0 {
		return nil, errors.New("must name at least one output field")
	}
	return m, nil
}

type mappingParser struct {
	dec    *json.Decoder
	flat   bool
	known  fieldKnown
	fields int
}

// object reads one JSON object's members, its opening brace already read
// (at names it: "" for the template itself).
func (p *mappingParser) object(at string, depth int) (*mapping, error) {
	m := &mapping{}
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, errors.New("is not valid JSON")
		}
		key, _ := tok.(string)
		name := strings.TrimPrefix(at+"."+key, ".")
		if key == "" || len(key) > 100 || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, fmt.Errorf("%shas a field name that is empty, over 100 bytes or holds a control character", where(at))
		}
		if slices.ContainsFunc(m.members, func(x member) bool { return x.key == key }) {
			return nil, fmt.Errorf("names the field %q twice", name)
		}
		if p.fields++; p.fields > maxTemplateFields {
			return nil, fmt.Errorf("must have at most %d fields", maxTemplateFields)
		}
		mb, err := p.value(name, key, depth)
		if err != nil {
			return nil, err
		}
		m.members = append(m.members, mb)
	}
	if _, err := p.dec.Token(); err != nil { // the closing brace
		return nil, errors.New("is not valid JSON")
	}
	return m, nil
}

func where(at string) string {
	if at == "" {
		return ""
	}
	return "field " + at + " "
}

// value reads one member's value.
func (p *mappingParser) value(name, key string, depth int) (member, error) {
	mb := member{key: key}
	tok, err := p.dec.Token()
	if err != nil {
		return mb, errors.New("is not valid JSON")
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return mb, fmt.Errorf("field %s: arrays are not supported (a \"$.\" path copies one)", name)
		}
		if p.flat {
			return mb, fmt.Errorf("field %s: a CSV row is flat: nested objects are not allowed", name)
		}
		if depth >= maxTemplateDepth {
			return mb, fmt.Errorf("field %s: objects nest at most %d deep", name, maxTemplateDepth)
		}
		mb.obj, err = p.object(name, depth+1)
		return mb, err
	case string:
		if len(v) > maxTemplateString {
			return mb, fmt.Errorf("field %s: at most %d bytes", name, maxTemplateString)
		}
		if rest, ok := strings.CutPrefix(v, "$."); ok {
			path := strings.Split(rest, ".")
			if err := checkPath(path, p.known); err != nil {
				return mb, fmt.Errorf("field %s: %v", name, err)
			}
			mb.path = path
			return mb, nil
		}
		if mb.tmpl, err = parseTemplate(v, p.known); err != nil {
			return mb, fmt.Errorf("field %s: %v", name, err)
		}
	case json.Number:
		mb.lit = json.RawMessage(v.String())
	case bool:
		mb.lit = json.RawMessage(fmt.Sprint(v))
	case nil:
		mb.lit = json.RawMessage("null")
	}
	return mb, nil
}

// checkPath checks an envelope path (without the "$.").
func checkPath(path []string, known fieldKnown) error {
	for _, p := range path {
		if p == "" {
			return errors.New("a \"$.\" path has an empty part")
		}
	}
	if !slices.Contains(envelopeFields, path[0]) {
		return fmt.Errorf("%q is not a field of the event envelope (%s)", path[0], strings.Join(envelopeFields, ", "))
	}
	if path[0] == "data" && len(path) > 1 && known != nil && !known(path[1]) {
		return fmt.Errorf("data.%s is a field of no payload the connector's events have", path[1])
	}
	return nil
}

// parseTemplate parses one member's text/template and checks it (see the
// comment at the top of this file).
func parseTemplate(s string, known fieldKnown) (*template.Template, error) {
	t, err := template.New("field").Funcs(templateFuncs).Option("missingkey=zero").Parse(s)
	if err != nil {
		msg := err.Error()
		if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "template: ") {
			msg = msg[i+2:]
		}
		return nil, fmt.Errorf("does not parse: %s", clip(msg, 200))
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("must not define templates")
	}
	c := &treeCheck{known: known}
	c.node(t.Tree.Root, true, 0)
	if c.err != nil {
		return nil, c.err
	}
	return t, nil
}

// treeCheck walks a template's parse tree; it keeps the first problem.
type treeCheck struct {
	known fieldKnown
	err   error
}

func (c *treeCheck) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// node checks n; rooted is whether dot is the envelope there, ranges the
// range nesting.
func (c *treeCheck) node(n parse.Node, rooted bool, ranges int) {
	switch n := n.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, x := range n.Nodes {
			c.node(x, rooted, ranges)
		}
	case *parse.TextNode, *parse.CommentNode, *parse.BreakNode, *parse.ContinueNode:
	case *parse.ActionNode:
		c.pipe(n.Pipe, rooted)
	case *parse.IfNode:
		c.pipe(n.Pipe, rooted)
		c.node(n.List, rooted, ranges)
		c.node(n.ElseList, rooted, ranges)
	case *parse.WithNode:
		c.pipe(n.Pipe, rooted)
		c.node(n.List, false, ranges)
		c.node(n.ElseList, rooted, ranges)
	case *parse.RangeNode:
		if ranges >= maxRangeDepth {
			c.fail("range nests at most %d deep", maxRangeDepth)
			return
		}
		c.pipe(n.Pipe, rooted)
		c.node(n.List, false, ranges+1)
		c.node(n.ElseList, rooted, ranges)
	case *parse.TemplateNode:
		c.fail("must not call templates")
	default:
		c.fail("uses an unsupported construct")
	}
}

func (c *treeCheck) pipe(p *parse.PipeNode, rooted bool) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			c.arg(arg, rooted)
		}
	}
}

func (c *treeCheck) arg(a parse.Node, rooted bool) {
	switch a := a.(type) {
	case *parse.IdentifierNode:
		if _, ok := templateFuncs[a.Ident]; !ok && !slices.Contains(templateBuiltins, a.Ident) {
			c.fail("calls %q, which is not allowed (allowed: %s, upper, lower, trim, json)", a.Ident, strings.Join(templateBuiltins, ", "))
		}
	case *parse.FieldNode:
		if rooted {
			c.path(a.Ident)
		}
	case *parse.VariableNode:
		if len(a.Ident) > 1 && a.Ident[0] == "$" {
			c.path(a.Ident[1:])
		}
	case *parse.ChainNode:
		c.arg(a.Node, rooted)
	case *parse.PipeNode:
		c.pipe(a, rooted)
	}
}

func (c *treeCheck) path(p []string) {
	if err := checkPath(p, c.known); err != nil {
		c.fail("%v", err)
	}
}

// budget counts the bytes rendered for one body or row.
type budget struct{ left int }

var errTooLarge = fmt.Errorf("the mapped output is over %d bytes", maxRendered)

func (b *budget) take(n int) error {
	if b.left -= n; b.left < 0 {
		return errTooLarge
	}
	return nil
}

// limited is an io.Writer that fails once the budget is spent.
type limited struct {
	buf bytes.Buffer
	b   *budget
}

func (l *limited) Write(p []byte) (int, error) {
	if err := l.b.take(len(p)); err != nil {
		return 0, err
	}
	return l.buf.Write(p)
}

// render executes a template member over env.
func (m member) render(env map[string]any, b *budget) (string, error) {
	w := &limited{b: b}
	if err := m.tmpl.Execute(w, env); err != nil {
		if errors.Is(err, errTooLarge) {
			return "", errTooLarge
		}
		return "", fmt.Errorf("template %s: %v", m.key, clip(err.Error(), 300))
	}
	return strings.ReplaceAll(w.buf.String(), "<no value>", ""), nil
}

// lookup is the value at path in env, nil when absent.
func lookup(env map[string]any, path []string) any {
	var v any = env
	for _, p := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[p]
	}
	return v
}

// decodeEnvelope turns an envelope's JSON into what templates read
// (numbers kept exact).
func decodeEnvelope(envelope string) (map[string]any, error) {
	d := json.NewDecoder(strings.NewReader(envelope))
	d.UseNumber()
	var env map[string]any
	if err := d.Decode(&env); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return env, nil
}

// JSON renders the mapping over env as a JSON object, its members in the
// template's order.
func (m *mapping) JSON(env map[string]any) ([]byte, error) {
	b := &budget{left: maxRendered}
	var out bytes.Buffer
	if err := m.writeJSON(&out, env, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (m *mapping) writeJSON(out *bytes.Buffer, env map[string]any, b *budget) error {
	out.WriteByte('{')
	for i, mb := range m.members {
		if i > 0 {
			out.WriteByte(',')
		}
		k, _ := json.Marshal(mb.key)
		out.Write(k)
		out.WriteByte(':')
		var v []byte
		switch {
		case mb.obj != nil:
			if err := mb.obj.writeJSON(out, env, b); err != nil {
				return err
			}
			continue
		case mb.lit != nil:
			v = mb.lit
		case mb.path != nil:
			var err error
			if v, err = json.Marshal(lookup(env, mb.path)); err != nil {
				return err
			}
		default:
			s, err := mb.render(env, b)
			if err != nil {
				return err
			}
			v, _ = json.Marshal(s)
		}
		if err := b.take(len(v) + len(k) + 2); err != nil {
			return err
		}
		out.Write(v)
	}
	out.WriteByte('}')
	return nil
}

// Columns are the mapping's member names: a CSV file's header after
// event_id.
func (m *mapping) Columns() []string {
	out := make([]string, len(m.members))
	for i, mb := range m.members {
		out[i] = mb.key
	}
	return out
}

// Row renders the mapping over env as CSV cells (strings as they are, other
// values as JSON, absent ones empty); newlines become spaces, so that a row
// is one line.
func (m *mapping) Row(env map[string]any) ([]string, error) {
	b := &budget{left: maxRendered}
	out := make([]string, len(m.members))
	for i, mb := range m.members {
		var s string
		switch {
		case mb.lit != nil:
			s = string(mb.lit)
			if s == "null" {
				s = ""
			}
		case mb.path != nil:
			switch v := lookup(env, mb.path).(type) {
			case nil:
			case string:
				s = v
			default:
				j, err := json.Marshal(v)
				if err != nil {
					return nil, err
				}
				s = string(j)
			}
		default:
			var err error
			if s, err = mb.render(env, b); err != nil {
				return nil, err
			}
		}
		s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
		if err := b.take(len(s)); err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// has reports whether the mapping has a top-level member key.
func (m *mapping) has(key string) bool {
	return slices.ContainsFunc(m.members, func(x member) bool { return x.key == key })
}
