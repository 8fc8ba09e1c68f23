package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Helpers shared by the topic, produce, consume and group commands: turning
// broker error codes into sentences that say what to do, and parsing the
// flag values they have in common.

// topicErr explains a per-topic error code from the broker.
func topicErr(topic string, err error, brokerMsg string) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("topic %q does not exist (list topics with `strata topic list`)", topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("topic %q already exists (see `strata topic describe %s`)", topic, topic)
	}
	return fmt.Errorf("topic %q: %s", topic, kafkaErrText(err, brokerMsg))
}

// groupErr explains a per-group error code from the broker.
func groupErr(group string, err error, brokerMsg string) error {
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("group %q does not exist (list groups with `strata group list`)", group)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("group %q has active members; stop its consumers first", group)
	}
	return fmt.Errorf("group %q: %s", group, kafkaErrText(err, brokerMsg))
}

// kafkaErrText is the broker's own message when it sent one, else the
// error code's description, followed by the code's name.
func kafkaErrText(err error, brokerMsg string) string {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		if brokerMsg != "" {
			return brokerMsg + ": " + err.Error()
		}
		return err.Error()
	}
	if brokerMsg == "" {
		brokerMsg = ke.Description
	}
	return fmt.Sprintf("%s (%s)", brokerMsg, ke.Message)
}

// joinErrs folds several failures (one per topic or group) into one error
// that lists each on its own line.
func joinErrs(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = "  " + e.Error()
	}
	return fmt.Errorf("%d failures:\n%s", len(errs), strings.Join(lines, "\n"))
}

// parseKVs parses repeated key=value flag values.
func parseKVs(flag string, kvs []string) ([][2]string, error) {
	var out [][2]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--%s %q: expected key=value", flag, kv)
		}
		out = append(out, [2]string{strings.TrimSpace(k), v})
	}
	return out, nil
}

// int32List formats partition or broker ids as 0,1,2.
func int32List(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

// sortedInt32s returns a sorted copy that is never nil (so JSON says []).
func sortedInt32s(ids []int32) []int32 {
	out := append(make([]int32, 0, len(ids)), ids...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// optInt formats an offset that may be unknown (nil) as "-".
func optInt(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

// plural is noun, with an s unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
