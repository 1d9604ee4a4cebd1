package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/flowstate/flowstate/host"
	"github.com/flowstate/flowstate/internal/field"
)

// Whatever the sandbox accepts, the commit must be able to write: a store
// write becomes a changelog record and an emit an output record, and a
// record the producer or a topic refuses would fail the commit of the
// batches after it too, after every restart. So the limits are checked,
// at start, against the smallest max.message.bytes of the topics the
// process writes (outputs, changelogs, dead-letter topics), and the
// producer batches up to that size: a record within the limits always fits
// a batch and every topic takes every batch.

// recordOverhead bounds what a record batch of one record adds to the
// record's key, value and headers: 61 bytes of batch header and at most
// about 40 of record framing (varints), with room to spare.
const recordOverhead = 1 << 10

// defaultMaxMessageBytes is Kafka's default max.message.bytes
// (message.max.bytes), also kfake's.
const defaultMaxMessageBytes = 1048588

// recordBytes is the largest record batch a pipeline's limits let through.
func (p *Pipeline) recordBytes() int {
	return p.Limits.MaxKeyBytes + p.Limits.MaxValueBytes + recordOverhead
}

// topicConfigs adds max.message.bytes to configs, for a topic the engine
// creates for p, when p's records need more than the default.
func (p *Pipeline) topicConfigs(configs map[string]*string) map[string]*string {
	if n := p.recordBytes(); n > defaultMaxMessageBytes {
		if configs == nil {
			configs = map[string]*string{}
		}
		configs["max.message.bytes"] = new(strconv.Itoa(n))
	}
	return configs
}

// fitLimits checks every pipeline's limits against the smallest
// max.message.bytes of the topics the process writes and returns it, the
// producer's max batch bytes (0 when no topic reports one). A
// max_value_bytes left at its default is lowered to fit; one set to more
// is an error naming its key. It runs before the modules are compiled,
// which take the limits.
func (e *Engine) fitLimits(ctx context.Context, adm *kadm.Client) (int32, error) {
	var topics []string
	for _, p := range e.pipelines {
		topics = append(topics, p.cfg.Outputs...)
		topics = append(topics, p.changelogs...)
		if p.cfg.OnError == OnErrorDeadLetter {
			topics = append(topics, e.cfg.DeadLetterTopic(p.cfg.Name))
		}
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	if len(topics) == 0 {
		return 0, nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("describe topic configs: %w", err)
	}
	least, leastTopic := math.MaxInt32, ""
	for _, rc := range rcs {
		if rc.Err != nil {
			return 0, fmt.Errorf("describe topic configs of %s: %w", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			n, err := strconv.Atoi(*c.Value)
			if err != nil {
				return 0, fmt.Errorf("topic %s: max.message.bytes %q: %w", rc.Name, *c.Value, err)
			}
			if n < least {
				least, leastTopic = n, rc.Name
			}
		}
	}
	if leastTopic == "" {
		return 0, nil
	}
	var errs field.List
	for _, p := range e.pipelines {
		lim := &p.cfg.Limits
		fit := least - recordOverhead - lim.MaxKeyBytes
		switch {
		case lim.MaxValueBytes <= fit:
		case lim.MaxValueBytes == host.DefaultMaxValueBytes && fit > 0:
			e.log.Info("max_value_bytes lowered to what the topics take", "pipeline", p.cfg.Name,
				"max_value_bytes", fit, "topic", leastTopic, "max.message.bytes", least)
			lim.MaxValueBytes = fit
		default:
			errs.Add("pipelines."+p.cfg.Name+".limits.max_value_bytes",
				"%d with max_key_bytes %d and %d bytes of record framing is over max.message.bytes %d of topic %s; every record the process writes must fit every topic it writes (raise the topic's max.message.bytes or lower the limits)",
				lim.MaxValueBytes, lim.MaxKeyBytes, recordOverhead, least, leastTopic)
		}
	}
	if err := errs.Err(); err != nil {
		return 0, err
	}
	return int32(least), nil
}
