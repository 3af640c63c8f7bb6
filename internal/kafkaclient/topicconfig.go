package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
)

// SetTopicConfigs sets configs on topic with IncrementalAlterConfigs (the
// topic's other configs keep their values), as an operator's
// kafka-configs.sh --alter --add-config does. The embedded and the Apache
// Kafka clusters both use it for the topic-config fault.
func SetTopicConfigs(ctx context.Context, adm *kadm.Client, topic string, configs map[string]string) error {
	if len(configs) == 0 {
		return errors.New("no config to set")
	}
	var alter []kadm.AlterConfig
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		v := configs[k]
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	resps, err := adm.AlterTopicConfigs(ctx, alter, topic)
	if err != nil {
		return err
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("topic %s: %w (%s)", r.Name, r.Err, r.ErrMessage)
		}
	}
	return nil
}
