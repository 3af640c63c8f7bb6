package agent

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ensureTopic creates topic with one partition (the broker's default
// replication factor) unless it exists.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, 1, -1
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("creating fault topic %s: %w", topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("creating fault topic %s: %w (%w)", topic, err, errNoTopic)
		}
	}
	return nil
}

// addPartitions grows topic to total partitions.
func addPartitions(ctx context.Context, cl *kgo.Client, topic string, total int) error {
	req := kmsg.NewPtrCreatePartitionsRequest()
	t := kmsg.NewCreatePartitionsRequestTopic()
	t.Topic, t.Count = topic, int32(total)
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("growing topic %s to %d partitions: %w", topic, total, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			msg := ""
			if rt.ErrorMessage != nil {
				msg = ": " + *rt.ErrorMessage
			}
			return fmt.Errorf("growing topic %s to %d partitions: %w%s", topic, total, err, msg)
		}
	}
	return nil
}

// purge deletes every record of topic below its high watermark (what
// retention does to records the mirror had not copied yet) and returns the
// new log start offset of each partition.
func purge(ctx context.Context, cl *kgo.Client, topic string) (map[int]int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(mresp.Topics) != 1 || kerr.ErrorForCode(mresp.Topics[0].ErrorCode) != nil {
		return nil, fmt.Errorf("metadata of %s: topic missing or unreadable", topic)
	}
	var parts []int32
	for _, p := range mresp.Topics[0].Partitions {
		parts = append(parts, p.Partition)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })

	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, p := range parts {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, -1 // latest: the high watermark
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	lresp, err := lo.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	del := kmsg.NewPtrDeleteRecordsRequest()
	del.TimeoutMillis = 30000
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = topic
	for _, t := range lresp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p.Partition, err)
			}
			dp := kmsg.NewDeleteRecordsRequestTopicPartition()
			dp.Partition, dp.Offset = p.Partition, p.Offset
			dt.Partitions = append(dt.Partitions, dp)
		}
	}
	del.Topics = append(del.Topics, dt)
	dresp, err := del.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("deleting records of %s: %w", topic, err)
	}
	out := map[int]int64{}
	for _, t := range dresp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("deleting records of %s/%d: %w", topic, p.Partition, err)
			}
			out[int(p.Partition)] = p.LowWatermark
		}
	}
	if len(out) != len(parts) {
		return out, fmt.Errorf("deleting records of %s: %d of %d partitions answered", topic, len(out), len(parts))
	}
	return out, nil
}
