package web

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// DefaultMaxLen is the maximum length, in characters (Unicode code points,
// as JSON Schema's maxLength counts), of a request string that no maxlen tag
// bounds: untagged struct fields, map keys, strings inside any-typed values
// and query parameters. Nothing unbounded reaches a store.
const DefaultMaxLen = 4096

// TagMaxLen is the struct tag that bounds a string field's length in
// characters (maxlen:"254"). It applies to every string the field holds: the
// field itself, the elements of a slice or array, the values of a map, the
// strings inside an any-typed value; a nested struct's fields have their own
// tags. Decode refuses a longer string (422 validation_failed naming it) and
// the OpenAPI document states it as maxLength. A field without the tag is
// bounded by DefaultMaxLen.
const TagMaxLen = "maxlen"

// jsonField is one member of a struct's JSON object, as encoding/json sees
// it (the same names, promotion of embedded structs and dominance rules).
type jsonField struct {
	name      string
	index     []int // the field's index path from the outer struct
	typ       reflect.Type
	omitEmpty bool // tagged omitempty or omitzero
	quoted    bool // tagged ,string
	viaPtr    bool // promoted through an embedded pointer (absent when it is nil)
	maxLen    int  // the maxlen tag, or DefaultMaxLen
}

// fieldSet is a struct type's JSON members in encoding/json's order.
type fieldSet struct {
	list   []jsonField
	byName map[string]int    // exact name → index in list
	byFold map[string]string // lower-case name → name, for "did you mean" hints
}

var fieldCache sync.Map // reflect.Type → *fieldSet

// fieldsOf returns the JSON members of struct type t. It panics when a
// maxlen tag is not a positive integer (Router.Handle calls it for every
// route's Request type, so a bad tag fails at start-up, not per request).
func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{list: typeFields(t), byName: map[string]int{}, byFold: map[string]string{}}
	for i, f := range fs.list {
		fs.byName[f.name] = i
		fs.byFold[strings.ToLower(f.name)] = f.name
	}
	actual, _ := fieldCache.LoadOrStore(t, fs)
	return actual.(*fieldSet)
}

// typeFields walks t breadth-first through its embedded structs, as
// encoding/json does: a name at a shallower depth hides deeper ones; among
// names at the same depth a tagged one wins, and two of equal standing hide
// each other.
func typeFields(t reflect.Type) []jsonField {
	type level struct {
		typ    reflect.Type
		index  []int
		viaPtr bool
	}
	var found []jsonField
	tagged := map[int]bool{} // index in found → the name came from a tag
	depthOf := map[int]int{}
	visited := map[reflect.Type]bool{}
	current := []level{{typ: t}}
	for depth := 0; len(current) > 0; depth++ {
		var next []level
		for _, lv := range current {
			if visited[lv.typ] {
				continue
			}
			visited[lv.typ] = true
			for i := range lv.typ.NumField() {
				sf := lv.typ.Field(i)
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				index := append(append([]int(nil), lv.index...), i)
				ft := sf.Type
				if sf.Anonymous {
					et := ft
					if et.Kind() == reflect.Pointer {
						et = et.Elem()
					}
					if !sf.IsExported() && et.Kind() != reflect.Struct {
						continue
					}
					if name == "" && et.Kind() == reflect.Struct {
						next = append(next, level{typ: et, index: index, viaPtr: lv.viaPtr || ft.Kind() == reflect.Pointer})
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				f := jsonField{name: name, index: index, typ: ft, viaPtr: lv.viaPtr,
					omitEmpty: hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero"),
					quoted:    hasOpt(opts, "string") && quotable(ft),
					maxLen:    maxLenTag(t, sf)}
				if f.name == "" {
					f.name = sf.Name
				}
				tagged[len(found)] = name != ""
				depthOf[len(found)] = depth
				found = append(found, f)
			}
		}
		current = next
	}
	// Keep the dominant field of each name.
	byName := map[string][]int{}
	for i, f := range found {
		byName[f.name] = append(byName[f.name], i)
	}
	var out []jsonField
	for _, idx := range byName {
		best, ok := dominant(idx, depthOf, tagged)
		if ok {
			out = append(out, found[best])
		}
	}
	sort.Slice(out, func(i, j int) bool { return lessIndex(out[i].index, out[j].index) })
	return out
}

// dominant picks among same-named fields the one encoding/json keeps.
func dominant(idx []int, depthOf map[int]int, tagged map[int]bool) (int, bool) {
	minDepth := depthOf[idx[0]]
	for _, i := range idx {
		minDepth = min(minDepth, depthOf[i])
	}
	var top, topTagged []int
	for _, i := range idx {
		if depthOf[i] == minDepth {
			top = append(top, i)
			if tagged[i] {
				topTagged = append(topTagged, i)
			}
		}
	}
	switch {
	case len(top) == 1:
		return top[0], true
	case len(topTagged) == 1:
		return topTagged[0], true
	}
	return 0, false
}

func lessIndex(a, b []int) bool {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// quotable reports whether the ,string option applies to t (encoding/json
// honours it for strings, numbers and booleans, through one pointer).
func quotable(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// maxLenTag reads sf's maxlen tag; it panics on a malformed one.
func maxLenTag(owner reflect.Type, sf reflect.StructField) int {
	v, ok := sf.Tag.Lookup(TagMaxLen)
	if !ok {
		return DefaultMaxLen
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		panic(fmt.Sprintf("web: %s.%s: tag %s:%q is not a positive integer", owner, sf.Name, TagMaxLen, v))
	}
	return n
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// checkTags walks the types reachable from t and panics on a malformed
// maxlen tag (fieldsOf does); Router.Handle calls it for Route.Request.
func checkTags(t reflect.Type) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if seen[t] {
			return
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Map:
			walk(t.Elem())
		case reflect.Struct:
			for _, f := range fieldsOf(t).list {
				walk(f.typ)
			}
		}
	}
	walk(t)
}
