package broker

import (
	"errors"
	"testing"
)

func TestParseTopicConfigUncleanLeaderElection(t *testing.T) {
	c, err := ParseTopicConfig(DefaultTopicConfig(), map[string]string{"unclean.leader.election.enable": "true"})
	if err != nil || !c.UncleanLeaderElection {
		t.Fatalf("true: %+v, %v", c.UncleanLeaderElection, err)
	}
	def, _ := LookupTopicConfig("unclean.leader.election.enable")
	if got := def.Get(&c); got != "true" {
		t.Fatalf("described as %q", got)
	}
	if _, err := ParseTopicConfig(DefaultTopicConfig(), map[string]string{"unclean.leader.election.enable": "maybe"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("maybe: %v, want ErrInvalidConfig", err)
	}
	if DefaultTopicConfig().UncleanLeaderElection {
		t.Fatal("on by default")
	}
}
