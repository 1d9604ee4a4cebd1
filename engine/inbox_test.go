package engine

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestInbox pushes fetches past the high mark and takes them back: push
// asks for one pause when the inbox reaches inboxHigh, take hands the
// fetches back one at a time in order and asks for the resume once the
// inbox is under half of the mark.
func TestInbox(t *testing.T) {
	b := newInbox()
	// Records of 1 KiB; size of them fill a quarter of the mark.
	value := make([]byte, 1<<10)
	fetch := func(first, n int) []*kgo.Record {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = &kgo.Record{Offset: int64(first + i), Value: value}
		}
		return recs
	}
	const size = inboxHigh / 4 / (1 << 10)
	pauses := 0
	for i := range 6 {
		if b.push(fetch(i*size, size)) {
			pauses++
			if i != 3 {
				t.Errorf("pause asked at fetch %d, want at fetch 3 (%d bytes)", i, 4*size<<10)
			}
		}
	}
	if pauses != 1 {
		t.Fatalf("%d pauses asked, want 1", pauses)
	}
	next := int64(0)
	for i := range 6 {
		select {
		case <-b.ready:
		default:
			t.Fatalf("take %d: inbox not ready with %d fetches left", i, 6-i)
		}
		recs, resume := b.take()
		if len(recs) != size || recs[0].Offset != next {
			t.Fatalf("take %d: %d records from offset %d, want %d from %d", i, len(recs), recs[0].Offset, size, next)
		}
		next += size
		// Left after this take: (5-i) quarters of the mark; resume below half of
		// the mark, that is from 1 fetch left on.
		if want := i == 4; resume != want {
			t.Errorf("take %d: resume %v, want %v", i, resume, want)
		}
	}
	if recs, resume := b.take(); recs != nil || resume {
		t.Fatalf("empty inbox gave %d records, resume %v", len(recs), resume)
	}
	select {
	case <-b.ready:
		t.Fatal("empty inbox still ready")
	default:
	}
}

// TestInboxHammer pushes from one goroutine, as the poll loop does, while
// another takes, as the task does: every record arrives once, in order,
// and every pause asked for is followed by a resume.
func TestInboxHammer(t *testing.T) {
	b := newInbox()
	const fetches, per = 2000, 50
	value := make([]byte, inboxHigh/(20*per)) // 20 fetches fill the mark
	var pauses, resumes int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range fetches {
			recs := make([]*kgo.Record, per)
			for j := range recs {
				recs[j] = &kgo.Record{Offset: int64(i*per + j), Value: value}
			}
			if b.push(recs) {
				pauses++
			}
		}
	}()
	next := int64(0)
	for next < fetches*per {
		<-b.ready
		for {
			recs, resume := b.take()
			if resume {
				resumes++
			}
			if len(recs) == 0 {
				break
			}
			for _, r := range recs {
				if r.Offset != next {
					t.Fatalf("record at offset %d, want %d", r.Offset, next)
				}
				next++
			}
		}
	}
	<-done
	if pauses != resumes {
		t.Fatalf("%d pauses asked, %d resumes", pauses, resumes)
	}
}

// TestInboxDrop empties a paused inbox, as an aborted transaction does: no
// record is left and the pause is lifted once.
func TestInboxDrop(t *testing.T) {
	b := newInbox()
	big := []*kgo.Record{{Value: make([]byte, inboxHigh)}}
	small := []*kgo.Record{{Offset: 1, Value: []byte("v")}}
	if !b.push(big) {
		t.Fatal("a fetch of inboxHigh bytes asked for no pause")
	}
	b.push(small)
	if !b.drop() {
		t.Fatal("drop of a paused inbox asked for no resume")
	}
	if recs, resume := b.take(); recs != nil || resume {
		t.Fatalf("after drop: %d records, resume %v", len(recs), resume)
	}
	if b.drop() {
		t.Fatal("a second drop asked for a resume again")
	}
}
