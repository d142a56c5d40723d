package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A summary is one part of one UTC day of one site's events, as the index
// reads them: the ops (series.go) of the site's messages of the event
// stream whose sequences are in (from, to], in stream order. Applying the
// parts of a site in the order of their sequences, then the stream's
// messages after the last part, builds the same index as reading every
// message from the stream: the same ops, in the same order.
//
// Days: a message belongs to the UTC day of its event's timestamp, or to
// the day of the site's message before it when that is later (a retried
// event that lands after the next day's first event belongs to the next
// day), so that the days of a site cut its messages into runs of
// sequences. A day is cut into parts of about partBytes each; a part is
// numbered from 0 within its day.
//
// A summary names the event stream it was read from by the stream's
// creation time (epoch): sequences mean nothing in a stream deleted and
// created again, so a reader ignores the summaries of another epoch. It
// also says when the stream stored its last message (stored, the
// message's timestamp in the stream, ns): a stream restored from a backup
// older than the summary holds another message at that sequence, or none,
// and a reader ignores the summary and those after it.
//
// Layout, version 1 (all integers unsigned varints unless said):
//
//	version (1 byte) | epoch | from | to | stored |
//	ids: count, then each: length, bytes |
//	ops: count, then each: seq - previous seq (the first: seq - from) |
//	kind, with chosen as bit 2 (1 byte) | at - previous at (zig-zag
//	signed varint; the first: at) | [id's index | codes, v | w<<4 (1 byte),
//	kinds other than opOther]
//
// The same ops encode to the same bytes, so that two replicas writing the
// same part write the same summary.
const summaryVersion = 1

// partBytes is about the size of one part: a day that encodes larger is
// cut into several, each well under NATS's default largest message (1 MiB).
// Tests make it smaller (Index.partBytes).
const partBytes = 256 << 10

const dayMillis = int64(24 * time.Hour / time.Millisecond)

// dayOf returns the UTC day of the instant at (ms), in days since 1970.
func dayOf(at int64) int64 {
	d := at / dayMillis
	if at < 0 && at%dayMillis != 0 {
		d--
	}
	return d
}

// dayDate returns day as YYYY-MM-DD.
func dayDate(day int64) string {
	return time.UnixMilli(day * dayMillis).UTC().Format(time.DateOnly)
}

// header is what a summary says of itself (see above).
type header struct {
	epoch    uint64
	from, to uint64
	stored   int64
}

// part is one summary being built.
type part struct {
	day int64
	n   int
	header
	// sealed says the part is being written: what comes after it goes to
	// the next part.
	sealed bool

	ids    []string
	idx    map[string]uint32
	idSize int
	nOps   int
	ops    []byte
	seq    uint64 // the last op's seq, from until one
	at     int64  // the last op's at
}

func newPart(epoch uint64, day int64, n int, from uint64) *part {
	return &part{day: day, n: n, header: header{epoch: epoch, from: from, to: from}, seq: from, idx: make(map[string]uint32)}
}

// size is about the part's encoded size.
func (p *part) size() int { return len(p.ops) + p.idSize }

// add appends o to p.
func (p *part) add(o op) {
	k := o.kind
	if o.chosen {
		k |= 4
	}
	p.ops = binary.AppendUvarint(p.ops, o.seq-p.seq)
	p.ops = append(p.ops, k)
	p.ops = binary.AppendVarint(p.ops, o.at-p.at)
	if o.kind != opOther {
		i, ok := p.idx[o.id]
		if !ok {
			i = uint32(len(p.ids))
			p.idx[o.id] = i
			p.ids = append(p.ids, o.id)
			p.idSize += len(o.id) + binary.MaxVarintLen32
		}
		p.ops = binary.AppendUvarint(p.ops, uint64(i))
		p.ops = append(p.ops, o.v|o.w<<4)
	}
	p.seq, p.at, p.to, p.stored = o.seq, o.at, o.seq, o.stored
	p.nOps++
}

// encode returns p as a summary's bytes.
func (p *part) encode() []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen64+p.idSize+len(p.ops))
	b = append(b, summaryVersion)
	b = binary.AppendUvarint(b, p.epoch)
	b = binary.AppendUvarint(b, p.from)
	b = binary.AppendUvarint(b, p.to)
	b = binary.AppendUvarint(b, uint64(p.stored))
	b = binary.AppendUvarint(b, uint64(len(p.ids)))
	for _, id := range p.ids {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
	}
	b = binary.AppendUvarint(b, uint64(p.nOps))
	return append(b, p.ops...)
}

