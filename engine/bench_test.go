package engine_test

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkWordcount measures records per second through the wordcount
// plugin end to end: an in-process broker, 4 partitions, RocksDB stores and
// changelogs, at-least-once. Each sentence of 10 words is one input record
// and each word is a second one (through the words topic), so a sentence
// costs 11 guest records, 10 store updates and 20 produced records.
func BenchmarkWordcount(b *testing.B) {
	const sentencesPerRun = 20_000
	var took time.Duration
	runs := 0
	cache := b.TempDir() // compile once, not in every run
	for b.Loop() {
		b.StopTimer()
		c := newCluster(b, "sentences", "words", "word-counts")
		a := newWordcount(b, c, b.TempDir())
		a.cfg.CommitInterval = 100 * time.Millisecond
		a.cfg.CacheDir = cache
		rng := rand.New(rand.NewPCG(uint64(runs), 7))
		c.produce(b, "sentences", sentences(rng, sentencesPerRun, map[string]int64{}))
		b.StartTimer()

		begin := time.Now()
		stop := a.start(b)
		c.waitDone(b, "wordcount", "sentences", "words")
		took += time.Since(begin)
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		runs++
	}
	records := float64(runs * sentencesPerRun * 11)
	b.ReportMetric(records/took.Seconds(), "records/s")
	b.ReportMetric(float64(runs*sentencesPerRun*10)/took.Seconds(), "words/s")
}
