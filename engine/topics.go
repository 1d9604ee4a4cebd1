package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowstate/flowstate/state/changelog"
)

// ErrTopicMissing is returned when an input or output topic does not exist
// and the engine may not create it.
var ErrTopicMissing = errors.New("engine: topic does not exist")

// ensureTopics checks that inputs and outputs exist (creating them when
// CreateTopics is set) and creates missing changelog topics, compacted, with
// the partition count of their pipeline's inputs.
func (e *Engine) ensureTopics(ctx context.Context, cl *kgo.Client) error {
	adm := kadm.NewClient(cl)
	want := map[string]bool{}
	for _, p := range e.pipelines {
		for _, t := range p.cfg.Inputs {
			want[t] = true
		}
		for _, t := range p.cfg.Outputs {
			want[t] = true
		}
		for _, t := range p.changelogs {
			want[t] = true
		}
		if p.cfg.OnError == OnErrorDeadLetter {
			want[e.cfg.DeadLetterTopic(p.cfg.Name)] = true
		}
	}
	var names []string
	for t := range want {
		names = append(names, t)
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	partitions := func(topic string) (int, bool) {
		d, ok := details[topic]
		if !ok || d.Err != nil {
			return 0, false
		}
		return len(d.Partitions), true
	}

	create := func(topic string, n int, configs map[string]*string) error {
		resp, err := adm.CreateTopic(ctx, int32(n), -1, configs, topic)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			// Another process of the application, starting at the same
			// time, created it between the listing and now.
			e.log.Info("topic created by another process", "topic", topic)
			return nil
		}
		if err != nil {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
		e.log.Info("topic created", "topic", topic, "partitions", n)
		return nil
	}

	var errs []error
	for _, p := range e.pipelines {
		at := "pipeline " + p.cfg.Name
		inputParts := 0
		for _, kind := range []struct {
			name   string
			topics []string
		}{{"input", p.cfg.Inputs}, {"output", p.cfg.Outputs}} {
			for _, t := range kind.topics {
				n, ok := partitions(t)
				if !ok {
					if !e.cfg.CreateTopics {
						errs = append(errs, fmt.Errorf("%s: %s topic %s: %w", at, kind.name, t, ErrTopicMissing))
						continue
					}
					n = e.cfg.TopicPartitions
					if err := create(t, n, nil); err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", at, err))
						continue
					}
					details[t] = kadm.TopicDetail{Topic: t, Partitions: make(kadm.PartitionDetails, n)}
					for i := range n {
						details[t].Partitions[int32(i)] = kadm.PartitionDetail{Topic: t, Partition: int32(i)}
					}
				}
				if kind.name == "input" {
					if inputParts != 0 && n != inputParts {
						errs = append(errs, fmt.Errorf("%s: inputs are not co-partitioned: %s has %d partitions, another input %d", at, t, n, inputParts))
					}
					inputParts = max(inputParts, n)
				}
			}
		}
		if inputParts == 0 {
			continue
		}
		for _, t := range p.changelogs {
			n, ok := partitions(t)
			switch {
			case !ok:
				if err := create(t, inputParts, p.cfg.topicConfigs(changelog.TopicConfigs())); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", at, err))
				}
			case n < inputParts:
				errs = append(errs, fmt.Errorf("%s: changelog %s has %d partitions, fewer than the inputs' %d", at, t, n, inputParts))
			}
		}
		if dlq := e.cfg.DeadLetterTopic(p.cfg.Name); p.cfg.OnError == OnErrorDeadLetter {
			if _, ok := partitions(dlq); !ok {
				if err := create(dlq, inputParts, p.cfg.topicConfigs(nil)); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", at, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// partitioner writes changelog records to the partition set on the record
// (the task's own) and hashes the keys of every other record the way Kafka's
// Java client does.
type partitioner struct {
	changelogs map[string]bool
}

var (
	manual = kgo.ManualPartitioner()
	byKey  = kgo.StickyKeyPartitioner(nil)
)

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.changelogs[topic] {
		return manual.ForTopic(topic)
	}
	return byKey.ForTopic(topic)
}