var errSummary = errors.New("malformed summary")

// summaryHeader returns the header of an encoded summary, checking its
// version.
func summaryHeader(b []byte) (header, error) {
	r := reader{b: b}
	return r.header()
}

func (r *reader) header() (header, error) {
	if v := r.byte(); v != summaryVersion {
		return header{}, fmt.Errorf("summary version %d, this replica reads %d", v, summaryVersion)
	}
	h := header{epoch: r.uvarint(), from: r.uvarint(), to: r.uvarint(), stored: int64(r.uvarint())}
	if r.err != nil || h.to < h.from {
		return header{}, errSummary
	}
	return h, nil
}

// decodeSummary calls f with each op of an encoded summary, in order.
func decodeSummary(b []byte, f func(op)) error {
	r := reader{b: b}
	h, err := r.header()
	if err != nil {
		return err
	}
	seq := h.from
	n := r.uvarint()
	if n > uint64(len(b)) {
		return errSummary
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = string(r.bytes(r.uvarint()))
	}
	count := r.uvarint()
	var at int64
	for i := uint64(0); i < count && r.err == nil; i++ {
		seq += r.uvarint()
		k := r.byte()
		at += r.varint()
		o := op{seq: seq, at: at, kind: k &^ 4, chosen: k&4 != 0}
		if o.kind != opOther {
			id := r.uvarint()
			c := r.byte()
			if id >= uint64(len(ids)) || o.kind > opOther {
				return errSummary
			}
			o.id, o.v, o.w = ids[id], c&15, c>>4
			if int(o.v) >= len(reasons) || int(o.w) >= len(reasons) {
				return errSummary
			}
		}
		if r.err == nil {
			f(o)
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return errSummary
	}
	return nil
}

// reader reads a summary's bytes; err is set once one runs short.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.err = errSummary
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	return advance(r, v, n)
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	return advance(r, v, n)
}

// advance takes the n bytes of a varint v off r, or sets r.err when n
// says there was none.
func advance[T uint64 | int64](r *reader, v T, n int) T {
	if n <= 0 {
		r.err = errSummary
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.err = errSummary
		r.b = nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// builder cuts the ops a site entry reads from the stream into parts, and
// keeps those not written yet.
type builder struct {
	// day is the day of the last op (the floor of the next op's day), n
	// the number of its last part; to is the last op's seq, or where the
	// summaries read end.
	day int64
	n   int
	to  uint64
	// settled: the days before it ended long enough ago (SettleAfter), when
	// the site was loaded or its parts last written, that no event of them
	// can still come.
	settled int64
	// epoch is the event stream's (see above); limit the size of a part.
	epoch uint64
	limit int
	parts []*part
}

// add appends o to the part of its day.
func (b *builder) add(o op) {
	d := max(dayOf(o.at), b.day)
	var cur *part
	if k := len(b.parts); k > 0 {
		cur = b.parts[k-1]
	}
	if cur == nil || cur.day != d || cur.sealed || cur.size() >= b.limit {
		n := 0
		if d == b.day {
			n = b.n + 1
		}
		cur = newPart(b.epoch, d, n, b.to)
		b.parts = append(b.parts, cur)
		b.day, b.n = d, n
	}
	cur.add(o)
	b.to = o.seq
}

// anyReady reports whether ready would return a part.
func (b *builder) anyReady() bool {
	return len(b.parts) > 1 || len(b.parts) == 1 && b.parts[0].day < b.settled
}

// ready returns the parts that are complete, sealing them: every part but
// the last (a later part began after it, because its day was over or it
// was full), and the last once its day ended long enough ago (settled).
func (b *builder) ready() []*part {
	var out []*part
	for i, p := range b.parts {
		if i == len(b.parts)-1 && p.day >= b.settled {
			break
		}
		p.sealed = true
		out = append(out, p)
	}
	return out
}

// written drops the parts that ready returned and were written.
func (b *builder) written(n int) {
	b.parts = append([]*part(nil), b.parts[n:]...) // the written ones freed
}
