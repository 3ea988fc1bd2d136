package codec

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// A prog renders Avro binary written with one schema (the writer's) as the
// JSON shape of another (the reader's), applying Avro schema resolution on
// the way: writer fields the reader lacks are skipped, reader fields the
// writer lacks get their default, numbers are promoted, enum symbols and
// union branches are matched by name. It is compiled once per writer
// schema and then run for every record; it decodes straight into the JSON
// output without building intermediate values.
type prog struct {
	op   op
	emit emit

	intW  bool // opInt: the writer type is int, so the value is range checked
	size  int  // opFixed
	scale int  // emitDecimal

	syms [][]byte // opEnum: writer symbol index -> quoted reader symbol, nil if none

	elem    *prog // opArray, opMap: items, values
	elemMin int   // opArray, opMap: minimum encoded size of one item or entry
	wvalues *node // opMap: writer value schema, to skip values while sorting keys

	branches []*prog // opUnion: per writer branch, nil if the reader has no match

	pre, post []byte // opWrap
	inner     *prog  // opWrap

	// opRecord
	streaming bool      // reader fields can be produced in one pass over the writer fields
	steps     []recStep // streaming: the pass; otherwise the reader fields in order
	wfields   []*node   // !streaming: writer field schemas, to find each field's offset
}

type op uint8

const (
	opNull op = iota
	opBoolean
	opInt
	opFloat
	opDouble
	opBytes
	opFixed
	opEnum
	opArray
	opMap
	opUnion
	opWrap
	opRecord
)

type emit uint8

const (
	emitInteger emit = iota
	emitFloat32
	emitFloat64
	emitTimestampMillis
	emitTimestampMicros
	emitDate
	emitString
	emitBase64
	emitDecimal
)

type stepKind uint8

const (
	stepRead    stepKind = iota // read a writer field, write it under key
	stepSkip                    // skip a writer field the reader does not have
	stepDefault                 // write the reader default under key
)

type recStep struct {
	kind stepKind
	key  []byte // `"name":`, preceded by a comma except for the first field
	p    *prog  // stepRead
	w    *node  // stepSkip
	src  int    // !streaming stepRead: index of the writer field
	def  []byte // stepDefault: rendered default
}

type progCompiler struct {
	memo    map[[2]*node]*prog
	pending []func() error // defaults, rendered once every prog is complete
}

