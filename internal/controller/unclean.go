package controller

import (
	"strings"

	"github.com/strata-io/strata/internal/cluster"
	"github.com/strata-io/strata/internal/cluster/records"
)

// UncleanLeaderElectionConfig is the topic config and broker property
// that allows unclean leader elections.
const UncleanLeaderElectionConfig = "unclean.leader.election.enable"

// Unclean returns whether each topic of im may elect a leader outside its
// ISR, as Kafka's ConfigurationControlManager.uncleanLeaderElectionEnabledForTopic
// resolves unclean.leader.election.enable: the topic's own config, else
// the cluster-wide dynamic broker default, else this node's static
// unclean.leader.election.enable. A value that does not parse as a
// boolean is taken as false.
func (c *Controller) Unclean(im *cluster.Image) Unclean {
	def := c.cfg.UncleanLeaderElection
	if v, ok := im.ResourceConfigs(cluster.ConfigResource{Type: records.ResourceBroker})[UncleanLeaderElectionConfig]; ok {
		def = parseBool(v)
	}
	return func(t *cluster.Topic) bool {
		if v, ok := t.Configs[UncleanLeaderElectionConfig]; ok {
			return parseBool(v)
		}
		return def
	}
}

// parseBool reads a boolean config as Kafka's ConfigDef does: "true" in
// any case.
func parseBool(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }
