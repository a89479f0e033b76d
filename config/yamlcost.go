package config

import (
	"bytes"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// The YAML library builds a tree of the whole document before the parser
// sees any of it, at about 220 bytes and a microsecond per node: a 16 MiB
// flow list `origins: [0,0,…]` is 8 million nodes, 1.8 GB and 10 s before
// the origin limit could refuse it. countYAMLNodes bounds that cost first,
// in one pass over the bytes that allocates nothing: it follows the YAML
// scanner's rules (indentation, flow collections, plain, quoted and block
// scalars, comments) closely enough to count the nodes the library will
// build, and where it cannot tell it counts more, never fewer (see
// FuzzYAMLNodeCount).

// maxYAMLDepth is the YAML library's own limit on nesting, of indentation
// levels and of flow collections each.
const maxYAMLDepth = 10000

// errYAMLDepth is returned for YAML nested deeper than the library allows.
var errYAMLDepth = errors.New("nested more than 10000 levels deep")

// errTwoBOMs is returned for text that starts with a second byte order
// mark: the YAML library then skips a character at the start of lines
// while that mark is in its buffer, which no count can follow.
var errTwoBOMs = errors.New("starts with two byte order marks")

// countYAMLNodes returns an upper bound of the number of nodes (the
// document, every scalar, alias, list and mapping, empty values included)
// the YAML library builds for the first document of data. It stops
// counting as soon as the count passes limit (when limit > 0), so what it
// costs is bounded by the limit, not by the size of data.
func countYAMLNodes(data []byte, limit int) (int, error) {
	text := toUTF8(data)
	if bytes.HasPrefix(text, utf8BOM) {
		return 0, errTwoBOMs
	}
	s := yamlScan{data: text, limit: limit, n: 1, keyAllowed: true}
	return s.run()
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// toUTF8 returns data as the YAML library's reader passes it on: UTF-16
// with a byte order mark decoded, anything else taken as UTF-8, and the
// byte order mark of either removed.
func toUTF8(data []byte) []byte {
	if bytes.HasPrefix(data, utf8BOM) {
		return data[len(utf8BOM):]
	}
	if len(data) < 2 || !(data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		return data
	}
	le := data[0] == 0xFF
	units := make([]uint16, 0, len(data)/2)
	for i := 2; i+1 < len(data); i += 2 {
		if le {
			units = append(units, uint16(data[i])|uint16(data[i+1])<<8)
		} else {
			units = append(units, uint16(data[i])<<8|uint16(data[i+1]))
		}
	}
	out := make([]byte, 0, len(units))
	for _, r := range utf16.Decode(units) {
		out = utf8.AppendRune(out, r)
	}
	return out
}

// blockLevel is an indentation level of block collections, as the YAML
// scanner's indent stack holds them.
type blockLevel struct {
	col int
	seq bool
	// indentless is set while a mapping at this level has a sequence at
	// its own indentation as a value ("key:\n- a").
	indentless bool
}

// flowLevel is an open flow collection and the state of its current entry.
type flowLevel struct {
	seq bool
	// content: the entry has a key or value so far; colon: it has a ':'.
	content, colon bool
}

// yamlSlot is a place where the YAML parser puts a node: after '-' or ':'.
// When no node comes, the parser makes an empty one.
type yamlSlot struct {
	open, flow bool
	// dash: opened by '-' (else by ':'); owner: the indentation of the
	// collection it belongs to; line: where it was opened.
	dash        bool
	owner, line int
}

type yamlScan struct {
	data      []byte
	pos       int
	line, col int
	limit, n  int

	blocks []blockLevel
	flows  []flowLevel
	slot   yamlSlot
	// keyAllowed: a token here may be a simple key of the block mapping;
	// key*: where the current candidate starts.
	keyAllowed       bool
	keyOK            bool
	keyLine, keyCol  int
	crossedLineBreak bool
}

func (s *yamlScan) over() bool { return s.limit > 0 && s.n > s.limit }

func (s *yamlScan) run() (int, error) {
	for !s.over() {
		s.skipToToken()
		if s.eof() {
			break
		}
		if len(s.flows) == 0 {
			for len(s.blocks) > 0 && s.blocks[len(s.blocks)-1].col > s.col {
				s.blocks = s.blocks[:len(s.blocks)-1]
			}
		}
		pos := s.pos
		if err := s.token(); err != nil {
			return s.n, err
		}
		if s.pos == pos {
			s.advance(1) // never stall on a character the scanner refuses
		}
	}
	s.before(tokEnd)
	return s.n, nil
}

// Token classes for before.
const (
	tokContent = iota // a scalar, alias, property or flow collection start
	tokDash           // '-' block entry
	tokKey            // '?' or ':'
	tokFlowEnd        // ',', ']' or '}'
	tokEnd            // document marker or end of input
)

// before fills or closes an open slot for a token of class tok at the
// current position: an empty slot costs the parser a node.
func (s *yamlScan) before(tok int) {
	if !s.slot.open {
		return
	}
	empty := false
	switch {
	case tok == tokEnd:
		empty = true
	case s.slot.flow:
		empty = tok == tokFlowEnd
	case s.line == s.slot.line:
	case s.col > s.slot.owner:
	case s.col == s.slot.owner && tok == tokDash && !s.slot.dash:
		// An indentless sequence as the value.
	default:
		empty = true
	}
	if empty {
		s.n++
	}
	s.slot.open = false
}

func (s *yamlScan) token() error {
	c := s.data[s.pos]
	if s.col == 0 {
		switch {
		case c == '%':
			s.skipLine()
			return nil
		case s.docIndicator():
			s.before(tokEnd)
			if c == '-' {
				s.n++
			}
			s.blocks, s.flows = s.blocks[:0], s.flows[:0]
			s.keyAllowed = false
			s.advance(3)
			return nil
		}
	}
	flow := len(s.flows) > 0
	switch {
	case c == '[' || c == '{':
		s.content()
		s.n++
		if len(s.flows) >= maxYAMLDepth {
			return errYAMLDepth
		}
		s.flows = append(s.flows, flowLevel{seq: c == '['})
		s.advance(1)
		s.keyAllowed = true
	case c == ']' || c == '}':
		s.before(tokFlowEnd)
		if flow {
			s.endFlowEntry()
			s.flows = s.flows[:len(s.flows)-1]
		}
		s.advance(1)
		s.keyAllowed = false
	case c == ',':
		s.before(tokFlowEnd)
		if flow {
			s.endFlowEntry()
			top := &s.flows[len(s.flows)-1]
			top.content, top.colon = false, false
		}
		s.advance(1)
		s.keyAllowed = true
	case c == '-' && s.blankz(s.pos+1):
		s.before(tokDash)
		if flow {
			s.n++ // an error for the parser; count it anyway
		} else if err := s.blockEntry(); err != nil {
			return err
		}
		s.advance(1)
		s.keyAllowed = true
	case c == '?' && (flow || s.blankz(s.pos+1)):
		s.before(tokKey)
		s.n += 2 // the key and the value may both be empty
		if flow {
			top := &s.flows[len(s.flows)-1]
			if top.seq {
				s.n++ // a single-pair mapping
			}
			top.content, top.colon = true, true
		} else if err := s.roll(s.col, false); err != nil {
			return err
		}
		s.advance(1)
		s.keyAllowed = !flow
	case c == ':' && (flow || s.blankz(s.pos+1)):
		if err := s.value(flow); err != nil {
			return err
		}
	case c == '*' || c == '&':
		s.content()
		s.n++ // an alias, or an anchor that may stand for an empty node
		s.advance(1)
		for s.pos < len(s.data) && isAnchorChar(s.data[s.pos]) {
			s.advance(1)
		}
		s.keyAllowed = false
	case c == '!':
		// A tag ends at a blank (or a ',' in flow context) for the scanner;
		// stopping at any flow indicator scans no less than it does.
		s.content()
		s.n++ // a tag may stand for an empty node
		s.advance(1)
		for !s.blankz(s.pos) && !(flow && isFlowIndicator(s.data[s.pos])) {
			s.advance(1)
		}
		s.keyAllowed = false
	case (c == '|' || c == '>') && !flow:
		s.content()
		s.n++
		s.blockScalar()
		s.keyAllowed = true
	case c == '\'' || c == '"':
		s.content()
		s.n++
		s.quoted(c)
		s.keyAllowed = false
	default:
		// A plain scalar, or a character the scanner refuses (an error:
		// counting it as a scalar only counts more).
		s.content()
		s.n++
		s.plain()
	}
	return nil
}

// content notes a token that is or starts a node: it fills a slot, may be
// a simple key, and makes the flow entry non-empty.
func (s *yamlScan) content() {
	s.before(tokContent)
	if len(s.flows) > 0 {
		s.flows[len(s.flows)-1].content = true
		return
	}
	if s.keyAllowed {
		s.keyOK, s.keyLine, s.keyCol = true, s.line, s.col
		s.keyAllowed = false
	}
}

// endFlowEntry ends an entry of the innermost flow collection: a key
// without a value in a flow mapping gets an empty value.
func (s *yamlScan) endFlowEntry() {
	top := s.flows[len(s.flows)-1]
	if !top.seq && top.content && !top.colon {
		s.n++
	}
}

// blockEntry handles '-' in block context.
func (s *yamlScan) blockEntry() error {
	if err := s.roll(s.col, true); err != nil {
		return err
	}
	top := &s.blocks[len(s.blocks)-1]
	if !top.seq && top.col == s.col && !top.indentless {
		top.indentless = true
		s.n++ // the sequence of an indentless "key:\n- a"
	}
	s.slot = yamlSlot{open: true, dash: true, owner: top.col, line: s.line}
	return nil
}

// value handles ':' as the value indicator.
func (s *yamlScan) value(flow bool) error {
	s.before(tokKey)
	if flow {
		top := &s.flows[len(s.flows)-1]
		if !top.content {
			s.n++ // an empty key
		}
		if top.seq {
			s.n++ // a single-pair mapping
		}
		top.content, top.colon = true, true
		s.slot = yamlSlot{open: true, flow: true}
		s.advance(1)
		s.keyAllowed = false
		return nil
	}
	col := s.col
	if s.keyOK && s.keyLine == s.line {
		col = s.keyCol
	} else {
		s.n++ // an empty key
	}
	s.keyOK = false
	if err := s.roll(col, false); err != nil {
		return err
	}
	top := &s.blocks[len(s.blocks)-1]
	if top.col == col {
		top.indentless = false
	}
	s.slot = yamlSlot{open: true, owner: top.col, line: s.line}
	s.advance(1)
	s.keyAllowed = true
	return nil
}

// roll starts a block collection at col, as the scanner does when col is
// deeper than the current indentation.
func (s *yamlScan) roll(col int, seq bool) error {
	if len(s.blocks) > 0 && s.blocks[len(s.blocks)-1].col >= col {
		return nil
	}
	if len(s.blocks) >= maxYAMLDepth {
		return errYAMLDepth
	}
	s.blocks = append(s.blocks, blockLevel{col: col, seq: seq})
	s.n++
	return nil
}

// indent is the YAML scanner's current block indentation.
func (s *yamlScan) indent() int {
	if len(s.blocks) == 0 {
		return -1
	}
	return s.blocks[len(s.blocks)-1].col
}

// plain skips a plain scalar, across lines as the scanner continues it.
func (s *yamlScan) plain() {
	flow := len(s.flows) > 0
	indent := s.indent() + 1
	s.crossedLineBreak = false
	for {
		if s.col == 0 && s.docIndicator() {
			break
		}
		if s.pos < len(s.data) && s.data[s.pos] == '#' {
			break
		}
		for !s.blankz(s.pos) {
			c := s.data[s.pos]
			if c == ':' && s.blankz(s.pos+1) || flow && (c == ',' || c == '?' || isFlowIndicator(c)) {
				break
			}
			s.advance(1)
		}
		if !(s.blank(s.pos) || s.breakLen(s.pos) > 0) {
			break
		}
		for s.blank(s.pos) || s.breakLen(s.pos) > 0 {
			if s.blank(s.pos) {
				s.advance(1)
			} else {
				s.newline()
				s.crossedLineBreak = true
			}
		}
		if !flow && s.col < indent {
			break
		}
	}
	s.keyAllowed = s.crossedLineBreak
}

// quoted skips a single- or double-quoted scalar.
func (s *yamlScan) quoted(q byte) {
	s.advance(1)
	for !s.eof() {
		if s.col == 0 && s.docIndicator() {
			s.stop() // the scanner refuses a document marker in a quoted scalar
			return
		}
		c := s.data[s.pos]
		switch {
		case q == '\'' && c == '\'' && s.pos+1 < len(s.data) && s.data[s.pos+1] == '\'':
			s.advance(2)
		case c == q:
			s.advance(1)
			return
		case q == '"' && c == '\\' && s.pos+1 < len(s.data):
			s.advance(1)
			if s.breakLen(s.pos) > 0 {
				s.newline()
			} else {
				s.advance(1)
			}
		case s.breakLen(s.pos) > 0:
			s.newline()
		default:
			s.advance(1)
		}
	}
}

// blockScalar skips a literal or folded block scalar: its header line, then
// every line indented at least as far as its content.
func (s *yamlScan) blockScalar() {
	s.advance(1)
	increment := 0
	for i := 0; i < 2 && !s.eof(); i++ {
		c := s.data[s.pos]
		switch {
		case c == '+' || c == '-':
			s.advance(1)
		case c >= '1' && c <= '9':
			increment = int(c - '0')
			s.advance(1)
		}
	}
	for s.blank(s.pos) {
		s.advance(1)
	}
	if !s.eof() && s.data[s.pos] == '#' {
		for !s.eof() && s.breakLen(s.pos) == 0 {
			s.advance(1)
		}
	}
	if s.eof() {
		return
	}
	if s.breakLen(s.pos) == 0 {
		s.stop() // the scanner refuses anything else after the header
		return
	}
	s.newline()
	parent := s.indent()
	indent := 0
	if increment > 0 {
		indent = increment
		if parent >= 0 {
			indent = parent + increment
		}
	} else {
		// As the scanner: the deepest of the leading empty lines and the
		// first line with content, at least one deeper than the parent.
		deepest := 0
		for {
			start, line, col := s.pos, s.line, s.col
			n := s.spaces()
			deepest = max(deepest, n)
			if s.breakLen(s.pos) == 0 {
				s.pos, s.line, s.col = start, line, col
				break
			}
			s.newline()
		}
		indent = max(deepest, parent+1, 1)
	}
	for !s.eof() {
		start, line, col := s.pos, s.line, s.col
		n := s.spaces()
		switch {
		case s.breakLen(s.pos) > 0:
			s.newline()
		case s.eof():
			return
		case n >= indent:
			for !s.eof() && s.breakLen(s.pos) == 0 {
				s.advance(1)
			}
			if !s.eof() {
				s.newline()
			}
		default:
			s.pos, s.line, s.col = start, line, col
			return
		}
	}
}

// spaces skips spaces and returns how many.
func (s *yamlScan) spaces() int {
	n := 0
	for s.pos < len(s.data) && s.data[s.pos] == ' ' {
		s.advance(1)
		n++
	}
	return n
}

// skipToToken skips blanks, line breaks and comments, as the scanner does
// between tokens.
func (s *yamlScan) skipToToken() {
	for !s.eof() {
		c := s.data[s.pos]
		switch {
		case c == ' ' || c == '\t':
			s.advance(1)
		case c == '#':
			for !s.eof() && s.breakLen(s.pos) == 0 {
				s.advance(1)
			}
		case s.breakLen(s.pos) > 0:
			s.newline()
			if len(s.flows) == 0 {
				s.keyAllowed = true
			}
		default:
			return
		}
	}
}

func (s *yamlScan) skipLine() {
	for !s.eof() && s.breakLen(s.pos) == 0 {
		s.advance(1)
	}
}

// docIndicator reports whether "---" or "..." and a blank start here.
func (s *yamlScan) docIndicator() bool {
	d := s.data[s.pos:]
	if len(d) < 3 || !(d[0] == '-' && d[1] == '-' && d[2] == '-' || d[0] == '.' && d[1] == '.' && d[2] == '.') {
		return false
	}
	return s.blankz(s.pos + 3)
}

// eof reports the end of input; the YAML library takes a NUL byte as
// the end too.
func (s *yamlScan) eof() bool {
	return s.pos >= len(s.data) || s.data[s.pos] == 0
}

func (s *yamlScan) stop() { s.pos = len(s.data) }

// advance moves n bytes ahead on the current line; columns count
// characters, as the scanner's do.
func (s *yamlScan) advance(n int) {
	for ; n > 0 && s.pos < len(s.data); n-- {
		if s.data[s.pos]&0xC0 != 0x80 {
			s.col++
		}
		s.pos++
	}
	// Finish the character so that the next position starts one.
	for s.pos < len(s.data) && s.data[s.pos]&0xC0 == 0x80 {
		s.pos++
	}
}

// newline moves past the line break here.
func (s *yamlScan) newline() {
	s.pos += s.breakLen(s.pos)
	s.line++
	s.col = 0
}

// breakLen is the length of the line break at i (CR LF, CR, LF, NEL, LS
// or PS), 0 if there is none.
func (s *yamlScan) breakLen(i int) int {
	d := s.data
	if i >= len(d) {
		return 0
	}
	switch d[i] {
	case '\r':
		if i+1 < len(d) && d[i+1] == '\n' {
			return 2
		}
		return 1
	case '\n':
		return 1
	case 0xC2:
		if i+1 < len(d) && d[i+1] == 0x85 {
			return 2
		}
	case 0xE2:
		if i+2 < len(d) && d[i+1] == 0x80 && (d[i+2] == 0xA8 || d[i+2] == 0xA9) {
			return 3
		}
	}
	return 0
}

func (s *yamlScan) blank(i int) bool {
	return i < len(s.data) && (s.data[i] == ' ' || s.data[i] == '\t')
}

// blankz reports a blank, a line break or the end of input at i.
func (s *yamlScan) blankz(i int) bool {
	return i >= len(s.data) || s.data[i] == 0 || s.blank(i) || s.breakLen(i) > 0
}

// isAnchorChar reports a character of an anchor or alias name.
func isAnchorChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c == '-'
}

func isFlowIndicator(c byte) bool {
	return c == '[' || c == ']' || c == '{' || c == '}' || c == ','
}