// compileProg compiles the program that renders data written with schema w
// as JSON in the shape of schema r.
func compileProg(w, r *node) (*prog, error) {
	c := progCompiler{memo: map[[2]*node]*prog{}}
	p, err := c.compile(w, r)
	if err != nil {
		return nil, err
	}
	for len(c.pending) > 0 {
		fn := c.pending[0]
		c.pending = c.pending[1:]
		if err := fn(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (c *progCompiler) compile(w, r *node) (*prog, error) {
	if w.kind == kindUnion {
		return c.writerUnion(w, r)
	}
	if r.kind == kindUnion {
		return c.readerUnion(w, r)
	}
	mismatch := func() (*prog, error) {
		return nil, fmt.Errorf("reader %s cannot read writer %s", r.describe(), w.describe())
	}
	switch w.kind {
	case kindNull:
		if r.kind != kindNull {
			return mismatch()
		}
		return &prog{op: opNull}, nil
	case kindBoolean:
		if r.kind != kindBoolean {
			return mismatch()
		}
		return &prog{op: opBoolean}, nil
	case kindInt, kindLong:
		p := &prog{op: opInt, intW: w.kind == kindInt}
		switch {
		case r.kind == kindInt && w.kind == kindInt, r.kind == kindLong:
			p.emit = integerEmit(r)
		case r.kind == kindFloat:
			p.emit = emitFloat32
		case r.kind == kindDouble:
			p.emit = emitFloat64
		default:
			return mismatch()
		}
		return p, nil
	case kindFloat:
		switch r.kind {
		case kindFloat:
			return &prog{op: opFloat, emit: emitFloat32}, nil
		case kindDouble:
			return &prog{op: opFloat, emit: emitFloat64}, nil
		}
		return mismatch()
	case kindDouble:
		if r.kind != kindDouble {
			return mismatch()
		}
		return &prog{op: opDouble, emit: emitFloat64}, nil
	case kindBytes, kindString:
		switch r.kind {
		case kindString:
			return &prog{op: opBytes, emit: emitString}, nil
		case kindBytes:
			if r.logical == logicalDecimal {
				return &prog{op: opBytes, emit: emitDecimal, scale: r.scale}, nil
			}
			return &prog{op: opBytes, emit: emitBase64}, nil
		}
		return mismatch()
	case kindFixed:
		if r.kind != kindFixed || !namesMatch(w, r) || w.size != r.size {
			return mismatch()
		}
		if r.logical == logicalDecimal {
			return &prog{op: opFixed, size: w.size, emit: emitDecimal, scale: r.scale}, nil
		}
		return &prog{op: opFixed, size: w.size, emit: emitBase64}, nil
	case kindEnum:
		if r.kind != kindEnum || !namesMatch(w, r) {
			return mismatch()
		}
		p := &prog{op: opEnum, syms: make([][]byte, len(w.symbols))}
		for i, s := range w.symbols {
			j, ok := r.symbolIndex[s]
			if !ok {
				j = r.enumDefault
			}
			if j >= 0 {
				p.syms[i] = appendJSONString(nil, []byte(r.symbols[j]))
			}
		}
		return p, nil
	case kindArray:
		if r.kind != kindArray {
			return mismatch()
		}
		elem, err := c.compile(w.items, r.items)
		if err != nil {
			return nil, err
		}
		return &prog{op: opArray, elem: elem, elemMin: w.items.minSize}, nil
	case kindMap:
		if r.kind != kindMap {
			return mismatch()
		}
		elem, err := c.compile(w.items, r.items)
		if err != nil {
			return nil, err
		}
		return &prog{op: opMap, elem: elem, elemMin: 1 + w.items.minSize, wvalues: w.items}, nil
	case kindRecord:
		if r.kind != kindRecord || !namesMatch(w, r) {
			return mismatch()
		}
		return c.record(w, r)
	}
	return mismatch()
}

func integerEmit(r *node) emit {
	switch r.logical {
	case logicalTimestampMillis:
		return emitTimestampMillis
	case logicalTimestampMicros:
		return emitTimestampMicros
	case logicalDate:
		return emitDate
	}
	return emitInteger
}

// namesMatch applies the Avro rule for named types: same unqualified name,
// or the writer's full name is one of the reader's aliases.
func namesMatch(w, r *node) bool {
	return shortName(w.name) == shortName(r.name) || slices.Contains(r.aliases, w.name)
}

// writerUnion resolves each writer branch against the reader. A branch the
// reader cannot read is an error only when data actually uses it.
func (c *progCompiler) writerUnion(w, r *node) (*prog, error) {
	p := &prog{op: opUnion, branches: make([]*prog, len(w.branches))}
	var firstErr error
	ok := false
	for i, wb := range w.branches {
		bp, err := c.compile(wb, r)
		if err != nil {
			firstErr = cmpOr(firstErr, err)
			continue
		}
		p.branches[i], ok = bp, true
	}
	if !ok {
		return nil, fmt.Errorf("no branch of writer union readable: %w", firstErr)
	}
	return p, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// readerUnion picks the first reader branch that can read the writer's
// (non-union) type, and wraps it in the union's JSON form.
func (c *progCompiler) readerUnion(w, r *node) (*prog, error) {
	for _, rb := range r.branches {
		bp, err := c.compile(w, rb)
		if err != nil {
			continue
		}
		if rb.kind == kindNull || r.optional >= 0 {
			return bp, nil
		}
		pre := append([]byte{'{'}, appendJSONString(nil, []byte(rb.name))...)
		return &prog{op: opWrap, pre: append(pre, ':'), inner: bp, post: []byte{'}'}}, nil
	}
	return nil, fmt.Errorf("reader union %s has no branch for writer %s", unionNames(r), w.describe())
}

func unionNames(u *node) string {
	var b []byte
	b = append(b, '[')
	for i, br := range u.branches {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, br.name...)
	}
	return string(append(b, ']'))
}

func (c *progCompiler) record(w, r *node) (_ *prog, err error) {
	key := [2]*node{w, r}
	if p, ok := c.memo[key]; ok {
		return p, nil
	}
	p := &prog{op: opRecord}
	c.memo[key] = p
	pending := len(c.pending)
	defer func() {
		if err != nil { // leave no trace of a failed attempt (a reader union tries branches)
			delete(c.memo, key)
			c.pending = c.pending[:pending]
		}
	}()

	// Writer field index for every reader field, -1 if absent.
	src := make([]int, len(r.fields))
	used := make([]bool, len(w.fields))
	for i, rf := range r.fields {
		src[i] = -1
		for j, wf := range w.fields {
			if !used[j] && (wf.name == rf.name || slices.Contains(rf.aliases, wf.name)) {
				src[i], used[j] = j, true
				break
			}
		}
	}
	p.streaming = true
	last := -1
	for _, j := range src {
		if j >= 0 {
			if j < last {
				p.streaming = false
			}
			last = j
		}
	}

	next := 0 // streaming: next writer field to consume
	for i, rf := range r.fields {
		k := appendJSONString(nil, []byte(rf.name))
		if i > 0 {
			k = append([]byte{','}, k...)
		}
		k = append(k, ':')
		j := src[i]
		if j < 0 {
			if !rf.hasDefault {
				return nil, fmt.Errorf("record %s: reader field %q is missing in writer and has no default", r.name, rf.name)
			}
			p.steps = append(p.steps, recStep{kind: stepDefault, key: k, src: -1})
			idx := len(p.steps) - 1
			c.pending = append(c.pending, func() error {
				id, err := c.compile(rf.typ, rf.typ)
				if err != nil {
					return err
				}
				def, err := id.render(rf.defaultBin)
				if err != nil {
					return fmt.Errorf("record %s field %q: rendering default: %w", r.name, rf.name, err)
				}
				p.steps[idx].def = def
				return nil
			})
			continue
		}
		fp, err := c.compile(w.fields[j].typ, rf.typ)
		if err != nil {
			return nil, fmt.Errorf("record %s field %q: %w", r.name, rf.name, err)
		}
		if p.streaming {
			for ; next < j; next++ {
				p.steps = append(p.steps, recStep{kind: stepSkip, w: w.fields[next].typ})
			}
			next = j + 1
		}
		p.steps = append(p.steps, recStep{kind: stepRead, key: k, p: fp, src: j})
	}
	if p.streaming {
		for ; next < len(w.fields); next++ {
			p.steps = append(p.steps, recStep{kind: stepSkip, w: w.fields[next].typ})
		}
	} else {
		for _, wf := range w.fields {
			p.wfields = append(p.wfields, wf.typ)
		}
	}
	return p, nil
}

// render runs p over the whole of b, which must be consumed exactly.
func (p *prog) render(b []byte) ([]byte, error) {
	r := reader{b: b}
	out, err := p.run(&r, nil)
	if err != nil {
		return nil, err
	}
	if r.pos != len(b) {
		return nil, fmt.Errorf("%d trailing bytes", len(b)-r.pos)
	}
	return out, nil
}

var errUnreadableBranch = errors.New("union branch has no match in the reader schema")

// run decodes one value from r and appends its JSON to dst.
func (p *prog) run(r *reader, dst []byte) ([]byte, error) {
	switch p.op {
	case opNull:
		return append(dst, "null"...), nil
	case opBoolean:
		v, err := r.boolean()
		if err != nil {
			return dst, err
		}
		if v {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case opInt:
		var v int64
		var err error
		if p.intW {
			var v32 int32
			v32, err = r.int()
			v = int64(v32)
		} else {
			v, err = r.long()
		}
		if err != nil {
			return dst, err
		}
		switch p.emit {
		case emitFloat32:
			return appendJSONFloat(dst, float64(float32(v)), 32), nil
		case emitFloat64:
			return appendJSONFloat(dst, float64(v), 64), nil
		case emitTimestampMillis:
			return appendTimestamp(dst, v, false), nil
		case emitTimestampMicros:
			return appendTimestamp(dst, v, true), nil
		case emitDate:
			return appendDate(dst, v), nil
		}
		return strconv.AppendInt(dst, v, 10), nil
	case opFloat:
		v, err := r.float32()
		if err != nil {
			return dst, err
		}
		if p.emit == emitFloat64 {
			return appendJSONFloat(dst, float64(v), 64), nil
		}
		return appendJSONFloat(dst, float64(v), 32), nil
	case opDouble:
		v, err := r.float64()
		if err != nil {
			return dst, err
		}
		return appendJSONFloat(dst, v, 64), nil
	case opBytes, opFixed:
		var b []byte
		var err error
		if p.op == opFixed {
			b, err = r.fixed(p.size)
		} else {
			b, err = r.bytes()
		}
		if err != nil {
			return dst, err
		}
		switch p.emit {
		case emitString:
			return appendJSONString(dst, b), nil
		case emitDecimal:
			return appendDecimal(dst, b, p.scale), nil
		}
		return appendBase64(dst, b), nil
	case opEnum:
		i, err := r.long()
		if err != nil {
			return dst, err
		}
		if i < 0 || i >= int64(len(p.syms)) {
			return dst, fmt.Errorf("enum index %d out of range", i)
		}
		if p.syms[i] == nil {
			return dst, fmt.Errorf("enum symbol %d unknown to the reader, which has no default", i)
		}
		return append(dst, p.syms[i]...), nil
	}

	if err := r.enter(); err != nil {
		return dst, err
	}
	var err error
	switch p.op {
	case opUnion:
		dst, err = p.runUnion(r, dst)
	case opWrap:
		dst = append(dst, p.pre...)
		if dst, err = p.inner.run(r, dst); err == nil {
			dst = append(dst, p.post...)
		}
	case opArray:
		dst, err = p.runArray(r, dst)
	case opMap:
		dst, err = p.runMap(r, dst)
	case opRecord:
		dst, err = p.runRecord(r, dst)
	default:
		err = fmt.Errorf("invalid op %d", p.op)
	}
	r.leave() // not deferred: this is the hot path
	return dst, err
}

func (p *prog) runUnion(r *reader, dst []byte) ([]byte, error) {
	i, err := r.long()
	if err != nil {
		return dst, err
	}
	if i < 0 || i >= int64(len(p.branches)) {
		return dst, fmt.Errorf("union index %d out of range", i)
	}
	if p.branches[i] == nil {
		return dst, errUnreadableBranch
	}
	return p.branches[i].run(r, dst)
}

func (p *prog) runArray(r *reader, dst []byte) ([]byte, error) {
	dst = append(dst, '[')
	total, first := 0, true
	for {
		n, err := r.blockCount(p.elemMin, &total)
		if err != nil {
			return dst, err
		}
		if n == 0 {
			return append(dst, ']'), nil
		}
		for range n {
			if !first {
				dst = append(dst, ',')
			}
			first = false
			if dst, err = p.elem.run(r, dst); err != nil {
				return dst, err
			}
		}
	}
}

type mapEntry struct {
	key   []byte
	value int // offset of the encoded value
}

// runMap writes the entries sorted by key, so that the output does not
// depend on the order the writer happened to use.
func (p *prog) runMap(r *reader, dst []byte) ([]byte, error) {
	var stack [16]mapEntry
	entries := stack[:0]
	total := 0
	for {
		n, err := r.blockCount(p.elemMin, &total)
		if err != nil {
			return dst, err
		}
		if n == 0 {
			break
		}
		for range n {
			k, err := r.bytes()
			if err != nil {
				return dst, err
			}
			entries = append(entries, mapEntry{key: k, value: r.pos})
			if err := r.skip(p.wvalues, false); err != nil {
				return dst, err
			}
		}
	}
	end := r.pos
	slices.SortFunc(entries, func(a, b mapEntry) int { return bytes.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for i, e := range entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, e.key)
		dst = append(dst, ':')
		r.pos = e.value
		var err error
		if dst, err = p.elem.run(r, dst); err != nil {
			return dst, err
		}
	}
	r.pos = end
	return append(dst, '}'), nil
}

func (p *prog) runRecord(r *reader, dst []byte) ([]byte, error) {
	dst = append(dst, '{')
	var err error
	if p.streaming {
		for i := range p.steps {
			s := &p.steps[i]
			switch s.kind {
			case stepSkip:
				err = r.skip(s.w, false)
			case stepRead:
				dst = append(dst, s.key...)
				dst, err = s.p.run(r, dst)
			case stepDefault:
				dst = append(dst, s.key...)
				dst = append(dst, s.def...)
			}
			if err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}

	// The reader wants the fields in another order: find where each writer
	// field starts, then read them in reader order.
	var stack [32]int
	offsets := stack[:0]
	for _, w := range p.wfields {
		offsets = append(offsets, r.pos)
		if err := r.skip(w, false); err != nil {
			return dst, err
		}
	}
	end := r.pos
	for i := range p.steps {
		s := &p.steps[i]
		dst = append(dst, s.key...)
		if s.kind == stepDefault {
			dst = append(dst, s.def...)
			continue
		}
		r.pos = offsets[s.src]
		if dst, err = s.p.run(r, dst); err != nil {
			return dst, err
		}
	}
	r.pos = end
	return append(dst, '}'), nil
}
